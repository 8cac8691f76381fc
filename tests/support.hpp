#pragma once
// Helpers shared by the tests: temporary directories, running the cutoff
// binary, and small parameter sets.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "core/countries.hpp"
#include "core/params.hpp"
#include "core/scenario.hpp"

namespace cutoff::test {

inline std::string source_dir() { return CUTOFF_SOURCE_DIR; }
inline std::string baseline_path() { return source_dir() + "/data/scenarios/baseline.toml"; }

/// A fresh directory under the system temp dir, removed at scope exit.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("cutoff-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}
inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct CliResult {
  int code = -1;
  std::string out, err;
};

/// Runs the cutoff binary with `args` (shell words), capturing stdout and stderr.
inline CliResult run_cli(const std::string& args) {
  TempDir tmp;
  const std::string out = tmp / "stdout", err = tmp / "stderr";
  const std::string cmd = std::string(CUTOFF_BINARY) + " " + args + " >" + out + " 2>" + err + " </dev/null";
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

/// Small-run overrides: every country keeps its minimum agents.
inline std::string small_flags(int ticks = 6) {
  return "--firms 8000 --users 20000 --ticks " + std::to_string(ticks) + " --set n_large=2500 -q";
}

/// The baseline scenario at a small size.
inline Params small_params(std::int64_t firms = 8000, std::int64_t users = 20000, std::int64_t ticks = 6) {
  return load_scenario(baseline_path(), {"n_firms=" + std::to_string(firms), "n_users=" + std::to_string(users),
                                         "horizon=" + std::to_string(ticks), "n_large=2500"});
}

}  // namespace cutoff::test
