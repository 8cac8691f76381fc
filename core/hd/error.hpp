#pragma once
/// @file
/// The project's error for bad input (docs/architecture.md).

#include <cerrno>
#include <stdexcept>
#include <string>

namespace cutoff {

/// A user-facing input problem (scenario file, override, country table, agent
/// counts): one line naming the file or key, the value and what is allowed. The
/// command line and the Python API add the flag or argument it came from; the CLI
/// prints it and exits 2. It is never a bug in the program.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// What went wrong with a file, as the one-line messages name it (docs/conventions.md 12).
enum class FileProblem {
  Other,     ///< anything else; the message carries the system's or the library's words
  DiskFull,  ///< ENOSPC, EDQUOT, EFBIG: no room left to write
  ReadOnly,  ///< EROFS, EACCES, EPERM: the file or its folder cannot be written
  NotFound,  ///< ENOENT, ENOTDIR
  Corrupt,   ///< a checksum, signature or structure that does not read back
};

/// FileProblem of an errno value.
inline FileProblem file_problem_of_errno(int e) {
  switch (e) {
    case ENOSPC:
    case EDQUOT:
    case EFBIG: return FileProblem::DiskFull;
    case EROFS:
    case EACCES:
    case EPERM: return FileProblem::ReadOnly;
    case ENOENT:
    case ENOTDIR: return FileProblem::NotFound;
    default: return FileProblem::Other;
  }
}

/// A file that could not be written or read: one line naming the file, what went wrong
/// and what to do (file_message()). Where it is an input or an unusable output path the
/// command line exits 2; while running, 1.
class FileError : public std::runtime_error {
 public:
  FileError(FileProblem problem, std::string file, const std::string& message)
      : std::runtime_error(message), problem_(problem), file_(std::move(file)) {}
  FileProblem problem() const { return problem_; }
  const std::string& file() const { return file_; }

 private:
  FileProblem problem_;
  std::string file_;
};

/// "'FILE': <what went wrong>[ (<detail>)]; <what to do>" for @p problem.
inline std::string file_message(FileProblem problem, const std::string& file, const std::string& detail) {
  const std::string d = detail.empty() ? "" : " (" + detail + ")";
  switch (problem) {
    case FileProblem::DiskFull: return "'" + file + "': disk full" + d + "; free space or write elsewhere";
    case FileProblem::ReadOnly:
      return "'" + file + "': read-only or not permitted" + d + "; choose a folder you can write to";
    case FileProblem::NotFound: return "'" + file + "': not found" + d + "; check the path";
    case FileProblem::Corrupt: return "'" + file + "': corrupt" + d + "; write it again from its run";
    case FileProblem::Other: break;
  }
  return "'" + file + "': " + (detail.empty() ? std::string("cannot be used") : detail);
}

}  // namespace cutoff
