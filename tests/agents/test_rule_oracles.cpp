// Oracles for the model's per-agent and per-provider rules (issue 42): each rule of
// docs/model.md recomputed here from its formula, written apart from the code under
// test (nothing below calls the rule it checks to make its expectation), on
// randomised agents from a fixed-seed std::mt19937_64. Stochastic choices are tested
// as distributions: a chi-square statistic against the probabilities the rule implies
// (logit choice, Bernoulli adoption), rejected above the critical value of a false-alarm
// rate of 1e-6 per test (the draws are counter-based and the seeds fixed, so a run is
// deterministic; the rate says how unlucky another seed would have to be to fail
// correct code). tests/mutation/ holds the mutants these tests are meant to kill.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "agents/firm_kern.hpp"
#include "agents/user_kern.hpp"
#include "core/model/providers.hpp"
#include "core/model/spillover.hpp"
#include "core/sim/simulation.hpp"
#include "support.hpp"

namespace cutoff {
namespace {

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

/// The chi-square critical value of `df` degrees of freedom at a false-alarm rate of
/// 1e-6 (Wilson–Hilferty: the cube root of χ²/df is nearly normal; z = 4.753).
double chi2_critical(int df) {
  const double a = 2.0 / (9.0 * df);
  return df * std::pow(1.0 - a + 4.753 * std::sqrt(a), 3.0);
}

/// Pearson's statistic of `counts` against probabilities `p` over `n` draws.
double chi2_statistic(const std::vector<double>& counts, const std::vector<double>& p, double n) {
  double x = 0;
  for (std::size_t j = 0; j < p.size(); ++j) x += (counts[j] - n * p[j]) * (counts[j] - n * p[j]) / (n * p[j]);
  return x;
}

/// Logit probabilities exp(u/s) / Σ exp(u/s): the argmax of u + s·Gumbel.
std::vector<double> logit(const std::vector<double>& u, double s) {
  const double top = *std::max_element(u.begin(), u.end());
  std::vector<double> p(u.size());
  double sum = 0;
  for (std::size_t j = 0; j < u.size(); ++j) sum += p[j] = std::exp((u[j] - top) / s);
  for (double& x : p) x /= sum;
  return p;
}

// ---------------------------------------------------------------------------
// A small world: 2 countries, 3 providers, 6 generations
// ---------------------------------------------------------------------------

/// Country 0 is first-resort's home and hosts a deal of provider 2; country 1 is a
/// tier-2 country under the quota (ζ = 0.5). Provider 0 is tier-1-homed (the quota
/// applies) and under first-resort; provider 1 is tier-1-homed; provider 2 is not.
struct World {
  static constexpr int kC = 2, kP = 3, kG = 6;
  std::uint8_t provider[kG] = {0, 0, 0, 1, 1, 2};
  double K[kG] = {2.0, 3.0, 3.5, 2.5, 4.0, 2.2};
  std::uint8_t stage[kG] = {kStageGeneral, kStageKyc, kStageTrusted, kStageGeneral, kStageGov, kStageOpen};
  double h[kG] = {1e-3, 2e-3, 3e-3, 1.5e-3, 4e-3, 0.8e-3};
  // align(c, p), row c: country 0 aligned with all; country 1 below a_kyc with 0, blocked by 1.
  double align[kC * kP] = {1.0, 0.5, 0.9, 0.4, -1.0, 0.2};
  double zeta[kC] = {1.0, 0.5};
  std::uint16_t deal[kC] = {1u << 2, 0};
  std::uint8_t quota[kP] = {1, 1, 0};
  std::uint8_t first_resort[kP] = {1, 0, 0};
  double price[kP] = {2600.0, 1900.0, 2100.0};
  double price_home[kP] = {2000.0, 1900.0, 2100.0};
  double seat_price[kP] = {20.0, 25.0, 18.0};
  double kyc_rate[kC] = {0.0, 0.0};
  std::uint8_t tier[kC] = {1, 2};
  double tau[1] = {40.0};
  double w_small[kC * kSizeBands] = {3.0, 0, 0, 0, 7.0, 0, 0, 0};  // (country, size band): band 0 only
  FirmTickConsts k{};
  World() {
    k.gens = GenTableView{kG, kP, table_of(provider), table_of(K), table_of(stage), table_of(h), table_of(align)};
    k.layout.w_small = table_of(w_small);
    k.tier = table_of(tier);
    k.kyc_rate = table_of(kyc_rate);
    k.zeta = table_of(zeta);
    k.deal_mask = table_of(deal);
    k.quota_provider = table_of(quota);
    k.first_resort = table_of(first_resort);
    k.price = table_of(price);
    k.price_home = table_of(price_home);
    k.seat_price = table_of(seat_price);
    k.tau = table_of(tau);
    k.lever_country = 0;
    k.seed = 9, k.replicate = 2, k.tick = 5;
    k.a_kyc = 0.3, k.p_switch = 1.0, k.firm_p_repick = 1.0, k.switch_noise = 0.0;
    k.phi = 1, k.psi = 0.5, k.rho = 0.001, k.sigma_c = 3, k.wtp_months = 12;
    k.access_cost = 1000, k.q_min = 10, k.beta_W = 0.0005, k.beta_R = 0.001;
    k.b_adapt = 0.05, k.b_max = 30, k.b_floor = 0.01, k.b_up = 0.5;
    k.seats = true, k.seat_share = 0.3, k.seat_cap = 40, k.seat_weight = 5;
  }
  double al(int c, int p) const { return align[c * kP + p]; }
};

// --- §2.4 and §2.5 written out for the firms of the world

/// §2.4 eligibility: OPEN; or align ≥ 0 and GENERAL, KYC when cleared for p (KYC flag
/// with align ≥ a_kyc, or a deal host of p) or a partner of p, TRUSTED when a partner.
bool spec_firm_eligible(const World& w, int c, bool kyc, std::uint16_t partners, int g) {
  const int p = w.provider[g], st = w.stage[g];
  const bool partner = (partners >> p) & 1u;
  const bool cleared = (kyc && w.al(c, p) >= w.k.a_kyc) || ((w.deal[c] >> p) & 1u);
  if (st == kStageOpen) return true;
  if (w.al(c, p) < 0) return false;
  return st == kStageGeneral || (st == kStageKyc && (cleared || partner)) || (st == kStageTrusted && partner);
}

/// §2.4 the price a firm of country c faces on p: π_home under first-resort for the home country.
double spec_price(const World& w, int c, int p) {
  return w.first_resort[p] && c == w.k.lever_country ? w.price_home[p] : w.price[p];
}

/// ζ_c on tier-1-homed providers, else 1.
double spec_zeta(const World& w, int c, int p) { return w.quota[p] ? w.zeta[c] : 1.0; }

/// §2.5 B_i = b_i·(β_W·max(W, 0) + β_R·revenue).
double spec_budget(const World& w, double b, double W, double revenue) {
  return b * (w.k.beta_W * std::max(W, 0.0) + w.k.beta_R * revenue);
}

/// §2.4 u(p, g) = φ·K_g·min(1, a/q')^ψ with a = (B − F_access)/(π_p·h_g) (no tokens: 0).
double spec_utility(const World& w, double B, double q1, int c, int g) {
  const double a = std::max(B - w.k.access_cost, 0.0) / (spec_price(w, c, w.provider[g]) * w.h[g]);
  return w.k.phi * w.K[g] * std::pow(std::min(1.0, a / q1), w.k.psi);
}

/// Fills firm i of `f` with a random firm of the world (every field from known values).
void random_firm(const FirmView& f, std::uint64_t i, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> unit(0, 1);
  std::lognormal_distribution<double> logn(0.0, 1.5);
  f.country[i] = static_cast<std::uint16_t>(unit(rng) < 0.5 ? 0 : 1);
  f.sector[i] = 0;
  const double u = unit(rng);
  f.provider[i] = u < 0.2 ? kNone : static_cast<std::uint8_t>(u < 0.6 ? 0 : u < 0.8 ? 1 : 2);
  f.generation[i] = kNone;
  for (int g = 0; g < World::kG; ++g)
    if (World{}.provider[g] == f.provider[i] && f.generation[i] == kNone)
      f.generation[i] = static_cast<std::uint8_t>(g);
  f.flags[i] =
      static_cast<std::uint8_t>((unit(rng) < 0.5 ? firm_flag::kKyc : 0) | (unit(rng) < 0.5 ? firm_flag::kLarge : 0));
  f.partners[i] = static_cast<std::uint16_t>((unit(rng) < 0.3 ? 1u : 0u) | (unit(rng) < 0.2 ? 2u : 0u));
  f.employees[i] = static_cast<float>(1 + 400 * unit(rng));
  f.A[i] = static_cast<float>(logn(rng));
  f.lnA_AI[i] = static_cast<float>(0.05 * unit(rng));
  f.W[i] = (unit(rng) < 0.15 ? -1 : 1) * 1e6 * logn(rng);
  f.b[i] = static_cast<float>(0.05 + 3 * unit(rng));
  f.revenue[i] = static_cast<float>(1e5 * logn(rng));
  f.alloc[i] = 0.0f;
  f.K[i] = 0.0f;
  f.ai_value[i] = 1e4 * unit(rng);
  f.K_elig[i] = 0.0f;
  f.seats[i] = 0.0f;
  f.status[i] = kNoAccess;
}

TEST(OracleFirms, UtilityBidAndNoiselessChoiceFollowSection2_4) {
  // Without noise (switch_noise = 0) and with p_switch = 1, every firm takes the
  // eligible generation of highest u (ties: the lower index), a partner keeps the
  // provider it partners (among its eligible generations); K_elig is the best eligible K.
  // The bid on each eligible generation carries ζ-scaled need and money, its class and
  // first-resort's home flag; a seat there has the ζ-scaled seat cap.
  World w;
  const int n = 3000;
  HostArrays<Firms> a = test::filled<Firms>(n);
  const FirmView f = a.view();
  std::mt19937_64 rng(42);
  int kept = 0, zero_money = 0, changed_by_F = 0;
  for (int i = 0; i < n; ++i) {
    random_firm(f, i, rng);
    const int c = f.country[i];
    const bool kyc = f.flags[i] & firm_flag::kKyc;
    const double B = spec_budget(w, f.b[i], f.W[i], f.revenue[i]);
    const double q = static_cast<double>(f.employees[i]) * w.tau[0], q1 = std::max(q, w.k.q_min);
    // Candidates: a partner of its current provider keeps it (if it has an eligible generation there).
    const int cur = f.provider[i];
    bool keeps = false;
    for (int g = 0; g < World::kG; ++g)
      keeps |= cur != kNone && w.provider[g] == cur && ((f.partners[i] >> cur) & 1u) &&
               spec_firm_eligible(w, c, kyc, f.partners[i], g);
    int best = -1;
    double best_u = -1, best_K = 0;
    for (int g = 0; g < World::kG; ++g) {
      if (!spec_firm_eligible(w, c, kyc, f.partners[i], g)) continue;
      best_K = std::max(best_K, w.K[g]);
      const double u = spec_utility(w, B, q1, c, g);
      ASSERT_NEAR(firm_utility(w.k, B, q1, c, g), u, 1e-12 * std::max(u, 1e-300)) << "firm " << i << " gen " << g;
      if (keeps && w.provider[g] != cur) continue;
      if (u > best_u * (1 + 1e-12)) best = g, best_u = u;
      // The bid there (§2.5): need ζ·q'·h, money ζ·(B − F), class and home flag.
      FirmBid bid{};
      const FirmAccess acc{f.flags[i], f.partners[i]};
      const int p = w.provider[g];
      const double z = spec_zeta(w, c, p);
      if (firm_bid_at(i, w.k, f, g, acc, &bid) >= 0) {
        EXPECT_NEAR(bid.need, z * q1 * w.h[g], 1e-12 * bid.need);
        EXPECT_NEAR(bid.money, z * (B - w.k.access_cost), 1e-9 * bid.money);
        EXPECT_EQ(bid.home, w.first_resort[p] && c == 0);
        const int cls = ((f.partners[i] >> p) & 1u)                                     ? 0
                        : ((kyc && w.al(c, p) >= w.k.a_kyc) || ((w.deal[c] >> p) & 1u)) ? 1
                                                                                        : 2;
        EXPECT_EQ(bid.cls, cls) << "firm " << i << " gen " << g;
      }
      if (w.stage[g] == kStageGeneral || w.stage[g] == kStageOpen) {
        UserBid sb{};
        ASSERT_EQ(seat_bid(i, w.k, f, FirmSeats{2.0, g}, &sb), p);
        EXPECT_DOUBLE_EQ(sb.cap, w.k.seat_cap * z);
      }
    }
    // Would F_access have changed the choice? (so that its mutants can be seen)
    if (best >= 0 && !(B - w.k.access_cost > 0)) ++zero_money;
    for (int g = 0; g < World::kG && best >= 0; ++g)
      if (spec_firm_eligible(w, c, kyc, f.partners[i], g) && (!keeps || w.provider[g] == cur) &&
          w.K[g] * std::pow(std::min(1.0, B / (spec_price(w, c, w.provider[g]) * w.h[g] * q1)), w.k.psi) >
              w.K[best] * std::pow(std::min(1.0, B / (spec_price(w, c, w.provider[best]) * w.h[best] * q1)), w.k.psi)) {
        ++changed_by_F;
        break;
      }
    kept += keeps;
    const FirmPick pick = firm_pick(i, w.k, f);
    EXPECT_EQ(pick.generation, best < 0 ? kNone : best) << "firm " << i;
    EXPECT_EQ(pick.K_elig, static_cast<float>(best_K)) << "firm " << i;
    EXPECT_EQ(pick.flags, f.flags[i]);  // kyc_rate 0: no new clearance
  }
  EXPECT_GT(kept, 100);  // the random firms cover each case
  EXPECT_GT(zero_money, 50);
  EXPECT_GT(changed_by_F, 50);
}

TEST(OracleFirms, AFirmKeepingItsProviderKeepsItsGenerationUnlessItRepicks) {
  // §2.4 (v5): with p_switch = 0 a firm keeps its provider while one of its generations
  // is eligible; it then keeps the generation it holds, if eligible, unless it
  // re-chooses (probability firm_p_repick), and re-chooses when it is not. Without
  // noise a re-choice takes the provider's best eligible generation, so among firms
  // whose held generation is eligible but not that best, the share keeping it is
  // binomial at 1 − firm_p_repick: the test fails at 5 SD (false alarm 6e-7).
  for (const double repick : {0.3, 1.0}) {
    World w;
    w.k.p_switch = 0.0, w.k.firm_p_repick = repick;
    const int n = 20000;
    HostArrays<Firms> a = test::filled<Firms>(n);
    const FirmView f = a.view();
    std::mt19937_64 rng(17);
    int could_keep = 0, kept = 0, ineligible_held = 0;
    for (int i = 0; i < n; ++i) {
      random_firm(f, i, rng);
      const int cur = f.provider[i];
      if (cur != kNone) {  // hold a random generation of the provider
        std::vector<int> own;
        for (int g = 0; g < World::kG; ++g)
          if (w.provider[g] == cur) own.push_back(g);
        f.generation[i] = static_cast<std::uint8_t>(own[rng() % own.size()]);
      }
      const int c = f.country[i], held = f.generation[i];
      const bool kyc = f.flags[i] & firm_flag::kKyc;
      const double B = spec_budget(w, f.b[i], f.W[i], f.revenue[i]);
      const double q1 = std::max(static_cast<double>(f.employees[i]) * w.tau[0], w.k.q_min);
      bool has_own = false;
      for (int g = 0; g < World::kG; ++g)
        has_own |= w.provider[g] == cur && spec_firm_eligible(w, c, kyc, f.partners[i], g);
      int best = -1;  // the noiseless re-choice: among the provider's generations when it keeps it
      double best_u = -1;
      for (int g = 0; g < World::kG; ++g) {
        if (!spec_firm_eligible(w, c, kyc, f.partners[i], g) || (has_own && w.provider[g] != cur)) continue;
        const double u = spec_utility(w, B, q1, c, g);
        if (u > best_u * (1 + 1e-12)) best = g, best_u = u;
      }
      const FirmPick pick = firm_pick(i, w.k, f);
      const bool held_ok = has_own && held != kNone && spec_firm_eligible(w, c, kyc, f.partners[i], held);
      ineligible_held += has_own && held != kNone && !held_ok;
      if (held_ok && held != best) {
        ++could_keep;
        kept += pick.generation == held;
        if (pick.generation != held) {
          EXPECT_EQ(pick.generation, best) << "firm " << i;
        }
      } else {
        EXPECT_EQ(pick.generation, best < 0 ? kNone : best) << "firm " << i << " repick " << repick;
      }
    }
    ASSERT_GT(could_keep, 1000);
    EXPECT_GT(ineligible_held, 100);  // held generations no longer eligible are re-chosen
    const double m = could_keep * (1 - repick), sd = std::sqrt(could_keep * repick * (1 - repick));
    EXPECT_LE(std::abs(kept - m), 5 * sd + 1e-9) << "repick " << repick << ": " << kept << " of " << could_keep;
  }
}

TEST(OracleFirms, ChoiceWithNoiseFollowsTheLogitProbabilities) {
  // §2.4: argmax of u(p, g) + switch_noise·γ over the eligible (p, g), γ standard
  // Gumbel, so generation g is chosen with probability exp(u_g/s)/Σ exp(u/s).
  World w;
  w.k.switch_noise = 0.4;
  const int n = 20000;
  HostArrays<Firms> a = test::filled<Firms>(n);
  const FirmView f = a.view();
  std::mt19937_64 rng(7);
  // Two profiles: a home firm of country 0 (cleared: generations 0, 1, 3, 5) whose money
  // buys part of its need, and a rich firm of country 1 (not cleared: 0, 5).
  for (int profile = 0; profile < 2; ++profile) {
    SCOPED_TRACE(profile);
    for (int i = 0; i < n; ++i) {
      random_firm(f, i, rng);
      f.country[i] = static_cast<std::uint16_t>(profile);
      f.flags[i] = profile == 0 ? firm_flag::kKyc : 0;
      f.partners[i] = 0;
      f.employees[i] = 50.0f;
      f.W[i] = profile == 0 ? 7.8e6 : 1e9;  // money 3,000 $ (part of its need), or all of it
      f.b[i] = 1.0f;
      f.revenue[i] = 1e5f;
    }
    const int c = profile;
    const double B = spec_budget(w, 1.0, f.W[0], f.revenue[0]);
    const double q1 = std::max(50.0 * w.tau[0], w.k.q_min);
    std::vector<int> gens;
    std::vector<double> u;
    for (int g = 0; g < World::kG; ++g)
      if (spec_firm_eligible(w, c, profile == 0, 0, g)) {
        gens.push_back(g);
        u.push_back(spec_utility(w, B, q1, c, g));
      }
    ASSERT_GE(gens.size(), 2u);
    const std::vector<double> p = logit(u, w.k.switch_noise);
    std::vector<double> counts(gens.size(), 0.0);
    for (int i = 0; i < n; ++i) {
      const std::uint8_t g = firm_pick(i, w.k, f).generation;
      const auto at = std::find(gens.begin(), gens.end(), g);
      ASSERT_NE(at, gens.end()) << "an ineligible generation " << int(g);
      counts[at - gens.begin()] += 1;
    }
    const int df = static_cast<int>(gens.size()) - 1;
    EXPECT_LT(chi2_statistic(counts, p, n), chi2_critical(df))
        << "probabilities " << ::testing::PrintToString(p) << " counts " << ::testing::PrintToString(counts);
  }
}

TEST(OracleFirms, ProductivityFollowsSection2_7) {
  // u_i = φ·K_i·min(1, alloc/(q·h_g))^ψ + spill_c(t−1) for a firm that bought compute or
  // holds seats (else spill_c alone); A ← A·max(0, 1 + g0 + ρ·u + σ_A·ε) with ε the
  // firm's Productivity draw of the tick; lnA_AI += ln(1 + ρ·u).
  World w;
  w.k.rho = 0.05;
  w.k.psi = 0.6;
  const double spill[World::kC] = {0.0, 0.3};
  const double g0 = 0.002, sigma_A = 0.02;
  const int n = 3000;
  HostArrays<Firms> a = test::filled<Firms>(n);
  const FirmView f = a.view();
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> unit(0, 1);
  int bought = 0, partial = 0;
  for (int i = 0; i < n; ++i) {
    random_firm(f, i, rng);
    const double r = unit(rng);
    const int g = static_cast<int>(unit(rng) * World::kG);
    f.generation[i] = static_cast<std::uint8_t>(g);
    f.provider[i] = w.provider[g];
    const double qh = static_cast<double>(f.employees[i]) * w.tau[0] * w.h[g];
    if (r < 0.7) {
      f.flags[i] = static_cast<std::uint8_t>(f.flags[i] | (r < 0.5 ? firm_flag::kBuying : firm_flag::kSeats));
      f.alloc[i] = static_cast<float>(qh * 1.5 * unit(rng));
      f.K[i] = static_cast<float>(w.K[g]);
    }
    const float A0 = f.A[i], L0 = f.lnA_AI[i];
    double u = spill[f.country[i]];
    if (r < 0.7) {
      u += w.k.phi * f.K[i] * std::pow(std::min(1.0, f.alloc[i] / qh), w.k.psi);
      ++bought;
      partial += f.alloc[i] < qh;
    }
    Rng draw(w.k.seed, w.k.replicate, i, w.k.tick, Stream::Productivity);
    const double eps = draw.normal();
    const double A = A0 * std::max(0.0, 1 + g0 + w.k.rho * u + sigma_A * eps);
    const double L = L0 + std::log(1 + w.k.rho * u);
    firm_productivity(i, w.k, table_of(spill), g0, sigma_A, f);
    EXPECT_NEAR(f.A[i], A, 1e-6 * A + 1e-30) << "firm " << i;
    EXPECT_NEAR(f.lnA_AI[i], L, 1e-6 * std::abs(L) + 1e-9) << "firm " << i;
  }
  EXPECT_GT(bought, 1000);
  EXPECT_GT(partial, 500);
}

TEST(OracleFirms, PoolTermsAndWealthFollowSection2_8) {
  // Pass 1: w·A·e and w·e·A^σ. Pass 2: revenue = e·A^σ·rate_(c,s); W += revenue − wages
  // − other_cost·revenue − compute (π·alloc + F_access for buyers at the price of their
  // class, seats·seat_price on seats); ai_value += revenue·(1 − exp(−σ·lnA_AI)); a firm
  // with W below −exit_months·wages is replaced by an entrant (A = mean A of its segment
  // × lognormal(0, entrant_sigma), new b, W = 3 months of its pool revenue, flags cleared).
  World w;
  const int n = 4000;
  HostArrays<Firms> a = test::filled<Firms>(n);
  const FirmView f = a.view();
  const double rate[World::kC] = {40.0, 9.0}, meanA[World::kC] = {1.3, 0.6}, wage[World::kC] = {4000.0, 600.0};
  const double spend[World::kP] = {2500.0, 1900.0, 2100.0}, home[World::kP] = {2100.0, 1900.0, 2100.0};
  FirmWealthConsts k{};
  k.seed = 3, k.replicate = 1, k.tick = 8;
  k.pool.n_sectors = 1;
  k.pool.rate = table_of(rate);
  k.seg_meanA = table_of(meanA);
  k.wage = table_of(wage);
  k.spend_price = table_of(spend);
  k.home_price = table_of(home);
  k.seat_price = table_of(w.seat_price);
  k.first_resort = table_of(w.first_resort);
  k.lever_country = 0;
  k.pool.sigma_c = 2.5, k.other_cost = 0.3, k.access_cost = 800, k.exit_months = 2, k.entrant_sigma = 0.4;
  k.budget_sigma = 0.7;
  std::mt19937_64 rng(13);
  std::uniform_real_distribution<double> unit(0, 1);
  int exits = 0, stays = 0, home_buyers = 0, seat_firms = 0;
  for (int i = 0; i < n; ++i) {
    random_firm(f, i, rng);
    const int c = f.country[i];
    const double r = unit(rng);
    const int p = static_cast<int>(unit(rng) * World::kP);
    f.provider[i] = static_cast<std::uint8_t>(p);
    f.W[i] = 1e5 * (unit(rng) - 0.6) * f.employees[i];
    if (r < 0.4) {
      f.flags[i] = static_cast<std::uint8_t>(f.flags[i] | firm_flag::kBuying | firm_flag::kUsedAI);
      f.alloc[i] = static_cast<float>(20 * unit(rng));
    } else if (r < 0.6) {
      f.flags[i] = static_cast<std::uint8_t>(f.flags[i] | firm_flag::kSeats);
      f.seats[i] = static_cast<float>(30 * unit(rng));
    }
    double terms[2];
    pool_terms(w.k.layout, f, k.pool.sigma_c, i, terms);
    const double wt = (f.flags[i] & firm_flag::kLarge) ? 1.0 : w.w_small[c * kSizeBands];
    const double A = f.A[i], e = f.employees[i];
    EXPECT_NEAR(terms[0], wt * A * e, 1e-12 * terms[0]);
    EXPECT_NEAR(terms[1], wt * e * std::pow(A, k.pool.sigma_c), 1e-12 * terms[1]);

    const double revenue = e * std::pow(A, k.pool.sigma_c) * rate[c], wages = e * wage[c];
    double compute = 0;
    if (r < 0.4) {
      const bool is_home = w.first_resort[p] && c == 0;
      home_buyers += is_home;
      compute = (is_home ? home[p] : spend[p]) * f.alloc[i] + k.access_cost;
    } else if (r < 0.6) {
      compute = f.seats[i] * w.seat_price[p];
      ++seat_firms;
    }
    const double W = f.W[i] + revenue - wages - k.other_cost * revenue - compute;
    const double ai = f.ai_value[i] + revenue * (1 - std::exp(-k.pool.sigma_c * f.lnA_AI[i]));
    const std::uint8_t strata = f.flags[i] & (firm_flag::kLarge | firm_flag::kDefender);
    const bool exits_now = W < -k.exit_months * wages;
    EXPECT_EQ(firm_wealth(i, k, f), exits_now) << "firm " << i;
    if (!exits_now) {
      ++stays;
      EXPECT_NEAR(f.W[i], W, 1e-9 * std::abs(W) + 1e-6) << "firm " << i;
      EXPECT_NEAR(f.revenue[i], revenue, 1e-6 * revenue);
      EXPECT_NEAR(f.ai_value[i], ai, 1e-9 * std::abs(ai) + 1e-9);
      continue;
    }
    ++exits;
    Rng draw(k.seed, k.replicate, i, k.tick, Stream::Entrant);
    const double z_A = draw.normal(), z_b = draw.normal();
    const double A1 = meanA[c] * std::exp(k.entrant_sigma * z_A);
    const double earn = e * std::pow(static_cast<double>(static_cast<float>(A1)), k.pool.sigma_c) * rate[c];
    EXPECT_NEAR(f.A[i], A1, 1e-6 * A1);
    EXPECT_NEAR(f.b[i], std::exp(k.budget_sigma * z_b - 0.5 * k.budget_sigma * k.budget_sigma), 1e-6);
    EXPECT_NEAR(f.W[i], 3 * earn, 1e-6 * earn);
    EXPECT_EQ(f.flags[i], strata | firm_flag::kEntered);
    EXPECT_EQ(f.provider[i], kNone);
    EXPECT_EQ(f.partners[i], 0);
    EXPECT_EQ(f.ai_value[i], 0.0);
  }
  EXPECT_GT(exits, 200);  // the random firms cover each case
  EXPECT_GT(stays, 1000);
  EXPECT_GT(home_buyers, 100);
  EXPECT_GT(seat_firms, 300);
}

TEST(OracleFirms, PriceTakerPoolLeavesTheAgentOut) {
  // §2.8 (v5, pool_price_taker): o_i = (E_cs − w_i·e_i)/(Z_cs − w_i·e_i·A_i^σ), the others'
  // employees per unit of w·e·A^σ, which agent i's own A cannot move (the segment's E/Z
  // when it is alone); agent i earns ω·T_s + (1−ω)·P_cs·o_i/Σ_j w_j·e_j·A_j^σ·o_j, so the
  // segment's local revenues sum to (1−ω)·P_cs. Off: the segment's rate, whatever the agent.
  World w;
  const int n = 60;
  HostArrays<Firms> a = test::filled<Firms>(n + 1);
  const FirmView f = a.view();
  std::mt19937_64 rng(21);
  const double sigma = 2.5, omega = 0.3, P = 7e8, traded = 55.0;
  // Segment 0 (country 0) holds agents 0..n−1; segment 1 (country 1) agent n alone.
  double E[2] = {0, 0}, Z[2] = {0, 0};
  auto weight = [&](int i) { return (f.flags[i] & firm_flag::kLarge) ? 1.0 : w.w_small[f.country[i] * kSizeBands]; };
  auto units = [&](int i) { return weight(i) * f.employees[i] * std::pow(static_cast<double>(f.A[i]), sigma); };
  for (int i = 0; i <= n; ++i) {
    random_firm(f, i, rng);
    f.country[i] = static_cast<std::uint16_t>(i < n ? 0 : 1);
    f.band[i] = 0;
    E[f.country[i]] += weight(i) * f.employees[i];
    Z[f.country[i]] += units(i);
  }
  const double rate[2] = {omega * traded, omega * traded};
  double own[2] = {0, 0};
  PoolRule r{};
  r.n_sectors = 1, r.sigma_c = sigma, r.price_taker = true;
  r.layout.w_small = table_of(w.w_small);
  r.rate = table_of(rate), r.own = table_of(own), r.E = table_of(E), r.Z = table_of(Z);
  double R = 0;
  for (int i = 0; i < n; ++i) {
    const double o = (E[0] - weight(i) * f.employees[i]) / (Z[0] - units(i));
    EXPECT_NEAR(pool_others(r, f, i), o, 1e-10 * o) << "agent " << i;
    R += units(i) * o;
  }
  own[0] = (1 - omega) * P / R;
  double local = 0;
  for (int i = 0; i < n; ++i) {
    const double want = omega * traded + own[0] * pool_others(r, f, i);
    EXPECT_NEAR(pool_rate(r, f, i), want, 1e-12 * want) << "agent " << i;
    local += units(i) * (pool_rate(r, f, i) - omega * traded);
  }
  EXPECT_NEAR(local, (1 - omega) * P, 1e-9 * P);
  // Its own A cannot move agent 0's o: double A_0 and pass 1's Z with it; the others' o falls.
  const double o0 = pool_others(r, f, 0), o1 = pool_others(r, f, 1);
  const double x0 = units(0);
  f.A[0] = 2 * f.A[0];
  Z[0] += units(0) - x0;
  EXPECT_NEAR(pool_others(r, f, 0), o0, 1e-9 * o0);
  EXPECT_LT(pool_others(r, f, 1), o1);
  // Alone in segment 1: the whole segment's E/Z.
  EXPECT_NEAR(pool_others(r, f, n), E[1] / Z[1], 1e-12 * E[1] / Z[1]);
  // Off: the table's rate, whatever the agent.
  r.price_taker = false;
  EXPECT_EQ(pool_rate(r, f, 3), rate[0]);
  EXPECT_EQ(pool_rate(r, f, n), rate[1]);
}

// ---------------------------------------------------------------------------
// Users (§2.5 demand, §2.6(e) plan weights, §2.9 adoption and plans, §2.4 choice)
// ---------------------------------------------------------------------------

/// The users' constants over the world's generation table.
struct UserWorld {
  World w;
  std::uint64_t user_begin[World::kC + 1] = {0, 0, 0};
  double w_user[World::kC] = {1000.0, 400.0};
  double wage[World::kC] = {5000.0, 900.0};
  double adopt_rate[World::kC] = {0.4, 0.25};
  double plan_mult[World::kP] = {1.7, 1.0, 1.3};
  UserConsts k{};
  UserWorld() {
    k.seed = 4, k.replicate = 0, k.tick = 6, k.n_countries = World::kC;
    k.user_begin = table_of(user_begin);
    k.w_user = table_of(w_user);
    k.wage = table_of(wage);
    k.adopt_rate = table_of(adopt_rate);
    k.zeta = table_of(w.zeta);
    k.quota_provider = table_of(w.quota);
    k.plan_mult = table_of(plan_mult);
    k.deal_mask = table_of(w.deal);
    k.omega_inc = 0.02, k.omega_plan = 0.01, k.f_free = 0.1;
    const double price[3] = {0, 20, 200}, need[3] = {1, 4, 20}, weight[3] = {1, 5, 25};
    for (int j = 0; j < 3; ++j) k.plan_price[j] = price[j], k.plan_need[j] = need[j], k.plan_weight[j] = weight[j];
    k.plan_cap = 2, k.need_scale = 3.5;
    k.phi = 1, k.switch_noise = 0.5, k.p_switch = 0.3;
    k.gens = w.k.gens;
  }
  /// §2.9 (v5) plan j's price on provider p: list × m_p.
  double price(int j, int p) const { return k.plan_price[j] * plan_mult[p]; }
  /// §2.9 afford_u = max(f_free, min(1, ω_inc·income / price[plus])).
  double afford(double income, int p) const {
    return std::max(k.f_free, std::min(1.0, k.omega_inc * income / price(1, p)));
  }
  /// §2.9 pro if ω_plan·income ≥ its price, else plus if ≥ its price, else free.
  std::uint8_t plan(double income, int p) const {
    const double m = k.omega_plan * income;
    return m >= price(2, p) ? kPlanPro : m >= price(1, p) ? kPlanPlus : kPlanFree;
  }
  /// §2.5 min(need_u, plancap_u) × ζ_c on tier-1-homed providers,
  /// need_u = need_scale·plan_need·n_u, plancap_u = plan_cap·need_u/n_u.
  double cap(int c, int p, std::uint8_t plan, double n) const {
    const double base = k.need_scale * k.plan_need[plan - 1];
    return std::min(base * n, k.plan_cap * base) * (w.quota[p] ? w.zeta[c] : 1.0);
  }
  /// §2.4 for a user: GENERAL with align ≥ 0, or OPEN.
  bool eligible(int c, int g) const {
    return w.stage[g] == kStageOpen || (w.stage[g] == kStageGeneral && w.al(c, w.provider[g]) >= 0);
  }
};

/// Fills user i with a random user of the world (every field from known values).
void random_user(const UserView& v, std::uint64_t i, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> unit(0, 1);
  std::lognormal_distribution<double> logn(0.0, 1.2);
  v.country[i] = static_cast<std::uint16_t>(unit(rng) < 0.5 ? 0 : 1);
  const int g = unit(rng) < 0.5 ? 0 : unit(rng) < 0.5 ? 3 : 5;  // GENERAL or OPEN generations
  v.generation[i] = static_cast<std::uint8_t>(g);
  v.provider[i] = World{}.provider[g];
  v.plan[i] = static_cast<std::uint8_t>(1 + static_cast<int>(3 * unit(rng)));
  v.flags[i] = user_flag::kAdopter;
  v.z[i] = static_cast<float>(logn(rng));
  v.n[i] = static_cast<float>(logn(rng));
  v.use[i] = 0.0f;
}

TEST(OracleUsers, PlanAffordCapAndBidFollowSections2_5And2_9) {
  UserWorld uw;
  const UserConsts& k = uw.k;
  const int n = 5000;
  HostArrays<Users> a = test::filled<Users>(n);
  const UserView v = a.view();
  std::mt19937_64 rng(21);
  std::vector<int> plans(4, 0);
  int capped_by_plan = 0, under_quota = 0;
  for (int i = 0; i < n; ++i) {
    random_user(v, i, rng);
    const int c = v.country[i];
    const double income = v.z[i] * uw.wage[c];
    for (int p = 0; p < World::kP; ++p) {
      EXPECT_NEAR(user_afford(k, income, p), uw.afford(income, p), 1e-12) << "user " << i << " provider " << p;
      EXPECT_EQ(user_plan(k, income, p), uw.plan(income, p)) << "user " << i << " provider " << p;
      plans[uw.plan(income, p)] += 1;
    }
    const int g = v.generation[i], p = v.provider[i];
    const double cap = uw.cap(c, p, v.plan[i], v.n[i]);
    EXPECT_NEAR(user_cap(k, v, i), cap, 1e-12 * cap) << "user " << i;
    capped_by_plan += v.n[i] > k.plan_cap;
    under_quota += uw.w.quota[p] && c == 1;
    UserBid b{};
    ASSERT_EQ(user_bid(i, k, v, &b), p);
    EXPECT_EQ(b.weight, uw.w_user[c]);
    EXPECT_NEAR(b.cap, cap, 1e-12 * cap);
    EXPECT_EQ(b.plan_weight, k.plan_weight[v.plan[i] - 1]) << "user " << i;
    EXPECT_EQ(b.cost, uw.w.h[g]);
    EXPECT_EQ(b.host_floor, ((uw.w.deal[c] >> p) & 1u) != 0);
  }
  for (int j = kPlanFree; j <= kPlanPro; ++j) EXPECT_GT(plans[j], 200) << "plan " << j;
  EXPECT_GT(capped_by_plan, 500);
  EXPECT_GT(under_quota, 500);
  // Not adopters, or nothing eligible: no bid.
  v.flags[0] = 0;
  UserBid b{};
  EXPECT_EQ(user_bid(0, k, v, &b), -1);
}

TEST(OracleUsers, AdoptionIsBernoulliAtTheRateTimesAffordability) {
  // §2.9: a non-adopter adopts with probability adopt_rate_c·afford_u (afford at the
  // prices of the provider it would choose), then takes the plan its income affords there.
  // Users in groups of one income each; chi-square of adopters per group against the
  // binomial expectation (df = groups).
  UserWorld uw;
  UserConsts& k = uw.k;
  k.switch_noise = 0.0;  // the choice is then the best eligible K: generation 3 (provider 1) in country 0
  const int groups = 12, per = 4000, n = groups * per;
  HostArrays<Users> a = test::filled<Users>(n);
  const UserView v = a.view();
  for (int i = 0; i < n; ++i) {
    v.country[i] = 0;
    v.provider[i] = kNone;
    v.generation[i] = kNone;
    v.plan[i] = kPlanNone;
    v.flags[i] = 0;
    v.z[i] = static_cast<float>(0.01 * std::pow(1.6, i / per));  // income 50 $ … 9,000 $ a month
    v.n[i] = 1.0f;
    v.use[i] = 0.0f;
  }
  std::vector<double> adopted(groups, 0.0);
  for (int i = 0; i < n; ++i) {
    user_adopt(i, k, v);
    if (!(v.flags[i] & user_flag::kAdopter)) continue;
    adopted[i / per] += 1;
    const double income = v.z[i] * uw.wage[0];
    EXPECT_EQ(v.flags[i], user_flag::kAdopter | user_flag::kNew);
    ASSERT_EQ(v.generation[i], 3);
    EXPECT_EQ(v.provider[i], 1);
    EXPECT_EQ(v.plan[i], uw.plan(income, 1)) << "user " << i;
  }
  double x = 0;
  for (int j = 0; j < groups; ++j) {
    const double p = uw.adopt_rate[0] * uw.afford(v.z[j * per] * uw.wage[0], 1);
    x += (adopted[j] - per * p) * (adopted[j] - per * p) / (per * p * (1 - p));
  }
  EXPECT_LT(x, chi2_critical(groups));
  // Adopters keep their plan; under priced plans they step down to what they afford
  // (never up); under plan_repick they take it either way.
  std::mt19937_64 rng(8);
  for (int mode = 0; mode < 3; ++mode) {
    k.plan_priced = mode == 1;
    k.plan_repick = mode == 2;
    int down = 0, up = 0;
    for (int i = 0; i < 3000; ++i) {
      random_user(v, i, rng);
      const std::uint8_t before = v.plan[i];
      const std::uint8_t afford = uw.plan(v.z[i] * uw.wage[v.country[i]], v.provider[i]);
      user_adopt(i, k, v);
      const std::uint8_t want = mode == 0 ? before : mode == 1 ? std::min(before, afford) : afford;
      EXPECT_EQ(v.plan[i], want) << "mode " << mode << " user " << i;
      down += afford < before;
      up += afford > before;
    }
    EXPECT_GT(down, 300);
    EXPECT_GT(up, 100);
  }
}

TEST(OracleUsers, ChoiceAndSwitchFollowTheLogitProbabilities) {
  // §2.4 for users: among the eligible generations, argmax of φ·K_g + noise·γ, so
  // probabilities exp(φK/s)/Σ; an adopter re-chooses its provider with probability p_switch
  // (else it re-picks among its provider's generations).
  UserWorld uw;
  const UserConsts& k = uw.k;
  const int n = 30000;
  for (int c = 0; c < World::kC; ++c) {
    SCOPED_TRACE(c);
    std::vector<int> gens;
    std::vector<double> u;
    for (int g = 0; g < World::kG; ++g)
      if (uw.eligible(c, g)) {
        gens.push_back(g);
        u.push_back(k.phi * uw.w.K[g]);
      }
    const std::vector<double> p = logit(u, k.switch_noise);
    std::vector<double> counts(gens.size(), 0.0);
    for (int i = 0; i < n; ++i) {
      Rng noise(k.seed, k.replicate, i, k.tick, Stream::ChoiceNoise);
      const std::uint8_t g = choose_user_generation(k.gens, c, k.phi, k.switch_noise, kNone, noise);
      const auto at = std::find(gens.begin(), gens.end(), g);
      ASSERT_NE(at, gens.end()) << "an ineligible generation " << int(g);
      counts[at - gens.begin()] += 1;
    }
    if (gens.size() > 1) {
      EXPECT_LT(chi2_statistic(counts, p, n), chi2_critical(static_cast<int>(gens.size()) - 1))
          << "probabilities " << ::testing::PrintToString(p) << " counts " << ::testing::PrintToString(counts);
    }
    // Adopters on provider 2 (its one generation, OPEN): they leave it only when they
    // re-choose (p_switch) and the choice among all falls elsewhere.
    const double p_stay_all = p[std::find(gens.begin(), gens.end(), 5) - gens.begin()];
    HostArrays<Users> a = test::filled<Users>(n);
    const UserView v = a.view();
    std::mt19937_64 rng(31);
    double moved = 0;
    for (int i = 0; i < n; ++i) {
      random_user(v, i, rng);
      v.country[i] = static_cast<std::uint16_t>(c);
      v.generation[i] = 5;
      v.provider[i] = 2;
      user_choose(i, k, v);
      moved += v.provider[i] != 2;
      ASSERT_TRUE(uw.eligible(c, v.generation[i]));
      ASSERT_EQ(v.provider[i], uw.w.provider[v.generation[i]]);
    }
    const double pm = k.p_switch * (1 - p_stay_all);
    EXPECT_LT(std::abs(moved - n * pm), 5 * std::sqrt(n * pm * (1 - pm))) << "moved " << moved << " of " << n;
  }
}

// ---------------------------------------------------------------------------
// Host rules: pool rates (§2.8), spillover (§2.10)
// ---------------------------------------------------------------------------

// --- (v5) compute caps: §2.6(e) the plan layer's fill in H100e, §2.4 the served share

/// The level a user or seat of country c rises to on provider p: max(λ, λ1) for a deal
/// host of p (its head start), else λ.
double spec_level(const World& w, const WaterLevel& l, int c, int p) {
  return ((w.deal[c] >> p) & 1u) && l.lambda_floor > l.lambda ? l.lambda_floor : l.lambda;
}

/// §2.4 (v5) the share of demand at full caps `cap` that a generation of cost h serves at
/// level Λ (H100e per plan weight) with plan weight w_plan: min(1, Λ·w_plan/(h·cap))^ψ,
/// 1 when every cap fitted (Λ = ∞).
double spec_served(double level, double w_plan, double h, double cap, double psi) {
  if (std::isinf(level) || !(cap > 0)) return 1.0;
  return std::pow(std::min(1.0, level * w_plan / (h * cap)), psi);
}

TEST(OracleUsers, ComputeCapsFillInComputeAndChooseByTheServedShare) {
  // §2.6(e) (v5) compute caps: at level Λ_p a user of plan weight w_plan on generation g
  // uses min(c_u, Λ_p·w_plan/h_g) Mtok (so its fill weight is w_plan/h_g) and is capped
  // when Λ_p·w_plan/h_g < c_u. §2.4: an adopter that re-chooses (its provider with
  // p_switch, else its generation with p_repick; always when its generation is no longer
  // eligible) takes the argmax of φ·K_g·served_g + noise·γ, served_g the share of its cap
  // on g's provider served at that provider's level of t−1 (the deal host's head start
  // included); otherwise it keeps its generation.
  UserWorld uw;
  UserConsts& k = uw.k;
  uw.w.stage[1] = kStageGeneral;  // provider 0: two generations a user may use, K 2 (h 1e-3) and K 3 (h 2e-3)
  WaterLevel levels[World::kP] = {{2e-4, 0.0, 0, 0}, {fp::kInf, 0.0, 0, 0}, {1e-5, 4e-4, 0, 0}};
  k.level_prev = table_of(levels);
  k.compute_caps = true;
  k.psi = 0.5;
  k.p_repick = 0.4;
  k.need_scale = 0.5;  // caps of 0.5–100 Mtok against tokens at the levels of 0.2–10
  const int n = 20000;
  HostArrays<Users> a = test::filled<Users>(n);
  const UserView v = a.view();
  std::mt19937_64 rng(41);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  int kept = 0, changed_by_caps = 0, capped = 0, host_users = 0;
  for (int i = 0; i < n; ++i) {
    random_user(v, i, rng);
    const int c = v.country[i], plan = v.plan[i], held = v.generation[i];
    const double w_plan = k.plan_weight[plan - 1];
    // The fill (§2.6e) at a random level.
    UserBid b{};
    const int p = user_bid(i, k, v, &b);
    ASSERT_TRUE(held >= 0 && held < World::kG);
    ASSERT_EQ(p, uw.w.provider[held]);
    EXPECT_EQ(b.plan_weight, w_plan / uw.w.h[held]) << "user " << i;
    const double cap = uw.cap(c, p, static_cast<std::uint8_t>(plan), v.n[i]);
    const WaterLevel now{std::exp(std::log(1e-6) + unit(rng) * std::log(1e3)), 0.0, 0, 0};
    WaterLevel now_of[World::kP] = {now, now, now};
    user_settle(i, k, table_of(now_of), v);
    const double tokens = now.lambda * w_plan / uw.w.h[held];
    EXPECT_NEAR(v.use[i], std::min(cap, tokens), 1e-6 * std::min(cap, tokens)) << "user " << i;
    EXPECT_EQ((v.flags[i] & user_flag::kCapped) != 0, tokens < cap) << "user " << i;
    capped += tokens < cap;
    // The served share of each generation it may use, at the levels of t−1.
    std::vector<double> served(World::kG, 0.0);
    for (int g = 0; g < World::kG; ++g) {
      if (!uw.eligible(c, g)) continue;
      const int q = uw.w.provider[g];
      const double cap_q = uw.cap(c, q, static_cast<std::uint8_t>(plan), v.n[i]);
      served[g] = spec_served(spec_level(uw.w, levels[q], c, q), w_plan, uw.w.h[g], cap_q, k.psi);
      EXPECT_NEAR((UserServed{k, v, static_cast<std::uint64_t>(i)}(g)), served[g], 1e-12)
          << "user " << i << " gen " << g;
      host_users += q == 2 && ((uw.w.deal[c] >> q) & 1u);
    }
    // The choice, with the agent's own draws.
    Rng draws(k.seed, k.replicate, i, k.tick, Stream::Switch);
    const bool switching = draws.uniform() < k.p_switch;
    const bool keeps = !switching && uw.eligible(c, held) && !(draws.uniform() < k.p_repick);
    auto pick = [&](int only, Rng& noise, bool with_caps) {
      int best = kNone;
      double best_u = 0;
      for (int g = 0; g < World::kG; ++g) {
        if (!uw.eligible(c, g) || (only != kNone && uw.w.provider[g] != only)) continue;
        const double u = k.phi * uw.w.K[g] * (with_caps ? served[g] : 1.0) + k.switch_noise * noise.gumbel();
        if (best == kNone || u > best_u) best = g, best_u = u;
      }
      return best;
    };
    auto choice = [&](bool with_caps) {
      Rng noise(k.seed, k.replicate, i, k.tick, Stream::ChoiceNoise);
      const int g = switching ? kNone : pick(p, noise, with_caps);
      return g != kNone ? g : pick(kNone, noise, with_caps);
    };
    const int want = keeps ? held : choice(true);
    user_choose(i, k, v);
    ASSERT_EQ(v.generation[i], want) << "user " << i << " keeps " << keeps;
    ASSERT_EQ(v.provider[i], uw.w.provider[want]);
    kept += keeps;
    changed_by_caps += !keeps && choice(false) != want;
  }
  // Each case is reached: kept and re-chosen, caps that change the choice, capped users
  // and deal hosts' head start.
  const double p_keep = (1 - k.p_switch) * (1 - k.p_repick);
  EXPECT_GT(kept, 0.8 * n * p_keep * 0.7);  // about 0.7 of the random users hold an eligible generation
  EXPECT_LT(kept, n * p_keep * 1.05);
  EXPECT_GT(changed_by_caps, 200);
  EXPECT_GT(capped, 2000);
  EXPECT_LT(capped, n - 2000);
  EXPECT_GT(host_users, 1000);
  // Without compute caps every adopter re-chooses each tick and nothing is weighed by cost.
  k.compute_caps = false;
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ((UserServed{k, v, static_cast<std::uint64_t>(i)}(0)), 1.0);
    UserBid b{};
    if (user_bid(i, k, v, &b) >= 0) {
      EXPECT_EQ(b.plan_weight, k.plan_weight[v.plan[i] - 1]);
    }
  }
}

TEST(OracleFirms, FirmAdoptsOnlyWhereAGenerationIsEligible) {
  // §2.9 (v5, firm_bass): a firm not yet an adopter adopts AI with probability
  // min(1, adopt_rate_c·employees^adopt_size), and only when a generation is eligible to it
  // (like a user); otherwise it stays a non-adopter and chooses nothing. Country 1 is
  // blocked from every provider here (align < 0, no OPEN generation); country 0 is not.
  World w;
  for (int p = 0; p < World::kP; ++p) w.align[1 * World::kP + p] = -1.0;
  w.stage[5] = kStageGeneral;
  const double rate[World::kC] = {1e9, 1e9};  // probability 1 wherever it may adopt
  w.k.adopt_rate = table_of(rate);
  w.k.adopt_size = 0.0;
  w.k.firm_bass = true;
  const int n = 2000;
  HostArrays<Firms> a = test::filled<Firms>(n);
  const FirmView f = a.view();
  std::mt19937_64 rng(17);
  int adopters = 0, blocked = 0;
  for (int i = 0; i < n; ++i) {
    random_firm(f, i, rng);
    f.flags[i] = static_cast<std::uint8_t>(f.flags[i] & ~firm_flag::kAdopted);
    const int c = f.country[i];
    bool any = false;
    for (int g = 0; g < World::kG; ++g) any |= spec_firm_eligible(w, c, f.flags[i] & firm_flag::kKyc, f.partners[i], g);
    const FirmPick pick = firm_pick(i, w.k, f);
    EXPECT_EQ(static_cast<bool>(pick.flags & firm_flag::kAdopted), any) << "firm " << i << " country " << c;
    if (!any) {
      EXPECT_EQ(pick.generation, kNone) << "firm " << i;
    }
    adopters += any;
    blocked += !any;
  }
  EXPECT_GT(adopters, 500);  // both cases occur
  EXPECT_GT(blocked, 500);
}

TEST(OracleFirms, SeatsUnderComputeCapsTakeTheGenerationThatServesThemBest) {
  // §2.6(e) (v5): under compute caps a firm's seats go to the generation of its API
  // provider that a user could use and that scores best as a seat,
  // K_x·min(1, Λ_p(t−1)·w_seat/(h_x·cap_seat·ζ))^ψ (ties: the lower index), and weigh
  // w_seat/h_x in the fill; without them, its API generation when a user could use it,
  // else that provider's best-K one.
  World w;
  w.stage[1] = kStageGeneral;  // provider 0: K 2 (h 1e-3) and K 3 (h 8e-3) for users and seats
  w.h[1] = 8e-3;               // (with h only 2× dearer, ψ = 1/2 always favours the frontier's K 3)
  WaterLevel levels[World::kP] = {{0, 0.0, 0, 0}, {fp::kInf, 0.0, 0, 0}, {1e-5, 4e-4, 0, 0}};
  w.k.level_prev = table_of(levels);
  w.k.compute_caps = true;
  int frontier = 0, older = 0;
  for (int c = 0; c < World::kC; ++c)
    for (double level : {1e-4, 1e-3, 8e-3, 1e-2, 5e-2, fp::kInf}) {
      levels[0].lambda = level;
      for (int g = 0; g < World::kG; ++g) {
        const int p = w.provider[g];
        int want = kNone;
        double best = 0;
        for (int x = 0; x < World::kG; ++x) {
          if (w.provider[x] != p || !(w.stage[x] == kStageOpen || (w.stage[x] == kStageGeneral && w.al(c, p) >= 0)))
            continue;
          const double u = w.K[x] * spec_served(spec_level(w, levels[p], c, p), w.k.seat_weight, w.h[x],
                                                w.k.seat_cap * spec_zeta(w, c, p), w.k.psi);
          if (want == kNone || u > best) want = x, best = u;
        }
        ASSERT_EQ(seat_generation(w.k, c, g), want) << "country " << c << " gen " << g << " level " << level;
        if (p == 0 && want == 1) ++frontier;
        if (p == 0 && want == 0) ++older;
        if (want == kNone) continue;
        FirmView f{};
        HostArrays<Firms> a = test::filled<Firms>(1);
        f = a.view();
        f.country[0] = static_cast<std::uint16_t>(c);
        f.flags[0] = 0;
        UserBid b{};
        ASSERT_EQ(seat_bid(0, w.k, f, FirmSeats{2.0, want}, &b), w.provider[want]);
        EXPECT_EQ(b.plan_weight, w.k.seat_weight / w.h[want]);
      }
    }
  EXPECT_GT(frontier, 0);  // an ample level keeps seats on the frontier
  EXPECT_GT(older, 0);     // a tight one moves them to the older, cheaper model
  // v4: the API generation itself when a user could use it.
  w.k.compute_caps = false;
  EXPECT_EQ(seat_generation(w.k, 0, 0), 0);
  EXPECT_EQ(seat_generation(w.k, 0, 2), 1);  // TRUSTED: the provider's best-K one users may use
}

TEST(OracleHost, PoolRatesFollowSection2_8) {
  // P_cs = GDP_c/12·Y_cs/Y_c; rate_cs = (1−ω)·P_cs/Z_cs + ω·Σ_c' P_c's / Σ_c' Z_c's.
  const int C = 7, S = 3;
  std::mt19937_64 rng(2);
  std::uniform_real_distribution<double> unit(0.1, 2);
  // With `own` (price_taker): own_cs = (1−ω)·P_cs and rate_cs = ω·Σ_c' P_c's / Σ_c' Z_c's.
  std::vector<double> Y(C * S), Z(C * S), gdp(C), rate(C * S), taker(C * S), own(C * S);
  for (double& y : Y) y = unit(rng);
  for (double& z : Z) z = unit(rng);
  for (double& g : gdp) g = 1e9 * unit(rng);
  for (double omega : {0.0, 0.3, 1.0}) {
    pool_rates(C, S, Y.data(), Z.data(), gdp.data(), omega, rate.data());
    pool_rates(C, S, Y.data(), Z.data(), gdp.data(), omega, taker.data(), own.data());
    for (int c = 0; c < C; ++c)
      for (int s = 0; s < S; ++s) {
        double Yc = 0, Ps = 0, Zs = 0;
        for (int j = 0; j < S; ++j) Yc += Y[c * S + j];
        for (int d = 0; d < C; ++d) {
          double Yd = 0;
          for (int j = 0; j < S; ++j) Yd += Y[d * S + j];
          Ps += gdp[d] / 12 * Y[d * S + s] / Yd;
          Zs += Z[d * S + s];
        }
        const double P = gdp[c] / 12 * Y[c * S + s] / Yc;
        const double want = (1 - omega) * P / Z[c * S + s] + omega * Ps / Zs;
        EXPECT_NEAR(rate[c * S + s], want, 1e-12 * want) << "omega " << omega << " c " << c << " s " << s;
        EXPECT_NEAR(taker[c * S + s], omega * Ps / Zs, 1e-12 * want) << "omega " << omega;
        EXPECT_NEAR(own[c * S + s], (1 - omega) * P, 1e-12 * P) << "omega " << omega;
      }
  }
}

TEST(OracleHost, SpilloverFollowsSection2_10) {
  // spill_c = ξ·(Σ_{j≠c} a_cj·K̄_j / Σ_{j≠c} a_cj − K̄_c)⁺, a_cj = GDP_j·tier_sim(|tier_c − tier_j|).
  const int C = 9;
  std::mt19937_64 rng(4);
  std::uniform_real_distribution<double> unit(0, 1);
  std::vector<double> gdp(C), Kbar(C);
  std::vector<int> tier(C);
  for (int c = 0; c < C; ++c) gdp[c] = 1e9 * (0.1 + unit(rng)), Kbar[c] = 3 * unit(rng), tier[c] = 1 + c % 3;
  const std::vector<double> sim = {1.0, 0.5, 0.2};
  const double xi = 0.07;
  const std::vector<double> got = spillover(gdp, tier, Kbar, sim, xi);
  int positive = 0;
  for (int c = 0; c < C; ++c) {
    double num = 0, den = 0;
    for (int j = 0; j < C; ++j) {
      if (j == c) continue;
      const double a = gdp[j] * sim[std::abs(tier[c] - tier[j])];
      num += a * Kbar[j];
      den += a;
    }
    const double want = xi * std::max(num / den - Kbar[c], 0.0);
    EXPECT_NEAR(got[c], want, 1e-12) << "country " << c;
    positive += want > 0;
  }
  EXPECT_GT(positive, 2);
  EXPECT_LT(positive, C);  // some countries are ahead of their neighbours
}

// ---------------------------------------------------------------------------
// Providers (§2.1 capacity and the moratorium, §2.2 training, stages and followers,
// §2.3 serving cost, §2.6 forecast), on the Labs stepped by hand
// ---------------------------------------------------------------------------

/// §2.2 the stage of a generation at tick t: GOV, TRUSTED, KYC by the home's stage
/// lengths from t_g; OPEN under open weights from lever_tick, n_open after GENERAL.
Stage spec_stage(const Params& p, const Provider& v, const Generation& g, int t) {
  const int age = t - g.t_g;
  if (age < v.d_gov) return kStageGov;
  if (age < v.d_gov + v.d_trusted) return kStageTrusted;
  if (age < v.d_gov + v.d_trusted + v.d_kyc) return kStageKyc;
  const int general = g.t_g + v.d_gov + v.d_trusted + v.d_kyc;
  return p.open_weights && t >= p.lever_tick && t >= general + p.n_open ? kStageOpen : kStageGeneral;
}

TEST(OracleProviders, CapacityTrainingStagesAndForecastFollowSection2) {
  Params p = test::small_params(8000, 20000, 60);
  p.moratorium = true;
  p.open_weights = true;
  p.n_open = 3;
  p.lever_tick = 6;
  const auto cs = load_countries(p.countries);
  Labs m(p, cs);
  const int P = static_cast<int>(m.providers().size()), lead = static_cast<int>(p.lead);
  const int flagged = find_country(cs, p.lever_country);
  const std::vector<double> align = alignment_matrix(p, cs);
  double T_ref = 0;
  for (const Provider& v : m.providers())
    if (!v.follower) T_ref = std::max(T_ref, v.T);
  std::mt19937_64 rng(6);
  std::uniform_real_distribution<double> unit(0.5, 1.5);
  int moratorium_arrivals = 0, hosted_arrivals = 0, others_ordered = 0, follower_ticks = 0, opened = 0;
  std::vector<double> lead_hist;  // K_lead(t), t ≥ 0, from the spec
  auto K_lead_at = [&](int t) {
    return t < 0 ? p.K_lead0 - p.dK_release + t * p.K_trend : lead_hist.at(static_cast<std::size_t>(t));
  };
  for (int t = 0; t < 40; ++t) {
    SCOPED_TRACE("tick " + std::to_string(t));
    // §6 hosted orders (placed before the capacity step), for every provider at two ticks.
    if (t == 2 || t == 8)
      for (int q = 0; q < P; ++q) m.add_hosted_order(q, 500.0 * (q + 1), t);
    const std::vector<Provider> before = m.providers();
    m.step_capacity(p, t);
    for (int q = 0; q < P; ++q) {
      const Provider& v0 = before[q];
      const Provider& v = m.providers()[q];
      const double C_home = v0.C_home + v0.arrive_home[t], C_hosted = v0.C_hosted + v0.arrive_hosted[t];
      double pipeline = 0;
      for (std::size_t j = t + 1; j < v0.arrive_home.size(); ++j) pipeline += v0.arrive_home[j] + v0.arrive_hosted[j];
      const double C = C_home + C_hosted;
      const double x_cap = cs[v0.home].tier == 3 ? p.x_max_t3 : p.x_max;
      double order = std::max(
          0.0, std::min({p.bm * std::pow(p.g_cap, lead / 12.0) * v0.forecast / (1 - p.train_share) - C - pipeline,
                         std::max(v0.cash, 0.0) / p.capex, p.bm * x_cap * C}));
      const bool stopped = t >= p.lever_tick && v0.home == flagged;
      if (stopped) order = 0;
      EXPECT_DOUBLE_EQ(v.C_home, C_home) << v.name;
      EXPECT_DOUBLE_EQ(v.C_hosted, C_hosted) << v.name;
      EXPECT_NEAR(v.order, order, 1e-9 * std::max(order, 1.0)) << v.name;
      const double cash = v0.cash + (1 + p.bm * p.outside_finance) * v0.revenue - p.opex * C - p.capex * order;
      EXPECT_NEAR(v.cash, cash, 1e-12 * (std::abs(v0.cash) + v0.revenue + p.opex * C + p.capex * order)) << v.name;
      EXPECT_NEAR(v.arrive_home[t + lead], v0.arrive_home[t + lead] + order, 1e-9 * std::max(order, 1.0)) << v.name;
      for (std::size_t j = t + 1; j < v.arrive_hosted.size(); ++j) EXPECT_EQ(v.arrive_hosted[j], v0.arrive_hosted[j]);
      moratorium_arrivals += stopped && v0.arrive_home[t] > 0;
      hosted_arrivals += stopped && v0.arrive_hosted[t] > 0;
      others_ordered += t >= p.lever_tick && !stopped && order > 0;
    }
    // §2.2 training, K_own and the non-followers' K; then K_lead and the followers.
    const std::vector<Provider> trained = m.providers();
    m.step_training(p, t);
    for (int q = 0; q < P; ++q) {
      const Provider& v = m.providers()[q];
      const double T = trained[q].T + p.train_share * trained[q].capacity();
      EXPECT_NEAR(v.T, T, 1e-12 * T);
      const double K_own = p.K_lead0 + p.beta * std::log(T / T_ref) + v.offset;
      EXPECT_NEAR(v.K_own, K_own, 1e-9);
      if (!v.follower) {
        EXPECT_NEAR(v.K, K_own, 1e-9);
      }
    }
    double best = -1e300;
    int holder = -1;
    for (const Generation& g : m.generations()) {
      const Provider& v = m.providers()[g.provider];
      if (v.follower || spec_stage(p, v, g, t) < kStageKyc) continue;
      if (holder < 0 || g.K > best || (g.K == best && v.capacity() > m.providers()[holder].capacity()))
        best = g.K, holder = g.provider;
    }
    lead_hist.push_back(holder < 0 ? K_lead_at(t) : best);
    EXPECT_DOUBLE_EQ(m.K_lead(t), lead_hist.back());
    for (int q = 0; q < P; ++q) {
      const Provider& v = m.providers()[q];
      if (!v.follower) continue;
      ++follower_ticks;
      const bool blocked = holder >= 0 && align[v.home * P + holder] < 0;
      const int L =
          static_cast<int>(p.L0 + (p.crackdown && t >= p.lever_tick ? p.dL_cd : 0) + (blocked ? p.dL_api : 0));
      const double Kl = K_lead_at(t - L);
      const double K_f = Kl + p.chi * std::max(v.K_own - Kl, 0.0);
      EXPECT_NEAR(v.K, K_f, 1e-12) << v.name;
      int from = t;
      while (K_lead_at(from - 1) >= K_f) --from;
      EXPECT_EQ(v.lag, t - from) << v.name;
    }
    // §2.3 serving cost and §2.2 stages of every generation.
    m.step_serving_cost(p, t);
    const GenTableView view = m.view();
    for (int j = 0; j < view.n_gens; ++j) {
      const Generation& g = m.generations()[j];
      const Stage st = spec_stage(p, m.providers()[g.provider], g, t);
      EXPECT_EQ(view.stage[j], st) << "generation " << j;
      opened += st == kStageOpen;
      const double h =
          p.h0 * std::exp(-p.delta * t) * std::exp(p.kappa * (g.K - p.K_ref)) * std::exp(-p.eta * (t - g.t_g));
      EXPECT_NEAR(view.h[j], h, 1e-12 * h) << "generation " << j;
    }
    // §2.6 the provider's outcome and forecast F ← F + F_smooth·(demand − F).
    for (int q = 0; q < P; ++q) {
      const Provider& v = m.providers()[q];
      const double F = v.forecast, demand = (1 - p.train_share) * v.capacity() * unit(rng);
      const double revenue = demand * m.p_min() * unit(rng), price = m.p_min() * unit(rng);
      m.settle(q, revenue, price, 0.9 * price, demand, p.F_smooth);
      EXPECT_NEAR(m.providers()[q].forecast, F + p.F_smooth * (demand - F), 1e-12 * F);
      EXPECT_EQ(m.providers()[q].revenue, revenue);
      EXPECT_EQ(m.providers()[q].price, price);
      EXPECT_EQ(m.providers()[q].price_home, 0.9 * price);
    }
  }
  EXPECT_GT(moratorium_arrivals, 0);  // the pipeline of the flagged home still arrives
  EXPECT_GT(hosted_arrivals, 0);      // and so do its hosted orders
  EXPECT_GT(others_ordered, 0);       // the others keep ordering
  EXPECT_GT(follower_ticks, 0);
  EXPECT_GT(opened, 0);
}

// ---------------------------------------------------------------------------
// Per-tick constants of a whole run: adoption rates (§2.9), τ_s and S(t) (§2.5),
// the seats' price and cap (§2.6(e), v5)
// ---------------------------------------------------------------------------

TEST(OracleSim, AdoptionRatesAndPerTickConstantsFollowTheSpec) {
  // v4 with seats, plan prices and saturation on, and capacity tight (tightness0 = 2) so
  // that prices rise within five ticks: firms' diffusion and v5's budgets would keep them
  // at the floor; compute caps' use ratio has its own oracle (OracleUsers).
  const Params p = test::scenario(
      test::baseline_path(), test::with(test::v4_sets(), {"n_firms=8000", "n_users=20000", "n_large=2500", "horizon=5",
                                                          "seats=true", "plan_pass=1", "tightness0=2", "need_sat=20"}));
  Simulation s(p, load_countries(p.countries), RunOptions{});
  const Layout& L = s.layout();
  const int C = L.n_countries;
  auto S = [&](int t) {  // §2.5 (v5) S(t), from tick 0
    const double tt = std::max(t, 0);
    return p.need_sat / (1 + (p.need_sat - 1) * std::exp(-p.need_growth * tt));
  };
  // Lagged values before tick 0: GDP_c0, the initial adopters' share, use ratio 1.
  std::vector<double> gdp(C), share(C, 0.0), ratio(C, 1.0);
  for (int c = 0; c < C; ++c) gdp[c] = s.countries()[c].gdp_usd;
  auto adopters_share = [&] {
    const UserView u = s.users().view();
    std::vector<double> out(C, 0.0);
    for (std::uint64_t i = 0; i < L.n_users; ++i)
      if (u.flags[i] & user_flag::kAdopter)
        out[u.country[i]] += L.w_user[u.country[i]] / s.countries()[u.country[i]].population;
    return out;
  };
  share = adopters_share();
  int below_one = 0, rising = 0;
  for (int t = 0; t < 5; ++t) {
    SCOPED_TRACE("tick " + std::to_string(t));
    const GenTableView g = s.labs().view();
    const UserConsts uk = s.user_consts(t);
    const std::vector<double> rate(uk.adopt_rate.ptr, uk.adopt_rate.ptr + C);
    EXPECT_NEAR(uk.need_scale, s.need0() * S(t), 1e-12 * uk.need_scale);
    for (int c = 0; c < C; ++c) {
      bool served = false;
      for (int j = 0; j < g.n_gens; ++j)
        served |= g.stage[j] == kStageOpen ||
                  (g.stage[j] == kStageGeneral && g.align[c * g.n_providers + g.provider[j]] >= 0);
      const double conn =
          served ? std::clamp(std::pow(gdp[c] / s.countries()[c].population / p.conn_ref, p.conn_exp), p.conn_min, 1.0)
                 : 0.0;
      const double want = (p.bass_p + p.bass_q * share[c]) * conn * std::pow(ratio[c], p.psi_u);
      EXPECT_NEAR(rate[c], want, 1e-12 * want) << s.countries()[c].iso3;
    }
    const FirmTickConsts fk = s.firm_consts(t);
    for (std::size_t j = 0; j < p.mult_s.size(); ++j)
      EXPECT_NEAR(fk.tau[j], s.tau0() * p.mult_s[j] * std::exp(p.tau_growth * t), 1e-12 * fk.tau[j]);
    const int sp = static_cast<int>(p.seat_plan) - 1;
    EXPECT_NEAR(fk.seat_cap, s.need0() * S(t) * p.plan_need[sp] * std::min(1.0, p.plan_cap), 1e-12 * fk.seat_cap);
    for (std::size_t q = 0; q < s.labs().providers().size(); ++q) {
      const double m = std::pow(std::max(s.labs().providers()[q].price / s.labs().p_min(), 1.0), p.plan_pass);
      EXPECT_NEAR(fk.seat_price[q], p.plan_price[sp] * m, 1e-12 * fk.seat_price[q]);
      rising += m > 1.001;
    }
    s.step();
    // The lagged values the next tick uses: GDP (the gdp metric), the adoption share, and
    // the use ratio Σ use / Σ min(need, plancap) over the adopters in this tick's market.
    gdp = s.metrics()[s.metrics().find("gdp")];
    share = adopters_share();
    const UserView u = s.users().view();
    std::vector<double> used(C, 0.0), caps(C, 0.0);
    for (std::uint64_t i = 0; i < L.n_users; ++i) {
      if (!(u.flags[i] & user_flag::kAdopter) || (u.flags[i] & user_flag::kNew) || u.generation[i] == kNone) continue;
      const double base = s.need0() * S(t) * p.plan_need[u.plan[i] - 1];
      used[u.country[i]] += u.use[i];
      caps[u.country[i]] += std::min(base * u.n[i], p.plan_cap * base);
    }
    for (int c = 0; c < C; ++c) {
      ratio[c] = caps[c] > 0 ? used[c] / caps[c] : 1.0;
      below_one += ratio[c] < 0.999;
    }
  }
  EXPECT_GT(below_one, 0);  // scarcity reached some country's use ratio
  EXPECT_GT(rising, 0);     // and some provider's plan prices
}

}  // namespace
}  // namespace cutoff
