// Ranks without sorting (core/market/ranks.hpp): the top-share and the Gini from
// histograms against an oracle that sorts, in __float128; invariants; the same
// bits at any thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "core/market/ranks.hpp"
#include "market/solver_check.hpp"
#include "support.hpp"

namespace cutoff {
namespace {

using Q = __float128;

struct Elem {
  double w, x;
  bool keep;
};

struct Exact {
  double top, gini, W, X;
};

/// The definitions of core/market/ranks.hpp by sorting, in quadruple precision.
Exact oracle(const std::vector<Elem>& e, double f) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<std::pair<double, double>> v;  // (x, w)
  for (const Elem& a : e)
    if (a.keep && a.w > 0) v.emplace_back(a.x, a.w);
  Q W = 0, X = 0;
  for (auto& [x, w] : v) {
    W += w;
    X += static_cast<Q>(w) * x;
  }
  if (v.empty()) return {nan, nan, 0, 0};
  if (X == 0) return {nan, 0.0, static_cast<double>(W), 0};
  std::sort(v.begin(), v.end());
  Q S = 0, acc = 0;
  for (auto& [x, w] : v) {
    acc += static_cast<Q>(w) * (2 * S + static_cast<Q>(w) * x);
    S += static_cast<Q>(w) * x;
  }
  const Q gini = 1 - acc / (W * X);
  const Q T = static_cast<Q>(f) * W;
  Q cum = 0, top = 0;
  for (auto it = v.rbegin(); it != v.rend(); ++it) {
    const Q w = it->second, x = it->first;
    if (cum + w >= T) {
      top += (T - cum) * x;
      break;
    }
    cum += w;
    top += w * x;
  }
  return {static_cast<double>(top / X), static_cast<double>(gini), static_cast<double>(W), static_cast<double>(X)};
}

/// The get of rank_stats over a vector of elements.
struct ElemGet {
  const std::vector<Elem>* e;
  bool operator()(std::uint64_t i, double* w, double* x) const {
    const Elem& a = (*e)[i];
    if (!a.keep) return false;
    *w = a.w;
    *x = a.x;
    return true;
  }
};

RankStats run(const std::vector<Elem>& e, double f, const RankOptions& opt = {}) {
  return rank_stats(e.size(), ElemGet{&e}, f, opt);
}

double log_uniform(std::mt19937_64& g, double lo, double hi) {
  std::uniform_real_distribution<double> u(std::log(lo), std::log(hi));
  return std::exp(u(g));
}

/// Random inputs: 1–300 elements (sometimes none), weights 1–1e4 (sometimes
/// zero or all zero), values over 1e-6 … 1e9 with ties and zeros, some skipped.
std::vector<Elem> random_input(std::mt19937_64& g) {
  std::uniform_int_distribution<int> len(1, 300);
  std::uniform_real_distribution<double> u(0, 1);
  const int n = u(g) < 0.02 ? 0 : len(g);
  const double p_zero = std::vector<double>{0.0, 0.0, 0.1, 0.5, 1.0}[g() % 5];
  const double p_skip = u(g) < 0.3 ? 0.2 : 0.0;
  const double p_w0 = u(g) < 0.05 ? 1.0 : (u(g) < 0.2 ? 0.1 : 0.0);
  const int pool = u(g) < 0.4 ? 1 + static_cast<int>(g() % 5) : 0;  // ties: values from a small pool
  std::vector<double> values(pool);
  for (double& v : values) v = log_uniform(g, 1e-6, 1e9);
  const bool narrow = u(g) < 0.2;  // values within a factor 2: one exponent bin
  std::vector<Elem> e(n);
  for (Elem& a : e) {
    a.w = u(g) < p_w0 ? 0.0 : (u(g) < 0.3 ? std::round(log_uniform(g, 1, 1e4)) : log_uniform(g, 1, 1e4));
    if (u(g) < p_zero)
      a.x = 0;
    else if (pool)
      a.x = values[g() % pool];
    else
      a.x = narrow ? 1000 * (1 + u(g)) : log_uniform(g, 1e-6, 1e9);
    a.keep = !(u(g) < p_skip);
  }
  return e;
}

/// The a-priori Gini bound of the header: max bin ratio − 1 over 8, from the
/// fine histogram's key width 2^s.
double a_priori_gini_bound(const std::vector<Elem>& e, const RankOptions& opt) {
  std::uint64_t lo = ~std::uint64_t{0}, hi = 0;
  for (const Elem& a : e)
    if (a.keep && a.w > 0 && a.x > 0) {
      lo = std::min(lo, value_key(a.x));
      hi = std::max(hi, value_key(a.x));
    }
  if (hi < lo) return 0;
  int s = 0;
  while (((hi - lo) >> s) >= static_cast<std::uint64_t>(opt.fine_bins)) ++s;
  return std::ldexp(1.0, s - 51) / 8;
}

void check(const std::vector<Elem>& e, double f, const RankOptions& opt, const std::string& what) {
  SCOPED_TRACE(what);
  const RankStats r = run(e, f, opt);
  const Exact o = oracle(e, f);
  if (!(o.W > 0)) {
    EXPECT_TRUE(std::isnan(r.top_share));
    EXPECT_TRUE(std::isnan(r.gini));
    EXPECT_EQ(r.total_weight, 0.0);
    return;
  }
  EXPECT_NEAR(r.total_weight, o.W, 1e-13 * o.W);
  EXPECT_NEAR(r.total_value, o.X, 1e-13 * o.X);
  if (!(o.X > 0)) {
    EXPECT_TRUE(std::isnan(r.top_share));
    EXPECT_EQ(r.gini, 0.0);
    return;
  }
  EXPECT_NEAR(r.top_share, o.top, 1e-12);
  EXPECT_GE(r.top_share, f);
  EXPECT_LE(r.top_share, 1.0);
  EXPECT_GE(r.gini, 0.0);
  EXPECT_LT(r.gini, 1.0);
  EXPECT_GE(r.gini_error, 0.0);
  EXPECT_LE(std::fabs(r.gini - o.gini), r.gini_error + 1e-12) << "gini " << r.gini << " exact " << o.gini;
  EXPECT_LE(r.gini_error, a_priori_gini_bound(e, opt) * (1 + 1e-9) + 1e-15);
  EXPECT_GE(r.passes, 1);
}

TEST(Ranks, HandExamples) {
  // 1, 2, 3, 4 with equal weights: Gini 1/4; the top half holds 7/10.
  std::vector<Elem> e{{1, 1, true}, {1, 2, true}, {1, 3, true}, {1, 4, true}};
  RankStats r = run(e, 0.5);
  EXPECT_NEAR(r.gini, 0.25, 1e-15);
  EXPECT_EQ(r.gini_error, 0.0);  // 1, 2 and 3, 4 … resolved exactly by the fine bins
  EXPECT_NEAR(r.top_share, 0.7, 1e-15);
  // The straddling element counts fractionally: one element holds f of itself.
  r = run({{3, 5, true}}, 0.2);
  EXPECT_NEAR(r.top_share, 0.2, 1e-15);
  EXPECT_EQ(r.gini, 0.0);
  // Weight 3 at 1 and weight 1 at 9: the top 20% (0.8 of weight) is all at 9.
  r = run({{3, 1, true}, {1, 9, true}}, 0.2);
  EXPECT_NEAR(r.top_share, 0.8 * 9 / 12, 1e-15);
  // Gini = 1 − [3·(0 + 3) + 1·(2·3 + 9)]/(4·12) = 1 − 24/48.
  EXPECT_NEAR(r.gini, 0.5, 1e-15);
  // Zeros rank last; half the weight at 0.
  r = run({{1, 0, true}, {1, 0, true}, {2, 7, true}}, 0.5);
  EXPECT_NEAR(r.top_share, 1.0, 1e-15);
  EXPECT_NEAR(r.gini, 0.5, 1e-15);
}

TEST(Ranks, EdgeCases) {
  RankStats r = run({}, 0.2);
  EXPECT_TRUE(std::isnan(r.top_share));
  EXPECT_TRUE(std::isnan(r.gini));
  EXPECT_EQ(r.total_weight, 0.0);
  r = run({{0, 5, true}, {0, 7, true}}, 0.2);  // all weights zero
  EXPECT_TRUE(std::isnan(r.gini));
  r = run({{1, 5, false}}, 0.2);  // all skipped
  EXPECT_TRUE(std::isnan(r.gini));
  r = run({{1, 0, true}, {2, 0, true}}, 0.2);  // all values zero
  EXPECT_TRUE(std::isnan(r.top_share));
  EXPECT_EQ(r.gini, 0.0);
  EXPECT_EQ(r.total_weight, 3.0);
  r = run({{1, 4, true}, {2, 9, true}}, 0.0);
  EXPECT_EQ(r.top_share, 0.0);
  r = run({{1, 4, true}, {2, 9, true}}, 1.0);
  EXPECT_EQ(r.top_share, 1.0);
  // Extreme magnitudes: subnormal and huge values.
  check({{1, 5e-320, true}, {1, 1e300, true}, {2, 1, true}}, 0.2, {}, "extremes");
  EXPECT_THROW(run({{-1, 4, true}}, 0.2), std::invalid_argument);
  EXPECT_THROW(run({{1, -4, true}}, 0.2), std::invalid_argument);
  EXPECT_THROW(run({{1, std::nan(""), true}}, 0.2), std::invalid_argument);
  EXPECT_THROW(run({{1, std::numeric_limits<double>::infinity(), true}}, 0.2), std::invalid_argument);
  EXPECT_THROW(run({{1, 4, true}}, 1.5), std::invalid_argument);
}

TEST(Ranks, AllEqualValuesManyElements) {
  // One value for 1e5 elements: one bin, single-valued, exact without gathering.
  std::vector<Elem> e(100000, Elem{2.5, 123.0, true});
  const RankStats r = run(e, 0.2);
  EXPECT_NEAR(r.top_share, 0.2, 1e-15);
  EXPECT_EQ(r.gini, 0.0);
  EXPECT_EQ(r.gini_error, 0.0);
  EXPECT_EQ(r.passes, 1);
}

TEST(Ranks, MatchesSortingOracleOnRandomInputs) {
  std::mt19937_64 g(20240601);
  std::uniform_real_distribution<double> u(0, 1);
  for (int seed = 0; seed < 600; ++seed) {
    const auto e = random_input(g);
    const double f = seed % 4 == 0 ? u(g) : (seed % 17 == 0 ? 1.0 : 0.2);
    RankOptions opt;
    switch (seed % 5) {
      case 1:
        opt.gather_limit = 0;
        opt.refine_bits = 1 + static_cast<int>(g() % 3);
        break;  // refine to one value
      case 2:
        opt.gather_limit = 3;
        opt.fine_bins = 16;
        break;
      case 3:
        opt.fine_bins = 2;
        opt.refine_bits = 4;
        opt.gather_limit = 1;
        break;
      default: break;
    }
    check(e, f, opt, "seed " + std::to_string(seed) + " n " + std::to_string(e.size()));
  }
}

std::vector<Elem> big_input(std::size_t n, unsigned seed) {
  std::mt19937_64 g(seed);
  std::lognormal_distribution<double> ln(0.0, 3.0);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<Elem> e(n);
  for (Elem& a : e) {
    a.w = 1 + 99 * u(g);
    const double r = u(g);
    a.x = r < 0.05 ? 0.0 : (r < 0.15 ? 42.0 : ln(g) * 1e4);  // zeros, a tie, lognormal
    a.keep = u(g) < 0.95;
  }
  return e;
}

TEST(Ranks, LargeInputAccuracy) {
  const auto e = big_input(100000, 7);
  for (double f : {0.2, 0.5, 0.93}) {
    RankOptions opt;
    const RankStats r = run(e, f, opt);
    const Exact o = oracle(e, f);
    EXPECT_NEAR(r.top_share, o.top, 1e-12);
    EXPECT_LE(std::fabs(r.gini - o.gini), r.gini_error + 1e-12);
    EXPECT_LT(r.gini_error, 1e-6);  // lognormal(σ = 3) over ~40 octaves with 2^15 bins
    // Forced refinement passes give the same top-share.
    opt.gather_limit = 10;
    opt.refine_bits = 4;
    const RankStats r2 = run(e, f, opt);
    EXPECT_NEAR(r2.top_share, o.top, 1e-12);
    EXPECT_GT(r2.passes, 2);
  }
}

TEST(Ranks, SameBitsAtOneTwoThreeThreads) {
  const auto e = big_input(100000, 11);
  for (std::uint64_t gather : {std::uint64_t{1} << 16, std::uint64_t{50}}) {
    RankOptions opt;
    opt.gather_limit = gather;
    opt.refine_bits = 5;
    std::vector<RankStats> res;
    for (int threads : {1, 2, 3}) {
      omp_set_num_threads(threads);
      res.push_back(run(e, 0.2, opt));
    }
    omp_set_num_threads(omp_get_num_procs());
    for (int k = 1; k < 3; ++k) {
      EXPECT_TRUE(test::same_double(res[0].top_share, res[k].top_share));
      EXPECT_TRUE(test::same_double(res[0].gini, res[k].gini));
      EXPECT_TRUE(test::same_double(res[0].gini_error, res[k].gini_error));
      EXPECT_TRUE(test::same_double(res[0].total_weight, res[k].total_weight));
      EXPECT_TRUE(test::same_double(res[0].total_value, res[k].total_value));
      EXPECT_EQ(res[0].passes, res[k].passes);
    }
  }
}

// The device's side of the protocol, emulated: the same passes made in scrambled
// chunks and merge orders (tests/market/solver_check.hpp) give the same bits.
TEST(Ranks, AnyGroupingAndMergeOrderGiveTheSameBits) {
  const auto e = big_input(100000, 13);
  const ElemGet get{&e};
  for (std::uint64_t gather : {std::uint64_t{1} << 16, std::uint64_t{50}}) {
    RankOptions opt;
    opt.gather_limit = gather;
    opt.refine_bits = 5;
    RankSolver solver(0.2, opt);
    RankPass pass;
    while (solver.next(&pass)) {
      const int nb = pass.hist.nbins > 0 ? pass.hist.nbins : 0;
      solver.feed(test::scrambled_pass(
          e.size(), true, rank_pass_fresh(pass),
          [&](RankPassData& local) {
            return RankSink<HostOps>{local.ptrs(), nb, HostOps::lists(local.lists)};
          },
          [&](std::uint64_t i, const RankSink<HostOps>& sink) { rank_visit(pass, i, get, sink); }, rank_merge));
    }
    const RankStats a = solver.result(), b = run(e, 0.2, opt);
    EXPECT_TRUE(test::same_double(a.top_share, b.top_share));
    EXPECT_TRUE(test::same_double(a.gini, b.gini));
    EXPECT_TRUE(test::same_double(a.gini_error, b.gini_error));
    EXPECT_TRUE(test::same_double(a.total_weight, b.total_weight));
    EXPECT_TRUE(test::same_double(a.total_value, b.total_value));
    EXPECT_EQ(a.passes, b.passes);
  }
}

TEST(Ranks, FixedPointConversionIsExact) {
  bool o = false;
  Fix128 a = to_fixed(1.0, 64, &o);
  EXPECT_EQ(a.hi, 1u);
  EXPECT_EQ(a.lo, 0u);
  a = to_fixed(0.75, 2, &o);
  EXPECT_EQ(a.lo, 3u);
  a = to_fixed(2.5, 0, &o);  // half up
  EXPECT_EQ(a.lo, 3u);
  a = to_fixed(std::ldexp(1.0, -60), 0, &o);
  EXPECT_EQ(a.lo, 0u);
  EXPECT_FALSE(o);
  a = to_fixed(std::ldexp(1.0, 127), 0, &o);
  EXPECT_EQ(a.hi, std::uint64_t{1} << 63);
  EXPECT_FALSE(o);
  to_fixed(std::ldexp(1.0, 128), 0, &o);
  EXPECT_TRUE(o);
  Fix128 m{~std::uint64_t{0}, ~std::uint64_t{0}};
  EXPECT_TRUE(fix_add(m, Fix128{1, 0}));
  Fix128 c{~std::uint64_t{0}, 0};
  EXPECT_FALSE(fix_add(c, Fix128{1, 0}));
  EXPECT_EQ(c.hi, 1u);
  EXPECT_EQ(c.lo, 0u);
}

}  // namespace
}  // namespace cutoff
