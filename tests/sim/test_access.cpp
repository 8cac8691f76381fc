// Who is cut off, and why (docs/model.md v4 §2.5, §7, §2.0): the six statuses on a
// hand-built population where each must occur, their sums over a run against
// every country's real firms, the bid and the budget adaptation against §2.5's
// formulas on random firms, τ0/need0 as scenario constants, the tier-2 quota.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "agents/firm_kern.hpp"
#include "core/sim/exec.hpp"
#include "core/sim/simulation.hpp"
#include "support.hpp"

namespace cutoff {
namespace {

// One country (c = 0), one provider (p = 0) with one generation at GENERAL.
struct World {
  std::uint8_t provider[1] = {0};
  double K[1] = {2.0};
  std::uint8_t stage[1] = {kStageGeneral};
  double h[1] = {1e-3};
  double align[1] = {0.9};
  std::uint16_t deal[1] = {0};
  std::uint8_t zero8[1] = {0};
  double one[1] = {1.0};
  double tau[1] = {50.0};                       // Mtok per worker-month
  double w_small[kSizeBands] = {3.0, 0, 0, 0};  // (country 0, size band)
  FirmTickConsts k{};
  World() {
    k.firm_p_repick = 1.0;  // (v5) every firm re-chooses its generation, as before the switch
    k.gens = GenTableView{1, 1, table_of(provider), table_of(K), table_of(stage), table_of(h), table_of(align)};
    k.layout.w_small = table_of(w_small);
    k.deal_mask = table_of(deal);
    k.quota_provider = table_of(zero8);
    k.first_resort = table_of(zero8);
    k.zeta = table_of(one);
    k.tau = table_of(tau);
    k.a_kyc = 0.3;
    k.phi = 1, k.psi = 0.5, k.rho = 0.001, k.sigma_c = 3, k.wtp_months = 12;
    k.access_cost = 1000, k.q_min = 10, k.beta_W = 0.0005, k.beta_R = 0.001;
    k.b_adapt = 0.05, k.b_max = 30, k.b_floor = 0.01, k.b_up = 0.5;
  }
};

/// A firm of the world with the given employees, wealth, revenue and budget multiplier.
void set_firm(const FirmView& f, std::uint64_t i, double employees, double W, double revenue, double b, bool kyc,
              std::uint8_t generation = 0) {
  f.country[i] = 0;
  f.sector[i] = 0;
  f.generation[i] = generation;
  f.provider[i] = generation == kNone ? kNone : 0;
  f.flags[i] = static_cast<std::uint8_t>(firm_flag::kLarge | (kyc ? firm_flag::kKyc : 0));
  f.partners[i] = 0;
  f.band[i] = 0;
  f.employees[i] = static_cast<float>(employees);
  f.W[i] = W;
  f.revenue[i] = static_cast<float>(revenue);
  f.b[i] = static_cast<float>(b);
  // Every other field from known values: the passes read alloc, K and the scratch
  // (issue 42: FirmMarketSum read an unset alloc, so the quota test failed under MALLOC_PERTURB_).
  f.A[i] = 1.0f;
  f.lnA_AI[i] = 0.0f;
  f.alloc[i] = 0.0f;
  f.K[i] = 0.0f;
  f.ai_value[i] = 0.0;
  f.K_elig[i] = 0.0f;
  f.seats[i] = 0.0f;
  f.status[i] = kNoAccess;
}

TEST(Access, EachStatusOccursWhereItMust) {
  // One firm per status (two for no_value), against a clearing at π = $3,000 per
  // H100e-month that serves KYC-cleared firms in full and general firms pro rata (a
  // binding price cap). V(q'·h) = 12·0.001·3·revenue·φ·K = 0.072·revenue (§2.5).
  World w;
  HostArrays<Firms> a = test::filled<Firms>(8);
  const FirmView f = a.view();
  set_firm(f, 0, 100, 1e7, 1e6, 1, true, kNone);  // nothing eligible
  set_firm(f, 1, 100, 0, 1e5, 1, true);           // B = 100 < F_access = 1000
  set_firm(f, 2, 100, 1e9, 1e5, 1, true);         // rich, but AI worth little: F ≤ V, v = V/(q'·h) < π
  set_firm(f, 3, 100, 1e9, 1e6, 1, false);        // general class, served pro rata
  set_firm(f, 4, 100, 3e6, 1e6, 1, true);         // B − F = 1,500 + ... buys less than its need
  set_firm(f, 5, 100, 1e9, 1e6, 1, true);         // everything it needs
  set_firm(f, 6, 100, 1e9, 1e4, 1, true);         // B = 5e5 > F, but V = 720 < F: not worth it
  set_firm(f, 7, 100, 0, 1e4, 1, true);           // B = 10 < F and V = 720 < F: no_value first
  ProviderClearing pc{};
  pc.price = pc.price_home = 3000;
  pc.p_min = 1863;
  pc.rest.price = 3000;
  pc.rest.mode = kClearClassCap;
  pc.rest.cut_class = 2;  // general
  pc.rest.ratio = 0.5;
  const Table<ProviderClearing> cleared{&pc, 1};
  // Firm 4's need is 100·50 Mtok × 1e-3 = 5 H100e = $15,000 at π; its money is below that.
  FirmBid bid;
  ASSERT_EQ(firm_bid(4, w.k, f, &bid), 0);
  ASSERT_LT(bid.money, bid.need * 3000);
  ASSERT_GT(bid.money / 3000, w.k.q_min * w.h[0]);
  const FirmStatus want[8] = {kNoAccess, kNoBudget, kPricedOut, kRationed, kBudgetBound, kServed, kNoValue, kNoValue};
  for (std::uint64_t i = 0; i < 8; ++i) {
    firm_settle(i, w.k, cleared, f);
    EXPECT_EQ(f.status[i], want[i]) << "firm " << i;
  }
  EXPECT_EQ(f.alloc[0], 0.0f);
  EXPECT_GT(f.alloc[3], 0.0f);
  EXPECT_FLOAT_EQ(f.alloc[5], 5.0f);
}

TEST(Access, SeatsFollowTheProductLayerRuleOnRandomFirms) {
  // §2.6(e) (v5) written out: a firm that got no API compute buys n = min(e·seat_share,
  // B/seat_price) seats if V_max·min(1, n·seat_cap/q)^ψ ≥ n·seat_price, on its API
  // choice when a user could use it, else on its provider's best such generation; its
  // seat settle takes n·use·h H100e at the plan level and status seats(_capped).
  World w;
  // Two generations of provider 0: the GENERAL one (K 2) and a newer one at KYC (K 3).
  std::uint8_t provider[2] = {0, 0}, stage[2] = {kStageGeneral, kStageKyc};
  double K[2] = {2.0, 3.0}, h[2] = {1e-3, 2e-3};
  w.k.gens = GenTableView{2, 1, table_of(provider), table_of(K), table_of(stage), table_of(h), table_of(w.align)};
  w.k.seats = true;
  double seat_price[1] = {20};
  w.k.seat_share = 0.3, w.k.seat_price = table_of(seat_price), w.k.seat_cap = 40, w.k.seat_weight = 5;
  const int n = 4000;
  HostArrays<Firms> a = test::filled<Firms>(n);
  const FirmView f = a.view();
  std::mt19937_64 rng(17);
  std::lognormal_distribution<double> logn(0.0, 2.0);
  std::uniform_real_distribution<double> unit(0, 1);
  for (int i = 0; i < n; ++i) {
    const double u = unit(rng);
    const std::uint8_t g = u < 0.05 ? kNone : u < 0.5 ? 0 : 1;
    set_firm(f, i, 1 + 300 * unit(rng), 1e4 * logn(rng), 1e3 * logn(rng), 0.02 + 5 * unit(rng), true, g);
    f.flags[i] = static_cast<std::uint8_t>(f.flags[i] | (unit(rng) < 0.2 ? firm_flag::kBuying : 0));
  }
  const WaterLevel level{30.0, 0.0, 0.0, 0.0};  // λ·w_plan = 150 > cap: not capped
  const WaterLevel tight{2.0, 0.0, 0.0, 0.0};   // λ·w_plan = 10 < cap: capped
  int bought = 0, refused = 0;
  for (int i = 0; i < n; ++i) {
    const double B = f.b[i] * (w.k.beta_W * std::max(f.W[i], 0.0) + w.k.beta_R * f.revenue[i]);
    const double q = f.employees[i] * w.tau[0];
    const int g = f.generation[i] == kNone ? -1 : 0;  // the KYC generation is not a plan-layer one
    double seats = 0;
    if (g >= 0 && !(f.flags[i] & firm_flag::kBuying)) {
      const double m = std::min(f.employees[i] * 0.3, B / 20);
      const double V = w.k.wtp_months * w.k.rho * w.k.sigma_c * f.revenue[i] * w.k.phi * K[g] *
                       std::pow(std::min(1.0, m * 40 / q), w.k.psi);
      seats = V >= m * 20 ? m : 0;
      (seats > 0 ? bought : refused) += 1;
    }
    const FirmSeats got = firm_seats(i, w.k, f);
    ASSERT_NEAR(got.seats, seats, 1e-12 * seats) << "firm " << i;
    ASSERT_EQ(got.gen, seats > 0 ? g : kNone) << "firm " << i;
    f.seats[i] = static_cast<float>(got.seats);  // what firm_settle keeps for the water-fill and the seat settle
    UserBid b;
    ASSERT_EQ(firm_seat_bid(i, w.k, f, &b), seats > 0 ? 0 : -1);
    if (seats > 0) {
      EXPECT_NEAR(b.weight, seats, 1e-7 * seats);  // a large-stratum firm: weight 1 (seats kept as a float)
      EXPECT_EQ(b.cap, 40.0);
      EXPECT_EQ(b.cost, h[0]);
    }
    // The settle, at a level that does not cap and one that does (in place: the seats'
    // rule reads nothing the settle writes, so the second settle sees the same seats).
    for (const WaterLevel& l : {level, tight}) {
      f.status[i] = kNoValue;
      firm_seat_settle(i, w.k, Table<WaterLevel>{&l, 1}, f);
      if (seats > 0) {
        const double use = std::min(40.0, l.lambda * 5);
        EXPECT_NEAR(f.alloc[i], seats * use * h[0], 1e-6 * seats * use * h[0]);
        EXPECT_EQ(f.status[i], l.lambda * 5 < 40 ? kSeatsCapped : kSeats);
        EXPECT_TRUE(f.flags[i] & firm_flag::kSeats);
        EXPECT_EQ(f.generation[i], 0);
        EXPECT_EQ(f.seats[i], static_cast<float>(seats));
        EXPECT_EQ(f.K[i], 2.0f);
      } else {
        EXPECT_EQ(f.status[i], kNoValue);  // untouched
        EXPECT_FALSE(f.flags[i] & firm_flag::kSeats);
      }
    }
    ASSERT_NEAR(firm_seats(i, w.k, f).seats, seats, 1e-12 * seats);
  }
  EXPECT_GT(bought, 200);  // the random firms cover both outcomes
  EXPECT_GT(refused, 50);
  w.k.seats = false;
  for (int i = 0; i < n; ++i) ASSERT_EQ(firm_seats(i, w.k, f).gen, kNone);
}

TEST(Access, SeatsShareThePlanLayerWithinItsCapacity) {
  // (v5) A whole run with the product layer: the statuses still cover every real firm
  // once, firms are on seats, and no provider serves more than its inference capacity
  // (users, seats, firms and the reserve together).
  const Params p = test::scenario(test::baseline_path(),
                                  {"n_firms=8000", "n_users=20000", "n_large=2500", "horizon=6", "seats=true"});
  Simulation sim(p, load_countries(p.countries), RunOptions{});
  const Metrics& m = sim.metrics();
  const int firms = m.find("firms_by_status"), util = m.find("utilisation");
  for (int t = 0; t < 6; ++t) {
    sim.step();
    double total = 0, on_seats = 0, real = 0;
    for (std::size_t j = 0; j < m[firms].size(); ++j) {
      total += m[firms][j];
      if (j % kStatusCount == kSeats || j % kStatusCount == kSeatsCapped) on_seats += m[firms][j];
    }
    for (double r : sim.layout().real_firms) real += r;
    EXPECT_NEAR(total, real, 1e-9 * real) << "tick " << t;
    EXPECT_GT(on_seats, 0.01 * real) << "tick " << t;
    // Within the rounding of the float fields that store each agent's use (2^-24 relative).
    for (double u : m[util]) EXPECT_LE(u, 1.0 + 1e-6) << std::setprecision(17) << u << " at tick " << t;
  }
}

TEST(Access, StatusesSumToEveryCountrysRealFirms) {
  // Exhaustive and exclusive: over size classes and statuses, every tick, the real
  // firms of each country (and their employment) exactly once; each (country, size
  // class, status) cell is the weighted count of the firms whose status field says so,
  // by employees per real firm (1–9, 10–49, 50–249, 250+); and each firm's status says
  // what happened to it (§7): no_access without a generation, served with its whole need
  // ζ·q'·h, budget_bound with less, priced_out, no_budget and no_value with nothing.
  // (v5) not_adopted and seats: nothing bought on the API.
  for (const bool v4 : {true, false}) {
    for (const char* scenario : {"baseline.toml", "first-resort.toml", "diffusion-rule.toml"}) {
      SCOPED_TRACE(std::string(scenario) + (v4 ? ", v4" : ", v5"));
      const Params p = test::scenario(test::source_dir() + "/data/scenarios/" + scenario,
                                      test::with({"n_firms=8000", "n_users=20000", "n_large=2500", "horizon=4"},
                                                 v4 ? test::v4_sets() : std::vector<std::string>{}));
      Simulation sim(p, load_countries(p.countries), RunOptions{});
      const Metrics& m = sim.metrics();
      const int firms = m.find("firms_by_status"), emp = m.find("employment_by_status"), zeta = m.find("zeta");
      const Layout& L = sim.layout();
      const int C = L.n_countries, cells = kSizeClassCount * kStatusCount;
      for (int t = 0; t < 4; ++t) {
        sim.step();
        std::vector<double> seen(kStatusCount, 0.0);
        for (int c = 0; c < C; ++c) {
          double n = 0, e = 0;
          for (int j = 0; j < cells; ++j) {
            n += m[firms][c * cells + j];
            e += m[emp][c * cells + j];
            seen[j % kStatusCount] += m[firms][c * cells + j];
          }
          EXPECT_NEAR(n, L.real_firms[c], 1e-9 * L.real_firms[c]) << "country " << c;
          EXPECT_NEAR(e, L.workers[c], 1e-6 * L.workers[c]) << "country " << c;
        }
        EXPECT_GT(seen[kServed] + seen[kBudgetBound], 0) << "somebody is served at tick " << t;
        EXPECT_GT(seen[kNoBudget], 0) << "somebody has no budget at tick " << t;
        EXPECT_GT(seen[kNoValue], 0) << "AI is not worth its access cost to somebody at tick " << t;
        // The cells from the firms' own fields, and each status against what the firm got.
        const FirmView f = sim.firms().view();
        const GenTableView g = sim.labs().view();
        std::vector<double> cell(static_cast<std::size_t>(C) * cells, 0.0);
        std::vector<int> checked(kStatusCount, 0);
        for (std::uint64_t i = 0; i < L.n_firms; ++i) {
          const int c = f.country[i];
          const double w = (f.flags[i] & firm_flag::kLarge) ? 1.0 : L.w_small[c * kSizeBands + f.band[i]];
          const float e = f.employees[i];
          const int sc = e < 10 ? 0 : e < 50 ? 1 : e < 250 ? 2 : 3;
          cell[(static_cast<std::size_t>(c) * kSizeClassCount + sc) * kStatusCount + f.status[i]] += w;
          if (f.flags[i] & firm_flag::kEntered) continue;  // step 8 replaced it after its status was counted
          const int st = f.status[i];
          ++checked[st];
          if (st == kNoAccess) {
            EXPECT_EQ(f.generation[i], kNone) << "firm " << i;
            continue;
          }
          const bool bought = f.flags[i] & firm_flag::kBuying;
          if (st == kNotAdopted || st == kSeats || st == kSeatsCapped) {
            // Nothing on the API; on seats, the seats' compute (§2.6e), on a released generation.
            EXPECT_FALSE(bought) << "firm " << i << " status " << st;
            EXPECT_EQ(st != kNotAdopted, (f.flags[i] & firm_flag::kSeats) != 0) << "firm " << i << " status " << st;
            if (st == kNotAdopted) {
              EXPECT_EQ(f.alloc[i], 0.0f) << "firm " << i;
            } else {
              ASSERT_NE(f.generation[i], kNone) << "firm " << i;
              EXPECT_GE(g.stage[f.generation[i]], kStageGeneral) << "firm " << i;
              EXPECT_GE(f.alloc[i], 0.0f) << "firm " << i;
            }
            continue;
          }
          ASSERT_NE(f.generation[i], kNone) << "firm " << i << " status " << st;
          if (st == kPricedOut || st == kNoBudget || st == kNoValue) {
            EXPECT_FALSE(bought) << "firm " << i << " status " << st;
            EXPECT_EQ(f.alloc[i], 0.0f) << "firm " << i << " status " << st;
          }
          if (st == kServed || st == kBudgetBound) {
            // Its whole need ζ·q'·h_g (ζ_c on tier-1-homed providers), or less.
            const int q = g.provider[f.generation[i]];
            const bool tier1 = sim.countries()[sim.labs().providers()[q].home].tier == 1;
            const double z = tier1 ? m[zeta][c] : 1.0;
            const double tau = sim.tau0() * p.mult_s[f.sector[i]] * std::exp(p.tau_growth * t);
            const double need = z * std::max(static_cast<double>(e) * tau, p.q_min) * g.h[f.generation[i]];
            EXPECT_TRUE(bought) << "firm " << i;
            EXPECT_EQ(f.K[i], static_cast<float>(g.K[f.generation[i]])) << "firm " << i;
            if (st == kServed) {
              EXPECT_NEAR(f.alloc[i], need, 1e-6 * need) << "firm " << i;
            } else {
              EXPECT_GT(f.alloc[i], 0.0f) << "firm " << i;
              EXPECT_LE(f.alloc[i], need * (1 + 1e-6)) << "firm " << i;
            }
          }
        }
        for (std::size_t j = 0; j < cell.size(); ++j)
          EXPECT_NEAR(m[firms][j], cell[j], 1e-9 * std::max(cell[j], 1.0)) << "cell " << j << " tick " << t;
        EXPECT_GT(checked[kServed], 0);
        EXPECT_GT(checked[kBudgetBound], 0);
      }
    }
  }
}

/// §2.5 written out: x_i(π) for a firm that bids, from the formulas, not the code.
/// Under the tier-2 quota (ζ < 1) need and money are scaled by ζ; this returns the
/// demand before the factor, whose worth per H100e is then V(q'·h)/(ζ·q'·h) (docs/model.md).
double spec_demand(double B, double F, double q, double q_min, double h, double Vmax, double psi, double pi,
                   double zeta = 1) {
  const double q1 = std::max(q, q_min), need = q1 * h;
  if (!(B - F > 0) || !(q > 0) || Vmax < F) return 0;
  const double v = Vmax / (zeta * need);
  if (pi > v) return 0;
  const double x = std::min(need, (B - F) / pi);
  if (x < q_min * h) return 0;
  const double V = Vmax * std::pow(std::min(1.0, x / (q * h)), psi);
  return V >= F ? x : 0;
}

TEST(Access, BidsAndBudgetAdaptationFollowSection2_5OnRandomFirms) {
  World w;
  const int n = 4000;
  HostArrays<Firms> a = test::filled<Firms>(n);
  const FirmView f = a.view();
  std::mt19937_64 rng(11);
  std::lognormal_distribution<double> logn(0.0, 2.0);
  std::uniform_real_distribution<double> unit(0, 1);
  for (int i = 0; i < n; ++i)
    set_firm(f, i, 1 + 300 * unit(rng), (unit(rng) < 0.2 ? -1 : 1) * 1e5 * logn(rng), 1e4 * logn(rng),
             0.02 + 5 * unit(rng), true, unit(rng) < 0.05 ? kNone : 0);
  int checked = 0, adapted_up = 0, adapted_down = 0;
  for (double pi : {1863.0, 3000.0, 2e4}) {
    ProviderClearing pc{};
    pc.price = pc.price_home = pc.rest.price = pi;
    pc.p_min = 1863;
    pc.rest.mode = kClearAll;
    const Table<ProviderClearing> cleared{&pc, 1};
    for (int i = 0; i < n; ++i) {
      const double B = f.b[i] * (w.k.beta_W * std::max(f.W[i], 0.0) + w.k.beta_R * f.revenue[i]);
      const double q = f.employees[i] * w.tau[0], h = w.h[0], F = w.k.access_cost;
      const double Vmax = w.k.wtp_months * w.k.rho * w.k.sigma_c * f.revenue[i] * w.k.phi * w.K[0];
      FirmBid bid;
      const int p = firm_bid(i, w.k, f, &bid);
      const double x_code = p < 0 ? 0 : bid_demand(bid, pi);
      const double x_spec = f.generation[i] == kNone ? 0 : spec_demand(B, F, q, w.k.q_min, h, Vmax, w.k.psi, pi);
      ASSERT_NEAR(x_code, x_spec, 1e-9 * std::max(x_spec, 1e-12)) << "firm " << i << " at " << pi;
      // ℓ_i and the new b_i, from §2.5.
      const double need = std::max(q, w.k.q_min) * h;
      double l = 0;
      if (f.generation[i] != kNone && B - F > 0 && q > 0 && Vmax >= F) {  // it bid
        l = std::log(Vmax / need / pi);
        if (x_spec >= need) l = std::min(l, 0.0);  // got its whole need
      } else if (f.generation[i] != kNone && !(B - F > 0) && q > 0 && Vmax >= F) {
        l = w.k.b_up;  // could not bid for want of money
      }
      const float b0 = f.b[i];
      const double b_spec = std::clamp(b0 * std::exp(w.k.b_adapt * std::clamp(l, -1.0, 1.0)), w.k.b_floor, w.k.b_max);
      firm_settle(i, w.k, cleared, f);
      firm_adapt_budget(i, w.k, cleared, f);
      ASSERT_NEAR(f.b[i], b_spec, 2e-7 * b_spec) << "firm " << i << " at " << pi << ", l = " << l;
      adapted_up += f.b[i] > b0;
      adapted_down += f.b[i] < b0;
      f.b[i] = b0;  // the next price starts from the same firms
      ++checked;
    }
  }
  EXPECT_EQ(checked, 3 * n);
  EXPECT_GT(adapted_up, 100);  // the random firms cover both directions
  EXPECT_GT(adapted_down, 100);
}

TEST(Access, QuotaDemandIsTheBiddersDemandAtTheirPriceBeforeTheFactor) {
  // §2.4 (v4): D_c counts the bidding firms' x_i(π) at the price they cleared at, before
  // ζ_c, on tier-1-homed providers (v3.2 counted every firm's full need, bidding or not).
  World w;
  std::uint8_t quota[1] = {1};  // the provider is tier-1-homed
  double zeta[1] = {0.5};       // last tick's factor
  w.k.quota_provider = table_of(quota);
  w.k.zeta = table_of(zeta);
  const int n = 400;
  HostArrays<Firms> a = test::filled<Firms>(n);
  const FirmView f = a.view();
  std::mt19937_64 rng(3);
  std::lognormal_distribution<double> logn(0.0, 2.0);
  for (int i = 0; i < n; ++i) set_firm(f, i, 1 + 20 * (i % 7), 1e6 * logn(rng), 3e5 * logn(rng), 1, true);
  const double pi = 2500;
  ProviderClearing pc{};
  pc.price = pc.price_home = pc.rest.price = pi;
  pc.p_min = 1863;
  pc.rest.mode = kClearAll;
  double want = 0, full_need = 0;
  int bidders = 0;
  for (int i = 0; i < n; ++i) {
    const double B = f.b[i] * (w.k.beta_W * std::max(f.W[i], 0.0) + w.k.beta_R * f.revenue[i]);
    const double q = f.employees[i] * w.tau[0], F = w.k.access_cost;
    const double Vmax = w.k.wtp_months * w.k.rho * w.k.sigma_c * f.revenue[i] * w.k.phi * w.K[0];
    // x_i(π) at the quota-scaled need and money (π·x ≤ ζ·(B − F)), the factor taken out again.
    const double x = spec_demand(B, F, q, w.k.q_min, w.h[0], Vmax, w.k.psi, pi, 0.5);
    want += x;
    bidders += x > 0;
    full_need += std::max(q, w.k.q_min) * w.h[0];
  }
  ASSERT_GT(bidders, 20);
  ASSERT_LT(bidders, n);
  auto exec = cpu_backend().make({n, 1});
  exec->load_firms(a);
  const FirmMarketSum sum{{}, exec->put(w.k), exec->firms(), exec->put(Table<ProviderClearing>{&pc, 1}), pc.p_min, 1,
                          1};
  KeyedFixed out(sum.keys());
  exec->sum(n, sum, out);
  const double D = out.value(sum.quota_key(0), kFixedCompute);
  EXPECT_NEAR(D, want, 1e-9 * want);
  EXPECT_LT(D, 0.9 * full_need);  // not every firm's full need
}

TEST(Access, Tau0AndNeed0AreConstantsOfTheScenario) {
  // (v4, tau0_ref_firms = 0) Derived on the population of seed 0, replicate 0: the same
  // for every seed and replicate at these agent counts, and different at other counts.
  auto make = [](int seed, std::uint32_t replicate, const char* firms) {
    const Params p =
        test::scenario(test::baseline_path(), {std::string("n_firms=") + firms, "n_users=20000", "n_large=2500",
                                               "horizon=2", "seed=" + std::to_string(seed), "tau0_ref_firms=0"});
    RunOptions o;
    o.replicate = replicate;
    return std::make_unique<Simulation>(p, load_countries(p.countries), o);
  };
  const auto a = make(1, 0, "8000"), b = make(7, 3, "8000"), c = make(0, 0, "8000"), d = make(1, 0, "9000");
  EXPECT_TRUE(test::same_double(a->tau0(), b->tau0()));
  EXPECT_TRUE(test::same_double(a->need0(), b->need0()));
  EXPECT_TRUE(test::same_double(a->tau0(), c->tau0()));
  EXPECT_FALSE(test::same_double(a->tau0(), d->tau0()));
  EXPECT_EQ(a->tightness0_reached(), a->params().tightness0);
  EXPECT_TRUE(a->warnings().empty());
  // The members' own populations still differ.
  EXPECT_FALSE(test::same_bits(a->firms(), b->firms()));
}

TEST(Access, Tau0AndNeed0DoNotDependOnTheAgentCount) {
  // (v5, §2.0) Derived on the reference population (tau0_ref_firms × tau0_ref_users,
  // seed 0, replicate 0): a run of any size gets the bits of the run whose own counts
  // are the reference's, and still draws its own agents at its own counts.
  auto make = [](const char* firms, const char* users, const char* ref_firms, int seed) {
    const Params p =
        test::scenario(test::baseline_path(), {std::string("n_firms=") + firms, std::string("n_users=") + users,
                                               "n_large=2500", "horizon=2", "seed=" + std::to_string(seed),
                                               std::string("tau0_ref_firms=") + ref_firms, "tau0_ref_users=20000"});
    return std::make_unique<Simulation>(p, load_countries(p.countries), RunOptions{});
  };
  const auto ref = make("8000", "20000", "8000", 0);  // the reference's own counts
  for (const auto& [firms, users, seed] :
       {std::tuple{"5500", "12000", 1}, std::tuple{"12000", "30000", 3}, std::tuple{"8000", "50000", 2}}) {
    SCOPED_TRACE(std::string(firms) + " firms, " + users + " users");
    const auto run = make(firms, users, "8000", seed);
    EXPECT_TRUE(test::same_double(run->tau0(), ref->tau0()));
    EXPECT_TRUE(test::same_double(run->need0(), ref->need0()));
    EXPECT_EQ(run->tightness0_reached(), ref->tightness0_reached());
    EXPECT_EQ(run->firms().size(), static_cast<std::size_t>(std::stoll(firms)));
    EXPECT_EQ(run->users().size(), static_cast<std::size_t>(std::stoll(users)));
    // v4's rule on the same run derives on its own counts: another τ0 or need0 (so the
    // test can fail; τ0 depends on the firms alone, need0 on the users).
    const auto own = make(firms, users, "0", seed);
    EXPECT_FALSE(test::same_double(own->tau0(), ref->tau0()) && test::same_double(own->need0(), ref->need0()));
  }
}

TEST(Access, Tau0ScanSkipsOnlyFirmsThatChooseNothingAtAnyTau) {
  // (issue 40) τ0's scan sums only the firms TauChooserLoop marks in `status`: those
  // step 4 gives a generation at tick 0. That must not depend on τ, or the scan's sum
  // would change: a firm is marked exactly when firm_pick chooses at τ far below and
  // far above τ0, and the marks are cleared back to §2.0's 0.
  const Params p = test::scenario(test::baseline_path(),
                                  {"n_firms=6000", "n_users=20000", "n_large=2500", "horizon=2", "tau0_ref_firms=0"});
  Simulation sim(p, load_countries(p.countries), RunOptions{});
  const std::uint64_t n = sim.firms().size();
  Exec& exec = sim.exec();
  const FirmTickConsts k0 = sim.firm_consts(0);
  exec.loop(n, TauChooserLoop{{}, exec.put(k0), exec.firms(), false});
  const std::vector<std::uint8_t> marked(sim.firms().view().status, sim.firms().view().status + n);
  const auto chosen = std::count(marked.begin(), marked.end(), std::uint8_t{1});
  EXPECT_GT(chosen, 0);
  EXPECT_LT(chosen, static_cast<long>(n));  // some firms choose nothing at tick 0 (the test can fail)
  for (const double scale : {1e-6, 1.0, 1e6}) {
    FirmTickConsts k = k0;
    std::vector<double> tau(p.mult_s.size());
    for (std::size_t s = 0; s < tau.size(); ++s) tau[s] = k0.tau[s] * scale;
    k.tau = table_of(tau);
    const FirmView& f = sim.firms().view();
    for (std::uint64_t i = 0; i < n; ++i)
      ASSERT_EQ(firm_pick(i, k, f).generation != kNone, marked[i] == 1) << "firm " << i << " at tau x " << scale;
  }
  exec.loop(n, TauChooserLoop{{}, exec.put(k0), exec.firms(), true});
  const std::uint8_t* status = sim.firms().view().status;
  EXPECT_TRUE(std::all_of(status, status + n, [](std::uint8_t s) { return s == 0; }));
}

TEST(Access, Tau0FallsBackTo99PercentWhereBudgetsBind) {
  // A target no budget can reach: never an error; τ0 where demand reaches 99% of
  // its largest value, a warning, and the tightness reached recorded.
  const Params p = test::scenario(test::baseline_path(),
                                  {"n_firms=6000", "n_users=20000", "n_large=2500", "horizon=2", "tightness0=50"});
  Simulation sim(p, load_countries(p.countries), RunOptions{});
  EXPECT_LT(sim.tightness0_reached(), 50.0);
  EXPECT_GT(sim.tightness0_reached(), 0.0);
  ASSERT_EQ(sim.warnings().size(), 1u);
  EXPECT_NE(sim.warnings()[0].find("tightness0"), std::string::npos);
  // A 1.2× larger target in reach gives a τ0 below the fallback's (demand rises with τ).
  const Params q =
      test::scenario(test::baseline_path(), {"n_firms=6000", "n_users=20000", "n_large=2500", "horizon=2",
                                             "tightness0=" + std::to_string(sim.tightness0_reached() / 1.2)});
  Simulation lower(q, load_countries(q.countries), RunOptions{});
  EXPECT_TRUE(lower.warnings().empty());
  EXPECT_LT(lower.tau0(), sim.tau0());
  sim.step();  // and the run goes on
}

TEST(Access, SmallEnsemblesNoLongerFailOnTau0) {
  // v3.2 failed one member of `--replicates 6` at 5e3 firm agents (τ0 out of reach).
  std::vector<double> tau0;
  for (std::uint32_t r = 0; r < 6; ++r) {
    const Params p = test::scenario(test::baseline_path(), {"n_firms=5000", "n_users=20000", "horizon=1"});
    RunOptions o;
    o.replicate = r;
    std::unique_ptr<Simulation> sim;
    ASSERT_NO_THROW(sim = std::make_unique<Simulation>(p, load_countries(p.countries), o)) << "replicate " << r;
    // τ0 is the scenario's, whatever the replicate (§2.0), and a tightness was reached.
    EXPECT_TRUE(std::isfinite(sim->tau0()) && sim->tau0() > 0) << "replicate " << r;
    EXPECT_GT(sim->tightness0_reached(), 0.0);
    EXPECT_LE(sim->tightness0_reached(), p.tightness0);
    if (!tau0.empty()) {
      EXPECT_TRUE(test::same_double(sim->tau0(), tau0[0])) << "replicate " << r;
    }
    tau0.push_back(sim->tau0());
  }
}

TEST(Access, TierTwoQuotaFactorFollowsItsDemand) {
  // §2.4 under diffusion_rule: ζ_c(t) = min(1, Q_c(t) / D_c(t−1)) for tier-2 countries,
  // 1 elsewhere and without the lever. D_c is recomputed here from the agents (issue 42:
  // not from the metric the same code writes): its bidding firms' x_i(π) at the price they
  // cleared at, before the factor (§2.5 written out by spec_demand, at the budgets, wealth
  // and revenues the tick began with), plus its adopters' min(need, plancap)·h_g, both on
  // tier-1-homed providers. (No firm exits: exit_months at its largest.)
  for (const bool v4 : {true, false}) {
    for (bool on : {false, true}) {
      SCOPED_TRACE(std::string(on ? "diffusion_rule" : "baseline") + (v4 ? ", v4" : ", v5"));
      const Params p =
          test::scenario(test::baseline_path(),
                         test::with({"n_firms=8000", "n_users=20000", "n_large=2500", "horizon=4", "tier2_quota=20",
                                     "exit_months=1200", std::string("diffusion_rule=") + (on ? "true" : "false")},
                                    v4 ? test::v4_sets() : std::vector<std::string>{}));
      Simulation sim(p, load_countries(p.countries), RunOptions{});
      const Metrics& m = sim.metrics();
      const Layout& L = sim.layout();
      const int zeta = m.find("zeta"), demand = m.find("quota_demand"), price = m.find("compute_price");
      const int C = L.n_countries;
      std::vector<double> D_prev;
      int below_one = 0;
      for (int t = 0; t < 4; ++t) {
        const UserConsts uk = sim.user_consts(t);
        const double need_scale = uk.need_scale;
        const FirmView f0 = sim.firms().view();
        const std::vector<float> b(f0.b, f0.b + L.n_firms), revenue(f0.revenue, f0.revenue + L.n_firms);
        const std::vector<double> W(f0.W, f0.W + L.n_firms);
        sim.step();
        ASSERT_EQ(m[m.find("entries")][0], 0.0);
        const GenTableView g = sim.labs().view();
        auto tier1 = [&](int gen) { return sim.countries()[sim.labs().providers()[g.provider[gen]].home].tier == 1; };
        std::vector<double> D(C, 0.0);
        const FirmView f = sim.firms().view();
        for (std::uint64_t i = 0; i < L.n_firms; ++i) {
          const int gen = f.generation[i], c = f.country[i];
          // (v5) A firm that had not adopted AI when the market ran did not bid (§2.9), even
          // if it adopted, and chose a generation, at the end of the tick; a firm on seats got
          // no API compute (§2.6e: x_i(π) = 0 where it bid), and its generation is now its seat's.
          const int st = f.status[i];
          if (gen == kNone || !tier1(gen) || st == kNotAdopted || st == kSeats || st == kSeatsCapped) continue;
          const double B = b[i] * (p.beta_W * std::max(W[i], 0.0) + p.beta_R * revenue[i]);
          const double q = f.employees[i] * sim.tau0() * p.mult_s[f.sector[i]] * std::exp(p.tau_growth * t);
          const double Vmax = p.wtp_months * p.rho * p.sigma_c * revenue[i] * p.phi * g.K[gen];
          const double w = (f.flags[i] & firm_flag::kLarge) ? 1.0 : L.w_small[c * kSizeBands + f.band[i]];
          D[c] += w * spec_demand(B, p.access_cost, q, p.q_min, g.h[gen], Vmax, p.psi, m[price][g.provider[gen]],
                                  m[zeta][c]);
        }
        const UserView u = sim.users().view();
        for (std::uint64_t i = 0; i < L.n_users; ++i) {
          const int gen = u.generation[i];
          if (!(u.flags[i] & user_flag::kAdopter) || gen == kNone || !tier1(gen)) continue;
          const double base = need_scale * p.plan_need[u.plan[i] - 1];
          D[u.country[i]] += L.w_user[u.country[i]] * std::min(base * u.n[i], p.plan_cap * base) * g.h[gen];
        }
        for (int c = 0; c < C; ++c) {
          const double z = m[zeta][c];
          EXPECT_NEAR(m[demand][c], D[c], 1e-6 * D[c] + 1e-9) << sim.countries()[c].iso3 << " tick " << t;
          if (!on || sim.countries()[c].tier != 2 || t == 0 || !(D_prev[c] > 0)) {
            EXPECT_EQ(z, 1.0) << "country " << c << " tick " << t;
            continue;
          }
          EXPECT_NEAR(z, std::min(1.0, 20.0 / D_prev[c]), 1e-12 * z) << sim.countries()[c].iso3 << " tick " << t;
          below_one += z < 1.0;
        }
        D_prev = D;
      }
      if (on) {
        EXPECT_GT(below_one, 0);
      }
    }
  }
}

}  // namespace
}  // namespace cutoff
