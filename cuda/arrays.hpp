#pragma once
/// @file
/// Device arrays of the field registries and checked memory helpers, as plain
/// C++ declarations (no CUDA headers), for the CUDA backend and the tests.

#include <cstdint>
#include <type_traits>

#include "agents/fields.hpp"
#include "core/hd/registry.hpp"

namespace cutoff::cuda {

/// Device memory helpers (throw with the call, file and line on error).
void* device_alloc(std::size_t bytes);
void device_free(void* p);

/// One device array per registry field (the device twin of HostArrays).
template <class Pop> class DeviceArrays {
 public:
  using View = typename Pop::View;
  explicit DeviceArrays(std::uint64_t n) {
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

 private:
  View view_{};
};

}  // namespace cutoff::cuda
