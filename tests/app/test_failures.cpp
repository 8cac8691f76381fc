// Failure paths of the command line (issue 37): a full disk, a read-only folder, an
// output that is one of the run's inputs, a missing file, numbers in flags and `--set`.
// Each ends with its documented exit status (2 bad input or an unusable path, 1 a failure
// while running), one line naming the file and the cause, and nothing half-written or
// stale left behind (docs/conventions.md 12).
//
// The disk-full and read-only cases mount a small tmpfs (the CI machine runs as root);
// where mounting is not permitted they skip, saying so.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/io/hdf5.hpp"
#include "core/io/output.hpp"
#include "core/model/scenario.hpp"
#include "damage.hpp"
#include "support.hpp"

namespace cutoff {
namespace {

namespace fs = std::filesystem;
using test::run_cli;

/// A tmpfs mounted on a fresh folder for the test's lifetime (mount(2), so no shell).
class Tmpfs {
 public:
  /// @p options as `mount -o` takes them for tmpfs ("size=1m"); @p flags MS_RDONLY for a read-only one.
  Tmpfs(const test::TempDir& under, const char* options, unsigned long flags = 0) : dir_(under / "mnt") {
    fs::create_directories(dir_);
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", flags, options) == 0)
      mounted_ = true;
    else
      why_ = std::strerror(errno);
  }
  ~Tmpfs() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  Tmpfs(const Tmpfs&) = delete;
  Tmpfs& operator=(const Tmpfs&) = delete;
  bool mounted() const { return mounted_; }
  const std::string& why() const { return why_; }
  std::string operator/(const std::string& name) const { return (fs::path(dir_) / name).string(); }
  /// Everything in the mount, one name a line ("" when empty).
  std::string listing() const {
    std::string s;
    for (const auto& e : fs::recursive_directory_iterator(dir_)) s += e.path().string() + "\n";
    return s;
  }

 private:
  std::string dir_, why_;
  bool mounted_ = false;
};

#define NEED_TMPFS(m)                                        \
  if (!(m).mounted())                                        \
  GTEST_SKIP() << "cannot mount a tmpfs here (" << (m).why() \
               << "): this case needs root and a container that permits mount(2), as the CI machine does"

/// stderr holds exactly one line with text (a run failure starts with a newline that ends a
/// progress line) and none of HDF5's own error stack.
::testing::AssertionResult one_line(const std::string& err) {
  int lines = 0;
  std::istringstream in(err);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) ++lines;
  if (lines != 1) return ::testing::AssertionFailure() << lines << " lines on stderr:\n" << err;
  if (err.find("HDF5-DIAG") != std::string::npos || err.find("#000") != std::string::npos)
    return ::testing::AssertionFailure() << "HDF5's error stack on stderr:\n" << err;
  return ::testing::AssertionSuccess();
}

bool has(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

TEST(Failures, FullDiskRunExits1WithOneLineAndLeavesNothing) {
  test::TempDir tmp;
  Tmpfs disk(tmp, "size=1m");
  NEED_TMPFS(disk);
  const std::string out = disk / "x.h5";
  // Fails in HDF5's flush of the first ticks: before the fix, a raw stack and exit 139.
  const auto r = run_cli("run " + test::baseline_path() + " -o " + out + " " + test::small_flags(6));
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_TRUE(one_line(r.err));
  EXPECT_TRUE(has(r.err, "disk full")) << r.err;
  EXPECT_TRUE(has(r.err, out)) << r.err;
  EXPECT_EQ(disk.listing(), "") << "left behind";
  // With checkpoints: the first checkpoint does not fit either; no .tmp stays.
  const auto c =
      run_cli("run " + test::baseline_path() + " -o " + out + " " + test::small_flags(6) + " --checkpoint-every 2");
  EXPECT_EQ(c.code, 1) << c.err;
  EXPECT_TRUE(one_line(c.err));
  EXPECT_TRUE(has(c.err, "disk full")) << c.err;
  EXPECT_TRUE(has(c.err, "nothing was kept")) << c.err;
  EXPECT_EQ(disk.listing(), "") << "left behind";
}

TEST(Failures, VerboseShowsTheLibraryStack) {
  test::TempDir tmp;
  Tmpfs disk(tmp, "size=1m");
  NEED_TMPFS(disk);
  const auto r =
      run_cli("run " + test::baseline_path() + " -o " + disk / "x.h5" + " " + test::small_flags(6) + " --verbose");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_TRUE(has(r.err, "HDF5-DIAG")) << "--verbose should let HDF5 print its stack:\n" << r.err;
  EXPECT_TRUE(has(r.err, "disk full")) << r.err;
  EXPECT_EQ(disk.listing(), "");
}

TEST(Failures, FullDiskKeepsTheCheckpointAResumeNeedsAndNamesIt) {
  test::TempDir tmp;
  // Room for one checkpoint (~13 MB at this size) and the output's first ticks, not for
  // a second checkpoint beside the first (the save writes a temporary, then renames).
  Tmpfs disk(tmp, "size=20m");
  NEED_TMPFS(disk);
  const std::string out = disk / "x.h5", ck = out + ".checkpoint";
  const std::string args = test::baseline_path() + " " + test::small_flags(60) + " --checkpoint-every 5";
  const auto r = run_cli("run " + args + " -o " + out);
  ASSERT_EQ(r.code, 1) << r.err;
  EXPECT_TRUE(one_line(r.err));
  EXPECT_TRUE(has(r.err, "disk full")) << r.err;
  EXPECT_TRUE(has(r.err, "kept '" + ck + "'")) << r.err;
  EXPECT_TRUE(has(r.err, "the same command resumes")) << r.err;
  EXPECT_EQ(disk.listing(), ck + "\n") << "only the checkpoint should stay";
  // It is a whole checkpoint: the same command, where there is room, resumes from it.
  const std::string room = tmp / "x.h5";
  fs::copy_file(ck, room + ".checkpoint");
  const auto resumed = run_cli("run " + args + " -o " + room);
  EXPECT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_TRUE(fs::exists(room));
  EXPECT_FALSE(fs::exists(room + ".checkpoint"));
}

TEST(Failures, FullDiskEnsembleExits1AndLeavesNoPlan) {
  test::TempDir tmp;
  Tmpfs disk(tmp, "size=1m");
  NEED_TMPFS(disk);
  const auto r =
      run_cli("ensemble " + test::baseline_path() + " -o " + disk / "e" + " --replicates 2 " + test::small_flags(6));
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_TRUE(one_line(r.err));
  EXPECT_TRUE(has(r.err, "disk full")) << r.err;
  EXPECT_TRUE(has(r.err, "member 0")) << r.err;
  EXPECT_EQ(disk.listing(), "") << "no member finished: nothing to resume, so nothing should stay";
}

TEST(Failures, ReadOnlyFolderExits2ForRunAndEnsemble) {
  test::TempDir tmp;
  // Root ignores permission bits, a read-only mount it does not.
  Tmpfs ro(tmp, "size=1m", MS_RDONLY);
  NEED_TMPFS(ro);
  const std::string out = ro / "x.h5";
  const auto r = run_cli("run " + test::baseline_path() + " -o " + out + " " + test::small_flags(3));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(one_line(r.err));
  EXPECT_TRUE(has(r.err, "-o/--out")) << r.err;
  EXPECT_TRUE(has(r.err, out)) << r.err;
  EXPECT_TRUE(has(r.err, "read-only")) << r.err;
  const auto e =
      run_cli("ensemble " + test::baseline_path() + " -o " + ro / "e" + " --replicates 1 " + test::small_flags(3));
  EXPECT_EQ(e.code, 2) << e.err;
  EXPECT_TRUE(one_line(e.err));
  EXPECT_TRUE(has(e.err, "-o/--out")) << e.err;
  EXPECT_TRUE(has(e.err, ro / "e")) << e.err;
  EXPECT_TRUE(has(e.err, "read-only")) << e.err;
  EXPECT_TRUE(has(e.err, "choose a folder you can write to")) << e.err;  // what to do
}

TEST(Failures, RunRefusesToWriteOverItsInputs) {
  test::TempDir tmp;
  const std::string repo = test::source_dir();
  // The scenario itself (before the fix: exit 0, the TOML replaced by HDF5).
  const std::string scenario = tmp / "s.toml";
  test::write_file(scenario, "inherits = \"" + repo + "/data/scenarios/baseline.toml\"\n");
  const std::string before = test::read_file(scenario);
  auto r = run_cli("run " + scenario + " -o " + scenario + " " + test::small_flags(2));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(one_line(r.err));
  EXPECT_TRUE(has(r.err, "-o/--out")) << r.err;
  EXPECT_TRUE(has(r.err, "input")) << r.err;
  EXPECT_EQ(test::read_file(scenario), before);
  // A file it inherits.
  const std::string child = tmp / "child.toml";
  test::write_file(child, "inherits = \"s.toml\"\n");
  r = run_cli("run " + child + " -o " + scenario + " " + test::small_flags(2));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(test::read_file(scenario), before);
  // The country table.
  const std::string table = tmp / "countries.csv";
  fs::copy_file(repo + "/data/countries.csv", table);
  const std::string rows = test::read_file(table);
  r = run_cli("run " + scenario + " --set countries=" + table + " -o " + table + " " + test::small_flags(2));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(has(r.err, table)) << r.err;
  EXPECT_EQ(test::read_file(table), rows);
  // A name the run writes beside the output (its .part) that is an input.
  const std::string part_named = tmp / "r.h5.part";
  fs::copy_file(scenario, part_named);
  r = run_cli("run " + part_named + " -o " + tmp / "r.h5" + " " + test::small_flags(2));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(has(r.err, "r.h5.part")) << r.err;
  EXPECT_EQ(test::read_file(part_named), before);
  // Through a symbolic link to the scenario.
  fs::create_symlink(scenario, tmp / "link.h5");
  r = run_cli("run " + scenario + " -o " + tmp / "link.h5" + " " + test::small_flags(2));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(test::read_file(scenario), before);
}

TEST(Failures, AFinishedRunRemovesAStaleCheckpoint) {
  test::TempDir tmp;
  const std::string out = tmp / "x.h5";
  test::write_file(out + ".checkpoint", "an earlier run's checkpoint");
  test::write_file(out + ".checkpoint.tmp", "a save cut short");
  const auto r = run_cli("run " + test::baseline_path() + " -o " + out + " " + test::small_flags(2));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".checkpoint"));
  EXPECT_FALSE(fs::exists(out + ".checkpoint.tmp"));
}

TEST(Failures, InfoOnAMissingFileSaysNotFound) {
  test::TempDir tmp;
  const auto r = run_cli("info " + tmp / "absent.h5");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(one_line(r.err));
  EXPECT_TRUE(has(r.err, "absent.h5")) << r.err;
  EXPECT_TRUE(has(r.err, "not found")) << r.err;
}

TEST(Failures, InfoNamesTheDamagedDataset) {
  test::TempDir tmp;
  const std::string run = tmp / "x.h5";
  ASSERT_EQ(run_cli("run " + test::baseline_path() + " -o " + run + " " + test::small_flags(3)).code, 0);
  // A metric, and a numeric coordinate (fixed-size: contiguous, without a checksum, before).
  for (const std::string dataset : {"/metrics/capacity", "/metrics/gdp0"}) {
    const std::string out = tmp / "damaged.h5";
    fs::copy_file(run, out, fs::copy_options::overwrite_existing);
    test::damage_first_chunk(out, dataset);
    // Before checksums: exit 0, and the analysis read NaN.
    const auto r = run_cli("info " + out);
    EXPECT_EQ(r.code, 2) << dataset << ": " << r.err;
    EXPECT_TRUE(one_line(r.err));
    EXPECT_TRUE(has(r.err, out)) << r.err;
    EXPECT_TRUE(has(r.err, "corrupt")) << r.err;
    EXPECT_TRUE(has(r.err, dataset)) << r.err;
  }
}

/// Overwrites the one occurrence of @p text in @p file with @p with (same length): the
/// bytes of a name or a string value, wherever HDF5 keeps them.
void replace_once(const std::string& file, const std::string& text, const std::string& with) {
  ASSERT_EQ(text.size(), with.size());
  std::string bytes = test::read_file(file);
  const auto at = bytes.find(text);
  ASSERT_NE(at, std::string::npos) << text << " not in " << file;
  ASSERT_EQ(bytes.find(text, at + 1), std::string::npos) << text << " more than once in " << file;
  std::fstream io(file, std::ios::in | std::ios::out | std::ios::binary);
  io.seekp(static_cast<std::streamoff>(at));
  io.write(with.data(), static_cast<std::streamsize>(with.size()));
}

TEST(Failures, InfoSaysADamagedAttributeOrStringIsCorrupt) {
  test::TempDir tmp;
  const std::string run = tmp / "x.h5";
  ASSERT_EQ(run_cli("run " + test::baseline_path() + " -o " + run + " " + test::small_flags(3)).code, 0);
  struct Case {
    std::string text, with, names;
  };
  // A root attribute's name (before: "no schema_version attribute", as if not cutoff's), a
  // root attribute's text, and a string coordinate's text (held in HDF5's global heap).
  for (const Case& c : {Case{"schema_version", "schema_versiom", ""}, Case{"fully resolved", "fully resolveD", ""},
                        Case{"Afghanistan", "Afghanistam", "/metrics/country_name"}}) {
    const std::string out = tmp / "damaged.h5";
    fs::copy_file(run, out, fs::copy_options::overwrite_existing);
    replace_once(out, c.text, c.with);
    const auto r = run_cli("info " + out);
    EXPECT_EQ(r.code, 2) << c.text << ": " << r.err;
    EXPECT_TRUE(one_line(r.err)) << r.err;
    EXPECT_TRUE(has(r.err, out)) << r.err;
    EXPECT_TRUE(has(r.err, "corrupt")) << c.text << ": " << r.err;
    EXPECT_TRUE(has(r.err, c.names)) << r.err;
  }
  EXPECT_EQ(run_cli("info " + run).code, 0) << "the undamaged original reads";
}

TEST(Failures, InfoGivesUpOnAFileHDF5LoopsOn) {
  // A damaged HDF5 file (found by fuzz_info) on which HDF5 1.10 loops forever: the child
  // process that parses it has a CPU-time limit, and info ends with one line, exit 2.
  const auto r = run_cli("info " + test::source_dir() + "/tests/app/data/hdf5-loops.h5");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_TRUE(has(r.err, "hdf5-loops.h5")) << r.err;
  EXPECT_TRUE(has(r.err, "corrupt")) << r.err;
}

TEST(Failures, IntegersReadOneWay) {
  EXPECT_EQ(parse_integer("100000"), 100000);
  EXPECT_EQ(parse_integer("100_000"), 100000);
  EXPECT_EQ(parse_integer("1e5"), 100000);
  EXPECT_EQ(parse_integer("2.5e5"), 250000);
  EXPECT_EQ(parse_integer("-3"), -3);
  EXPECT_EQ(parse_integer("2.5"), std::nullopt);
  EXPECT_EQ(parse_integer("many"), std::nullopt);
  EXPECT_EQ(parse_integer("1e30"), std::nullopt);
  EXPECT_EQ(parse_integer("nan"), std::nullopt);
  EXPECT_EQ(parse_integer("1\nx = 2"), std::nullopt);
  EXPECT_EQ(parse_integer(""), std::nullopt);
}

TEST(Failures, CountsReadTheSameInFlagsAndSet) {
  const std::string b = test::baseline_path();
  // 1e5 is an exact integer: accepted in a flag (was "not in range") as in --set.
  test::TempDir tmp;
  const std::string out = tmp / "x.h5";
  auto r = run_cli("run " + b + " -o " + out +
                   " --firms 8e3 --users 2e4 --ticks 2 --set n_large=2500"
                   " --set tau0_ref_firms=0 -q");
  ASSERT_EQ(r.code, 0) << r.err;
  r = run_cli("info " + out);
  EXPECT_TRUE(has(r.out, "n_firms = 8000")) << r.out;
  EXPECT_TRUE(has(r.out, "n_users = 20000")) << r.out;
  r = run_cli("validate " + b + " --set n_users=2.5e5 --print");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "n_users = 250000")) << r.out;
  // Not an integer: refused in both, saying integers only.
  for (const std::string& args :
       {"run " + b + " -o " + out + " --firms 2.5", "run " + b + " -o " + out + " --set n_firms=2.5",
        "ensemble " + b + " -o " + tmp / "e" + " --replicates 1e0 --users 2.5"}) {
    r = run_cli(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
    EXPECT_TRUE(has(r.err, "integers only")) << args << "\n" << r.err;
    EXPECT_TRUE(has(r.err, "2.5")) << args << "\n" << r.err;
  }
}

}  // namespace
}  // namespace cutoff
