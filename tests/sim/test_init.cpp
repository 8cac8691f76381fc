// §2.0 initial state of firms and users: invariants from the spec, computed
// independently of the code under test.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/sim/simulation.hpp"
#include "support.hpp"

namespace cutoff {
namespace {

class Init : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Params p = test::small_params(9000, 30000);
    auto cs = load_countries(p.countries);
    sim_ = new Simulation(p, cs, RunOptions{});
  }
  static void TearDownTestSuite() { delete sim_; }
  static Simulation* sim_;
};
Simulation* Init::sim_ = nullptr;

TEST_F(Init, FirmsSortedByCountryThenSectorWithStrata) {
  const FirmView f = sim_->firms().view();
  const Layout& L = sim_->layout();
  const auto& cs = sim_->countries();
  const int ict = 5;
  std::uint64_t large = 0;
  for (std::uint64_t i = 0; i < L.n_firms; ++i) {
    if (i > 0) {
      ASSERT_LE(f.country[i - 1], f.country[i]);
      if (f.country[i - 1] == f.country[i]) {
        ASSERT_LE(f.sector[i - 1], f.sector[i]);
      }
    }
    const bool is_large = f.flags[i] & firm_flag::kLarge;
    large += is_large;
    if (f.flags[i] & firm_flag::kDefender) {
      EXPECT_TRUE(is_large);
      EXPECT_EQ(f.sector[i], ict);
      EXPECT_EQ(cs[f.country[i]].tier, 1);
    }
    EXPECT_EQ(f.provider[i], kNone);
    EXPECT_EQ(f.partners[i], 0);
    EXPECT_FALSE(f.flags[i] & firm_flag::kKyc);  // nobody cleared
    EXPECT_GE(f.employees[i], 0.0f);
    EXPECT_GT(f.A[i], 0.0f);
    EXPECT_GT(f.b[i], 0.0f);
  }
  EXPECT_EQ(large, L.n_large);
}

TEST_F(Init, WeightedEmployeesSumToWorkersAndRevenueToGdp) {
  const FirmView f = sim_->firms().view();
  const Layout& L = sim_->layout();
  const auto& cs = sim_->countries();
  std::vector<double> emp(cs.size(), 0.0);
  double revenue = 0, gdp = 0;
  for (std::uint64_t i = 0; i < L.n_firms; ++i) {
    const double w = (f.flags[i] & firm_flag::kLarge) ? 1.0 : L.w_small[f.country[i] * kSizeBands + f.band[i]];
    emp[f.country[i]] += w * f.employees[i];
    revenue += w * f.revenue[i];
    EXPECT_EQ(f.W[i], 3.0 * static_cast<double>(f.revenue[i]));
  }
  for (std::size_t c = 0; c < cs.size(); ++c) {
    EXPECT_NEAR(emp[c], L.workers[c], 1e-5 * L.workers[c]) << cs[c].iso3;
    gdp += cs[c].gdp_usd / 12.0;
  }
  // The pools (local and tradable) hand out exactly a month of GDP.
  EXPECT_NEAR(revenue, gdp, 1e-5 * gdp);
}

TEST(InitPool, PriceTakerMovesRevenueBetweenAgentsNotCountries) {
  // §2.8 (v5) pool_price_taker: each segment's local pool is still handed out in full,
  // so every country's revenue(−1) is the same as without it, while agents' differ.
  Params p = test::small_params(6000, 20000);
  const auto cs = load_countries(p.countries);
  std::vector<double> by_country[2];
  std::vector<float> revenue[2];
  for (int taker = 0; taker < 2; ++taker) {
    p.pool_price_taker = taker == 1;
    Simulation sim(p, cs, RunOptions{});
    const FirmView f = sim.firms().view();
    const Layout& L = sim.layout();
    by_country[taker].assign(cs.size(), 0.0);
    for (std::uint64_t i = 0; i < L.n_firms; ++i) {
      const double w = (f.flags[i] & firm_flag::kLarge) ? 1.0 : L.w_small[f.country[i] * kSizeBands + f.band[i]];
      by_country[taker][f.country[i]] += w * f.revenue[i];
      revenue[taker].push_back(f.revenue[i]);
    }
  }
  for (std::size_t c = 0; c < cs.size(); ++c)
    EXPECT_NEAR(by_country[1][c], by_country[0][c], 1e-5 * by_country[0][c]) << cs[c].iso3;
  ASSERT_EQ(revenue[0].size(), revenue[1].size());
  std::size_t moved = 0;
  for (std::size_t i = 0; i < revenue[0].size(); ++i) moved += std::fabs(revenue[1][i] / revenue[0][i] - 1) > 1e-3;
  EXPECT_GT(moved, revenue[0].size() / 4);
}

TEST(InitSizeBands, WeightsSumToWorkersAndSizesFallInTheirBands) {
  // §1 (v5) size_strata: the weighted employees still sum to each country's workers,
  // each small-stratum agent's size class is its band (sizes scale by about 1: N_c is
  // the workers over the mean size; agents within 10% of a band's edge are not judged),
  // and every band of the US holds agents.
  Params p = test::small_params(20000, 30000);
  p.size_strata = true;
  Simulation sim(p, load_countries(p.countries), RunOptions{});
  const FirmView f = sim.firms().view();
  const Layout& L = sim.layout();
  const auto& cs = sim.countries();
  std::vector<double> emp(cs.size(), 0.0);
  std::uint64_t judged = 0, agree = 0, us_band[kSizeBands] = {0, 0, 0, 0};
  const double edge[kSizeBands - 1] = {10, 50, 250};
  const int usa = find_country(cs, "USA");
  for (std::uint64_t i = 0; i < L.n_firms; ++i) {
    const bool large = f.flags[i] & firm_flag::kLarge;
    const double w = large ? 1.0 : L.w_small[f.country[i] * kSizeBands + f.band[i]];
    emp[f.country[i]] += w * f.employees[i];
    if (large) continue;
    if (f.country[i] == usa) ++us_band[f.band[i]];
    bool near = false;
    for (double e : edge) near = near || std::fabs(f.employees[i] / e - 1.0) < 0.1;
    if (near) continue;
    ++judged;
    agree += size_class(f.employees[i]) == f.band[i];
  }
  for (std::size_t c = 0; c < cs.size(); ++c) EXPECT_NEAR(emp[c], L.workers[c], 1e-5 * L.workers[c]) << cs[c].iso3;
  EXPECT_GT(static_cast<double>(agree), 0.99 * static_cast<double>(judged));
  for (int b = 0; b < kSizeBands; ++b) EXPECT_GT(us_band[b], 0u) << "band " << b;
}

TEST_F(Init, LargeFirmsAreTheLargest) {
  const FirmView f = sim_->firms().view();
  const Layout& L = sim_->layout();
  const auto& cs = sim_->countries();
  const int usa = find_country(cs, "USA");
  float min_large = 1e30f, max_small = 0;
  for (std::uint64_t i = L.firm_begin[usa]; i < L.firm_begin[usa + 1]; ++i) {
    if (f.flags[i] & firm_flag::kLarge)
      min_large = std::min(min_large, f.employees[i]);
    else
      max_small = std::max(max_small, f.employees[i]);
  }
  EXPECT_GE(min_large, max_small * 0.999f);  // strata split at x_L
}

TEST_F(Init, UsersAdoptOnlyEligibleGenerations) {
  const UserView u = sim_->users().view();
  const Layout& L = sim_->layout();
  const GenTableView g = sim_->labs().view();
  std::uint64_t adopters = 0;
  double zsum = 0;
  for (std::uint64_t i = 0; i < L.n_users; ++i) {
    if (i > 0) {
      ASSERT_LE(u.country[i - 1], u.country[i]);
    }
    zsum += u.z[i];
    EXPECT_GT(u.n[i], 0.0f);
    if (!(u.flags[i] & user_flag::kAdopter)) {
      EXPECT_EQ(u.plan[i], kPlanNone);
      EXPECT_EQ(u.generation[i], kNone);
      continue;
    }
    ++adopters;
    ASSERT_NE(u.generation[i], kNone);
    EXPECT_NE(u.plan[i], kPlanNone);
    EXPECT_EQ(u.provider[i], g.provider[u.generation[i]]);
    EXPECT_EQ(g.stage[u.generation[i]], kStageGeneral);
    EXPECT_GE(align_of(g, u.country[i], u.provider[i]), 0.0);
  }
  EXPECT_NEAR(zsum / L.n_users, 1.0, 0.02);  // lognormal with mean 1
  const double share = static_cast<double>(adopters) / L.n_users;
  EXPECT_GT(share, 0.0);
  EXPECT_LT(share, sim_->params().adopt0);  // adopt0 × access × afford, each ≤ 1
}

}  // namespace
}  // namespace cutoff
