// The backend seam on the CPU (core/sim/exec.hpp): what the GPU comparison relies
// on and a CPU run can check. Initialisation writes every field of every agent
// (arrays filled with a canary byte first); the histogram solvers' refinement
// and key passes give the bits of their direct gathers; the per-tick tables
// reach the passes through the registry (core/hd/tables.hpp), and host code cannot
// read them (tests/compile/host_reads_on_exec.cpp, run by CMake).
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/sim/simulation.hpp"
#include "support.hpp"

namespace cutoff {
namespace {

using test::forced_refinement;
using test::same_bits;
using test::same_metrics;

std::unique_ptr<Simulation> small_sim(const std::string& scenario, int canary, std::vector<std::string> sets = {}) {
  sets.insert(sets.end(), {"n_firms=6000", "n_users=20000", "n_large=2500", "horizon=4", "lever_tick=1"});
  const Params p = test::scenario(test::source_dir() + "/data/scenarios/" + scenario, sets);
  RunOptions o;
  o.canary = canary;
  return std::make_unique<Simulation>(p, load_countries(p.countries), o);
}

TEST(Backend, CanaryFillReachesEveryField) {
  // The check below means something only if the fill does: every byte of every array is the canary.
  const auto s = small_sim("baseline.toml", -1);
  s->exec().fill(0xA5);
  std::string missed;
  FirmView f = s->firms().view();
  Firms::for_each(f, [&](const FieldInfo& info, auto*& p) {
    const auto* b = reinterpret_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < s->firms().size() * info.bytes; ++i)
      if (b[i] != 0xA5) {
        missed += std::string(" ") + info.name;
        break;
      }
  });
  EXPECT_EQ(missed, "");
}

TEST(Backend, InitialisationWritesEveryFieldOfEveryAgent) {
  // Issue 19, finding 2: arrays filled with 0x00 and with 0xFF before §2.0 give
  // the same bits after it, and after a tick (scratch fields included).
  for (const char* scenario : {"baseline.toml", "first-resort.toml", "compute-for-access.toml"}) {
    SCOPED_TRACE(scenario);
    const auto zero = small_sim(scenario, 0x00), ones = small_sim(scenario, 0xFF);
    EXPECT_TRUE(same_bits(zero->firms(), ones->firms())) << "after §2.0";
    EXPECT_TRUE(same_bits(zero->users(), ones->users())) << "after §2.0";
    for (int t = 0; t < 2; ++t) {
      zero->step();
      ones->step();
      EXPECT_TRUE(same_bits(zero->firms(), ones->firms())) << "after tick " << t;
      EXPECT_TRUE(same_bits(zero->users(), ones->users())) << "after tick " << t;
      EXPECT_TRUE(same_metrics(zero->metrics(), ones->metrics())) << "after tick " << t;
    }
  }
}

TEST(Backend, InitialisationDoesNotDependOnAFill) {
  // And the canary runs are the runs without one.
  const auto plain = small_sim("baseline.toml", -1), ones = small_sim("baseline.toml", 0xFF);
  EXPECT_TRUE(same_bits(plain->firms(), ones->firms()));
  EXPECT_TRUE(same_bits(plain->users(), ones->users()));
}

/// Four ticks with the default solver options and with `options`: the same state
/// bits, and metrics the same bits (rel = 0) or within rel of each other.
void same_runs(const SolverOptions& options, double rel) {
  for (const char* scenario : {"baseline.toml", "first-resort.toml"}) {
    SCOPED_TRACE(scenario);
    const auto plain = small_sim(scenario, -1), refined = small_sim(scenario, -1);
    refined->exec().set_solver_options(options);
    for (int t = 0; t < 4; ++t) {
      plain->step();
      refined->step();
      ASSERT_TRUE(same_bits(plain->firms(), refined->firms())) << "tick " << t;
      ASSERT_TRUE(same_bits(plain->users(), refined->users())) << "tick " << t;
      ASSERT_TRUE(same_metrics(plain->metrics(), refined->metrics(), rel)) << "tick " << t;
    }
  }
}

TEST(Backend, ClearingRefinementGivesTheBitsOfTheDirectGather) {
  // Issue 19, finding 8: the clearing refined down to one key (gather_limit = 0, as the
  // GPU comparison forces it) leaves whole ticks unchanged: its price is exact.
  SolverOptions forced;
  forced.clearing = forced_refinement().clearing;
  same_runs(forced, 0.0);
}

TEST(Backend, RankRefinementAgreesToRounding) {
  // The ranks' top share adds its above-cut bins in double on the host, so another
  // refinement path may move it by an ulp or so (core/market/ranks.hpp: exact up to
  // rounding, ~1e-15); ranks feed only metrics, so the state keeps its bits.
  SolverOptions forced;
  forced.ranks = forced_refinement().ranks;
  same_runs(forced, 1e-12);
}

TEST(Backend, ForcedWaterFillRefinesToTheSameLevels) {
  // The forced water-fill takes more passes on users with spread breakpoints, to
  // levels within a few ulp of the direct gather's (its slope B is a compensated sum
  // over the gathered users, grouped differently: core/market/waterfill.hpp), so the GPU
  // comparison runs both backends under the same options.
  const auto s = small_sim("baseline.toml", -1);
  s->step();
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> scale(0.3, 3.0);
  UserView u = s->users().view();  // on the CPU the host arrays are the state
  for (std::uint64_t i = 0; i < s->layout().n_users; ++i) {
    u.z[i] = static_cast<float>(u.z[i] * scale(rng));
    u.n[i] = static_cast<float>(u.n[i] * scale(rng));
  }
  Exec& e = s->exec();
  const int P = static_cast<int>(s->labs().providers().size());
  const PlanBids bids{{}, e.put(s->user_consts(s->tick())), e.users(), {}, {}, s->layout().n_users};
  // Capacity above every provider's demand at this size (its resolution is capacity·2^−64).
  std::vector<double> unbounded(P, 1e9), floor(P, 0.0);
  const WaterFill all = e.water_fill(s->layout().n_users, P, bids, unbounded.data(), floor.data());
  int more = 0;
  for (double share : {0.1, 0.5, 0.9}) {  // capacity a share of each provider's demand: the level crosses users
    std::vector<double> capacity(P);
    for (int q = 0; q < P; ++q) capacity[q] = share * all.levels[q].demand;
    e.set_solver_options(SolverOptions{});
    const WaterFill direct = e.water_fill(s->layout().n_users, P, bids, capacity.data(), floor.data());
    e.set_solver_options(forced_refinement());
    const WaterFill refined = e.water_fill(s->layout().n_users, P, bids, capacity.data(), floor.data());
    more += refined.passes > direct.passes;
    for (int q = 0; q < P; ++q)
      EXPECT_NEAR(refined.levels[q].lambda, direct.levels[q].lambda, 1e-14 * direct.levels[q].lambda)
          << "share " << share << " provider " << q;
  }
  EXPECT_GT(more, 0) << "no capacity made the forced options refine";
}

}  // namespace
}  // namespace cutoff
