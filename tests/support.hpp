#pragma once
// Helpers shared by the tests: temporary directories, running the cutoff
// binary, and small parameter sets.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/app/backend.hpp"
#include "core/hd/registry.hpp"
#include "core/model/countries.hpp"
#include "core/model/metrics.hpp"
#include "core/model/params.hpp"
#include "core/model/scenario.hpp"
#include "core/sim/exec.hpp"

namespace cutoff::test {

/// CUTOFF_REQUIRE_GPU=1 (the device check): a GPU test without a usable GPU fails instead of skipping.
inline bool gpu_required() {
  const char* v = std::getenv("CUTOFF_REQUIRE_GPU");
  return v && std::string(v) == "1";
}

/// The source tree (data/, tests/): CUTOFF_SOURCE_DIR from the environment where set
/// (binaries packed for another machine, bench/device-check), else the build's.
inline std::string source_dir() {
  const char* v = std::getenv("CUTOFF_SOURCE_DIR");
  return v && *v ? v : CUTOFF_SOURCE_DIR;
}
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

/// A scenario for a test at a small size: its keys, then `sets` (later ones win), with
/// τ0 and need0 derived on the run's own agent counts (v4's rule, tau0_ref_firms = 0).
/// The suite checks mechanisms at the sizes its expectations were written for; the v5
/// reference population (docs/model.md §2.0) has its own tests, and building one of
/// 1e5 firms and 1e6 users for every small test would cost seconds each.
inline Params scenario(const std::string& path, std::vector<std::string> sets = {}) {
  sets.insert(sets.begin(), "tau0_ref_firms=0");
  return load_scenario(path, sets);
}

/// Small-run overrides: every country keeps its minimum agents (and v4's τ0 rule, as scenario()).
inline std::string small_flags(int ticks = 6) {
  return "--firms 8000 --users 20000 --ticks " + std::to_string(ticks) +
         " --set n_large=2500 --set tau0_ref_firms=0 -q";
}

/// The --set list that gives back model v4 in any scenario (the baseline is v5): read from
/// bench/versions.py's V4_SETS, the one place it is written, so the benchmarks and the
/// tests cannot disagree on what v4 is.
inline std::vector<std::string> v4_sets() {
  const std::string text = read_file(source_dir() + "/bench/versions.py");
  const std::size_t at = text.find("V4_SETS = (");
  std::vector<std::string> sets;
  if (at != std::string::npos) {
    const std::size_t end = text.find(')', at);
    // Each "key=value" between the tuple's parentheses.
    for (std::size_t open = text.find('"', at); open < end;) {
      const std::size_t close = text.find('"', open + 1);
      sets.push_back(text.substr(open + 1, close - open - 1));
      open = text.find('"', close + 1);
    }
  }
  if (sets.empty()) throw std::runtime_error("bench/versions.py: no V4_SETS = (\"key=value\", ...)");
  return sets;
}

/// `sets` after `more` (later ones win).
inline std::vector<std::string> with(std::vector<std::string> sets, const std::vector<std::string>& more) {
  sets.insert(sets.end(), more.begin(), more.end());
  return sets;
}

/// The baseline scenario at a small size, then `more` (v4_sets(): as model v4).
inline Params small_params(std::int64_t firms = 8000, std::int64_t users = 20000, std::int64_t ticks = 6,
                           const std::vector<std::string>& more = {}) {
  return scenario(baseline_path(), with({"n_firms=" + std::to_string(firms), "n_users=" + std::to_string(users),
                                         "horizon=" + std::to_string(ticks), "n_large=2500"},
                                        more));
}

/// Agent arrays of `n` agents whose every byte is `byte` (0: zero in every field), so a
/// test that sets some fields reads known values in the others (issue 42: an unset
/// field read by a pass made a test pass or fail by what the allocator left there).
template <class Pop> HostArrays<Pop> filled(std::uint64_t n, unsigned char byte = 0) {
  HostArrays<Pop> a(n);
  typename Pop::View v = a.view();
  Pop::for_each(v, [&](const FieldInfo& f, auto*& p) { std::memset(p, byte, n * f.bytes); });
  return a;
}

/// Every field of every agent of `a` and `b` is the same bytes (names the fields that differ).
template <class Pop> testing::AssertionResult same_bits(const HostArrays<Pop>& a, const HostArrays<Pop>& b) {
  if (a.size() != b.size()) return ::testing::AssertionFailure() << "sizes differ";
  typename Pop::View x = a.view(), y = b.view();
  std::vector<const void*> ys;
  Pop::for_each(y, [&](const FieldInfo&, auto*& p) { ys.push_back(p); });
  std::string bad;
  std::size_t k = 0;
  Pop::for_each(x, [&](const FieldInfo& f, auto*& p) {
    if (std::memcmp(p, ys[k++], a.size() * f.bytes) != 0) bad += std::string(" ") + Pop::kName + "." + f.name;
  });
  if (bad.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "fields differ:" << bad;
}

/// The same double, bit for bit.
inline bool same_double(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

/// Every metric of a tick is the same bits, or within `rel` of each other
/// (relative to the larger magnitude); names the first that differs.
inline ::testing::AssertionResult same_metrics(const Metrics& a, const Metrics& b, double rel = 0.0) {
  if (a.specs().size() != b.specs().size()) return ::testing::AssertionFailure() << "metric counts differ";
  for (std::size_t m = 0; m < a.specs().size(); ++m) {
    const std::vector<double>& x = a[static_cast<int>(m)];
    const std::vector<double>& y = b[static_cast<int>(m)];
    if (x.size() != y.size()) return ::testing::AssertionFailure() << "metric " << a.specs()[m].name << " sizes differ";
    for (std::size_t j = 0; j < x.size(); ++j) {
      const bool same = std::memcmp(&x[j], &y[j], sizeof(double)) == 0 ||
                        std::abs(x[j] - y[j]) <= rel * std::max(std::abs(x[j]), std::abs(y[j]));
      if (!same)
        return ::testing::AssertionFailure()
               << "metric " << a.specs()[m].name << "[" << j << "] differs: " << x[j] << " vs " << y[j];
    }
  }
  return ::testing::AssertionSuccess();
}

/// Solver options that force every refinement and key pass of the clearing, the
/// water-fill and the ranks at test sizes (the defaults gather the crossing bin
/// directly below ~10^5 agents, so those passes would never run).
inline SolverOptions forced_refinement() {
  SolverOptions o;
  o.clearing.gather_limit = 0;
  o.water.gather_limit = 2;
  o.water.refine_bits = 4;
  o.ranks.gather_limit = 2;
  o.ranks.refine_bits = 4;
  return o;
}

}  // namespace cutoff::test

/// In a GPU test: skips (saying why) where no GPU is usable, or fails under CUTOFF_REQUIRE_GPU=1.
#define CUTOFF_NEED_GPU()                                                                             \
  do {                                                                                                \
    std::string why_;                                                                                 \
    if (!::cutoff::gpu_usable(&why_)) {                                                               \
      if (::cutoff::test::gpu_required()) FAIL() << "no usable GPU (CUTOFF_REQUIRE_GPU=1): " << why_; \
      GTEST_SKIP() << "no usable GPU: " << why_;                                                      \
    }                                                                                                 \
  } while (0)
