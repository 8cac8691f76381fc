// The consumer water-fill (core/market/waterfill.hpp) against an oracle that evaluates
// the definition at every sorted breakpoint in __float128; invariants (fits,
// maximal, capped flags); the deal-host floor; the same bits at any thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/market/waterfill.hpp"
#include "market/solver_check.hpp"
#include "support.hpp"

namespace cutoff {
namespace {

using Q = __float128;
constexpr double kInf = std::numeric_limits<double>::infinity();

struct User {
  int provider;  // −1: skipped
  UserBid bid;
};

/// The get of water_fill over a vector of users.
struct UserGet {
  const std::vector<User>* us;
  int operator()(std::uint64_t u, UserBid* b) const {
    *b = (*us)[u].bid;
    return (*us)[u].provider;
  }
};

WaterFill run(const std::vector<User>& us, int P, const std::vector<double>& C, const std::vector<double>* F = nullptr,
              const WaterfillOptions& opt = {}) {
  return water_fill(us.size(), P, UserGet{&us}, C.data(), F ? F->data() : nullptr, opt);
}

// ----- the oracle: the definitions, independently, in quadruple precision -----

/// Σ w·h·min(c, max(λ, lo_u)·p) over the users of provider p in `mask` (bit 0:
/// ordinary, bit 1: host_floor), lo_u = lo for host_floor users, else 0.
Q load(const std::vector<User>& us, int p, unsigned mask, Q lambda, Q lo) {
  Q s = 0;
  for (const User& u : us) {
    if (u.provider != p || !((mask >> (u.bid.host_floor ? 1 : 0)) & 1u)) continue;
    const UserBid& b = u.bid;
    if (b.cap == 0) continue;
    Q level = b.host_floor && lo > lambda ? lo : lambda;
    const Q use = level * b.plan_weight < b.cap ? level * b.plan_weight : static_cast<Q>(b.cap);
    s += static_cast<Q>(b.weight) * b.cost * use;
  }
  return s;
}

/// max{λ ≥ 0 : load(λ) ≤ C}: load is piecewise linear between the sorted
/// breakpoints {c/p} ∪ {lo}; evaluate it there (by bisection) and interpolate on
/// the piece where it passes C. +inf if load(∞) ≤ C.
double oracle_fill(const std::vector<User>& us, int p, unsigned mask, Q C, Q lo = 0) {
  const Q inf_load = load(us, p, mask, static_cast<Q>(kInf), lo);
  if (inf_load <= C) return kInf;
  std::vector<Q> bp{0};
  for (const User& u : us)
    if (u.provider == p && ((mask >> (u.bid.host_floor ? 1 : 0)) & 1u) && u.bid.cap > 0)
      bp.push_back(static_cast<Q>(u.bid.cap) / u.bid.plan_weight);
  if (lo > 0 && lo < static_cast<Q>(kInf)) bp.push_back(lo);
  std::sort(bp.begin(), bp.end());
  bp.erase(std::unique(bp.begin(), bp.end()), bp.end());
  if (load(us, p, mask, 0, lo) > C) return 0;  // only where host users start above C (rounding)
  // load is non-decreasing: bisect for the first breakpoint where it exceeds C,
  // then interpolate on the linear piece before it.
  std::size_t a = 0, b = bp.size();  // load(bp[a]) ≤ C; first exceeding index in (a, b]
  while (b - a > 1) {
    const std::size_t m = (a + b) / 2;
    if (load(us, p, mask, bp[m], lo) > C)
      b = m;
    else
      a = m;
  }
  if (b == bp.size()) {
    ADD_FAILURE() << "oracle: no crossing";
    return -1;
  }
  const Q la = load(us, p, mask, bp[a], lo), lb = load(us, p, mask, bp[b], lo);
  return static_cast<double>(bp[a] + (C - la) * (bp[b] - bp[a]) / (lb - la));
}

/// The slope of the load just above λ (users still rising there), for tolerances.
Q slope(const std::vector<User>& us, int p, unsigned mask, Q lambda) {
  Q s = 0;
  for (const User& u : us)
    if (u.provider == p && ((mask >> (u.bid.host_floor ? 1 : 0)) & 1u) && u.bid.cap > 0 &&
        lambda * u.bid.plan_weight < u.bid.cap)
      s += static_cast<Q>(u.bid.weight) * u.bid.cost * u.bid.plan_weight;
  return s;
}

/// |λ − λ_exact| within 1e-12 relative, or within the change of λ that moves the
/// load by 4 ulp of C (the conditioning of S(λ) = C in double).
void expect_lambda(double got, double want, double C, Q slope_at, const std::string& what) {
  if (want == kInf) {
    EXPECT_EQ(got, kInf) << what;
    return;
  }
  const double cond = slope_at > 0 ? static_cast<double>(4 * std::ldexp(1.0, -52) * static_cast<Q>(C) / slope_at) : 0;
  EXPECT_LE(std::fabs(got - want), 1e-12 * want + cond) << what << ": got " << got << " exact " << want;
}

double log_uniform(std::mt19937_64& g, double lo, double hi) {
  std::uniform_real_distribution<double> u(std::log(lo), std::log(hi));
  return std::exp(u(g));
}

/// Random users: 1–300, weights 1–1e4, caps over 1e-6 … 1e9 with ties and zeros,
/// plan weights 1 / 5 / 25 or continuous, costs 1e-4 … 1.
std::vector<User> random_users(std::mt19937_64& g, int P, double p_floor) {
  std::uniform_real_distribution<double> u(0, 1);
  const int n = 1 + static_cast<int>(g() % 300);
  const int pool = u(g) < 0.4 ? 1 + static_cast<int>(g() % 4) : 0;  // ties
  std::vector<double> caps(pool);
  for (double& c : caps) c = log_uniform(g, 1e-6, 1e9);
  const bool plans = u(g) < 0.5;
  const double p_zero = u(g) < 0.3 ? 0.2 : 0.0;
  const double p_w0 = u(g) < 0.05 ? 1.0 : 0.05;
  std::vector<User> us(n);
  for (User& x : us) {
    x.provider = u(g) < 0.05 ? -1 : static_cast<int>(g() % P);
    UserBid& b = x.bid;
    b.weight = u(g) < p_w0 ? 0.0 : log_uniform(g, 1, 1e4);
    b.cap = u(g) < p_zero ? 0.0 : (pool ? caps[g() % pool] : log_uniform(g, 1e-6, 1e9));
    b.plan_weight = plans ? std::vector<double>{1, 5, 25}[g() % 3] : log_uniform(g, 0.01, 100);
    b.cost = u(g) < 0.02 ? 0.0 : log_uniform(g, 1e-4, 1);
    b.host_floor = u(g) < p_floor;
  }
  return us;
}

/// Checks the levels of every provider against the oracle and the invariants.
void check_all(const std::vector<User>& us, int P, const std::vector<double>& C, const std::vector<double>* F,
               const WaterFill& wf, const std::string& what) {
  ASSERT_EQ(static_cast<int>(wf.levels.size()), P);
  for (int p = 0; p < P; ++p) {
    const std::string w = what + " provider " + std::to_string(p);
    const WaterLevel& l = wf.levels[p];
    const Q D = load(us, p, 3u, static_cast<Q>(kInf), 0), Dh = load(us, p, 2u, static_cast<Q>(kInf), 0);
    // demand: Σ of terms rounded to 2^−64·C (2^−64 H100e where C is 0 or +inf)
    const double res = std::ldexp(C[p] > 0 && C[p] < kInf ? C[p] : 1.0, -64) * static_cast<double>(us.size());
    EXPECT_NEAR(l.demand, static_cast<double>(D), 1e-12 * static_cast<double>(D) + res) << w;
    EXPECT_NEAR(l.demand_floor, static_cast<double>(Dh), 1e-12 * static_cast<double>(Dh) + res) << w;
    const double Fp = F ? std::min((*F)[p], C[p]) : 0.0;
    // Stage 1: host users alone on the floor.
    double l1 = 0;
    if (C[p] < kInf && Fp > 0 && Dh > 0) {
      l1 = oracle_fill(us, p, 2u, Fp);
      expect_lambda(l.lambda_floor, l1, Fp, slope(us, p, 2u, l1), w + " lambda_floor");
    } else {
      EXPECT_EQ(l.lambda_floor, 0.0) << w;
    }
    // Stage 2, by the definition: max{λ : S_other(λ) + S_host(max(λ, λ1)) ≤ C}, with our λ1
    // (S_host(λ1) = F' ≤ C exactly; against our rounded λ1, C is at least S_host(λ1)).
    const Q lo = l.lambda_floor;
    const Q C2 = std::max(static_cast<Q>(C[p]), load(us, p, 2u, lo, 0));
    const double want = C[p] == kInf ? kInf : oracle_fill(us, p, 3u, C2, lo);
    const Q sl = (want < kInf) ? slope(us, p, 1u, want) + (want >= l.lambda_floor ? slope(us, p, 2u, want) : 0) : 0;
    expect_lambda(l.lambda, want, C[p], sl, w + " lambda");
    // Invariants: it fits, it is maximal, the caller's per-user pass agrees.
    if (l.lambda < kInf) {
      const Q S = load(us, p, 3u, l.lambda, lo);
      EXPECT_LE(static_cast<double>(S), C[p] * (1 + 1e-9) + 1e-300) << w;
      if (sl > 0) {  // maximal: a step up of 1e-9 relative (or of 16 ulp of C in load) no longer fits
        const Q step = static_cast<Q>(l.lambda) * 1e-9 + 16 * std::ldexp(1.0, -52) * static_cast<Q>(C[p]) / sl + 1e-300;
        EXPECT_TRUE(load(us, p, 3u, static_cast<Q>(l.lambda) + step, lo) > static_cast<Q>(C[p])) << w;
      }
    } else {
      EXPECT_LE(static_cast<double>(D), C[p] * (1 + 1e-12)) << w;
    }
    double used = 0;
    for (const User& x : us) {
      if (x.provider != p) continue;
      const double use = water_use(x.bid, l);
      const bool capped = water_capped(x.bid, l);
      EXPECT_GE(use, 0.0);
      EXPECT_LE(use, x.bid.cap);
      EXPECT_EQ(capped, use < x.bid.cap) << w;  // capped ⇔ below its cap (λ·p < c)
      if (l.lambda == kInf) {
        EXPECT_FALSE(capped) << w;
      }
      used += x.bid.weight * x.bid.cost * use;
    }
    EXPECT_LE(used, C[p] * (1 + 1e-9) + 1e-300) << w;
  }
}

TEST(WaterFill, HandExample) {
  // (w, c, p, h): breakpoints c/p = 10, 1, 2.5; S(λ) on [1, 2.5] = 1 + 3λ, so C = 8 gives 7/3.
  std::vector<User> us{{0, {1, 10, 1, 1, false}}, {0, {1, 1, 1, 1, false}}, {0, {2, 5, 2, 0.5, false}}};
  WaterFill wf = run(us, 1, {8.0});
  EXPECT_NEAR(wf.levels[0].lambda, 7.0 / 3.0, 1e-15);
  EXPECT_EQ(wf.levels[0].demand, 16.0);
  EXPECT_TRUE(water_capped(us[0].bid, wf.levels[0]));
  EXPECT_FALSE(water_capped(us[1].bid, wf.levels[0]));  // hit its own cap: not scarcity
  EXPECT_NEAR(water_use(us[2].bid, wf.levels[0]), 14.0 / 3.0, 1e-14);
  // Everything fits: λ = +inf, nobody capped.
  wf = run(us, 1, {16.0});
  EXPECT_EQ(wf.levels[0].lambda, kInf);
  for (const User& x : us) EXPECT_EQ(water_use(x.bid, wf.levels[0]), x.bid.cap);
  // No capacity: λ = 0, all capped.
  wf = run(us, 1, {0.0});
  EXPECT_EQ(wf.levels[0].lambda, 0.0);
  for (const User& x : us) EXPECT_TRUE(water_capped(x.bid, wf.levels[0]));
}

TEST(WaterFill, HostFloorTwoStages) {
  // Host user (w 1, c 10, p 1, h 1) and an ordinary user with the same bid; C = 8.
  std::vector<User> us{{0, {1, 10, 1, 1, true}}, {0, {1, 10, 1, 1, false}}};
  // Floor 6: the host rises to 6 alone; the remaining 2 go to the other user (λ = 2).
  std::vector<double> F{6.0};
  WaterFill wf = run(us, 1, {8.0}, &F);
  EXPECT_NEAR(wf.levels[0].lambda_floor, 6.0, 1e-15);
  EXPECT_NEAR(wf.levels[0].lambda, 2.0, 1e-15);
  EXPECT_NEAR(water_use(us[0].bid, wf.levels[0]), 6.0, 1e-15);
  EXPECT_NEAR(water_use(us[1].bid, wf.levels[0]), 2.0, 1e-15);
  // Floor 2: the host has a head start of 2, then both rise together to 4.
  F = {2.0};
  wf = run(us, 1, {8.0}, &F);
  EXPECT_NEAR(wf.levels[0].lambda_floor, 2.0, 1e-15);
  EXPECT_NEAR(wf.levels[0].lambda, 4.0, 1e-15);
  // Floor beyond the host's cap: it is served in full, the rest (8 − 10 < 0 … ) C = 15 → other gets 5.
  F = {12.0};
  wf = run(us, 1, {15.0}, &F);
  EXPECT_EQ(wf.levels[0].lambda_floor, kInf);
  EXPECT_NEAR(wf.levels[0].lambda, 5.0, 1e-15);
  EXPECT_EQ(water_use(us[0].bid, wf.levels[0]), 10.0);
  // Floor larger than capacity is clamped to it.
  F = {100.0};
  wf = run(us, 1, {8.0}, &F);
  EXPECT_NEAR(wf.levels[0].lambda_floor, 8.0, 1e-15);
  EXPECT_NEAR(wf.levels[0].lambda, 0.0, 1e-15);
  // Floor 0: no first stage.
  F = {0.0};
  wf = run(us, 1, {8.0}, &F);
  EXPECT_EQ(wf.levels[0].lambda_floor, 0.0);
  EXPECT_NEAR(wf.levels[0].lambda, 4.0, 1e-15);
}

TEST(WaterFill, EdgeCases) {
  // Users with zero cap, weight or cost load nothing and are never capped by a zero cap.
  std::vector<User> us{{0, {1, 0, 1, 1, false}}, {0, {0, 5, 1, 1, false}}, {0, {3, 5, 1, 0, false}},
                       {0, {1, 4, 2, 1, false}}, {1, {1, 1, 1, 1, false}}, {-1, {1, 1, 1, 1, false}}};
  WaterFill wf = run(us, 3, {1.0, kInf, 0.0});
  EXPECT_NEAR(wf.levels[0].lambda, 0.5, 1e-15);
  EXPECT_EQ(wf.levels[1].lambda, kInf);  // infinite capacity
  EXPECT_EQ(wf.levels[2].lambda, kInf);  // no users
  EXPECT_EQ(wf.levels[2].demand, 0.0);
  EXPECT_FALSE(water_capped(us[0].bid, wf.levels[0]));
  // Capacities below 2^−64 of demand: the fixed-point scale is retried from the
  // largest term (one more pass), and λ is then resolved to ~2^−100 of demand.
  for (double C : {1e-200, 1e-310, 1e-10}) {
    std::vector<User> v{{0, {1e4, 1e9, 1, 1, false}}, {0, {1, 3, 2, 0.1, false}}};
    wf = run(v, 1, {C});
    EXPECT_EQ(wf.passes, 2);
    const double D = 1e13 + 0.3, res = std::ldexp(D, -100);
    EXPECT_NEAR(wf.levels[0].demand, D, 1e-15 * D);
    EXPECT_GE(wf.levels[0].lambda, 0.0);
    EXPECT_LE(static_cast<double>(load(v, 0, 3u, wf.levels[0].lambda, 0)), C + res);
    EXPECT_GT(static_cast<double>(load(v, 0, 3u, wf.levels[0].lambda + 2 * res / 1e4, 0)), C);
  }
  // Above 2^−64 of demand (and C = 0) the capacity's own scale is kept: one pass.
  {
    std::vector<User> v{{0, {1e4, 1e9, 1, 1, false}}, {0, {1, 3, 2, 0.1, false}}};
    for (double C : {1e-3, 0.0}) {
      wf = run(v, 1, {C});
      EXPECT_EQ(wf.passes, 1);
      check_all(v, 1, {C}, nullptr, wf, "small C");
    }
  }
  // Invalid input.
  EXPECT_THROW(run({{0, {1, 5, 0, 1, false}}}, 1, {1.0}), std::invalid_argument);   // cap > 0, plan weight 0
  EXPECT_THROW(run({{0, {-1, 5, 1, 1, false}}}, 1, {1.0}), std::invalid_argument);  // negative weight
  EXPECT_THROW(run({{0, {1, std::nan(""), 1, 1, false}}}, 1, {1.0}), std::invalid_argument);
  EXPECT_THROW(run({{2, {1, 5, 1, 1, false}}}, 1, {1.0}), std::invalid_argument);   // provider out of range
  EXPECT_THROW(run({{0, {1, 5, 1, 1, false}}}, 1, {-1.0}), std::invalid_argument);  // negative capacity
  EXPECT_NO_THROW(run({{0, {1, 0, 0, 1, false}}}, 1, {1.0}));                       // zero cap, zero plan weight: fine
}

TEST(WaterFill, ManyUsersOneBreakpoint) {
  // 1e5 users with one breakpoint value: a single-valued bin, no gathering needed.
  std::vector<User> us(100000, User{0, {2, 10, 5, 0.01, false}});
  const WaterFill wf = run(us, 1, {5000.0});  // S(λ) = 1e5·2·0.01·5·λ = 1e4·λ up to λ = 2
  EXPECT_NEAR(wf.levels[0].lambda, 0.5, 1e-15);
  EXPECT_EQ(wf.passes, 1);
}

TEST(WaterFill, MatchesOracleOnRandomInputs) {
  std::mt19937_64 g(424242);
  std::uniform_real_distribution<double> u(0, 1);
  for (int seed = 0; seed < 500; ++seed) {
    const int P = 1 + static_cast<int>(g() % 4);
    const bool floors = seed % 3 == 0;
    const auto us = random_users(g, P, floors ? 0.3 : 0.0);
    std::vector<double> C(P), F(P);
    for (int p = 0; p < P; ++p) {
      const double D = static_cast<double>(load(us, p, 3u, static_cast<Q>(kInf), 0));
      const double r = u(g);
      C[p] = r < 0.05 ? 0.0 : (r < 0.1 ? kInf : (r < 0.2 ? 1.5 * D : D * log_uniform(g, 1e-9, 1.0)));
      F[p] = u(g) < 0.2 ? 0.0 : C[p] * u(g) * 1.2;
    }
    WaterfillOptions opt;
    switch (seed % 4) {
      case 1:
        opt.gather_limit = 0;
        opt.refine_bits = 1 + static_cast<int>(g() % 3);
        break;  // refine to one key
      case 2:
        opt.gather_limit = 2;
        opt.refine_bits = 4;
        break;
      default: break;
    }
    const WaterFill wf = run(us, P, C, floors ? &F : nullptr, opt);
    check_all(us, P, C, floors ? &F : nullptr, wf, "seed " + std::to_string(seed));
  }
}

std::vector<User> big_users(std::size_t n, unsigned seed, int P) {
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::lognormal_distribution<double> ln(0.0, 1.0);
  std::vector<User> us(n);
  for (User& x : us) {
    x.provider = u(g) < 0.02 ? -1 : static_cast<int>(g() % P);
    const int plan = static_cast<int>(g() % 3);
    const double need = std::vector<double>{1, 10, 100}[plan] * ln(g);
    const double plancap = 2 * std::vector<double>{1, 10, 100}[plan];
    x.bid = UserBid{1 + 4 * u(g), std::min(need, plancap), std::vector<double>{1, 5, 25}[plan],
                    std::vector<double>{2e-4, 1e-3, 5e-3}[g() % 3], u(g) < 0.1};
  }
  return us;
}

TEST(WaterFill, SameBitsAtOneTwoThreeThreads) {
  const int P = 3;
  const auto us = big_users(100000, 5, P);
  std::vector<double> C(P), F(P);
  for (int p = 0; p < P; ++p) {
    const double D = static_cast<double>(load(us, p, 3u, static_cast<Q>(kInf), 0));
    C[p] = D * (0.2 + 0.3 * p);
    F[p] = 0.05 * C[p];
  }
  for (std::uint64_t gather : {std::uint64_t{1} << 16, std::uint64_t{20}}) {
    WaterfillOptions opt;
    opt.gather_limit = gather;
    opt.refine_bits = 6;
    std::vector<WaterFill> res;
    for (int threads : {1, 2, 3}) {
      omp_set_num_threads(threads);
      res.push_back(run(us, P, C, &F, opt));
    }
    omp_set_num_threads(omp_get_num_procs());
    for (int k = 1; k < 3; ++k) {
      EXPECT_EQ(res[0].passes, res[k].passes);
      for (int p = 0; p < P; ++p)
        for (double WaterLevel::*m :
             {&WaterLevel::lambda, &WaterLevel::lambda_floor, &WaterLevel::demand, &WaterLevel::demand_floor})
          EXPECT_TRUE(test::same_double(res[0].levels[p].*m, res[k].levels[p].*m)) << "provider " << p;
    }
    if (gather < 100) {
      EXPECT_GT(res[0].passes, 2);  // refinement passes
    }
    // And against the oracle: both stages fill their capacity exactly.
    for (int p = 0; p < P; ++p) {
      const WaterLevel& l = res[0].levels[p];
      ASSERT_LT(l.lambda, kInf);
      EXPECT_NEAR(static_cast<double>(load(us, p, 3u, l.lambda, l.lambda_floor) / C[p]), 1.0, 1e-14);
      EXPECT_NEAR(static_cast<double>(load(us, p, 2u, l.lambda_floor, 0) / F[p]), 1.0, 1e-14);
      const double l1 = oracle_fill(us, p, 2u, F[p]);
      EXPECT_NEAR(l.lambda_floor, l1, 1e-12 * l1);
      const double want =
          oracle_fill(us, p, 3u, std::max(static_cast<Q>(C[p]), load(us, p, 2u, l.lambda_floor, 0)), l.lambda_floor);
      EXPECT_NEAR(l.lambda, want, 1e-12 * want);
    }
  }
}

// The device's side of the protocol, emulated: the same passes made in scrambled
// chunks and merge orders (tests/market/solver_check.hpp) give the same bits.
TEST(WaterFill, AnyGroupingAndMergeOrderGiveTheSameBits) {
  const int P = 3;
  const auto us = big_users(100000, 9, P);
  const UserGet get{&us};
  std::vector<double> C(P), F(P);
  for (int p = 0; p < P; ++p) {
    const double D = static_cast<double>(load(us, p, 3u, static_cast<Q>(kInf), 0));
    C[p] = D * (0.2 + 0.3 * p);
    F[p] = 0.05 * C[p];
  }
  for (std::uint64_t gather : {std::uint64_t{1} << 16, std::uint64_t{20}}) {
    WaterfillOptions opt;
    opt.gather_limit = gather;
    opt.refine_bits = 6;
    WaterSolver solver(P, C.data(), F.data(), opt);
    WaterPass pass;
    while (solver.next(&pass)) {
      const WaterPassView view = pass.view(P);
      solver.feed(test::scrambled_pass(
          us.size(), true, water_pass_fresh(pass, P),
          [&](WaterPassData& local) {
            return WaterSink<HostOps>{local.ptrs(), pass.hist_off.data(), HostOps::lists(local.lists)};
          },
          [&](std::uint64_t u, const WaterSink<HostOps>& sink) { water_visit(view, u, get, sink); },
          [&](WaterPassData& into, const WaterPassData& from) { water_merge(pass, into, from); }));
    }
    const WaterFill b = run(us, P, C, &F, opt);
    EXPECT_EQ(solver.passes(), b.passes);
    for (int p = 0; p < P; ++p)
      for (double WaterLevel::*m :
           {&WaterLevel::lambda, &WaterLevel::lambda_floor, &WaterLevel::demand, &WaterLevel::demand_floor})
        EXPECT_TRUE(test::same_double(solver.levels()[p].*m, b.levels[p].*m)) << "provider " << p;
  }
}

}  // namespace
}  // namespace cutoff
