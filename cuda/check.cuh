#pragma once
/// @file
/// Every CUDA call and launch is checked: an error names the call, file and line.
/// Under the switch CUTOFF_CUDA_SYNC=1 (cuda_sync_each_launch) every launch is also
/// followed by a device synchronisation, so that a fault inside a kernel (an illegal
/// address, say) is reported by the launch that caused it, naming the kernel and the
/// pass, rather than by a later synchronisation.

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "cuda/device.hpp"

namespace cutoff {

inline void cuda_check(cudaError_t err, const char* call, const char* file, int line) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("CUDA error in ") + call + " at " + file + ":" + std::to_string(line) + ": " +
                             cudaGetErrorString(err));
}

/// After launching `kernel` for `pass` (a callable giving the pass's name, called
/// only on error): the launch's own error, then, under CUTOFF_CUDA_SYNC, the
/// kernel's, waited for.
template <class PassName> void cuda_launched(const char* kernel, const PassName& pass, const char* file, int line) {
  const cudaError_t launch = cudaGetLastError();
  if (launch != cudaSuccess)
    throw std::runtime_error(std::string("CUDA error launching kernel ") + kernel + " (pass " + pass() + ") at " +
                             file + ":" + std::to_string(line) + ": " + cudaGetErrorString(launch));
  if (!cuda_sync_each_launch()) return;
  const cudaError_t run = cudaDeviceSynchronize();
  if (run != cudaSuccess)
    throw std::runtime_error(std::string("CUDA error in kernel ") + kernel + " (pass " + pass() + ") at " + file + ":" +
                             std::to_string(line) + ", caught by CUTOFF_CUDA_SYNC: " + cudaGetErrorString(run));
}

}  // namespace cutoff

#define CUTOFF_CUDA(call) ::cutoff::cuda_check((call), #call, __FILE__, __LINE__)
/// After a launch of `kernel` (a string) for the pass that `pass` (a callable returning a std::string) names.
#define CUTOFF_CUDA_LAUNCHED(kernel, pass) ::cutoff::cuda_launched(kernel, pass, __FILE__, __LINE__)
