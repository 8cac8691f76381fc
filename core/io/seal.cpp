#include "core/io/seal.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <vector>

#include "core/hd/error.hpp"
#include "core/io/sha256.hpp"

namespace cutoff {
namespace {

constexpr char kTag[] = "cutoff-sha256 ";

[[noreturn]] void io_fail(const std::string& path, const char* what) {
  const int err = errno;
  const FileProblem p = file_problem_of_errno(err);
  throw FileError(p, path, file_message(p, path, std::string(what) + ": " + std::strerror(err)));
}

/// Closes a descriptor on every path.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

/// SHA-256 and count of the bytes of @p fd from kSealBytes to its end.
std::pair<std::string, unsigned long long> digest_after_block(int fd, const std::string& path) {
  Sha256 h;
  std::vector<char> buf(1 << 20);
  unsigned long long n = 0;
  for (off_t at = kSealBytes;;) {
    const ssize_t got = ::pread(fd, buf.data(), buf.size(), at);
    if (got < 0) {
      if (errno == EINTR) continue;
      io_fail(path, "read");
    }
    if (got == 0) break;
    h.update(buf.data(), static_cast<std::size_t>(got));
    at += got;
    n += static_cast<unsigned long long>(got);
  }
  return {h.hex(), n};
}

}  // namespace

void seal(const std::string& path) {
  Fd f{::open(path.c_str(), O_RDWR)};
  if (f.fd < 0) io_fail(path, "open");
  const auto [sha, n] = digest_after_block(f.fd, path);
  std::string line = kTag + sha + " " + std::to_string(n) + "\n";
  line.resize(kSealBytes, '\0');
  for (std::size_t done = 0; done < line.size();) {
    const ssize_t w = ::pwrite(f.fd, line.data() + done, line.size() - done, static_cast<off_t>(done));
    if (w < 0) {
      if (errno == EINTR) continue;
      io_fail(path, "write");
    }
    done += static_cast<std::size_t>(w);
  }
}

Seal check_seal(const std::string& path, std::string* why) {
  Fd f{::open(path.c_str(), O_RDONLY)};
  if (f.fd < 0) io_fail(path, "open");
  char head[kSealBytes] = {};
  ssize_t got = 0;
  do got = ::pread(f.fd, head, sizeof head, 0);
  while (got < 0 && errno == EINTR);
  if (got < 0) io_fail(path, "read");
  const std::string first(head, static_cast<std::size_t>(got));
  if (first.compare(0, sizeof kTag - 1, kTag) != 0) return Seal::Unsealed;
  std::istringstream line(first.substr(sizeof kTag - 1, first.find('\n')));
  std::string want_sha;
  unsigned long long want_n = 0;
  if (!(line >> want_sha >> want_n) || want_sha.size() != 64) {
    if (why) *why = "its seal line is damaged";
    return Seal::Differs;
  }
  const auto [sha, n] = digest_after_block(f.fd, path);
  if (n != want_n) {
    if (why) *why = std::to_string(n) + " bytes after the user block where " + std::to_string(want_n) + " were written";
    return Seal::Differs;
  }
  if (sha != want_sha) {
    if (why) *why = "its bytes differ from the SHA-256 written with them: damaged, or changed after cutoff wrote it";
    return Seal::Differs;
  }
  return Seal::Matches;
}

}  // namespace cutoff
