// Ensemble pieces with known answers: sweep parsing, the summary statistics, SHA-256;
// checkpoints resume to the same state and refuse other runs' checkpoints.
// (Whole ensembles, kills, resumes and MPI: tests/app/test_ensemble.py.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "core/app/ensemble.hpp"
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

TEST(Ensemble, PlanCarriesTheLayoutWarningsOfEveryPoint) {
  // `cutoff ensemble` warns as `cutoff run` does when the large stratum shrinks to fit
  // the agent counts (a smaller model, §1), naming the sweep point; once per warning.
  EnsembleRequest req;
  req.scenario = test::baseline_path();
  req.sets = {"n_firms=8000", "n_users=20000", "horizon=1"};
  req.sweeps = {parse_sweep("n_large=2500,20000"), parse_sweep("bm=1,2")};
  const EnsemblePlan plan = plan_ensemble(req);
  ASSERT_EQ(plan.warnings.size(), 2u);  // n_large = 20000 at bm 1 and 2; 2500 fits
  for (const std::string& w : plan.warnings) {
    EXPECT_NE(w.find("n_large shrunk from 20000"), std::string::npos) << w;
    EXPECT_NE(w.find("--sweep point"), std::string::npos) << w;
  }
  req.sweeps = {};
  req.sets.push_back("n_large=2500");
  EXPECT_TRUE(plan_ensemble(req).warnings.empty());
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
  // (v5) with the firms' diffusion and seats on, so the state carried between ticks
  // includes the countries' lagged share of firms using AI.
  p.firm_bass = true;
  p.firm_bass_q = 0.5;
  p.seats = true;
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
