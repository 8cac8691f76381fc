#pragma once
/// @file
/// The one place the backend is chosen (docs/conventions.md §4): `--backend` names it, this
/// resolves the name to a Backend (core/sim/exec.hpp) that the simulation calls.

#include <string>
#include <vector>

#include "core/sim/exec.hpp"

namespace cutoff {

/// Values --backend accepts.
std::vector<std::string> backend_names();

/// The backend of a resolved name: "cpu", or "cuda" in a binary built with CUDA
/// (InputError otherwise, naming --backend, the value and what is allowed). The
/// CUDA backend checks the device and its memory when it allocates.
Backend backend_named(const std::string& name);

/// Resolves --backend: "cpu" stays; "cuda" needs a usable GPU (InputError saying
/// why not); "auto" is "cuda" when a GPU is usable, else "cpu". Says on stderr
/// what was chosen and why, unless quiet.
Backend choose_backend(const std::string& requested, bool quiet);

/// Whether a CUDA device is usable by this binary, and why not.
bool gpu_usable(std::string* why);

}  // namespace cutoff
