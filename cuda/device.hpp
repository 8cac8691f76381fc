#pragma once
/// @file
/// Plain C++ view of the CUDA runtime for core/ (no CUDA headers here).

#include <string>

namespace cutoff {

/// True when a CUDA device can be used; otherwise `why` says why (no driver,
/// driver too old, no device). Safe on machines without a driver.
bool cuda_probe(std::string* why);

}  // namespace cutoff
