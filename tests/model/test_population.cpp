// Agent weights and strata (docs/model.md §1): counts, minimums, weights in real
// firms and people, and the (country, sector) segments.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

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
  const Params p = test::small_params();
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
