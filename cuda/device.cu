#include "cuda/check.cuh"
#include "cuda/device.hpp"

#include <cstdlib>

namespace cutoff {

namespace {

/// CUDA X.y as text, from CUDA's encoding 1000·X + 10·y.
std::string cuda_version(int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); }

}  // namespace

bool cuda_driver_supports(int driver, int runtime, std::string* why) {
  // Same major or newer: CUDA's minor version compatibility (docs.nvidia.com, "CUDA
  // Compatibility"); a PTX-only kernel newer than the driver would fail at load, which
  // the build avoids by shipping sm_90 machine code (CMakeLists.txt).
  if (driver / 1000 >= runtime / 1000) return true;
  if (why) {
    // The minimum Linux driver of each major release, as CUDA's release notes state it.
    const int major = runtime / 1000;
    const char* minimum = major == 13 ? "580" : major == 12 ? "525" : major == 11 ? "450" : nullptr;
    *why = "the NVIDIA driver supports CUDA " + cuda_version(driver) + ", older than the CUDA " +
           cuda_version(runtime) + " runtime this build uses" +
           (minimum ? " (CUDA " + std::to_string(major) + ".x needs driver " + minimum + " or newer)" : "");
  }
  return false;
}

bool cuda_sync_each_launch() {
  static const bool on = [] {
    const char* v = std::getenv("CUTOFF_CUDA_SYNC");
    return v && *v && std::string(v) != "0";
  }();
  return on;
}

bool cuda_probe(std::string* why) {
  int driver = 0;
  cudaError_t err = cudaDriverGetVersion(&driver);
  if (err != cudaSuccess || driver == 0) {
    if (why) *why = "no CUDA driver";
    return false;
  }
  int runtime = 0;
  cudaRuntimeGetVersion(&runtime);
  if (!cuda_driver_supports(driver, runtime, why)) return false;
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
