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
  double people = 0, firms_real = 0, firms_expected = 0;
  for (int c = 0; c < C; ++c) {
    EXPECT_GE(L.small[c], static_cast<std::uint64_t>(p.min_firms));
    EXPECT_GE(L.users[c], static_cast<std::uint64_t>(p.min_users));
    EXPECT_EQ(L.firm_begin[c + 1] - L.firm_begin[c], L.large[c] + L.small[c]);
    EXPECT_EQ(L.seg_begin[c * S], L.firm_begin[c]);
    std::uint64_t large = 0;
    for (int s = 0; s < S; ++s) large += L.seg_large[c * S + s];
    EXPECT_EQ(large, L.large[c]);
    people += L.w_user[c] * static_cast<double>(L.users[c]);
    firms_real += L.w_small[c] * static_cast<double>(L.small[c]) + static_cast<double>(L.large[c]);
    firms_expected += L.real_firms[c];
    if (L.large[c] > 0) {
      EXPECT_GT(L.x_L[c], 1.0);
    }
  }
  double pop = 0;
  for (const auto& c : cs) pop += c.population;
  EXPECT_NEAR(people, pop, 1e-9 * pop);  // users stand for everyone
  EXPECT_NEAR(firms_real, firms_expected, 1e-9 * firms_expected);
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
