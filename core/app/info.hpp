#pragma once
/// @file
/// `cutoff info OUT.h5`: a readable summary of an output file.

#include <atomic>
#include <string>

namespace cutoff {

/// Root attributes, metrics (shape, units) and snapshots of a cutoff output.
/// Throws InputError naming the file when it is missing, not HDF5, not a cutoff
/// output, damaged, or of a schema version this program does not know; Interrupted
/// when @p stop_signal turns non-zero while a child process parses it.
std::string describe_output(const std::string& path, const std::atomic<int>* stop_signal = nullptr);

}  // namespace cutoff
