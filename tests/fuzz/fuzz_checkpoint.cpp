/// @file
/// libFuzzer target for the checkpoint loader's header (core/io/checkpoint_format.cpp):
/// the magic, the format, the identity's strings and numbers, and the payload's size and
/// SHA-256. That is all of a damaged checkpoint that is read before the checksum: the
/// payload is parsed only once its SHA-256 matches (load_checkpoint). InputError is the
/// only allowed failure; any other exception escapes and libFuzzer reports it as a crash.

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/hd/error.hpp"
#include "core/io/checkpoint_format.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    std::size_t body_at = 0;
    (void)cutoff::checkpoint_format::read_head(bytes, "fuzz.checkpoint", &body_at);
    if (body_at > bytes.size()) __builtin_trap();  // a payload past the end would be read
  } catch (const cutoff::InputError&) {
  }
  return 0;
}
