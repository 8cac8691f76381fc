#pragma once
/// @file
/// Plain C++ view of the CUDA runtime for core/ (no CUDA headers here).

#include <cstddef>
#include <string>

namespace cutoff {

/// True when a CUDA device can be used; otherwise `why` says why (no driver,
/// driver too old, no device). Safe on machines without a driver.
bool cuda_probe(std::string* why);

}  // namespace cutoff

namespace cutoff {

/// Device-to-device copy bandwidth of device 0 (cudaMemcpy of `mib` MiB, best of
/// 10; bytes read plus bytes written per second, GB/s): the physical limit the
/// benchmark reports the GPU tick against. Sets *free_bytes to the free device memory.
double device_copy_GBps(std::size_t mib, std::size_t* free_bytes);

}  // namespace cutoff
