#include "core/backend.hpp"

#include <iostream>

#include "core/params.hpp"

#if defined(CUTOFF_WITH_CUDA)
#include "cuda/device.hpp"
#endif

namespace cutoff {

std::vector<std::string> backend_names() { return {"auto", "cpu", "cuda"}; }

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
  if (requested == "cuda") {
    if (!gpu) throw InputError("--backend 'cuda': no usable GPU (" + why + "); allowed here: auto, cpu");
    if (!quiet) std::cerr << "cutoff: backend cuda: " << why << "\n";
    return "cuda";
  }
  if (requested != "auto")
    throw InputError("--backend '" + requested + "': unknown backend; allowed: auto, cpu, cuda");
  if (!quiet) std::cerr << "cutoff: backend auto: " << (gpu ? "cuda (" + why + ")" : "cpu (no usable GPU: " + why + ")") << "\n";
  return gpu ? "cuda" : "cpu";
}

}  // namespace cutoff
