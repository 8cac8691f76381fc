#pragma once
/// @file
/// SHA-256 (FIPS 180-4) of byte strings and files: the ensemble's completeness records
/// hold the digest of each finished member file, so a changed byte is detected.

#include <cstddef>
#include <cstdint>
#include <string>

namespace cutoff {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t n);
  /// The digest as 64 lowercase hex digits; the object is spent afterwards.
  std::string hex();

 private:
  void block(const unsigned char* p);
  std::uint32_t h_[8];
  unsigned char buf_[64];
  std::size_t used_ = 0;
  std::uint64_t bytes_ = 0;
};

/// SHA-256 of a string, as hex.
std::string sha256_hex(const std::string& data);
/// SHA-256 of a file's contents, as hex. Throws std::runtime_error naming the file if it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace cutoff
