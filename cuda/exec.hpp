#pragma once
/// @file
/// The CUDA backend's factory, as plain C++ (core/app/backend.cpp names it).

#include <cstdint>
#include <memory>

#include "core/sim/exec.hpp"

namespace cutoff::cuda {

/// Checks that a GPU is usable and has the memory (device_bytes_needed), then allocates the agents on
/// it (throws InputError otherwise, naming the counts and bytes).
std::unique_ptr<Exec> make_exec(const ExecShape& shape);

}  // namespace cutoff::cuda
