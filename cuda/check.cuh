#pragma once
/// @file
/// Every CUDA call and launch is checked: an error names the call, file and line.
/// Define CUTOFF_CUDA_SYNC_CHECK to synchronise after each launch (debugging).

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace cutoff {

inline void cuda_check(cudaError_t err, const char* call, const char* file, int line) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("CUDA error in ") + call + " at " + file + ":" + std::to_string(line) + ": " +
                             cudaGetErrorString(err));
}

}  // namespace cutoff

#define CUTOFF_CUDA(call) ::cutoff::cuda_check((call), #call, __FILE__, __LINE__)
#if defined(CUTOFF_CUDA_SYNC_CHECK)
#define CUTOFF_CUDA_LAUNCHED(name)                                           \
  do {                                                                       \
    ::cutoff::cuda_check(cudaGetLastError(), name, __FILE__, __LINE__);      \
    ::cutoff::cuda_check(cudaDeviceSynchronize(), name, __FILE__, __LINE__); \
  } while (0)
#else
#define CUTOFF_CUDA_LAUNCHED(name) ::cutoff::cuda_check(cudaGetLastError(), name, __FILE__, __LINE__)
#endif
