#pragma once
/// @file
/// Field registries: one X-macro list per population names every per-agent
/// array with its type, unit and meaning. From that one list come the SoA view
/// passed to kernels, host and device allocation, the memory estimate, HDF5
/// snapshot names and attributes, and checkpoints. Adding an attribute is one line
/// in agents/*_fields.hpp.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>

namespace cutoff {

enum class FieldType : std::uint8_t { U8, U16, U32, U64, F32, F64 };

/// State persists from tick to tick (snapshots, checkpoints); Scratch is
/// recomputed every tick and never saved.
enum class FieldRole : std::uint8_t { State, Scratch };

template <class T> constexpr FieldType field_type_of();
template <> constexpr FieldType field_type_of<std::uint8_t>() { return FieldType::U8; }
template <> constexpr FieldType field_type_of<std::uint16_t>() { return FieldType::U16; }
template <> constexpr FieldType field_type_of<std::uint32_t>() { return FieldType::U32; }
template <> constexpr FieldType field_type_of<std::uint64_t>() { return FieldType::U64; }
template <> constexpr FieldType field_type_of<float>() { return FieldType::F32; }
template <> constexpr FieldType field_type_of<double>() { return FieldType::F64; }

struct FieldInfo {
  const char* name;
  FieldType type;
  std::size_t bytes;  ///< bytes per agent
  FieldRole role;
  const char* unit;
  const char* description;
};

/// Bytes per agent of a registry, optionally only of one role.
template <class Pop> constexpr std::size_t bytes_per_agent() {
  std::size_t b = 0;
  for (const FieldInfo& f : Pop::kFields) b += f.bytes;
  return b;
}

/// Alignment and size granule of host agent arrays: a page, so no two arrays
/// share one and the CUDA backend can pin each with cudaHostRegister.
inline constexpr std::size_t kHostArrayAlign = 4096;

/// Host storage for one population: one page-aligned array per registry
/// field, sized once. The view (raw pointers) is what per-agent functions see.
template <class Pop> class HostArrays {
 public:
  using View = typename Pop::View;

  HostArrays() = default;
  explicit HostArrays(std::uint64_t n) : n_(n) {
    int i = 0;
    Pop::for_each(view_, [&](const FieldInfo& f, auto*& ptr) {
      using T = std::remove_reference_t<decltype(*ptr)>;
      const std::size_t bytes = ((n * sizeof(T) + 64) / kHostArrayAlign + 1) * kHostArrayAlign;
      void* p = std::aligned_alloc(kHostArrayAlign, bytes);
      if (p == nullptr) throw std::bad_alloc();
      blocks_[i++].reset(p);
      ptr = static_cast<T*>(p);
      (void)f;
    });
  }
  // clang-tidy 14 flags the implicit parameter names (__i0) of the defaulted moves.
  // NOLINTBEGIN(bugprone-reserved-identifier)
  HostArrays(HostArrays&&) noexcept = default;
  HostArrays& operator=(HostArrays&&) noexcept = default;
  // NOLINTEND(bugprone-reserved-identifier)

  std::uint64_t size() const { return n_; }
  const View& view() const { return view_; }

 private:
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  std::uint64_t n_ = 0;
  View view_{};
  std::unique_ptr<void, Free> blocks_[Pop::kFieldCount];
};

}  // namespace cutoff

// ---------------------------------------------------------------------------
// Macro machinery that turns a field list X(role, type, name, unit, description)
// into the SoA view struct, the FieldInfo table and a for_each over the view.
// ---------------------------------------------------------------------------
#define CUTOFF_FIELD_MEMBER(role, T, name, unit, desc) T* name;
#define CUTOFF_FIELD_INFO(role, T, name, unit, desc) \
  ::cutoff::FieldInfo{#name, ::cutoff::field_type_of<T>(), sizeof(T), ::cutoff::FieldRole::role, unit, desc},
#define CUTOFF_FIELD_COUNT(role, T, name, unit, desc) +1
#define CUTOFF_FIELD_VISIT(role, T, name, unit, desc) f(kFields[i++], v.name);

/// Declares `struct VIEW` (one pointer per field) and `struct POP` with
/// kName, kFields, kFieldCount and for_each(view, f(FieldInfo, T*&)).
#define CUTOFF_DEFINE_POPULATION(POP, VIEW, NAME, LIST)                                    \
  struct VIEW {                                                                            \
    LIST(CUTOFF_FIELD_MEMBER)                                                              \
  };                                                                                       \
  struct POP {                                                                             \
    using View = VIEW;                                                                     \
    static constexpr const char* kName = NAME;                                             \
    static constexpr int kFieldCount = 0 LIST(CUTOFF_FIELD_COUNT);                         \
    static constexpr ::cutoff::FieldInfo kFields[kFieldCount] = {LIST(CUTOFF_FIELD_INFO)}; \
    template <class F> static void for_each(View& v, F&& f) {                              \
      int i = 0;                                                                           \
      LIST(CUTOFF_FIELD_VISIT)                                                             \
      (void)i;                                                                             \
    }                                                                                      \
  };
