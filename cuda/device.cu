#include "cuda/check.cuh"
#include "cuda/device.hpp"

namespace cutoff {

bool cuda_probe(std::string* why) {
  int driver = 0;
  cudaError_t err = cudaDriverGetVersion(&driver);
  if (err != cudaSuccess || driver == 0) {
    if (why) *why = "no CUDA driver";
    return false;
  }
  int runtime = 0;
  cudaRuntimeGetVersion(&runtime);
  if (driver < runtime) {
    // CUDA encodes versions as 1000·major + 10·minor; CUDA 13 needs NVIDIA driver 580 or newer.
    const auto version = [](int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); };
    if (why)
      *why = "the NVIDIA driver supports CUDA " + version(driver) + ", older than the CUDA " + version(runtime) +
             " runtime this build uses" + (runtime >= 13000 ? " (CUDA 13 needs driver 580 or newer)" : "");
    return false;
  }
  int n = 0;
  err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess || n == 0) {
    if (why) *why = err != cudaSuccess ? std::string(cudaGetErrorString(err)) : "no CUDA device";
    cudaGetLastError();  // clear the sticky error
    return false;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    if (why) *why = "cannot read device 0's properties";
    return false;
  }
  if (why)
    *why = std::string(prop.name) + ", compute capability " + std::to_string(prop.major) + "." +
           std::to_string(prop.minor);
  return true;
}

}  // namespace cutoff

namespace cutoff {

double device_copy_GBps(std::size_t mib, std::size_t* free_bytes) {
  const std::size_t bytes = mib << 20;
  void *a = nullptr, *b = nullptr;
  CUTOFF_CUDA(cudaMalloc(&a, bytes));
  CUTOFF_CUDA(cudaMalloc(&b, bytes));
  CUTOFF_CUDA(cudaMemset(a, 1, bytes));
  cudaEvent_t t0, t1;
  CUTOFF_CUDA(cudaEventCreate(&t0));
  CUTOFF_CUDA(cudaEventCreate(&t1));
  float best = 1e30f;
  for (int rep = 0; rep < 10; ++rep) {
    CUTOFF_CUDA(cudaEventRecord(t0));
    CUTOFF_CUDA(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));
    CUTOFF_CUDA(cudaEventRecord(t1));
    CUTOFF_CUDA(cudaEventSynchronize(t1));
    float ms = 0;
    CUTOFF_CUDA(cudaEventElapsedTime(&ms, t0, t1));
    if (ms < best) best = ms;
  }
  cudaEventDestroy(t0);
  cudaEventDestroy(t1);
  cudaFree(a);
  cudaFree(b);
  std::size_t total = 0;
  CUTOFF_CUDA(cudaMemGetInfo(free_bytes, &total));
  return 2.0 * static_cast<double>(bytes) / (best * 1e-3) / 1e9;
}

}  // namespace cutoff
