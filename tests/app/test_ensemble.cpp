// Ensemble pieces with known answers: sweep parsing, designs and their refusals, the plans
// of --design and --scenarios, the summary statistics, SHA-256; checkpoints resume to the
// same state and refuse other runs' checkpoints.
// (Whole ensembles, kills, resumes and MPI: tests/app/test_ensemble.py.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include "core/app/design.hpp"
#include "core/app/ensemble.hpp"
#include "core/app/run.hpp"
#include "core/io/checkpoint.hpp"
#include "core/io/sha256.hpp"
#include "support.hpp"

namespace cutoff {
namespace {

TEST(Ensemble, SweepLists) {
  const Sweep s = parse_sweep("bm=1, 2.5,4");
  EXPECT_EQ(s.key, "bm");
  EXPECT_EQ(s.values, (std::vector<double>{1, 2.5, 4}));
  EXPECT_EQ(s.texts, (std::vector<std::string>{"1", "2.5", "4"}));
}

TEST(Ensemble, SweepRangesIncludeBothEnds) {
  const Sweep s = parse_sweep("provider.0.offset=0:1:5");
  EXPECT_EQ(s.key, "provider.0.offset");
  ASSERT_EQ(s.values.size(), 5u);
  EXPECT_EQ(s.values.front(), 0.0);
  EXPECT_EQ(s.values[2], 0.5);
  EXPECT_EQ(s.values.back(), 1.0);
  EXPECT_EQ(s.texts[1], "0.25");
}

TEST(Ensemble, BadSweepsNameTheSweep) {
  for (const char* bad : {"bm", "=1,2", "bm=", "bm=1,,2", "bm=x", "bm=1:2", "bm=1:2:1", "bm=1:2:2.5", "bm=1,1"}) {
    try {
      parse_sweep(bad);
      ADD_FAILURE() << bad << " accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("--sweep"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
}

TEST(Ensemble, PlanCarriesTheSizeWarningsOfEveryPoint) {
  // `cutoff ensemble` warns as `cutoff run` does (size_warnings), naming the sweep point,
  // once per warning: when the large stratum shrinks to fit the agent counts (a smaller
  // model, §1), and below kConvergedFirms firm agents (docs/model.md, "Convergence").
  EnsembleRequest req;
  req.scenario = test::baseline_path();
  req.sets = {"n_firms=8000", "n_users=20000", "horizon=1"};
  req.sweeps = {parse_sweep("n_large=2500,20000"), parse_sweep("bm=1,2")};
  const EnsemblePlan plan = plan_ensemble(req);
  int shrunk = 0, small = 0;
  for (const std::string& w : plan.warnings) {
    EXPECT_NE(w.find("--sweep point"), std::string::npos) << w;
    shrunk += w.find("n_large shrunk from 20000") != std::string::npos;
    small += w.find("n_firms = 8000: below " + std::to_string(kConvergedFirms)) != std::string::npos;
  }
  EXPECT_EQ(shrunk, 2);  // n_large = 20000 at bm 1 and 2; 2500 fits
  EXPECT_EQ(small, 4);   // every point
  EXPECT_EQ(plan.warnings.size(), 6u);
  // At kConvergedFirms and the default n_large nothing is said; one agent fewer, one line.
  req.sweeps = {};
  req.sets = {"n_firms=" + std::to_string(kConvergedFirms), "n_users=20000", "horizon=1"};
  EXPECT_TRUE(plan_ensemble(req).warnings.empty());
  req.sets[0] = "n_firms=" + std::to_string(kConvergedFirms - 1);
  const EnsemblePlan below = plan_ensemble(req);
  ASSERT_EQ(below.warnings.size(), 1u);
  EXPECT_NE(below.warnings[0].find("Convergence with the agent count"), std::string::npos) << below.warnings[0];
}

/// The message of the InputError that @p f throws, or "" (a failure) when it throws none.
template <class F> std::string refusal(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "accepted";
  return "";
}

EnsembleRequest small_request() {
  EnsembleRequest req;
  req.scenario = test::baseline_path();
  req.sets = {"n_firms=8000", "n_users=20000", "n_large=2500", "tau0_ref_firms=0", "horizon=6"};
  return req;
}

TEST(Ensemble, DesignReadsKeysRowsAndBooleans) {
  test::TempDir tmp;
  const std::string path = tmp / "d.csv";
  // A spreadsheet's file: byte order mark, \r\n, spaces, a blank line, a trailing one.
  const std::string text =
      "\xEF\xBB\xBF"
      "bm , provider.0.offset,seats,n_firms\r\n1,0.5,0,1e4\r\n\r\n 2.5 ,.25,True,8000\r\n3,1.,FALSE,9000\n\n";
  test::write_file(path, text);
  const Design d = read_design(path);
  EXPECT_EQ(d.file, path);
  EXPECT_EQ(d.sha256, sha256_hex(text));  // of the bytes as they are, mark included
  EXPECT_EQ(d.keys, (std::vector<std::string>{"bm", "provider.0.offset", "seats", "n_firms"}));
  ASSERT_EQ(d.rows(), 3u);
  EXPECT_EQ(d.lines, (std::vector<std::size_t>{2, 4, 5}));
  // Reals as TOML spells them (`.25`, `1.` are not TOML), integers as written, booleans as words.
  EXPECT_EQ(d.texts[0], (std::vector<std::string>{"1.0", "0.5", "false", "1e4"}));
  EXPECT_EQ(d.texts[1], (std::vector<std::string>{"2.5", "0.25", "true", "8000"}));
  EXPECT_EQ(d.texts[2], (std::vector<std::string>{"3.0", "1.0", "false", "9000"}));
  EXPECT_EQ(d.values[1], (std::vector<double>{2.5, 0.25, 1, 8000}));
  EXPECT_EQ(d.values[2], (std::vector<double>{3, 1, 0, 9000}));
  EXPECT_EQ(design_where(d, 1, 2), "--design '" + path + "' row 2 (line 4), column 'seats'");
  EXPECT_EQ(key_spec("provider.3.offset"), key_spec("provider.0.offset"));
  EXPECT_NE(key_spec("bm"), nullptr);
  EXPECT_EQ(key_spec("provider.0"), nullptr);
  EXPECT_EQ(key_spec("bmm"), nullptr);
}

TEST(Ensemble, BadDesignFilesNameFileRowAndColumn) {
  test::TempDir tmp;
  const struct {
    const char* text;
    std::vector<std::string> names;  // what the one line must hold
  } cases[] = {
      {"", {"empty file"}},
      {"\n\n", {"empty file"}},
      {"bm,p_switch\n", {"no rows"}},
      {"bm,p_switch\n1,0.1\n2,0.1,3\n", {"row 2 (line 3)", "3 fields, the header has 2"}},
      {"bm,p_switch\n1\n", {"row 1 (line 2)", "1 field, the header has 2"}},
      {"bm,,p_switch\n1,2,3\n", {"header, column 2", "empty name"}},
      {"bm,p_switch,bm\n1,2,3\n", {"column 3 'bm'", "repeats column 1"}},
      {"p_switch,horizon\n0.1,12\n", {"column 2 'horizon'", "--ticks"}},
      {"sector_share\n1\n", {"column 1 'sector_share'", "a number or a boolean"}},
      {"bm\n1\nx1\n", {"row 2 (line 3), column 'bm'", "'x1' is not a number"}},
      {"bm\n1e999\n", {"row 1 (line 2), column 'bm'", "not a number"}},
      {"bm\nnan\n", {"row 1 (line 2), column 'bm'", "not a number"}},
      {"bm,p_switch\n1, \n", {"row 1 (line 2), column 'p_switch'", "empty value"}},
      {"bm,firm_bass\n1,yes\n", {"row 1 (line 2), column 'firm_bass'", "allowed: 0, 1, true, false"}},
      {"bm,firm_bass\n1,0.5\n", {"column 'firm_bass'", "allowed: 0, 1, true, false"}},
      {"bm\n\"2\"\n", {"line 2", "quoted fields are not supported"}},
  };
  int k = 0;
  for (const auto& c : cases) {
    const std::string path = tmp / ("bad" + std::to_string(k++) + ".csv");
    test::write_file(path, c.text);
    const std::string msg = refusal([&] { read_design(path); });
    EXPECT_NE(msg.find("--design '" + path + "'"), std::string::npos) << msg;
    for (const std::string& n : c.names) EXPECT_NE(msg.find(n), std::string::npos) << c.text << " -> " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  for (const char* name : {"design.parquet", "design.PQ"}) {
    const std::string path = tmp / name;
    test::write_file(path, "PAR1");
    const std::string msg = refusal([&] { read_design(path); });
    EXPECT_NE(msg.find("Parquet"), std::string::npos) << msg;
    EXPECT_NE(msg.find("allowed: CSV"), std::string::npos) << msg;
  }
  EXPECT_NE(refusal([&] { read_design(tmp / "none.csv"); }).find("no such file"), std::string::npos);
}

TEST(Ensemble, DesignValuesAreCheckedByTheScenarioLoader) {
  // Unknown keys, ranges and integer types: the loader's own words, with the row and column.
  test::TempDir tmp;
  EnsembleRequest req = small_request();
  req.design = tmp / "d.csv";
  const struct {
    const char* text;
    std::vector<std::string> names;
  } cases[] = {
      {"bm,p_swich\n1,0.1\n", {"row 1 (line 2), column 'p_swich'", "unknown key", "did you mean 'p_switch'"}},
      {"bm,provider.0.ofset\n1,0.1\n", {"row 1 (line 2), column 'provider.0.ofset'", "unknown provider field"}},
      {"bm,p_switch\n1,0.1\n2,1.5\n", {"row 2 (line 3), column 'p_switch'", "= 1.5: out of range, allowed 0 to 1"}},
      {"bm\n1\n-1\n", {"row 2 (line 3), column 'bm'", "out of range"}},
      {"bm,n_firms\n1,8000\n1,8000.5\n", {"row 2 (line 3), column 'n_firms'", "integers only"}},
      {"provider.9.offset\n0.5\n", {"row 1 (line 2), column 'provider.9.offset'"}},
  };
  for (const auto& c : cases) {
    test::write_file(req.design, c.text);
    const std::string msg = refusal([&] { plan_ensemble(req); });
    EXPECT_NE(msg.find("--design '" + req.design + "'"), std::string::npos) << msg;
    for (const std::string& n : c.names) EXPECT_NE(msg.find(n), std::string::npos) << c.text << " -> " << msg;
  }
  // A design lists its points itself: not with --sweep.
  test::write_file(req.design, "bm\n1\n");
  req.sweeps = {parse_sweep("p_switch=0.1,0.2")};
  EXPECT_NE(refusal([&] { plan_ensemble(req); }).find("with --sweep"), std::string::npos);
}

TEST(Ensemble, DesignPlanRunsEveryRowAndRecordsTheDesign) {
  test::TempDir tmp;
  EnsembleRequest req = small_request();
  req.replicates = 3;
  req.design = tmp / "d.csv";
  test::write_file(req.design, "bm,provider.0.offset,firm_bass\n2,0.1,0\n3,0.5,true\n2,0.1,0\n");
  const EnsemblePlan plan = plan_ensemble(req);
  ASSERT_TRUE(plan.has_design);
  EXPECT_EQ(plan.per_scenario, 3u);
  EXPECT_EQ(plan.members(), 9);  // a repeated row is a point of its own
  ASSERT_EQ(plan.points.size(), 3u);
  EXPECT_EQ(plan.points[0].bm, 2.0);
  EXPECT_EQ(plan.points[1].bm, 3.0);
  EXPECT_EQ(plan.points[1].provider.at(0).offset, 0.5);
  EXPECT_TRUE(plan.points[1].firm_bass);
  EXPECT_FALSE(plan.points[2].firm_bass);
  std::vector<std::string> sets = req.sets;  // the base, then the row, as `cutoff run --set` takes them
  for (const char* kv : {"bm=3.0", "provider.0.offset=0.5", "firm_bass=true"}) sets.emplace_back(kv);
  EXPECT_EQ(plan.point_sets[1], sets);
  EXPECT_NE(plan.fingerprint.find("design keys bm,provider.0.offset,firm_bass rows 3 sha256 " + plan.design.sha256),
            std::string::npos)
      << plan.fingerprint;
  // A changed design is another ensemble, even where it resolves to the same points.
  test::write_file(req.design, "bm,provider.0.offset,firm_bass\n2,0.1,0\n3,0.5,1\n2,0.1,0\n");
  const EnsemblePlan same_points = plan_ensemble(req);
  EXPECT_NE(same_points.fingerprint, plan.fingerprint);
  EXPECT_EQ(to_toml(same_points.points[1]), to_toml(plan.points[1]));
  // Without --design or --scenarios, the plan's text is what it was before them.
  EnsembleRequest plain = small_request();
  plain.sweeps = {parse_sweep("bm=2,3")};
  const std::string f = plan_ensemble(plain).fingerprint;
  EXPECT_EQ(f.find("design"), std::string::npos);
  EXPECT_EQ(f.find("scenarios"), std::string::npos);
  EXPECT_NE(f.find("\nreplicates 1\nsweep bm=2,3\npoints 2 sha256 "), std::string::npos) << f;
}

TEST(Ensemble, ScenariosPlanSharesSeedsAndReplicates) {
  test::TempDir tmp;
  const std::string a = tmp / "a.toml", b = tmp / "b.toml", c = tmp / "other/a.toml", s7 = tmp / "seven.toml",
                    h = tmp / "long.toml";
  std::filesystem::create_directories(tmp / "other");
  const std::string inherit = "inherits = \"" + test::baseline_path() + "\"\n";
  for (const std::string& f : {a, c}) test::write_file(f, inherit);
  test::write_file(b, inherit + "bm = 2.5\n");
  test::write_file(s7, inherit + "seed = 7\n");
  test::write_file(h, inherit + "horizon = 24\n");

  EnsembleRequest req = small_request();
  req.scenario.clear();
  req.scenarios = {a, b};
  req.sweeps = {parse_sweep("p_switch=0.1,0.2,0.3")};
  req.replicates = 2;
  const EnsemblePlan plan = plan_ensemble(req);
  EXPECT_EQ(plan.scenario_labels, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(plan.scenario_files, req.scenarios);
  EXPECT_EQ(plan.per_scenario, 3u);
  ASSERT_EQ(plan.points.size(), 6u);
  EXPECT_EQ(plan.members(), 12);
  for (std::size_t p = 0; p < 3; ++p) {  // point g = s·P + p: scenario-major, then the sweep
    EXPECT_EQ(plan.points[p].bm, 1.0);
    EXPECT_EQ(plan.points[3 + p].bm, 2.5);
    EXPECT_EQ(plan.points[p].p_switch, plan.points[3 + p].p_switch);
    EXPECT_EQ(plan.points[p].seed, plan.points[3 + p].seed);
    EXPECT_EQ(plan.point_index[3 + p], std::vector<std::size_t>{p});
  }
  EXPECT_NE(plan.fingerprint.find("\nscenarios a,b\n"), std::string::npos) << plan.fingerprint;
  req.scenarios = {b, a};  // another order is another ensemble
  EXPECT_NE(plan_ensemble(req).fingerprint, plan.fingerprint);

  req.scenarios = {a, c};  // one label for two files: refused, naming both
  std::string msg = refusal([&] { plan_ensemble(req); });
  EXPECT_NE(msg.find("'" + a + "' and '" + c + "'"), std::string::npos) << msg;
  req.scenarios = {a, s7};  // common random numbers need one seed ...
  msg = refusal([&] { plan_ensemble(req); });
  EXPECT_NE(msg.find("seed 7"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--seed"), std::string::npos) << msg;
  req.sets.push_back("seed=3");  // ... which --seed gives them
  EXPECT_EQ(plan_ensemble(req).points[3].seed, 3u);
  req.sets = {"n_firms=8000", "n_users=20000", "n_large=2500", "tau0_ref_firms=0"};
  req.scenarios = {a, h};  // and members share the tick axis
  msg = refusal([&] { plan_ensemble(req); });
  EXPECT_NE(msg.find("24 ticks"), std::string::npos) << msg;
  req.scenarios = {a, ""};
  EXPECT_NE(refusal([&] { plan_ensemble(req); }).find("entry 2 is empty"), std::string::npos);
  req.scenarios = {a, b};
  req.scenario = a;
  EXPECT_NE(refusal([&] { plan_ensemble(req); }).find("allowed: one of them"), std::string::npos);
}

TEST(Ensemble, CliRefusesScenarioWithScenariosAndNeither) {
  const std::string base = test::baseline_path();
  test::CliResult r = test::run_cli("ensemble " + base + " --scenarios " + base + " -o /nonexistent/x --replicates 1");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("allowed: one of them"), std::string::npos) << r.err;
  r = test::run_cli("ensemble -o /nonexistent/x --replicates 1");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("a SCENARIO or --scenarios"), std::string::npos) << r.err;
  r = test::run_cli("ensemble --help");
  EXPECT_EQ(r.code, 0);
  for (const char* flag : {"--scenarios", "--design"}) EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
}

TEST(Ensemble, OneReplicateWritesNoSummary) {
  // Statistics over one replicate say nothing (std NaN, every quantile the value), and a
  // 1,000-point design's summary.h5 would hold seven copies of its ensemble.h5.
  test::TempDir tmp;
  for (const int n : {1, 2}) {
    const std::string out = tmp / ("e" + std::to_string(n));
    const test::CliResult r = test::run_cli("ensemble " + test::baseline_path() + " -o " + out + " --replicates " +
                                            std::to_string(n) + " " + test::small_flags(2));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(std::filesystem::exists(out + "/ensemble.h5"));
    EXPECT_EQ(std::filesystem::exists(out + "/summary.h5"), n >= 2) << n << " replicates";
  }
}

TEST(Ensemble, SummaryStatisticsMatchNumpy) {
  // numpy: np.mean, np.std(ddof=1), np.quantile(v, [.05,.25,.5,.75,.95]) of [3, 1, 4, 1, 5]
  std::vector<double> v{3, 1, 4, 1, 5};
  double out[7];
  summarise(v, out);
  EXPECT_DOUBLE_EQ(out[0], 2.8);
  EXPECT_DOUBLE_EQ(out[1], std::sqrt(3.2));  // squares of deviations sum to 12.8, / 4
  EXPECT_DOUBLE_EQ(out[2], 1.0);
  EXPECT_DOUBLE_EQ(out[3], 1.0);
  EXPECT_DOUBLE_EQ(out[4], 3.0);
  EXPECT_DOUBLE_EQ(out[5], 4.0);
  EXPECT_DOUBLE_EQ(out[6], 4.8);  // position 3.8 between 4 and 5
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> w{nan, 2, nan, 6};  // NaN replicates are skipped
  summarise(w, out);
  EXPECT_DOUBLE_EQ(out[0], 4.0);
  EXPECT_DOUBLE_EQ(out[4], 4.0);
  EXPECT_DOUBLE_EQ(out[2], 2.2);
  std::vector<double> one{7};  // one replicate: no spread
  summarise(one, out);
  EXPECT_EQ(out[0], 7.0);
  EXPECT_TRUE(std::isnan(out[1]));
  EXPECT_EQ(out[6], 7.0);
  std::vector<double> none{nan, nan};
  summarise(none, out);
  for (double x : out) EXPECT_TRUE(std::isnan(x));
}

TEST(Ensemble, Sha256KnownAnswers) {
  // FIPS 180-4 examples, through our OpenSSL wrapper (one-shot, file and incremental).
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  Sha256 s;
  const std::string a(1000, 'a');
  for (int i = 0; i < 1000; ++i) s.update(a.data(), a.size());
  EXPECT_EQ(s.hex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

}  // namespace
}  // namespace cutoff

namespace cutoff {
namespace {

TEST(Checkpoint, ResumesToTheSameStateAndRefusesOtherRuns) {
  test::TempDir tmp;
  const std::string ck = tmp / "run.checkpoint";
  Params p = test::small_params(8000, 20000, 6);
  // (v5) with the firms' diffusion, seats and compute caps on, so the state carried
  // between ticks includes the countries' lagged share of firms using AI and the plan
  // layer's levels that the choices read.
  p.firm_bass = true;
  p.firm_bass_q = 0.5;
  p.seats = true;
  p.compute_caps = true;
  auto make = [](const Params& q, std::uint32_t replicate = 0) {
    RunOptions o;
    o.replicate = replicate;
    return Simulation(q, load_countries(q.countries), o);
  };
  Simulation a = make(p);
  for (int t = 0; t < 3; ++t) a.step();
  const MetricRows rows{{1.0, 2.0, 3.0}};
  save_checkpoint(ck, a, rows);

  Simulation b = make(p);
  MetricRows back;
  load_checkpoint(ck, b, back);
  EXPECT_EQ(b.tick(), 3);
  EXPECT_EQ(back, rows);
  for (int t = 3; t < 6; ++t) {
    a.step();
    b.step();
    for (std::size_t k = 0; k < a.metrics().specs().size(); ++k) {
      const auto& x = a.metrics()[static_cast<int>(k)];
      const auto& y = b.metrics()[static_cast<int>(k)];
      ASSERT_EQ(x.size(), y.size());
      for (std::size_t i = 0; i < x.size(); ++i)  // bitwise, NaN included
        ASSERT_TRUE(test::same_double(x[i], y[i])) << a.metrics().specs()[k].name << "[" << i << "] at tick " << t;
    }
  }

  auto refused = [&](Simulation s, const std::string& needle) {
    MetricRows r;
    try {
      load_checkpoint(ck, s, r);
      ADD_FAILURE() << "accepted a checkpoint of another run (" << needle << ")";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(ck), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  refused(make(test::small_params(8000, 20001, 6)), "n_users");
  refused(make(p, 1), "replicate");
  Params other = p;
  other.bm = 2.5;
  refused(make(other), "scenario");
  std::string bytes = test::read_file(ck);
  bytes[bytes.size() / 2] ^= 1;
  test::write_file(ck, bytes);
  refused(make(p), "damaged");
}

}  // namespace
}  // namespace cutoff
