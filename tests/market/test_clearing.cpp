// The firms' clearing (core/market/clearing.hpp, docs/model.md §2.6(c), §10) against an
// independent brute-force oracle: every breakpoint sorted, D evaluated directly
// in long double on each segment, the rules applied literally.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/market/clearing.hpp"
#include "market/solver_check.hpp"

namespace cutoff {
namespace {

using LD = long double;
constexpr double kInf = std::numeric_limits<double>::infinity();

struct Agent {
  int p;  // provider, or −1
  FirmBid b;
};

struct Case {
  std::vector<ProviderSupply> supply;
  std::vector<Agent> agents;
};

// ---------------------------------------------------------------------------
// The oracle
// ---------------------------------------------------------------------------

LD ox(const FirmBid& b, LD pi) {
  if (!(b.pi_out > 0.0) || pi > b.pi_out) return 0;
  const LD bp = static_cast<LD>(b.money) / b.need;
  return pi <= bp ? static_cast<LD>(b.need) : b.money / pi;
}

LD oD(const std::vector<FirmBid>& s, LD pi) {
  LD d = 0;
  for (const auto& b : s) d += b.w * ox(b, pi);
  return d;
}

struct OSol {
  LD price;
  bool jump;
};

/// inf{π ≥ p_min : D(π) ≤ K} by a sweep over every breakpoint.
OSol oracle_price(const std::vector<FirmBid>& s, LD K, LD p_min) {
  if (oD(s, p_min) <= K) return {p_min, false};
  std::vector<LD> q{p_min};
  for (const auto& b : s) {
    if (b.pi_out > p_min) q.push_back(b.pi_out);
    const LD bp = static_cast<LD>(b.money) / b.need;
    if (bp > p_min && bp < b.pi_out) q.push_back(bp);
  }
  std::sort(q.begin(), q.end());
  q.erase(std::unique(q.begin(), q.end()), q.end());
  for (std::size_t j = 0; j < q.size(); ++j) {
    // D(q_j) > K here. On (q_j, q_{j+1}]: D = A + M/π.
    LD A = 0, M = 0;
    if (j + 1 < q.size()) {
      const LD t = q[j + 1];
      for (const auto& b : s) {
        if (!(b.pi_out >= t)) continue;
        const LD bp = static_cast<LD>(b.money) / b.need;
        if (bp >= t)
          A += static_cast<LD>(b.w) * b.need;
        else
          M += static_cast<LD>(b.w) * b.money;
      }
    }
    if (A + M / q[j] <= K) return {q[j], true};
    if (j + 1 < q.size() && A + M / q[j + 1] <= K) return {M / (K - A), false};
  }
  ADD_FAILURE() << "oracle found no price";
  return {p_min, false};
}

struct OGroup {
  LD price = 0;
  std::vector<LD> alloc;  // per member
  LD sold = 0;
  int mode = 0;  // 0 all, 1 marginal, 2 class cap
  bool capped = false;
  bool binding = false;  // D(p_min) > K
  LD unsold = 0;         // pro-rata shares zeroed by min_alloc
  LD K = 0;
};

/// Rules 1–3 on one set of bids (with π_floor the price below which they cannot go: rule 4).
OGroup oracle_group(const std::vector<FirmBid>& s, LD K, LD p_min, LD p_max, LD floor_price) {
  OGroup g;
  g.K = K;
  g.alloc.assign(s.size(), 0);
  const OSol sol = oracle_price(s, K, p_min);
  g.binding = oD(s, p_min) > K;
  if (sol.price > p_max) {
    g.price = p_max;
    g.mode = 2;
    g.capped = true;
    LD left = K;
    for (int c = 0; c < 3; ++c) {
      LD dc = 0;
      for (const auto& b : s)
        if (std::min<int>(b.cls, 2) == c) dc += b.w * ox(b, p_max);
      const LD r = dc <= left ? 1 : (dc > 0 ? left / dc : 0);
      for (std::size_t i = 0; i < s.size(); ++i) {
        if (std::min<int>(s[i].cls, 2) != c) continue;
        const LD x = ox(s[i], p_max);
        LD a = x * r;
        if (r < 1 && a < s[i].min_alloc) {
          g.unsold += s[i].w * a;
          a = 0;
        }
        g.alloc[i] = a;
      }
      left = dc <= left ? left - dc : 0;
    }
  } else if (sol.price < floor_price) {
    g.price = floor_price;
    for (std::size_t i = 0; i < s.size(); ++i) g.alloc[i] = ox(s[i], floor_price);
  } else if (sol.jump) {
    g.price = sol.price;
    g.mode = 1;
    LD dn = 0, dm = 0;
    for (const auto& b : s) {
      if (b.pi_out > sol.price)
        dn += b.w * ox(b, sol.price);
      else if (b.pi_out == sol.price)
        dm += b.w * ox(b, sol.price);
    }
    const LD r = (K - dn) / dm;
    for (std::size_t i = 0; i < s.size(); ++i) {
      const LD x = ox(s[i], sol.price);
      if (s[i].pi_out != sol.price) {
        g.alloc[i] = x;
      } else {
        const LD a = x * r;
        g.alloc[i] = a < s[i].min_alloc ? 0 : a;
        if (a < s[i].min_alloc) g.unsold += s[i].w * a;
      }
    }
  } else {
    g.price = sol.price;
    for (std::size_t i = 0; i < s.size(); ++i) g.alloc[i] = ox(s[i], sol.price);
  }
  for (std::size_t i = 0; i < s.size(); ++i) g.sold += s[i].w * g.alloc[i];
  return g;
}

struct OProvider {
  OGroup home, rest;
  std::vector<int> home_idx, rest_idx;  // agent indices
};

std::vector<OProvider> oracle(const Case& cs) {
  const int P = static_cast<int>(cs.supply.size());
  std::vector<OProvider> out(P);
  for (int p = 0; p < P; ++p) {
    const ProviderSupply& sp = cs.supply[p];
    std::vector<FirmBid> home, rest;
    OProvider& o = out[p];
    for (std::size_t i = 0; i < cs.agents.size(); ++i) {
      const Agent& a = cs.agents[i];
      if (a.p != p || !(a.b.pi_out > 0.0)) continue;
      if (sp.first_resort && a.b.home) {
        home.push_back(a.b);
        o.home_idx.push_back(static_cast<int>(i));
      } else {
        rest.push_back(a.b);
        o.rest_idx.push_back(static_cast<int>(i));
      }
    }
    if (sp.first_resort) {
      o.home = oracle_group(home, sp.capacity, sp.p_min, sp.p_max, sp.p_min);
      // What the home firms leave: by the rule, all of K but the zeroed shares when they bind.
      const LD left = o.home.binding ? o.home.unsold : std::max<LD>(0, sp.capacity - o.home.sold);
      o.rest = oracle_group(rest, left, sp.p_min, sp.p_max, o.home.price);
    } else {
      o.rest = oracle_group(rest, sp.capacity, sp.p_min, sp.p_max, sp.p_min);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Running the engine and checking
// ---------------------------------------------------------------------------

std::vector<ProviderClearing> run(const Case& cs, const ClearingOptions& opt = {}, int* passes = nullptr) {
  std::atomic<std::uint64_t> calls{0};
  auto res = clear_firms(
      cs.agents.size(), cs.supply,
      [&](std::uint64_t i, FirmBid* out) {
        calls.fetch_add(1, std::memory_order_relaxed);
        *out = cs.agents[i].b;
        return cs.agents[i].p;
      },
      opt);
  if (passes) *passes = cs.agents.empty() ? 0 : static_cast<int>(calls.load() / cs.agents.size());
  return res;
}

struct Seen {
  int floor = 0, marginal = 0, cont = 0, cap = 0, zeroed = 0, fr = 0, fr_rest_at_home = 0;
};

bool close(LD a, LD b, LD rel, LD abs_tol = 0) { return std::fabs(a - b) <= rel * std::fabs(b) + abs_tol; }

/// Compares the engine with the oracle and checks every invariant.
void check(const Case& cs, const ClearingOptions& opt, const std::string& what, Seen* seen = nullptr) {
  SCOPED_TRACE(what);
  const auto res = run(cs, opt);
  const auto orc = oracle(cs);
  const int P = static_cast<int>(cs.supply.size());
  ASSERT_EQ(res.size(), cs.supply.size());
  std::vector<LD> sold(P, 0), sold_home(P, 0);
  std::vector<LD> rationed(P * 3, 0);
  for (std::size_t i = 0; i < cs.agents.size(); ++i) {
    const Agent& a = cs.agents[i];
    if (a.p < 0 || !(a.b.pi_out > 0.0)) continue;
    const ProviderClearing& pc = res[a.p];
    const double x = allocate(a.b, pc);
    const double price = paid_price(a.b, pc);
    EXPECT_GE(x, 0.0) << "agent " << i;
    EXPECT_LE(price * x, a.b.money) << "agent " << i << " over budget";
    const bool home = pc.first_resort && a.b.home;
    (home ? sold_home : sold)[a.p] += a.b.w * static_cast<LD>(x);
    rationed[a.p * 3 + std::min<int>(a.b.cls, 2)] += a.b.w * static_cast<LD>(bid_rationed(a.b, pc));
  }
  for (int p = 0; p < P; ++p) {
    SCOPED_TRACE("provider " + std::to_string(p));
    const ProviderSupply& sp = cs.supply[p];
    const ProviderClearing& pc = res[p];
    const OProvider& o = orc[p];
    // Prices.
    EXPECT_GE(pc.price, sp.p_min);
    EXPECT_GE(pc.price_home, sp.p_min);
    EXPECT_TRUE(close(pc.price, o.rest.price, 1e-9)) << pc.price << " vs oracle " << (double)o.rest.price;
    if (sp.first_resort) {
      EXPECT_TRUE(close(pc.price_home, o.home.price, 1e-9)) << pc.price_home << " vs oracle " << (double)o.home.price;
      EXPECT_GE(pc.price, pc.price_home);
    }
    // Allocations.
    auto cmp_group = [&](const OGroup& og, const std::vector<int>& idx) {
      for (std::size_t k = 0; k < idx.size(); ++k) {
        const FirmBid& b = cs.agents[idx[k]].b;
        const double x = allocate(b, pc);
        EXPECT_TRUE(close(x, og.alloc[k], 1e-9, 1e-12 * b.need))
            << "agent " << idx[k] << ": " << x << " vs oracle " << (double)og.alloc[k] << " (pi_out " << b.pi_out
            << ", price " << paid_price(b, pc) << ")";
      }
    };
    cmp_group(o.rest, o.rest_idx);
    if (sp.first_resort) cmp_group(o.home, o.home_idx);
    // Capacity, the reported sums.
    const LD total = sold[p] + sold_home[p];
    EXPECT_LE(total, sp.capacity * (1 + 1e-9L) + 1e-300L) << "oversold";
    EXPECT_TRUE(close(pc.sold, total, 1e-12, 1e-15)) << pc.sold << " vs " << (double)total;
    EXPECT_TRUE(close(pc.rest.sold, sold[p], 1e-12, 1e-15));
    if (sp.first_resort) {
      EXPECT_TRUE(close(pc.home.sold, sold_home[p], 1e-12, 1e-15));
    }
    for (int c = 0; c < 3; ++c) {
      const double r = pc.rest.rationed[c] + (sp.first_resort ? pc.home.rationed[c] : 0.0);
      EXPECT_TRUE(close(r, rationed[p * 3 + c], 1e-9, 1e-12 * (1 + pc.rest.demand_pmin[c])))
          << "class " << c << ": " << r << " vs " << (double)rationed[p * 3 + c];
    }
    EXPECT_TRUE(close(pc.revenue,
                      pc.price * (LD)pc.rest.sold + (sp.first_resort ? pc.price_home * (LD)pc.home.sold : 0), 1e-12,
                      1e-12));
    // Minimality: no lower price (≥ the group's floor) clears.
    auto minimal = [&](const ClearingGroup& g, const std::vector<int>& idx, double floor_price) {
      if (g.mode == kClearClassCap || !(g.price > floor_price)) return;
      std::vector<FirmBid> s;
      for (int i : idx) s.push_back(cs.agents[i].b);
      const LD below = static_cast<LD>(g.price) * (1 - 1e-9L);
      EXPECT_GT(oD(s, std::max<LD>(below, floor_price)), static_cast<LD>(g.capacity))
          << "a lower price clears: " << g.price;
    };
    minimal(pc.rest, o.rest_idx, sp.first_resort ? pc.price_home : sp.p_min);
    if (sp.first_resort) minimal(pc.home, o.home_idx, sp.p_min);
    // Diagnostics consistent with the allocations.
    auto counts = [&](const ClearingGroup& g, const std::vector<int>& idx) {
      std::uint64_t n_rat = 0, n_zero = 0, n_bid = 0;
      for (int i : idx) {
        const FirmBid& b = cs.agents[i].b;
        const double a = allocate(b, pc), xg = bid_demand(b, g.price);
        n_bid += bid_demand(b, sp.p_min) > 0.0;
        n_rat += a < xg;
        n_zero += a < xg && a == 0.0;
      }
      EXPECT_EQ(g.n_bidders, n_bid);
      EXPECT_EQ(g.n_rationed, n_rat);
      EXPECT_EQ(g.n_zeroed, n_zero);
    };
    counts(pc.rest, o.rest_idx);
    if (sp.first_resort) counts(pc.home, o.home_idx);
    if (seen) {
      for (const ClearingGroup* g : {&pc.rest, sp.first_resort ? &pc.home : nullptr}) {
        if (!g) continue;
        seen->floor += g->mode == kClearAll && g->price == sp.p_min;
        seen->cont += g->mode == kClearAll && g->price > sp.p_min;
        seen->marginal += g->mode == kClearMarginal;
        seen->cap += g->mode == kClearClassCap;
        seen->zeroed += g->n_zeroed > 0;
      }
      seen->fr += sp.first_resort;
      seen->fr_rest_at_home += sp.first_resort && pc.price == pc.price_home && o.rest_idx.size() > 0;
    }
  }
}

// ---------------------------------------------------------------------------
// Random populations
// ---------------------------------------------------------------------------

struct GenOpts {
  double p_no_bid = 0.05;
  int ties = 0;                                    ///< > 0: pi_out drawn from this many values (one of them p_min)
  double cap_scale_lo = -2.0, cap_scale_hi = 0.3;  ///< K = D(p_min)·10^U(lo, hi)
  bool zero_capacity = false, huge_capacity = false;
  double p_cap = 0.3;         ///< probability of a finite p_max
  double p_fr = 0.3;          ///< probability of first-resort
  double min_alloc_lo = 0.0;  ///< min_alloc = U(lo, 1)·min(need, money/pi_out)
  int max_bids = 200, max_providers = 4;
};

Case random_case(std::uint64_t seed, const GenOpts& g) {
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + 12345);
  std::uniform_real_distribution<double> U(0.0, 1.0);
  auto pow10u = [&](double lo, double hi) { return std::pow(10.0, lo + (hi - lo) * U(rng)); };
  Case cs;
  const int P = 1 + static_cast<int>(rng() % g.max_providers);
  const int n = 1 + static_cast<int>(rng() % g.max_bids);
  cs.supply.resize(P);
  std::vector<std::vector<double>> tie_values(P);
  for (int p = 0; p < P; ++p) {
    cs.supply[p].p_min = pow10u(2.5, 3.5);
    cs.supply[p].p_max = U(rng) < g.p_cap ? cs.supply[p].p_min * pow10u(0.0, 1.5) : kInf;
    cs.supply[p].first_resort = U(rng) < g.p_fr;
    tie_values[p].push_back(cs.supply[p].p_min);
    for (int k = 1; k < g.ties; ++k) tie_values[p].push_back(cs.supply[p].p_min * pow10u(0.0, 1.5));
  }
  for (int i = 0; i < n; ++i) {
    Agent a;
    a.p = U(rng) < g.p_no_bid ? -1 : static_cast<int>(rng() % P);
    const int p = a.p < 0 ? 0 : a.p;
    FirmBid& b = a.b;
    b.w = std::floor(pow10u(0.0, 3.0));
    b.need = pow10u(-2.0, 3.0);
    b.money = b.need * cs.supply[p].p_min * pow10u(-1.0, 2.0);
    if (g.ties > 0)
      b.pi_out = tie_values[p][rng() % tie_values[p].size()];
    else
      b.pi_out = cs.supply[p].p_min * pow10u(-0.5, 2.0);
    if (U(rng) < 0.03) b.pi_out = U(rng) < 0.5 ? 0.0 : -1.0;  // no bid
    if (U(rng) < 0.05) b.pi_out = cs.supply[p].p_min;         // exactly at the floor
    const double cap_x = std::min(b.need, b.pi_out > 0 ? b.money / b.pi_out : b.need);
    b.min_alloc = U(rng) < 0.2 ? 0.0 : (g.min_alloc_lo + (1 - g.min_alloc_lo) * U(rng)) * cap_x * 0.999;
    b.cls = static_cast<std::uint8_t>(rng() % 3);
    b.home = U(rng) < 0.5;
    cs.agents.push_back(a);
  }
  for (int p = 0; p < P; ++p) {
    std::vector<FirmBid> s;
    for (const Agent& a : cs.agents)
      if (a.p == p && a.b.pi_out > 0) s.push_back(a.b);
    const double d0 = static_cast<double>(oD(s, cs.supply[p].p_min));
    double K = d0 * pow10u(g.cap_scale_lo, g.cap_scale_hi);
    if (g.zero_capacity) K = 0.0;
    if (g.huge_capacity) K = d0 * 1.5 + 1.0;
    cs.supply[p].capacity = K;
  }
  return cs;
}

const ClearingOptions kGatherAlways{}, kRefineAlways{0}, kRefineSmall{3};

void sweep_seeds(const GenOpts& g, int seeds, std::uint64_t base, Seen* seen) {
  for (int s = 0; s < seeds; ++s) {
    const Case cs = random_case(base + s, g);
    check(cs, kGatherAlways, "seed " + std::to_string(base + s) + " gather", seen);
    if (s % 4 == 0) check(cs, kRefineAlways, "seed " + std::to_string(base + s) + " refine", nullptr);
    if (s % 4 == 1) check(cs, kRefineSmall, "seed " + std::to_string(base + s) + " refine/gather 3", nullptr);
    if (::testing::Test::HasFailure()) return;
  }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

TEST(Clearing, HandWorkedExample) {
  // p_min 1. A: need 6, money 60, out 20; B: need 6, money 12, out 5; C: need 4, money 8, out 3.
  // D(π) = 16 at 1; on (2, 3]: 6 + 20/π; on (3, 5]: 6 + 12/π.
  auto make = [](double K) {
    Case cs;
    cs.supply = {{K, 1.0, kInf, false}};
    cs.agents = {
        {0, {1, 6, 60, 20, 0.5, 0, false}}, {0, {1, 6, 12, 5, 0.5, 0, false}}, {0, {1, 4, 8, 3, 0.5, 0, false}}};
    return cs;
  };
  {  // K = 13: continuous on (2, 3], π = 20/7.
    const Case cs = make(13);
    const auto r = run(cs);
    EXPECT_NEAR(r[0].price, 20.0 / 7.0, 1e-15);
    EXPECT_EQ(r[0].rest.mode, kClearAll);
    EXPECT_NEAR(allocate(cs.agents[1].b, r[0]), 4.2, 1e-14);
    EXPECT_NEAR(allocate(cs.agents[2].b, r[0]), 2.8, 1e-14);
    EXPECT_NEAR(r[0].sold, 13.0, 1e-12);
  }
  {  // K = 11: D(3) = 12.67 > 11 ≥ D(3+) = 10: jump at 3, C gets (11 − 10)/(8/3) of 8/3 = 1.
    const Case cs = make(11);
    const auto r = run(cs);
    EXPECT_EQ(r[0].price, 3.0);
    EXPECT_EQ(r[0].rest.mode, kClearMarginal);
    EXPECT_DOUBLE_EQ(r[0].rest.ratio, 0.375);
    EXPECT_DOUBLE_EQ(allocate(cs.agents[0].b, r[0]), 6.0);
    EXPECT_DOUBLE_EQ(allocate(cs.agents[1].b, r[0]), 4.0);
    EXPECT_DOUBLE_EQ(allocate(cs.agents[2].b, r[0]), 1.0);
    EXPECT_EQ(r[0].rest.n_rationed, 1u);
  }
  {  // K = 10 exactly D(3+): the inf is still 3 (exact comparison), C is rationed to 0.
    const Case cs = make(10);
    const auto r = run(cs);
    EXPECT_EQ(r[0].price, 3.0);
    EXPECT_EQ(allocate(cs.agents[2].b, r[0]), 0.0);
    EXPECT_EQ(r[0].rest.n_zeroed, 1u);
    EXPECT_DOUBLE_EQ(r[0].sold, 10.0);
  }
  {  // K = 16: everything fits at p_min.
    const Case cs = make(16);
    const auto r = run(cs);
    EXPECT_EQ(r[0].price, 1.0);
    EXPECT_DOUBLE_EQ(r[0].sold, 16.0);
    EXPECT_EQ(r[0].rest.n_rationed, 0u);
  }
  {  // Cap 2.5 < 20/7 with K = 13: classes at 2.5 (demands 6, 4.8, 3.2): A, B full, C gets 13 − 10.8.
    Case cs = make(13);
    cs.supply[0].p_max = 2.5;
    cs.agents[1].b.cls = 1;
    cs.agents[2].b.cls = 2;
    const auto r = run(cs);
    EXPECT_EQ(r[0].price, 2.5);
    EXPECT_EQ(r[0].rest.mode, kClearClassCap);
    EXPECT_EQ(r[0].rest.cut_class, 2);
    EXPECT_NEAR(allocate(cs.agents[1].b, r[0]), 4.8, 1e-14);
    EXPECT_NEAR(allocate(cs.agents[2].b, r[0]), 2.2, 1e-14);
  }
}

TEST(Clearing, MatchesOracleOnRandomPopulations) {
  Seen seen;
  sweep_seeds(GenOpts{}, 400, 1000, &seen);
  EXPECT_GT(seen.cont, 50);
  EXPECT_GT(seen.floor, 10);
  EXPECT_GT(seen.cap, 10);
  EXPECT_GT(seen.fr, 50);
}

TEST(Clearing, ZeroCapacity) {
  GenOpts g;
  g.zero_capacity = true;
  Seen seen;
  sweep_seeds(g, 150, 20000, &seen);
  // Zero capacity: nothing sold anywhere.
  for (int s = 0; s < 20; ++s) {
    const Case cs = random_case(20000 + s, g);
    for (const auto& pc : run(cs)) EXPECT_EQ(pc.sold, 0.0);
  }
}

TEST(Clearing, EverythingFitsAtTheFloor) {
  GenOpts g;
  g.huge_capacity = true;
  g.p_fr = 0.5;
  for (int s = 0; s < 150; ++s) {
    const Case cs = random_case(30000 + s, g);
    check(cs, kGatherAlways, "seed " + std::to_string(30000 + s));
    const auto r = run(cs);
    for (std::size_t p = 0; p < cs.supply.size(); ++p) {
      EXPECT_EQ(r[p].price, cs.supply[p].p_min);
      EXPECT_EQ(r[p].price_home, cs.supply[p].p_min);
      EXPECT_EQ(r[p].rest.n_rationed + r[p].home.n_rationed, 0u);
    }
    if (HasFailure()) return;
  }
}

TEST(Clearing, TiesOfDropOutPricesAreRationedProRata) {
  GenOpts g;
  g.ties = 3;
  g.p_cap = 0.0;
  g.p_fr = 0.3;
  Seen seen;
  sweep_seeds(g, 400, 40000, &seen);
  EXPECT_GT(seen.marginal, 100);
  EXPECT_GT(seen.fr_rest_at_home, 5);
}

TEST(Clearing, RationedBelowMinAllocGetZero) {
  GenOpts g;
  g.ties = 2;
  g.min_alloc_lo = 0.6;
  g.p_cap = 0.2;
  Seen seen;
  sweep_seeds(g, 300, 50000, &seen);
  EXPECT_GT(seen.zeroed, 50);
}

TEST(Clearing, PriceCapServesClassesInOrder) {
  GenOpts g;
  g.p_cap = 1.0;
  g.cap_scale_lo = -1.5;
  g.cap_scale_hi = -0.1;
  Seen seen;
  sweep_seeds(g, 300, 60000, &seen);
  EXPECT_GT(seen.cap, 200);
  // Directly: within a capped provider a lower class is never rationed more than a higher one.
  for (int s = 0; s < 100; ++s) {
    const Case cs = random_case(60000 + s, g);
    const auto r = run(cs);
    for (const Agent& a : cs.agents) {
      if (a.p < 0 || !(a.b.pi_out > 0)) continue;
      const ClearingGroup& grp = clearing_group(a.b, r[a.p]);
      if (grp.mode != kClearClassCap) continue;
      const double x = bid_demand(a.b, grp.price), al = allocate(a.b, r[a.p]);
      if (a.b.cls < grp.cut_class) {
        EXPECT_EQ(al, x);
      } else if (a.b.cls > grp.cut_class) {
        EXPECT_EQ(al, 0.0);
      }
    }
  }
}

TEST(Clearing, FirstResortHomeClearsFirst) {
  GenOpts g;
  g.p_fr = 1.0;
  g.p_cap = 0.2;
  Seen seen;
  sweep_seeds(g, 300, 70000, &seen);
  GenOpts t = g;
  t.ties = 3;
  sweep_seeds(t, 200, 71000, &seen);
  EXPECT_GT(seen.fr_rest_at_home, 20);
}

TEST(Clearing, PlanLayerBidsAsOneMoreBidLeftOutOfTheStatistics) {
  // Rule 5 (v5, plan_split): a provider's plan-layer bid clears exactly as the same
  // bid appended as one more firm would (which the oracle tests above check), except
  // that sold and every statistic are the firms' alone.
  int won = 0, lost = 0;
  for (std::uint64_t seed = 0; seed < 150; ++seed) {
    GenOpts g;
    g.ties = seed % 3 == 0 ? 3 : 0;
    Case with = random_case(90000 + seed, g);
    Case appended = with;
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> U(0.0, 1.0);
    for (std::size_t p = 0; p < with.supply.size(); ++p) {
      ProviderSupply& s = with.supply[p];
      if (U(rng) < 0.2) continue;  // no plan bid
      s.plan_need = s.capacity * (0.05 + 1.5 * U(rng)) + 1e-3;
      s.plan_value = s.p_min * std::pow(10.0, -0.5 + 2.0 * U(rng));
      if (U(rng) < 0.1) s.plan_value = s.p_min;
      appended.agents.push_back(Agent{static_cast<int>(p), plan_layer_bid(s)});
    }
    const std::string where = "seed " + std::to_string(seed);
    for (const ClearingOptions& opt : {kGatherAlways, kRefineAlways}) {
      const auto a = run(with, opt);
      const auto b = run(appended, opt);
      for (std::size_t p = 0; p < with.supply.size(); ++p) {
        SCOPED_TRACE(where + " provider " + std::to_string(p));
        EXPECT_EQ(a[p].price, b[p].price);
        EXPECT_EQ(a[p].price_home, b[p].price_home);
        EXPECT_EQ(a[p].rest.mode, b[p].rest.mode);
        EXPECT_EQ(a[p].rest.ratio, b[p].rest.ratio);
        EXPECT_EQ(a[p].rest.cut_class, b[p].rest.cut_class);
        // What the plan bid won is what the firms were not sold.
        double plan_alloc = 0;
        bool plan_bid = false;
        for (std::size_t i = with.agents.size(); i < appended.agents.size(); ++i)
          if (appended.agents[i].p == static_cast<int>(p)) {
            plan_alloc = allocate(appended.agents[i].b, b[p]);
            plan_bid = bid_demand(appended.agents[i].b, with.supply[p].p_min) > 0;
          }
        EXPECT_NEAR(a[p].sold, b[p].sold - plan_alloc, 1e-12 * (b[p].sold + 1));
        EXPECT_EQ(a[p].rest.n_bidders + (plan_bid ? 1u : 0u), b[p].rest.n_bidders);
        (plan_alloc > 0 ? won : lost) += 1;
      }
      for (std::size_t i = 0; i < with.agents.size(); ++i) {
        const Agent& ag = with.agents[i];
        if (ag.p < 0) continue;
        ASSERT_EQ(allocate(ag.b, a[ag.p]), allocate(ag.b, b[ag.p])) << where << " firm " << i;
      }
    }
  }
  EXPECT_GT(won, 50);  // both outcomes are exercised
  EXPECT_GT(lost, 50);
}

TEST(Clearing, RejectsABadPlanLayerBid) {
  for (const auto& [need, value] : {std::pair{-1.0, 1.0}, {1.0, -1.0}, {kInf, 1.0}, {1.0, kInf}, {std::nan(""), 1.0}}) {
    Case cs;
    cs.supply = {{10, 1.0, kInf, false, need, value}};
    cs.agents = {{0, {1, 6, 60, 20, 0.5, 0, false}}};
    EXPECT_THROW(run(cs), std::invalid_argument) << need << " " << value;
  }
}

TEST(Clearing, ManyEqualKeysRefineToOneKey) {
  // 100k bids with three distinct drop-out prices: the crossing bin holds 10^4+
  // keys, so the driver refines to a single key and collects its sums.
  Case cs;
  const double p_min = 1000.0;
  cs.supply = {{0.0, p_min, kInf, false}, {0.0, p_min, kInf, true}};
  std::mt19937_64 rng(7);
  const double outs[3] = {1500.0, 2000.0, 2000.0 * (1 + 1e-15)};
  for (int i = 0; i < 100000; ++i) {
    Agent a;
    a.p = i % 2;
    a.b = FirmBid{1.0 + (rng() % 7), 1.0 + (rng() % 3), 0.0, outs[rng() % 3], 0.0, static_cast<std::uint8_t>(rng() % 3),
                  (rng() % 2) == 0};
    a.b.money = a.b.need * 5000.0;  // never budget-bound below 5000
    cs.agents.push_back(a);
  }
  for (int p = 0; p < 2; ++p) {
    std::vector<FirmBid> s;
    for (const Agent& a : cs.agents)
      if (a.p == p) s.push_back(a.b);
    cs.supply[p].capacity = static_cast<double>(oD(s, 2000.0)) * 0.8;
  }
  // Provider 0: D(2000) = 2/3 of the need > K = 0.53 ≥ D(2000+) = 1/3: a jump at 2000, r = 0.6.
  const ClearingOptions refine{1000};
  int passes = 0;
  const auto r = run(cs, refine, &passes);
  EXPECT_GE(passes, 5);                               // coarse + refinements + key + stats
  const auto r0 = run(cs, ClearingOptions{1000000});  // gather everything: the same answer
  for (int p = 0; p < 2; ++p) {
    EXPECT_EQ(r[p].price, r0[p].price);
    EXPECT_EQ(r[p].rest.ratio, r0[p].rest.ratio);
    EXPECT_EQ(r[p].sold, r0[p].sold);
  }
  EXPECT_EQ(r[0].rest.mode, kClearMarginal);
  EXPECT_EQ(r[0].price, 2000.0);
  EXPECT_NEAR(r[0].rest.ratio, 0.6, 0.02);
  check(cs, refine, "equal keys");
}

TEST(Clearing, KeysAboveTheCoarseRange) {
  // Drop-out prices beyond p_min·2^64 still clear exactly (the "above" region).
  for (int s = 0; s < 50; ++s) {
    GenOpts g;
    Case cs = random_case(80000 + s, g);
    // A floor so low that every key lies above p_min·2^64.
    for (auto& sp : cs.supply) sp.p_min *= 1e-22;
    check(cs, kGatherAlways, "seed " + std::to_string(80000 + s));
    check(cs, kRefineAlways, "seed " + std::to_string(80000 + s) + " refine");
    if (HasFailure()) return;
  }
}

std::vector<std::uint64_t> fingerprint(const std::vector<ProviderClearing>& r) {
  std::vector<std::uint64_t> f;
  auto d = [&](double x) {
    std::uint64_t u;
    std::memcpy(&u, &x, 8);
    f.push_back(u);
  };
  auto grp = [&](const ClearingGroup& g) {
    d(g.price), d(g.ratio), f.push_back(g.mode), f.push_back(g.cut_class), d(g.capacity), d(g.sold);
    for (int c = 0; c < 3; ++c) d(g.demand_pmin[c]), d(g.rationed[c]);
    f.push_back(g.n_bidders), f.push_back(g.n_rationed), f.push_back(g.n_zeroed), d(g.w_rationed), d(g.w_zeroed);
  };
  for (const auto& pc : r) {
    d(pc.price), d(pc.price_home), d(pc.p_min), f.push_back(pc.first_resort), d(pc.capacity), d(pc.sold), d(pc.revenue);
    grp(pc.home), grp(pc.rest);
  }
  return f;
}

/// 1e5 firms on four providers that ration, with many tied drop-out prices.
Case rationing_case() {
  Case cs;
  cs.supply = {{0, 1863.0, kInf, false}, {0, 1863.0, 2000.0, false}, {0, 2000.0, kInf, true}, {0, 1500.0, kInf, false}};
  std::mt19937_64 rng(2024);
  std::uniform_real_distribution<double> U(0.0, 1.0);
  cs.agents.clear();
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    Agent a;
    a.p = static_cast<int>(rng() % 5) - 1;
    const double pm = a.p >= 0 ? cs.supply[a.p].p_min : 1863.0;
    FirmBid& b = a.b;
    b.w = std::floor(std::pow(10.0, 3 * U(rng)));
    b.need = std::pow(10.0, -3 + 6 * U(rng));
    b.money = b.need * pm * std::pow(10.0, -1 + 3 * U(rng));
    b.pi_out = (i % 10 == 0) ? pm * 2 : pm * std::pow(10.0, -0.5 + 2.5 * U(rng));  // many ties
    b.min_alloc = 0.5 * std::min(b.need, b.money / b.pi_out);
    b.cls = static_cast<std::uint8_t>(rng() % 3);
    b.home = (rng() % 3) == 0;
    cs.agents.push_back(a);
  }
  for (int p = 0; p < 4; ++p) {
    std::vector<FirmBid> s;
    for (const Agent& a : cs.agents)
      if (a.p == p) s.push_back(a.b);
    cs.supply[p].capacity = static_cast<double>(oD(s, cs.supply[p].p_min)) * (0.1 + 0.2 * p);
  }
  return cs;
}

TEST(Clearing, SameBitsAtOneTwoThreeThreads) {
  const Case cs = rationing_case();
  int passes = 0;
  run(cs, {}, &passes);
  EXPECT_LE(passes, 5);
  std::vector<std::vector<std::uint64_t>> prints;
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    prints.push_back(fingerprint(run(cs)));
    prints.push_back(fingerprint(run(cs, kRefineAlways)));
  }
  omp_set_num_threads(saved);
  for (std::size_t k = 2; k < prints.size(); ++k) EXPECT_EQ(prints[k], prints[k % 2]) << "run " << k;
  // Sanity: this market does ration, and the allocation pass is bitwise repeatable too.
  const auto r = run(cs);
  EXPECT_GT(r[0].price, 1863.0);
  EXPECT_EQ(r[1].rest.mode, kClearClassCap);
}

// The device's side of the protocol, emulated: the same passes made in scrambled
// chunks and merge orders (tests/market/solver_check.hpp) give the same clearing.
TEST(Clearing, AnyGroupingAndMergeOrderGiveTheSameBits) {
  using namespace clearing_detail;
  const Case cs = rationing_case();
  const std::uint64_t n = cs.agents.size();
  for (const ClearingOptions& opt : {ClearingOptions{}, kRefineAlways, kRefineSmall}) {
    ClearingSolver solver(n, cs.supply, opt);
    ClearPass pass;
    while (solver.next(&pass)) {
      const PassView view = pass.view();
      solver.feed(test::scrambled_pass(
          n, true, clear_pass_fresh(pass),
          [&](ClearPassData& local) {
            return ClearSink<HostOps>{local.ptrs(), pass.hist_off.data(), HostOps::lists(local.lists)};
          },
          [&](std::uint64_t i, const ClearSink<HostOps>& sink) {
            clearing_visit(view, i, cs.agents[i].p, cs.agents[i].b, sink);
          },
          clear_merge));
    }
    EXPECT_EQ(fingerprint(solver.results()), fingerprint(run(cs, opt))) << "gather_limit " << opt.gather_limit;
    if (HasFailure()) return;
  }
}

TEST(Clearing, RejectsInvalidInput) {
  Case cs;
  cs.supply = {{10.0, 100.0, kInf, false}};
  cs.agents = {{0, {1, 1, 1000, 500, 0, 0, false}}, {0, {1, std::nan(""), 1000, 500, 0, 0, false}}};
  EXPECT_THROW(run(cs), std::invalid_argument);
  cs.agents[1] = {1, {1, 1, 1000, 500, 0, 0, false}};  // provider out of range
  EXPECT_THROW(run(cs), std::invalid_argument);
  cs.agents[1] = {0, {1e30, 1e30, 1e40, 500, 0, 0, false}};  // w·need beyond the fixed-point range
  EXPECT_THROW(run(cs), std::overflow_error);
  cs.agents.resize(1);
  cs.supply[0].p_min = 0.0;
  EXPECT_THROW(run(cs), std::invalid_argument);
  cs.supply[0] = {10.0, 100.0, 50.0, false};  // p_max < p_min
  EXPECT_THROW(run(cs), std::invalid_argument);
  cs.supply[0] = {-1.0, 100.0, kInf, false};
  EXPECT_THROW(run(cs), std::invalid_argument);
  // No bids at all, no providers: fine.
  cs.supply[0] = {10.0, 100.0, kInf, true};
  cs.agents.clear();
  const auto r = run(cs);
  EXPECT_EQ(r[0].price, 100.0);
  EXPECT_EQ(r[0].sold, 0.0);
  EXPECT_TRUE(run(Case{}).empty());
}

}  // namespace
}  // namespace cutoff
