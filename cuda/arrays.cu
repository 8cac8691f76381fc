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
void copy_to_device(void* d_dst, const void* src, std::size_t bytes) {
  CUTOFF_CUDA(cudaMemcpy(d_dst, src, bytes, cudaMemcpyHostToDevice));
}
void copy_to_host(void* dst, const void* d_src, std::size_t bytes) {
  CUTOFF_CUDA(cudaMemcpy(dst, d_src, bytes, cudaMemcpyDeviceToHost));
}

}  // namespace cutoff::cuda
