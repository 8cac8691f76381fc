/// @file
/// Checked device memory helpers (cuda/arrays.hpp).

#include "cuda/arrays.hpp"
#include "cuda/check.cuh"

namespace cutoff::cuda {

void* device_alloc(std::size_t bytes) {
  void* p = nullptr;
  CUTOFF_CUDA(cudaMalloc(&p, bytes));
  return p;
}
void device_free(void* p) { cudaFree(p); }
}  // namespace cutoff::cuda
