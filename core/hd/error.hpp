#pragma once
/// @file
/// The project's error for bad input (docs/architecture.md).

#include <stdexcept>

namespace cutoff {

/// A user-facing input problem (scenario file, override, country table, agent
/// counts): one line naming the file or key, the value and what is allowed. The
/// command line and the Python API add the flag or argument it came from; the CLI
/// prints it and exits 2. It is never a bug in the program.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace cutoff
