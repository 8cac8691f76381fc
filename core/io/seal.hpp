#pragma once
/// @file
/// A whole-file checksum for the HDF5 files cutoff writes (issue 37). HDF5 checksums its
/// metadata and, with Fletcher-32, every chunk, but not its global heap (variable-length
/// strings and the dimension-scale lists), and HDF5 1.10 can crash on a damaged one. So
/// each file starts with a 512-byte HDF5 user block, which HDF5 and every netCDF-4 reader
/// skip, holding one line:
///
///     cutoff-sha256 <SHA-256 of every byte after the user block, hex> <their count>\n
///
/// padded with NUL bytes. The writer fills it in after closing the file and before the
/// rename that publishes it (seal()); readers check it before HDF5 parses anything
/// (check_seal()), and python's `cutoff_analysis.io` does the same.

#include <string>

namespace cutoff {

/// Bytes of the user block that holds the seal (H5Pset_userblock).
inline constexpr unsigned kSealBytes = 512;

/// Computes the digest of @p path's bytes after the user block and writes the seal line
/// into the block. Throws FileError naming @p path when it cannot be read or written.
void seal(const std::string& path);

/// What check_seal() found.
enum class Seal {
  Unsealed,  ///< no seal line (a file written before seals, or not cutoff's)
  Matches,   ///< the bytes after the user block are the ones sealed
  Differs,   ///< the count or the digest differs: the file was damaged or cut short
};

/// Checks @p path against its seal; @p why gets what differs. Throws FileError naming
/// @p path when it cannot be read.
Seal check_seal(const std::string& path, std::string* why = nullptr);

}  // namespace cutoff
