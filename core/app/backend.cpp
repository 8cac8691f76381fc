#include "core/app/backend.hpp"

#include <iostream>

#include "core/hd/error.hpp"

#if defined(CUTOFF_WITH_CUDA)
#include "cuda/device.hpp"
#include "cuda/exec.hpp"
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

Backend backend_named(const std::string& name) {
  if (name == "cpu") return cpu_backend();
  if (name == "cuda") {
#if defined(CUTOFF_WITH_CUDA)
    return {"cuda", cuda::make_exec};
#else
    throw InputError("--backend 'cuda': this binary was built without CUDA; allowed: cpu, auto");
#endif
  }
  throw InputError("--backend '" + name + "': unknown backend; allowed: auto, cpu, cuda");
}

Backend choose_backend(const std::string& requested, bool quiet) {
  if (requested == "cpu") return cpu_backend();
  std::string why;
  const bool gpu = gpu_usable(&why);
  if (requested == "cuda") {
    if (!gpu) throw InputError("--backend 'cuda': no usable GPU (" + why + "); allowed here: auto, cpu");
    if (!quiet) std::cerr << "cutoff: backend cuda: " << why << "\n";
    return backend_named("cuda");
  }
  if (requested != "auto") backend_named(requested);  // throws: unknown backend
  if (!quiet)
    std::cerr << "cutoff: backend auto: " << (gpu ? "cuda (" + why + ")" : "cpu (no usable GPU: " + why + ")") << "\n";
  return backend_named(gpu ? "cuda" : "cpu");
}

}  // namespace cutoff
