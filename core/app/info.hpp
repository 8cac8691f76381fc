#pragma once
/// @file
/// `cutoff info OUT.h5`: a readable summary of an output file.

#include <string>

namespace cutoff {

/// Root attributes, metrics (shape, units) and snapshots of a cutoff output.
/// Throws InputError naming the file when it is missing, not HDF5, not a cutoff
/// output, or of a schema version this program does not know.
std::string describe_output(const std::string& path);

}  // namespace cutoff
