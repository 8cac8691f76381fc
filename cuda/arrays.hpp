#pragma once
/// @file
/// Device arrays of the field registries and checked memory helpers, as plain
/// C++ declarations (no CUDA headers), for the CUDA backend and the tests.

#include <cstdint>
#include <type_traits>

#include "agents/fields.hpp"
#include "core/registry.hpp"

namespace cutoff::cuda {

/// Device memory helpers (throw with the call, file and line on error).
void* device_alloc(std::size_t bytes);
void device_free(void* p);
void copy_to_device(void* d_dst, const void* src, std::size_t bytes);
void copy_to_host(void* dst, const void* d_src, std::size_t bytes);

/// One device array per registry field (the device twin of HostArrays).
template <class Pop>
class DeviceArrays {
 public:
  using View = typename Pop::View;
  explicit DeviceArrays(std::uint64_t n) : n_(n) {
    Pop::for_each(view_, [&](const FieldInfo& f, auto*& ptr) {
      using T = std::remove_reference_t<decltype(*ptr)>;
      ptr = static_cast<T*>(device_alloc(n * f.bytes + 64));
    });
  }
  ~DeviceArrays() {
    Pop::for_each(view_, [&](const FieldInfo&, auto*& ptr) { device_free(ptr); });
  }
  DeviceArrays(const DeviceArrays&) = delete;
  DeviceArrays& operator=(const DeviceArrays&) = delete;

  const View& view() const { return view_; }
  /// Copies every field to host arrays of the same size.
  void to_host(const View& host) const {
    View d = view_, h = host;
    int k = 0;
    void* dst[Pop::kFieldCount];
    Pop::for_each(h, [&](const FieldInfo&, auto*& ptr) { dst[k++] = ptr; });
    k = 0;
    Pop::for_each(d, [&](const FieldInfo& f, auto*& ptr) { copy_to_host(dst[k++], ptr, n_ * f.bytes); });
  }

 private:
  std::uint64_t n_;
  View view_{};
};

}  // namespace cutoff::cuda
