// The command line: exit codes, messages naming the flag or key, nothing left
// behind by a failed run, identical datasets from identical runs, docs in step.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "core/model/params.hpp"
#include "core/sim/simulation.hpp"
#include "support.hpp"

namespace cutoff {
namespace {

namespace fs = std::filesystem;
using test::run_cli;

TEST(Cli, HelpEverywhere) {
  for (const char* sub : {"", "run ", "ensemble ", "validate ", "info "}) {
    const auto r = run_cli(std::string(sub) + "--help");
    EXPECT_EQ(r.code, 0) << sub;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << sub;
  }
}

void expect_bad(const std::string& args, const std::vector<std::string>& needles) {
  const auto r = run_cli(args);
  EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
  for (const auto& n : needles) EXPECT_NE(r.err.find(n), std::string::npos) << args << "\nstderr: " << r.err;
}

TEST(Cli, BadFlagsNameTheFlag) {
  const std::string b = test::baseline_path();
  expect_bad("run " + b + " -o x.h5 --firms many", {"--firms"});
  expect_bad("run " + b + " -o x.h5 --ticks 0", {"--ticks"});
  expect_bad("run " + b + " -o x.h5 --seed -3", {"--seed"});
  expect_bad("run " + b + " -o x.h5 --backend quantum", {"--backend", "quantum"});
  expect_bad("run " + b + " -o x.h5 --max-memory lots", {"--max-memory", "lots"});
  expect_bad("run " + b + " -o x.h5 --frobnicate", {"frobnicate"});
  expect_bad("run " + b, {"--out"});
  expect_bad("run " + b + " -o /nonexistent-dir/x.h5 -q", {"-o/--out", "/nonexistent-dir"});
  expect_bad("run " + b + " -o x.h5 --set nonsense", {"--set", "nonsense"});
  expect_bad("run " + b + " -o x.h5 --set bm=-1", {"--set", "bm", "-1"});
  expect_bad("frobnicate", {"frobnicate"});
}

TEST(Cli, BadEnsemblesNameTheFlagAndRunNothing) {
  const std::string b = test::baseline_path();
  test::TempDir tmp;
  const std::string out = tmp / "ens";
  expect_bad("ensemble " + b + " -o " + out, {"--replicates"});
  expect_bad("ensemble " + b + " -o " + out + " --replicates 2 --jobs 0", {"--jobs"});
  expect_bad("ensemble " + b + " -o " + out + " --replicates 2 --sweep bmm=1,2", {"--sweep", "bmm", "unknown key"});
  expect_bad("ensemble " + b + " -o " + out + " --replicates 2 --sweep bm=1,-1", {"--sweep", "bm", "-1", "allowed"});
  expect_bad("ensemble " + b + " -o " + out + " --replicates 2 --sweep bm=", {"--sweep", "empty"});
  expect_bad("ensemble " + b + " -o " + out + " --replicates 2 --sweep bm=1:2:x", {"--sweep", "1:2:x"});
  EXPECT_FALSE(fs::exists(out)) << "a bad ensemble created its directory";
}

TEST(Cli, BadScenariosNameFileKeyAndValue) {
  test::TempDir tmp;
  struct Case {
    std::string text, needle;
  };
  const std::string inherit = "inherits = \"" + test::baseline_path() + "\"\n";
  const Case cases[] = {
      {inherit + "bmm = 2\n", "'bmm'"},                   // unknown key
      {inherit + "bm = \"fast\"\n", "'bm'"},              // wrong type
      {inherit + "p_switch = 1.5\n", "'p_switch'"},       // out of range
      {inherit + "kyc_rate = [0.1]\n", "'kyc_rate'"},     // wrong length
      {inherit + "bm = = 2\n", ":2:"},                    // malformed TOML (line 2)
      {"inherits = \"missing.toml\"\n", "missing.toml"},  // missing file
  };
  int k = 0;
  for (const Case& c : cases) {
    const std::string path = tmp / ("s" + std::to_string(k++) + ".toml");
    test::write_file(path, c.text);
    const std::string out = tmp / "o.h5";
    const auto r = run_cli("run " + path + " -o " + out + " -q");
    EXPECT_EQ(r.code, 2) << c.text;
    EXPECT_NE(r.err.find(path), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
    EXPECT_FALSE(fs::exists(out));
    EXPECT_FALSE(fs::exists(out + ".part"));
    EXPECT_EQ(run_cli("validate " + path).code, 2);
  }
  expect_bad("run " + tmp / "absent.toml" + " -o " + tmp / "o.h5", {"absent.toml"});
}

/// The `key = value` lines of `cutoff validate --print` (the resolved scenario).
std::map<std::string, std::string> resolved(const std::string& scenario) {
  const auto r = run_cli("validate " + scenario + " --print");
  EXPECT_EQ(r.code, 0) << scenario << r.err;
  std::map<std::string, std::string> keys;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    const auto eq = line.find(" = ");
    if (line.empty() || line[0] == '#' || eq == std::string::npos) continue;
    keys[line.substr(0, eq)] = line.substr(eq + 3);
  }
  return keys;
}

TEST(Cli, EveryShippedScenarioValidatesAndSwitchesWhatSection4Says) {
  // Each shipped scenario is the baseline with the levers of docs/model.md §4's table
  // switched, and nothing else (its description aside).
  const std::map<std::string, std::set<std::string>> table = {{"baseline", {}},
                                                              {"buildout", {"bm"}},
                                                              {"moratorium", {"moratorium"}},
                                                              {"first-resort", {"first_resort"}},
                                                              {"compute-for-access", {"policy_deal"}},
                                                              {"crackdown", {"crackdown", "kyc_rate", "a_trusted"}},
                                                              {"open-weights", {"open_weights"}},
                                                              {"diffusion-rule", {"diffusion_rule"}}};
  const auto base = resolved(test::baseline_path());
  ASSERT_GT(base.size(), 100u);
  std::set<std::string> seen;
  for (const auto& e : fs::directory_iterator(test::source_dir() + "/data/scenarios")) {
    const std::string name = e.path().stem().string();
    SCOPED_TRACE(name);
    const auto r = run_cli("validate " + e.path().string());
    EXPECT_EQ(r.code, 0) << e.path() << r.err;
    EXPECT_NE(r.out.find("ok;"), std::string::npos);
    ASSERT_EQ(table.count(name), 1u) << "a scenario §4 does not list";
    seen.insert(name);
    std::set<std::string> changed;
    for (const auto& [key, value] : resolved(e.path().string()))
      if (key != "description" && base.at(key) != value) changed.insert(key);
    EXPECT_EQ(changed, table.at(name));
  }
  EXPECT_EQ(seen.size(), table.size());
  // The crackdown halves the KYC rates and sets a_trusted to 1 (§4).
  const auto crack = resolved(test::source_dir() + "/data/scenarios/crackdown.toml");
  EXPECT_EQ(crack.at("a_trusted"), "1.0");
  const Params b = test::scenario(test::baseline_path()),
               c = test::scenario(test::source_dir() + "/data/scenarios/crackdown.toml");
  ASSERT_EQ(b.kyc_rate.size(), c.kyc_rate.size());
  for (std::size_t j = 0; j < b.kyc_rate.size(); ++j) EXPECT_DOUBLE_EQ(c.kyc_rate[j], 0.5 * b.kyc_rate[j]);
  EXPECT_EQ(test::scenario(test::source_dir() + "/data/scenarios/buildout.toml").bm, 2.5);
}

TEST(Cli, ParametersDocIsGeneratedFromTheSchema) {
  const auto r = run_cli("validate --doc-params");
  ASSERT_EQ(r.code, 0);
  EXPECT_EQ(r.out, test::read_file(test::source_dir() + "/docs/parameters.md"))
      << "docs/parameters.md is stale: regenerate it with `cutoff validate --doc-params > docs/parameters.md`";
}

TEST(Cli, MetricsDocIsGeneratedFromTheDeclarations) {
  const auto r = run_cli("validate --doc-metrics");
  ASSERT_EQ(r.code, 0);
  EXPECT_EQ(r.out, test::read_file(test::source_dir() + "/docs/metrics.md"))
      << "docs/metrics.md is stale: regenerate it with `cutoff validate --doc-metrics > docs/metrics.md`";
}

TEST(Cli, RunWritesOnlyTheFinalFileAndInfoReadsIt) {
  test::TempDir tmp;
  const std::string out = tmp / "run.h5";
  const auto r = run_cli("run " + test::baseline_path() + " -o " + out + " " + test::small_flags(3) +
                         " --snapshot-every 2 --backend auto");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << "quiet run printed: " << r.err;
  EXPECT_TRUE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".part"));
  const auto info = run_cli("info " + out);
  EXPECT_EQ(info.code, 0);
  EXPECT_NE(info.out.find("backend = cpu"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("capacity(3, 5)"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("firms/"), std::string::npos) << info.out;
  // The file is the run the flags asked for: its counts, ticks and the τ0 and need0 of
  // the same scenario at those counts, derived here in process (v4's rule, as the flags say).
  const Params p =
      test::scenario(test::baseline_path(), {"n_firms=8000", "n_users=20000", "n_large=2500", "horizon=3"});
  const Simulation sim(p, load_countries(p.countries), RunOptions{});
  std::ostringstream tau0, need0;
  tau0 << "tau0 = " << sim.tau0() << "\n";
  need0 << "need0 = " << sim.need0() << "\n";
  for (const std::string& line :
       {std::string("n_firms = 8000\n"), std::string("n_users = 20000\n"), std::string("ticks = 3\n"),
        std::string("snapshot_every = 2\n"), tau0.str(), need0.str()})
    EXPECT_NE(info.out.find(line), std::string::npos) << line << " not in\n" << info.out;
  expect_bad("info " + tmp / "absent.h5", {"absent.h5"});
  test::write_file(tmp / "text.h5", "not hdf5");
  expect_bad("info " + tmp / "text.h5", {"text.h5", "not an HDF5 file"});
}

TEST(Cli, IdenticalInputsGiveIdenticalDatasets) {
  if (std::system("h5diff --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "h5diff (hdf5-tools) not installed";
  test::TempDir a, b;
  // Same command line in two directories, so even the provenance attributes agree.
  const std::string args = test::baseline_path() + " " + test::small_flags(4) + " --snapshot-every 2";
  for (const auto* d : {&a, &b})
    ASSERT_EQ(
        std::system(("cd " + d->path().string() + " && " + CUTOFF_BINARY + " run " + args + " -o run.h5").c_str()), 0);
  EXPECT_EQ(std::system(("h5diff -c " + a / "run.h5" + " " + b / "run.h5").c_str()), 0);
  // A different seed must change the data.
  ASSERT_EQ(
      std::system(
          ("cd " + b.path().string() + " && " + CUTOFF_BINARY + " run " + args + " --seed 2 -o seed2.h5").c_str()),
      0);
  EXPECT_NE(std::system(("h5diff -q " + a / "run.h5" + " " + b / "seed2.h5" + " >/dev/null").c_str()), 0);
}

TEST(Cli, FailedRunLeavesNoFile) {
  test::TempDir tmp;
  const std::string out = tmp / "fail.h5";
  // A release every tick exhausts the generation table mid-run: a runtime failure (exit 1).
  const auto r = run_cli(
      "run " + test::baseline_path() + " -o " + out +
      " --firms 8000 --users 20000 --set n_large=2500 --set tau0_ref_firms=0 --ticks 400 --set dK_release=0.01 -q");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("generations"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".part"));
}

TEST(Cli, InterruptedRunLeavesNoFile) {
  test::TempDir tmp;
  const std::string out = tmp / "int.h5";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string b = test::baseline_path();
    execl(CUTOFF_BINARY, CUTOFF_BINARY, "run", b.c_str(), "-o", out.c_str(), "--firms", "8000", "--users", "20000",
          "--set", "n_large=2500", "--set", "tau0_ref_firms=0", "--ticks", "100000", "-q", static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait until the run has started writing, then stop it.
  for (int k = 0; k < 200 && !fs::exists(out + ".part"); ++k)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  EXPECT_TRUE(fs::exists(out + ".part"));
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".part"));
}

}  // namespace
}  // namespace cutoff
