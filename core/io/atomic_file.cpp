#include "core/io/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "core/hd/error.hpp"

namespace cutoff {

void write_atomically(const std::string& path, std::initializer_list<std::string_view> parts) {
  const std::string tmp = path + ".tmp";
  // A failure leaves nothing behind: not the temporary, and @p path as it was.
  auto error = [&](const char* what, int err) {
    const FileProblem problem = file_problem_of_errno(err);
    return FileError(problem, path, file_message(problem, path, std::string(what) + ": " + std::strerror(err)));
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw error("cannot create its temporary", errno);
  auto fail = [&](const char* what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    throw error(what, err);
  };
  for (const std::string_view part : parts)
    for (std::size_t done = 0; done < part.size();) {
      const ssize_t n = ::write(fd, part.data() + done, part.size() - done);
      if (n < 0) fail("write");
      done += static_cast<std::size_t>(n);
    }
  if (::fsync(fd) != 0) fail("fsync");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw error("close", err);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw error("rename", err);
  }
  const std::string dir = std::filesystem::path(path).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace cutoff
