#pragma once
/// @file
/// Plain C++ view of the CUDA runtime for core/ (no CUDA headers here).

#include <cstddef>
#include <string>

namespace cutoff {

/// True when a CUDA device can be used; otherwise `why` says why (no driver,
/// driver too old, no device). Safe on machines without a driver.
bool cuda_probe(std::string* why);

/// CUDA's compatibility rule for a build whose runtime is CUDA `runtime` on a
/// driver that supports CUDA `driver` (both as CUDA encodes them: 1000·major +
/// 10·minor, as cudaRuntimeGetVersion and cudaDriverGetVersion give them): a
/// driver of the same major version runs any minor release of it (minor version
/// compatibility: a 13.x build on the 580 driver of CUDA 13.0), a newer one runs
/// every older runtime. Otherwise false, and `why` names the driver the runtime
/// needs (its stated minimum: 580 for CUDA 13, 525 for 12, 450 for 11).
bool cuda_driver_supports(int driver, int runtime, std::string* why);

/// The switch CUTOFF_CUDA_SYNC (set, and not empty or "0"): every kernel launch
/// is followed by a device synchronisation and check, whose error names the
/// kernel and the pass (cuda/check.cuh). Read once per process.
bool cuda_sync_each_launch();

}  // namespace cutoff

namespace cutoff {

/// Device-to-device copy bandwidth of device 0 (cudaMemcpy of `mib` MiB, best of
/// 10; bytes read plus bytes written per second, GB/s): the physical limit the
/// benchmark reports the GPU tick against. Sets *free_bytes to the free device memory.
double device_copy_GBps(std::size_t mib, std::size_t* free_bytes);

}  // namespace cutoff
