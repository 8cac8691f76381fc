// Agent weights and strata (docs/model.md §1): counts, minimums, weights in real
// firms and people, and the (country, sector) segments.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "agents/firm_kern.hpp"
#include "core/model/population.hpp"
#include "support.hpp"

namespace cutoff {
namespace {

TEST(Population, LargestRemainderKeepsTotalAndFloor) {
  const std::vector<double> w{1000, 1, 1, 500, 0.5};
  const auto s = share_largest_remainder(1000, w, 20);
  EXPECT_EQ(std::accumulate(s.begin(), s.end(), std::uint64_t{0}), 1000u);
  for (auto v : s) EXPECT_GE(v, 20u);
  EXPECT_GT(s[0], s[3]);
  // Proportional when no floor binds.
  const auto t = share_largest_remainder(10, {1, 1, 2}, 0);
  EXPECT_EQ(t, (std::vector<std::uint64_t>{3, 2, 5}));  // 2.5, 2.5, 5: the tie goes to the lower index
}

TEST(Population, ParetoCappedMean) {
  // Monte Carlo check of E[min(X, cap)].
  const double alpha = 1.1, cap = 1e4;
  double s = 0;
  const int n = 400000;
  for (int k = 0; k < n; ++k) {
    const double u = (k + 0.5) / n;  // stratified
    s += std::min(std::pow(u, -1.0 / alpha), cap);
  }
  EXPECT_NEAR(pareto_capped_mean(alpha, cap), s / n, 0.01 * s / n);
}

TEST(Population, LayoutCountsWeightsAndSegments) {
  // One small stratum (v4's layout; the size bands have their own tests).
  const Params p = test::small_params(8000, 20000, 6, {"size_strata=false"});
  const auto cs = load_countries(p.countries);
  const Layout L = make_layout(cs, p);
  const int C = static_cast<int>(cs.size()), S = static_cast<int>(p.sector_share.size());
  EXPECT_EQ(L.firm_begin.back(), static_cast<std::uint64_t>(p.n_firms));
  EXPECT_EQ(L.user_begin.back(), static_cast<std::uint64_t>(p.n_users));
  EXPECT_EQ(L.seg_begin.back(), static_cast<std::uint64_t>(p.n_firms));
  EXPECT_EQ(L.n_large, 2500u);
  double people = 0, free_users = 0, firms_real = 0, free_small = 0;
  for (int c = 0; c < C; ++c) {
    EXPECT_GE(L.small[c], static_cast<std::uint64_t>(p.min_firms));
    EXPECT_GE(L.users[c], static_cast<std::uint64_t>(p.min_users));
    EXPECT_EQ(L.firm_begin[c + 1] - L.firm_begin[c], L.large[c] + L.small[c]);
    EXPECT_EQ(L.seg_begin[c * S], L.firm_begin[c]);
    std::uint64_t large = 0;
    for (int s = 0; s < S; ++s) large += L.seg_large[c * S + s];
    EXPECT_EQ(large, L.large[c]);
    std::uint64_t small = 0;
    for (int s = 0; s < S; ++s)
      for (int b = 0; b < kSizeBands; ++b) {
        const std::uint32_t n = L.seg_band[(c * S + s) * kSizeBands + b];
        EXPECT_TRUE(b == 0 || n == 0) << "without size_strata every small agent is in band 0";
        small += n;
      }
    EXPECT_EQ(small, L.small[c]);
    // One band: its weight is the country's small real firms over its small agents.
    EXPECT_NEAR(L.w_small[c * kSizeBands] * static_cast<double>(L.small[c]),
                L.real_firms[c] - static_cast<double>(L.large[c]), 1e-9 * L.real_firms[c]);
    // §1 from the spec, not from the layout's own ratios: workers_c = worker_share·population_c,
    // N_c = workers_c / E[min(X, size_cap)], X Pareto(α, min 1): E = 1 + (cap^(1−α) − 1)/(1 − α).
    const double pop = cs[c].population, a = p.pareto_alpha;
    const double mean = 1 + (std::pow(p.size_cap, 1 - a) - 1) / (1 - a);
    EXPECT_NEAR(L.workers[c], p.worker_share * pop, 1e-9 * L.workers[c]) << cs[c].iso3;
    EXPECT_NEAR(L.real_firms[c], p.worker_share * pop / mean, 1e-9 * L.real_firms[c]) << cs[c].iso3;
    EXPECT_NEAR(L.w_user[c] * static_cast<double>(L.users[c]), pop, 1e-9 * pop);  // users stand for everyone
    // Agents in proportion where the minimum does not bind: users to population,
    // small-stratum firms to the country's small firms N_c − n_large,c.
    if (L.users[c] > static_cast<std::uint64_t>(p.min_users)) {
      people += pop;
      free_users += static_cast<double>(L.users[c]);
    }
    if (L.small[c] > static_cast<std::uint64_t>(p.min_firms)) {
      firms_real += L.real_firms[c] - static_cast<double>(L.large[c]);
      free_small += static_cast<double>(L.small[c]);
    }
    if (L.large[c] > 0) {
      EXPECT_GT(L.x_L[c], 1.0);
    }
  }
  // Largest remainder: each proportional share within one agent of its quota.
  int free_countries = 0;
  for (int c = 0; c < C; ++c) {
    if (L.users[c] > static_cast<std::uint64_t>(p.min_users)) {
      EXPECT_NEAR(static_cast<double>(L.users[c]), cs[c].population * free_users / people, 1.0) << cs[c].iso3;
      ++free_countries;
    }
    if (L.small[c] > static_cast<std::uint64_t>(p.min_firms)) {
      EXPECT_NEAR(static_cast<double>(L.small[c]),
                  (L.real_firms[c] - static_cast<double>(L.large[c])) * free_small / firms_real, 1.0)
          << cs[c].iso3;
    }
  }
  EXPECT_GT(free_countries, 10);
  // The large stratum follows GDP: the US holds the most.
  const int usa = find_country(cs, "USA");
  for (int c = 0; c < C; ++c) EXPECT_LE(L.large[c], L.large[usa]);
}

TEST(Population, SizeBandsWeighTheirRealFirmsAndGetAgentsByEmployment) {
  // §1 (v5) size_strata, written out: band b of country c covers raw sizes
  // [min(e_b, x_L), min(e_b+1, x_L)), e = 1, 10, 50, 250, x_L; it weighs its expected real
  // firms, (N_c − n_large,c)·(lo^−α − hi^−α)/(1 − x_L^−α), over its agents, which are in
  // proportion to its expected employment E[min(X, cap); band] (here by numerical
  // integration), within one agent, and at least one.
  Params p = test::small_params(100000, 400000);
  p.n_large = 20000;
  p.size_strata = true;
  const auto cs = load_countries(p.countries);
  const Layout L = make_layout(cs, p);
  const int C = static_cast<int>(cs.size()), S = static_cast<int>(p.sector_share.size());
  const double a = p.pareto_alpha, cap = p.size_cap;
  auto employment = [&](double lo, double hi) {  // ∫ min(x, cap)·α·x^(−α−1) dx on [lo, hi), in log steps
    const double top = std::min(hi, 1e12);
    const int n = 20000;
    double s = 0;
    for (int k = 0; k < n; ++k) {
      const double x0 = lo * std::pow(top / lo, static_cast<double>(k) / n);
      const double x1 = lo * std::pow(top / lo, static_cast<double>(k + 1) / n);
      const double x = std::sqrt(x0 * x1);
      s += std::min(x, cap) * a * std::pow(x, -a - 1) * (x1 - x0);
    }
    return s;
  };
  const int usa = find_country(cs, "USA");
  for (int c = 0; c < C; ++c) {
    const double xl = L.x_L[c];
    const double e[kSizeBands + 1] = {std::min(1.0, xl), std::min(10.0, xl), std::min(50.0, xl), std::min(250.0, xl),
                                      xl};
    double firms = static_cast<double>(L.large[c]), E_total = 0;
    std::uint64_t n[kSizeBands] = {0, 0, 0, 0};
    for (int s = 0; s < S; ++s)
      for (int b = 0; b < kSizeBands; ++b) n[b] += L.seg_band[(c * S + s) * kSizeBands + b];
    for (int b = 0; b < kSizeBands; ++b) {
      EXPECT_DOUBLE_EQ(L.band_edge[c * (kSizeBands + 1) + b], e[b]) << cs[c].iso3 << " band " << b;
      if (e[b] < e[b + 1]) E_total += employment(e[b], e[b + 1]);
    }
    const double tail = xl < INFINITY ? std::pow(xl, -a) : 0.0;
    for (int b = 0; b < kSizeBands; ++b) {
      if (!(e[b] < e[b + 1])) {
        EXPECT_EQ(n[b], 0u);
        continue;
      }
      ASSERT_GE(n[b], 1u) << cs[c].iso3 << " band " << b;
      const double hi = e[b + 1] < INFINITY ? std::pow(e[b + 1], -a) : 0.0;
      const double expected =
          (L.real_firms[c] - static_cast<double>(L.large[c])) * (std::pow(e[b], -a) - hi) / (1 - tail);
      EXPECT_NEAR(L.w_small[c * kSizeBands + b] * static_cast<double>(n[b]), expected, 1e-9 * expected);
      firms += L.w_small[c * kSizeBands + b] * static_cast<double>(n[b]);
      const double share = static_cast<double>(L.small[c]) * employment(e[b], e[b + 1]) / E_total;
      if (share > 1.5) {
        EXPECT_NEAR(static_cast<double>(n[b]), share, 1.0 + 1e-3 * share) << cs[c].iso3 << " band " << b;
      }
    }
    EXPECT_NEAR(firms, L.real_firms[c], 1e-9 * L.real_firms[c]) << cs[c].iso3;
    if (c == usa) {  // the point: many agents for the few firms of 250+ employees
      EXPECT_GT(n[3], 100u);
    }
  }
}

TEST(Population, BandSizesFollowTheTruncatedPareto) {
  // firm_raw_size on a band [lo, hi) is the inverse CDF of X | lo ≤ X < hi, X Pareto(α, 1):
  // F(x) = (lo^−α − x^−α)/(lo^−α − hi^−α); band [1, x_L) is v4's small stratum.
  const double a = 1.1, cap = 1e4;
  for (double u : {0.0, 0.1, 0.5, 0.9, 0.999}) {
    for (auto [lo, hi] : {std::pair{1.0, 10.0}, {10.0, 50.0}, {250.0, 812.5}, {250.0, INFINITY}}) {
      const double x = firm_raw_size(false, lo, hi, a, cap, u);
      EXPECT_GE(x, lo);
      if (hi < INFINITY) {
        EXPECT_LT(x, hi);
      }
      const double F =
          (std::pow(lo, -a) - std::pow(x, -a)) / (std::pow(lo, -a) - (hi < INFINITY ? std::pow(hi, -a) : 0));
      if (x < cap) {
        EXPECT_NEAR(F, u, 1e-9);
      }
    }
    EXPECT_DOUBLE_EQ(firm_raw_size(true, 300.0, INFINITY, a, cap, u == 0.0 ? 1.0 : u),
                     std::min(300.0 * std::pow(u == 0.0 ? 1.0 : u, -1 / a), cap));
  }
}

TEST(Population, LargeStratumShrinksToFitWithWarning) {
  Params p = test::small_params();
  p.n_large = 20000;  // more than 8000 firms can hold
  const auto cs = load_countries(p.countries);
  const Layout L = make_layout(cs, p);
  ASSERT_EQ(L.warnings.size(), 1u);
  EXPECT_NE(L.warnings[0].find("n_large shrunk"), std::string::npos);
  EXPECT_EQ(L.n_firms - L.n_large, static_cast<std::uint64_t>(p.min_firms) * cs.size());
}

TEST(Population, TooFewAgentsIsAnInputError) {
  Params p = test::small_params();
  p.n_firms = 100;
  const auto cs = load_countries(p.countries);
  try {
    make_layout(cs, p);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("n_firms"), std::string::npos);
  }
}

}  // namespace
}  // namespace cutoff
