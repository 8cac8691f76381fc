#pragma once
/// @file
/// SHA-256 of byte strings and files, through OpenSSL's EVP interface: the
/// ensemble's completeness records and the checkpoints hold digests, so a changed
/// byte is detected.

#include <cstddef>
#include <memory>
#include <string>

namespace cutoff {

/// An incremental SHA-256.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, std::size_t n);
  /// The digest as 64 lowercase hex digits; the object is spent afterwards.
  std::string hex();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

/// SHA-256 of a string, as hex.
std::string sha256_hex(const std::string& data);
/// SHA-256 of a file's contents, as hex. Throws std::runtime_error naming the file if it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace cutoff
