#include "core/io/checkpoint_format.hpp"

#include "core/io/sha256.hpp"

namespace cutoff::checkpoint_format {

Identity read_head(const std::string& bytes, const std::string& path, std::size_t* body_at) {
  Reader r{bytes, 0, path};
  char magic[sizeof kMagic];
  std::uint32_t format = 0;
  r.raw(magic, sizeof magic);
  if (std::memcmp(magic, kMagic, sizeof kMagic) != 0)
    throw InputError("checkpoint '" + path + "' is not a cutoff checkpoint; delete it to start over");
  r(format);
  if (format != kFormat)
    throw InputError("checkpoint '" + path + "' has format " + std::to_string(format) + ", this program writes " +
                     std::to_string(kFormat) + "; delete it to start over");
  Identity got;
  r(got);
  const std::size_t n = bytes.size() - r.at;
  Sha256 payload;  // hashed in place: a checkpoint holds every agent's state
  payload.update(bytes.data() + r.at, n);
  if (n != got.payload_size || payload.hex() != got.payload_sha)
    throw InputError("checkpoint '" + path + "' is damaged (its checksum does not match); delete it to start over");
  *body_at = r.at;
  return got;
}

}  // namespace cutoff::checkpoint_format
