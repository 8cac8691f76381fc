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
    if (why)
      *why = "CUDA driver " + std::to_string(driver) + " is older than the runtime " + std::to_string(runtime);
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
  if (why) *why = std::string(prop.name) + ", compute capability " + std::to_string(prop.major) + "." +
                  std::to_string(prop.minor);
  return true;
}

}  // namespace cutoff
