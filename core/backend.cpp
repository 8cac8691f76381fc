#include "core/backend.hpp"

#include <iostream>

#if defined(CUTOFF_WITH_CUDA)
#include "cuda/device.hpp"
#endif

namespace cutoff {

std::vector<std::string> backend_names() { return {"auto", "cpu"}; }

bool gpu_usable(std::string* why) {
#if defined(CUTOFF_WITH_CUDA)
  return cuda_probe(why);
#else
  if (why) *why = "this binary was built without CUDA";
  return false;
#endif
}

std::string choose_backend(const std::string& requested, bool quiet) {
  if (requested == "cpu") return "cpu";
  std::string why;
  const bool gpu = gpu_usable(&why);
  if (!quiet)
    std::cerr << "cutoff: backend auto: cpu ("
              << (gpu ? "a GPU is usable (" + why + "), but the CUDA tick is not built into this version"
                      : "no usable GPU: " + why)
              << ")\n";
  return "cpu";
}

}  // namespace cutoff
