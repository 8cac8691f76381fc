#pragma once
/// @file
/// The one place the backend is chosen (STYLE.md §4).

#include <string>
#include <vector>

namespace cutoff {

/// Values --backend accepts.
std::vector<std::string> backend_names();

/// Resolves --backend: "cpu" stays; "cuda" needs a usable GPU (InputError saying
/// why not); "auto" is "cuda" when a GPU is usable, else "cpu". Says on stderr
/// what was chosen and why, unless quiet.
std::string choose_backend(const std::string& requested, bool quiet);

/// Whether a CUDA device is usable by this binary, and why not.
bool gpu_usable(std::string* why);

}  // namespace cutoff
