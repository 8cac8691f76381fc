#pragma once
/// @file
/// Per-firm functions (docs/model.md §1, §2.0, §2.8). Each is a pure function of
/// (agent index, the SoA view, a small constants struct), called by the OpenMP
/// loops in core/ and by the kernels in cuda/exec.cu (through core/sim/passes.hpp).

#include <cstdint>

#include "agents/choice.hpp"
#include "agents/fields.hpp"
#include "agents/layout.hpp"
#include "core/hd/fpmath.hpp"
#include "core/hd/hd.hpp"
#include "core/hd/rng.hpp"
#include "core/market/clearing.hpp"
#include "core/market/waterfill.hpp"

namespace cutoff {

#define CUTOFF_FIRM_INIT_TABLES(X)                                                            \
  X(double, A_c, "length n_countries: (GDP per worker_c / world GDP per worker)^(1/sigma_c)") \
  X(std::uint8_t, tier, "length n_countries: export tier 1/2/3")

/// Constants of the firms' initial draws (§1, §2.0).
struct FirmInitConsts {
  std::uint32_t seed, replicate;
  LayoutView layout;
  CUTOFF_FIRM_INIT_TABLES(CUTOFF_TABLE_MEMBER)
  double pareto_alpha, size_cap, A_sigma0, budget_sigma, p_defender;
  int defender_sector;  ///< sector whose large tier-1 firms may be defenders (−1: none)
  CUTOFF_TABLES_OF(CUTOFF_FIRM_INIT_TABLES, layout.tables(v);)
};

/// The (country, sector) segment holding firm i: the last s with seg_begin[s] ≤ i.
CUTOFF_HD_INLINE int firm_segment(const LayoutView& L, std::uint64_t i) {
  int lo = 0, hi = L.n_countries * L.n_sectors;  // seg_begin[lo] ≤ i < seg_begin[hi]
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (L.seg_begin[mid] <= i)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

/// Raw size of a firm by inverse CDF of the Pareto(α, min 1) distribution: above
/// @p lo = x_L (large stratum), or in a small-stratum band [lo, hi), capped at size_cap.
CUTOFF_HD_INLINE double firm_raw_size(bool large, double lo, double hi, double alpha, double cap, double u) {
  double x;
  if (large) {
    x = lo * fp::pow(u, -1.0 / alpha);
  } else {
    // F(x) = (lo^−α − x^−α) / (lo^−α − hi^−α) on [lo, hi); hi = ∞ gives the Pareto's tail.
    const double head = fp::pow(lo, -alpha);
    const double tail = hi < fp::kInf ? fp::pow(hi, -alpha) : 0.0;
    x = fp::pow(head - u * (head - tail), -1.0 / alpha);
  }
  return fp::min(x, cap);
}

/// The small-stratum size band of the agent @p off places after its segment's large
/// ones: bands follow each other in order within the segment (docs/model.md §1).
CUTOFF_HD_INLINE int firm_band(const LayoutView& L, int seg, std::uint64_t off) {
  int b = 0;
  while (b < kSizeBands - 1 && off >= L.seg_band[seg * kSizeBands + b]) off -= L.seg_band[seg * kSizeBands + b++];
  return b;
}

/// §2.0 initial state of firm i, before the per-country size scaling and the
/// pool revenue: country, sector, strata flags, raw size, A, b; nothing else set.
CUTOFF_HD_INLINE void init_firm(std::uint64_t i, const FirmInitConsts& k, const FirmView& f) {
  const LayoutView& L = k.layout;
  const int seg = firm_segment(L, i);
  const int c = seg / L.n_sectors;
  const int s = seg % L.n_sectors;
  const std::uint64_t off = i - L.seg_begin[seg];
  const bool large = off < L.seg_large[seg];
  const int band = large ? 0 : firm_band(L, seg, off - L.seg_large[seg]);
  const double lo = large ? L.x_L[c] : L.band_edge[c * (kSizeBands + 1) + band];
  const double hi = large ? fp::kInf : L.band_edge[c * (kSizeBands + 1) + band + 1];
  Rng rng(k.seed, k.replicate, i, -1, Stream::FirmInit);
  const double u_size = rng.uniform();
  const double u_defender = rng.uniform();
  const double z_A = rng.normal();
  const double z_b = rng.normal();
  std::uint8_t flags = 0;
  if (large) {
    flags |= firm_flag::kLarge;
    if (s == k.defender_sector && k.tier[c] == 1 && u_defender < k.p_defender) flags |= firm_flag::kDefender;
  }
  f.country[i] = static_cast<std::uint16_t>(c);
  f.sector[i] = static_cast<std::uint8_t>(s);
  f.provider[i] = kNone;
  f.generation[i] = kNone;
  f.flags[i] = flags;
  f.partners[i] = 0;
  f.band[i] = static_cast<std::uint8_t>(band);
  f.employees[i] = static_cast<float>(firm_raw_size(large, lo, hi, k.pareto_alpha, k.size_cap, u_size));
  f.A[i] = static_cast<float>(k.A_c[c] * fp::exp(k.A_sigma0 * z_A));
  f.lnA_AI[i] = 0.0f;
  f.W[i] = 0.0;
  f.b[i] = static_cast<float>(fp::exp(k.budget_sigma * z_b - 0.5 * k.budget_sigma * k.budget_sigma));
  f.revenue[i] = 0.0f;
  f.alloc[i] = 0.0f;
  f.K[i] = 0.0f;
  f.ai_value[i] = 0.0;
  f.K_elig[i] = 0.0f;
  f.seats[i] = 0.0f;
  f.status[i] = 0;  // kNoAccess (FirmStatus is declared below): nothing chosen yet
}

/// Weight of firm i in real firms: 1 in the large stratum, else its country's and size band's.
CUTOFF_HD_INLINE double firm_weight(const LayoutView& L, const FirmView& f, std::uint64_t i) {
  return (f.flags[i] & firm_flag::kLarge) ? 1.0 : L.w_small[f.country[i] * kSizeBands + f.band[i]];
}

/// Scales firm i's raw size so that its country's weighted employees sum to its workers.
CUTOFF_HD_INLINE void scale_firm_size(std::uint64_t i, const Table<double>& scale, const FirmView& f) {
  f.employees[i] = static_cast<float>(static_cast<double>(f.employees[i]) * scale[f.country[i]]);
}

/// A_i^σ_c, the factor of firm i's pool terms. A pass that needs it twice (the pool's
/// others and firm i's own term or revenue) computes it once and hands it to the `_at`
/// forms below: the same expressions, so the same bits, for one `pow` fewer (issue 40).
CUTOFF_HD_INLINE double pool_power(const FirmView& f, double sigma_c, std::uint64_t i) {
  return fp::pow(static_cast<double>(f.A[i]), sigma_c);
}

/// Firm i's term of Z_cs (§2.8), w·employees·A^σ_c, with A^σ_c = @p a_sigma.
CUTOFF_HD_INLINE double pool_units_at(const LayoutView& L, const FirmView& f, double a_sigma, std::uint64_t i) {
  return firm_weight(L, f, i) * static_cast<double>(f.employees[i]) * a_sigma;
}

/// Firm i's term of Z_cs (§2.8): w·employees·A^σ_c.
CUTOFF_HD_INLINE double pool_units(const LayoutView& L, const FirmView& f, double sigma_c, std::uint64_t i) {
  return pool_units_at(L, f, pool_power(f, sigma_c, i), i);
}

/// Step 8, pass 1 terms of firm i: w·A·employees and w·employees·A^σ_c.
CUTOFF_HD_INLINE void pool_terms(const LayoutView& L, const FirmView& f, double sigma_c, std::uint64_t i, double* out) {
  out[0] = firm_weight(L, f, i) * static_cast<double>(f.A[i]) * static_cast<double>(f.employees[i]);
  out[1] = pool_units(L, f, sigma_c, i);
}

#define CUTOFF_POOL_TABLES(X)                                                                               \
  X(double, rate, "per (country, sector): the pool rate of section 2.8; under price_taker its traded part") \
  X(double, own, "price_taker, per (country, sector): (1 - omega)·P_cs / Σ w·employees·A^sigma_c·others")   \
  X(double, E, "price_taker, per (country, sector): Σ w·employees")                                         \
  X(double, Z, "price_taker, per (country, sector): Σ w·employees·A^sigma_c (pass 1)")

/// Step 8's pool rule (§2.8) as the firm agents see it.
struct PoolRule {
  int n_sectors;
  double sigma_c;
  /// (v5, `pool_price_taker`) each agent's share of its country pool is measured
  /// against its segment without itself, so its own A cannot move its rate (§2.8).
  bool price_taker;
  LayoutView layout;
  CUTOFF_POOL_TABLES(CUTOFF_TABLE_MEMBER)
  CUTOFF_TABLES_OF(CUTOFF_POOL_TABLES, layout.tables(v);)
};

/// Firm i's (country, sector) segment.
CUTOFF_HD_INLINE int pool_segment(const PoolRule& r, const FirmView& f, std::uint64_t i) {
  return static_cast<int>(f.country[i]) * r.n_sectors + f.sector[i];
}

/// price_taker: the other agents' weighted employees over their Σ w·e·A^σ in firm i's
/// segment, (E_cs − w_i·e_i)/(Z_cs − w_i·e_i·A_i^σ) with A as in pass 1; the whole
/// segment's E/Z if the agent is alone in it.
CUTOFF_HD_INLINE double pool_others_at(const PoolRule& r, const FirmView& f, double a_sigma, std::uint64_t i) {
  const int seg = pool_segment(r, f, i);
  const double E = r.E[seg] - firm_weight(r.layout, f, i) * static_cast<double>(f.employees[i]);
  const double Z = r.Z[seg] - pool_units_at(r.layout, f, a_sigma, i);
  return (E > 0 && Z > 0) ? E / Z : (r.Z[seg] > 0 ? r.E[seg] / r.Z[seg] : 0.0);
}
CUTOFF_HD_INLINE double pool_others(const PoolRule& r, const FirmView& f, std::uint64_t i) {
  return pool_others_at(r, f, pool_power(f, r.sigma_c, i), i);
}

/// Step 8, pass 2: the rate firm i earns per unit of employees·A^σ_c,
/// rate_(c,s) = (1−ω)·P_cs/Z_cs + ω·Σ_c' P_c's/Z_s (per segment, from the host); under
/// price_taker (1−ω)·P_cs·o_i/Σ_j w_j·e_j·A_j^σ·o_j + ω·Σ_c' P_c's/Z_s, o = pool_others:
/// the segment's revenues still sum to its pool.
CUTOFF_HD_INLINE double pool_rate_at(const PoolRule& r, const FirmView& f, double a_sigma, std::uint64_t i) {
  const int seg = pool_segment(r, f, i);
  if (!r.price_taker) return r.rate[seg];
  return r.rate[seg] + r.own[seg] * pool_others_at(r, f, a_sigma, i);
}
CUTOFF_HD_INLINE double pool_rate(const PoolRule& r, const FirmView& f, std::uint64_t i) {
  return pool_rate_at(r, f, pool_power(f, r.sigma_c, i), i);
}

/// Step 8, pass 2: revenue_i = employees·A^σ_c·rate, with A^σ_c = @p a_sigma.
CUTOFF_HD_INLINE double pool_revenue_at(const FirmView& f, double a_sigma, double rate, std::uint64_t i) {
  return static_cast<double>(f.employees[i]) * a_sigma * rate;
}

/// Step 8, pass 2: revenue_i = employees·A^σ_c·rate.
CUTOFF_HD_INLINE double pool_revenue(const FirmView& f, double sigma_c, double rate, std::uint64_t i) {
  return pool_revenue_at(f, pool_power(f, sigma_c, i), rate, i);
}

/// §2.0: revenue(−1) by the pool rule and W = 3·revenue(−1).
CUTOFF_HD_INLINE void init_firm_revenue(std::uint64_t i, const PoolRule& pool, const FirmView& f) {
  const double a_sigma = pool_power(f, pool.sigma_c, i);
  const double r = pool_revenue_at(f, a_sigma, pool_rate_at(pool, f, a_sigma, i), i);
  f.revenue[i] = static_cast<float>(r);
  f.W[i] = 3.0 * static_cast<double>(f.revenue[i]);
}

// ---------------------------------------------------------------------------
// Steps 4–8 of a tick
// ---------------------------------------------------------------------------

#define CUTOFF_FIRM_TICK_TABLES(X)                                                                               \
  X(std::uint8_t, tier, "per country: export tier 1/2/3")                                                        \
  X(double, kyc_rate, "per country: KYC clearance probability this tick (section 2.4, section 6 raise applied)") \
  X(double, zeta, "per country: tier-2 quota factor zeta_c on tier-1-homed providers (1: none)")                 \
  X(std::uint16_t, deal_mask, "per country: bit p set when the country hosts an arrived deal of p (section 6)")  \
  X(std::uint8_t, quota_provider, "per provider: 1 if homed in a tier-1 country (the quota applies)")            \
  X(std::uint8_t, first_resort, "per provider: 1 if first-resort splits its clearing this tick")                 \
  X(double, price, "per provider: pi_p(t-1) (pi_rest(t-1) for non-home firms under first-resort)")               \
  X(double, price_home, "per provider: pi_home(t-1) under first-resort")                                         \
  X(double, seat_price, "per provider: (v5) a seat a month on plan seat_plan, at the provider's plan prices")    \
  X(double, adopt_rate, "per country: (v5) a one-employee firm's probability of adopting AI this tick")          \
  X(WaterLevel, level_prev, "per provider: (v5) its plan layer's water levels at t-1 (compute caps)")            \
  X(double, tau, "per sector: tau_s(t), Mtok per worker-month")

/// Per-tick constants of the firms' steps; the tables are small per-country,
/// per-provider or per-sector arrays (host or device memory, as the holder says).
struct FirmTickConsts {
  std::uint32_t seed, replicate;
  int tick;
  LayoutView layout;
  GenTableView gens;
  CUTOFF_FIRM_TICK_TABLES(CUTOFF_TABLE_MEMBER)
  int lever_country;  ///< the first-resort home country
  double a_kyc, p_switch, firm_p_repick, switch_noise, phi, psi, rho, sigma_c, wtp_months, access_cost, q_min, beta_W,
      beta_R;
  double b_adapt, b_max, b_floor, b_up;  ///< §2.5 budget adaptation (v4)
  /// §2.6(e) (v5) the product layer: seats on plan `seat_plan` (its cap per seat this
  /// tick in Mtok, its water-fill weight; its price is a table); off: no seats.
  bool seats;
  double seat_share, seat_cap, seat_weight;
  bool compute_caps;  ///< (v5) plans cap compute: seats take the generation that serves them best
  /// §2.9 (v5) firms adopt AI by diffusion: only an adopter buys (off: every firm has
  /// adopted); its probability is adopt_rate_c·employees^adopt_size.
  bool firm_bass;
  double adopt_size;
  CUTOFF_TABLES_OF(CUTOFF_FIRM_TICK_TABLES, layout.tables(v); gens.tables(v);)
};

/// §7 who is cut off, and why: each tick every firm falls in exactly one, decided in
/// steps 4–6 (v4; v5 split no_value from no_budget, appended so v4's codes keep their meaning).
enum FirmStatus : std::uint8_t {
  kNoAccess = 0,  ///< no generation eligible
  kNoBudget,      ///< AI worth its access cost (V(q'·h) ≥ F_access), but B − F_access ≤ 0: no bid
  kPricedOut,     ///< bid, but the price is above its drop-out price
  kRationed,      ///< got less than x_i(π) (zeroed below q_min·h included)
  kBudgetBound,   ///< got x_i(π) < q'·h: all its budget buys
  kServed,        ///< got its whole need
  kNoValue,       ///< (v5) eligible, but AI not worth its access cost, V(q'·h) < F_access: no bid
  kSeats,         ///< (v5) no API compute; on seats in the plan layer, not compute-capped
  kSeatsCapped,   ///< (v5) on seats, compute-capped (the plan layer's level below the seat cap)
  kNotAdopted,    ///< (v5) a generation is eligible, but the firm has not adopted AI yet (§2.9, `firm_bass`)
  kStatusCount
};

/// The statuses' names, in code order (the `status` dimension of the output).
inline constexpr const char* kStatusNames[kStatusCount] = {"no_access",    "no_budget",  "priced_out", "rationed",
                                                           "budget_bound", "served",     "no_value",   "seats",
                                                           "seats_capped", "not_adopted"};

/// §7 (v5) whether a firm in status @p s uses AI this tick, on the API or on seats (a
/// rationed firm counts: it got some compute, or was zeroed below q_min): what the Census
/// BTOS asks firms, and what §2.9's firm diffusion counts as peers using it.
CUTOFF_HD_INLINE constexpr bool status_uses_ai(int s) {
  return s == kRationed || s == kBudgetBound || s == kServed || s == kSeats || s == kSeatsCapped;
}

/// §7 size classes by employees per real firm (the OECD's): 1–9, 10–49, 50–249, 250+.
enum { kSizeClassCount = 4 };
static_assert(kSizeBands == kSizeClassCount, "one size band of the small stratum per size class (docs/model.md §1)");
CUTOFF_HD_INLINE int size_class(float employees) {
  return employees < 10.0f ? 0 : employees < 50.0f ? 1 : employees < 250.0f ? 2 : 3;
}

/// Whether a firm of country c buying from provider p is in first-resort's home class.
CUTOFF_HD_INLINE bool first_resort_home(const Table<std::uint8_t>& first_resort, int lever_country, int c, int p) {
  return first_resort[p] && c == lever_country;
}
CUTOFF_HD_INLINE bool firm_is_home(const FirmTickConsts& k, int c, int p) {
  return first_resort_home(k.first_resort, k.lever_country, c, p);
}

/// The price firm i faces at provider p in step 4's choice: π_p(t−1) of its class.
CUTOFF_HD_INLINE double firm_price(const FirmTickConsts& k, int c, int p) {
  return firm_is_home(k, c, p) ? k.price_home[p] : k.price[p];
}

/// §2.5 budget B_i = b_i·(β_W·max(W_i, 0) + β_R·revenue_i(t−1)).
CUTOFF_HD_INLINE double firm_budget(const FirmTickConsts& k, const FirmView& f, std::uint64_t i) {
  return static_cast<double>(f.b[i]) * (k.beta_W * fp::max(f.W[i], 0.0) + k.beta_R * static_cast<double>(f.revenue[i]));
}

/// §2.5 need q_i = employees·τ_s(t), Mtok.
CUTOFF_HD_INLINE double firm_need(const FirmTickConsts& k, const FirmView& f, std::uint64_t i) {
  return static_cast<double>(f.employees[i]) * k.tau[f.sector[i]];
}

/// What a firm's eligibility depends on besides its country: its KYC flag and
/// its partner mask (so step 4 can evaluate them before writing them).
struct FirmAccess {
  std::uint8_t flags;
  std::uint16_t partners;
};

/// §2.4 whether a firm of country c is cleared for provider p: KYC-cleared and
/// align(c, p) ≥ a_kyc, or its country hosts an arrived deal of p (§6).
CUTOFF_HD_INLINE bool firm_cleared_for(const FirmTickConsts& k, FirmAccess a, int c, int p) {
  return ((a.flags & firm_flag::kKyc) && align_of(k.gens, c, p) >= k.a_kyc) || ((k.deal_mask[c] >> p) & 1u);
}

/// §2.4 eligibility of generation g for a firm of country c: OPEN; or align ≥ 0 and
/// GENERAL, or KYC with the firm cleared for p, or TRUSTED or KYC with it a partner of p.
CUTOFF_HD_INLINE bool firm_eligible(const FirmTickConsts& k, FirmAccess a, int c, int g) {
  const std::uint8_t st = k.gens.stage[g];
  if (st == kStageOpen) return true;
  const int p = k.gens.provider[g];
  if (align_of(k.gens, c, p) < 0.0) return false;
  if (st == kStageGeneral) return true;
  const bool partner = (a.partners >> p) & 1u;
  if (st == kStageKyc) return partner || firm_cleared_for(k, a, c, p);
  if (st == kStageTrusted) return partner;
  return false;
}

/// §2.4 a firm's class with provider p: 0 trusted (a partner), 1 kyc (cleared), 2 general.
CUTOFF_HD_INLINE std::uint8_t firm_class(const FirmTickConsts& k, FirmAccess a, int c, int p) {
  if ((a.partners >> p) & 1u) return 0;
  return firm_cleared_for(k, a, c, p) ? 1 : 2;
}

/// ζ_c where it applies: tier-2 countries on tier-1-homed providers.
CUTOFF_HD_INLINE double firm_zeta(const FirmTickConsts& k, int c, int p) {
  return k.quota_provider[p] ? k.zeta[c] : 1.0;
}

/// §2.4 noiseless utility φ·K_g·min(1, a/q')^ψ of generation g for a firm with
/// budget B and need q', with a = (B − F_access)/(π·h_g) the tokens it can afford.
CUTOFF_HD_INLINE double firm_utility(const FirmTickConsts& k, double budget, double need_q1, int c, int g) {
  const int p = k.gens.provider[g];
  const double z = firm_zeta(k, c, p);
  const double money = z * (budget - k.access_cost);
  const double afford = money > 0.0 ? money / (firm_price(k, c, p) * k.gens.h[g]) : 0.0;
  const double ratio = fp::min(1.0, afford / (z * need_q1));
  return k.phi * k.gens.K[g] * (ratio > 0.0 ? fp::pow(ratio, k.psi) : 0.0);
}

/// §2.9 (v5) whether a firm with these flags has adopted AI (every firm has without `firm_bass`).
CUTOFF_HD_INLINE bool firm_adopted(const FirmTickConsts& k, std::uint8_t flags) {
  return !k.firm_bass || (flags & firm_flag::kAdopted);
}

/// §2.9 (v5) the probability that firm i, not yet an adopter, adopts AI this tick:
/// min(1, adopt_rate_c·employees^adopt_size), adopt_rate_c being firm_adopt0·conn_c at
/// tick 0 and (firm_bass_p + firm_bass_q·F_c(t−1))·conn_c after it.
CUTOFF_HD_INLINE double firm_adopt_prob(const FirmTickConsts& k, const FirmView& f, std::uint64_t i) {
  return fp::min(1.0, k.adopt_rate[f.country[i]] * fp::pow(static_cast<double>(f.employees[i]), k.adopt_size));
}

/// The outcome of step 4 for one firm.
struct FirmPick {
  std::uint8_t flags;       ///< with this tick's KYC draw applied
  std::uint8_t generation;  ///< kNone: nothing eligible
  float K_elig;             ///< best eligible K_g
};

/// Step 4 for firm i, without writing: the KYC draw, (v5) the adoption draw, then the
/// (provider, generation) choice at π(t−1) with Gumbel noise (a pure function). A firm
/// that has not adopted AI chooses nothing (generation kNone); like a user (§2.9), it
/// adopts only when a generation is eligible to it.
CUTOFF_HD_INLINE FirmPick firm_pick(std::uint64_t i, const FirmTickConsts& k, const FirmView& f) {
  const int c = f.country[i];
  Rng draws(k.seed, k.replicate, i, k.tick, Stream::Kyc);
  const double u_kyc = draws.uniform();
  const double u_switch = draws.uniform();
  FirmAccess a{f.flags[i], f.partners[i]};
  if (!(a.flags & firm_flag::kKyc) && u_kyc < k.kyc_rate[c]) a.flags |= firm_flag::kKyc;

  const double budget = firm_budget(k, f, i);
  const double need_q1 = fp::max(firm_need(k, f, i), k.q_min);
  const std::uint8_t current = f.provider[i];
  bool has_own = false, any = false;
  double best_K = 0.0;
  for (int g = 0; g < k.gens.n_gens; ++g) {
    if (!firm_eligible(k, a, c, g)) continue;
    any = true;
    best_K = fp::max(best_K, k.gens.K[g]);
    if (current != kNone && k.gens.provider[g] == current) has_own = true;
  }
  if (!firm_adopted(k, a.flags)) {
    const double u_adopt = draws.uniform();  // (the third draw: v4's two are unchanged)
    if (!(any && u_adopt < firm_adopt_prob(k, f, i))) return {a.flags, kNone, static_cast<float>(best_K)};
    a.flags |= firm_flag::kAdopted;
  }
  // A trusted partner keeps its provider; others re-choose it with probability
  // p_switch, and must when none of their provider's generations is eligible.
  const bool keeps = current != kNone && has_own && (((a.partners >> current) & 1u) || !(u_switch < k.p_switch));
  // (v5) one that keeps its provider keeps its generation while it stays eligible,
  // re-choosing it with probability firm_p_repick (1: every tick, as before, without the
  // draw, which is the stream's last: the same bits).
  const int held = f.generation[i];
  if (keeps && held != kNone && k.gens.provider[held] == current && firm_eligible(k, a, c, held) &&
      k.firm_p_repick < 1.0 && !(draws.uniform() < k.firm_p_repick))
    return {a.flags, static_cast<std::uint8_t>(held), static_cast<float>(best_K)};
  Rng noise(k.seed, k.replicate, i, k.tick, Stream::ChoiceNoise);
  std::uint8_t best = kNone;
  double best_u = 0.0;
  for (int g = 0; g < k.gens.n_gens; ++g) {
    if (!firm_eligible(k, a, c, g)) continue;
    if (keeps && k.gens.provider[g] != current) continue;
    const double u = firm_utility(k, budget, need_q1, c, g) + k.switch_noise * noise.gumbel();
    if (best == kNone || u > best_u) {
      best = static_cast<std::uint8_t>(g);
      best_u = u;
    }
  }
  return {a.flags, best, static_cast<float>(best_K)};
}

/// Step 4 for firm i: writes flags (KYC), provider, generation and the scratch K_elig.
CUTOFF_HD_INLINE void firm_choose(std::uint64_t i, const FirmTickConsts& k, const FirmView& f) {
  const FirmPick r = firm_pick(i, k, f);
  f.flags[i] = r.flags;
  f.generation[i] = r.generation;
  f.provider[i] = r.generation == kNone ? kNone : k.gens.provider[r.generation];
  f.K_elig[i] = r.K_elig;
}

/// §2.5 value of x H100e of generation g: V_i(x) = wtp_months·ρ·σ_c·revenue(t−1)·φ·K_g·min(1, x/(q_i·h_g))^ψ.
/// Returns V at saturation (x ≥ q_i·h_g).
CUTOFF_HD_INLINE double firm_value_max(const FirmTickConsts& k, const FirmView& f, std::uint64_t i, int g) {
  return k.wtp_months * k.rho * k.sigma_c * static_cast<double>(f.revenue[i]) * k.phi * k.gens.K[g];
}

/// §2.5 whether AI at generation g is worth its access cost to firm i: it needs
/// tokens and V_i(q'·h) ≥ F_access. A firm for which it is not does not bid, whatever
/// its budget (status no_value); one for which it is bids when B − F_access > 0.
CUTOFF_HD_INLINE bool firm_values_ai(const FirmTickConsts& k, const FirmView& f, std::uint64_t i, int g) {
  return firm_need(k, f, i) > 0.0 && firm_value_max(k, f, i, g) >= k.access_cost;
}

/// Step 5: firm i's bid on its chosen provider (§2.5, §10). Returns the provider,
/// or −1 when the firm does not buy this tick (no generation, no money, or the
/// access cost exceeds the value). The quota factor ζ scales need and money.
CUTOFF_HD_INLINE int firm_bid_at(std::uint64_t i, const FirmTickConsts& k, const FirmView& f, int g, FirmAccess a,
                                 FirmBid* bid) {
  if (g == kNone) return -1;
  const int c = f.country[i];
  const int p = k.gens.provider[g];
  const double h = k.gens.h[g];
  const double z = firm_zeta(k, c, p);
  const double q = firm_need(k, f, i);
  const double need = z * fp::max(q, k.q_min) * h;
  const double money = z * (firm_budget(k, f, i) - k.access_cost);
  const double v_max = firm_value_max(k, f, i, g);
  if (!(money > 0.0) || !(need > 0.0) || !(q > 0.0) || v_max < k.access_cost) return -1;
  // WTP per H100e: V(q'·h)/(q'·h); q_min feasibility; the F_access value price
  // π_F = money/x_F with V(x_F) = F_access.
  const double wtp = v_max / need;
  const double min_alloc = z * k.q_min * h;
  const double x_F = z * q * h * (k.access_cost > 0.0 ? fp::pow(k.access_cost / v_max, 1.0 / k.psi) : 0.0);
  double pi_out = fp::min(wtp, money / min_alloc);
  if (x_F > 0.0) pi_out = fp::min(pi_out, money / x_F);
  bid->w = firm_weight(k.layout, f, i);
  bid->need = need;
  bid->money = money;
  bid->pi_out = pi_out;
  bid->min_alloc = min_alloc;
  bid->cls = firm_class(k, a, c, p);
  bid->home = firm_is_home(k, c, p);
  return p;
}

/// Step 5 for firm i at the generation it chose.
CUTOFF_HD_INLINE int firm_bid(std::uint64_t i, const FirmTickConsts& k, const FirmView& f, FirmBid* bid) {
  return firm_bid_at(i, k, f, f.generation[i], FirmAccess{f.flags[i], f.partners[i]}, bid);
}

/// §7 the status of a firm with generation g that bid on p (p < 0: no bid, for want of
/// money when @p values_ai, else because AI is not worth its access cost) and got x.
CUTOFF_HD_INLINE FirmStatus firm_status(int g, int p, bool values_ai, const FirmBid& bid,
                                        const ProviderClearing* cleared, double x) {
  if (g == kNone) return kNoAccess;
  if (p < 0) return values_ai ? kNoBudget : kNoValue;
  const double wanted = bid_demand(bid, paid_price(bid, *cleared));
  if (!(wanted > 0.0)) return kPricedOut;
  if (x < wanted) return kRationed;
  return wanted < bid.need ? kBudgetBound : kServed;
}

// ---------------------------------------------------------------------------
// §2.6(e) (v5) the product layer: seats on a plan
// ---------------------------------------------------------------------------

/// The plan-layer generation for a firm of country c whose API choice is g: g itself
/// when a user could use it (GENERAL with align ≥ 0, or OPEN), else the best-K such
/// generation of the same provider (ties: the lower index); kNone when there is none.
/// (v5) Under compute caps, the generation of that provider a user could use that
/// scores best as a seat, K_x·min(1, Λ_p(t−1)·w_seat/(h_x·cap_seat·ζ))^ψ (§2.4's
/// served share, as for an adopter, without noise; ties: the lower index).
CUTOFF_HD_INLINE int seat_generation(const FirmTickConsts& k, int c, int g) {
  const GenTableView& gens = k.gens;
  if (g == kNone) return kNone;
  if (!k.compute_caps && user_eligible(gens, c, g)) return g;
  const int p = gens.provider[g];
  UserBid b{};  // the seat's cap and its level at t−1 (compute caps only)
  double level = fp::kInf;
  if (k.compute_caps) {
    b.cap = k.seat_cap * firm_zeta(k, c, p);
    b.host_floor = ((k.deal_mask[c] >> p) & 1u) != 0;
    level = water_level(b, k.level_prev[p]);
  }
  int best = kNone;
  double best_u = 0.0;
  for (int x = 0; x < gens.n_gens; ++x) {
    if (gens.provider[x] != p || !user_eligible(gens, c, x)) continue;
    const double u = gens.K[x] * served_share(level, fill_weight(true, k.seat_weight, gens.h[x]), b.cap, k.psi);
    if (best == kNone || u > best_u) {
      best = x;
      best_u = u;
    }
  }
  return best;
}

/// A firm's seats this tick: how many per real firm (0: none) and on which generation.
struct FirmSeats {
  double seats;
  int gen;
};

/// §2.6(e) (v5) a firm that got no API compute this tick buys seats for its AI-using
/// workers, employees·seat_share, at the seat price, as many as its budget B_i pays
/// for (no access cost: the product is the integration), if their value at full caps,
/// V_i(n·seat_cap) with V of §2.5 at the seats' generation, is at least their cost.
/// Decided in the clearing's settle (firm_settle), at the tick's budget before it
/// adapts, and kept in the scratch field `seats` for the water-fill and the seat settle.
CUTOFF_HD_INLINE FirmSeats firm_seats(std::uint64_t i, const FirmTickConsts& k, const FirmView& f) {
  if (!k.seats || (f.flags[i] & firm_flag::kBuying)) return {0.0, kNone};
  const int g = seat_generation(k, f.country[i], f.generation[i]);
  const double q = firm_need(k, f, i);
  if (g == kNone || !(q > 0.0)) return {0.0, kNone};
  const double price = k.seat_price[k.gens.provider[g]];
  if (!(price > 0.0)) return {0.0, kNone};
  const double n = fp::min(static_cast<double>(f.employees[i]) * k.seat_share, firm_budget(k, f, i) / price);
  if (!(n > 0.0)) return {0.0, kNone};
  const double value = firm_value_max(k, f, i, g) * fp::pow(fp::min(1.0, n * k.seat_cap / q), k.psi);
  return value >= n * price ? FirmSeats{n, g} : FirmSeats{0.0, kNone};
}

/// After the clearing: firm i's allocation, capability, buying flag and status (§2.6c, §7).
CUTOFF_HD_INLINE void firm_settle(std::uint64_t i, const FirmTickConsts& k, const Table<ProviderClearing>& result,
                                  const FirmView& f) {
  FirmBid bid{};  // (written when p ≥ 0; zeroed so that no compiler sees it read unset)
  const int p = firm_bid(i, k, f, &bid);
  const double x = p < 0 ? 0.0 : allocate(bid, result[p]);
  f.alloc[i] = static_cast<float>(x);
  f.K[i] = x > 0.0 ? static_cast<float>(k.gens.K[f.generation[i]]) : 0.0f;
  f.flags[i] =
      static_cast<std::uint8_t>((f.flags[i] & ~(firm_flag::kBuying | firm_flag::kEntered | firm_flag::kSeats)) |
                                (x > 0.0 ? firm_flag::kBuying | firm_flag::kUsedAI : 0));
  f.seats[i] = static_cast<float>(firm_seats(i, k, f).seats);  // (v5) at this tick's budget, before it adapts
  const int g = f.generation[i];
  const bool values_ai = p >= 0 || (g != kNone && firm_values_ai(k, f, i, g));
  const bool waiting = !firm_adopted(k, f.flags[i]) && f.K_elig[i] > 0.0f;  // (v5) eligible, not adopted
  f.status[i] = waiting ? kNotAdopted : firm_status(g, p, values_ai, bid, p < 0 ? nullptr : &result[p], x);
}

/// §2.5 (v4) the budget signal ℓ_i of a firm after the clearing, before the clip:
/// ln(v_i/π) if it bid (at most 0 if it got its whole need), ℓ_up if it could not
/// bid for want of money although V(q'·h) ≥ F_access, else 0 (no generation, or AI
/// not worth its access cost).
CUTOFF_HD_INLINE double budget_signal(std::uint64_t i, const FirmTickConsts& k, const Table<ProviderClearing>& result,
                                      const FirmView& f) {
  const int g = f.generation[i];
  if (g == kNone) return 0.0;
  FirmBid bid;
  const int p = firm_bid(i, k, f, &bid);
  if (p >= 0) {
    const double worth = firm_value_max(k, f, i, g) / bid.need;  // v_i = V(q'·h)/(q'·h), as the bid
    const double l = fp::log(worth / paid_price(bid, result[p]));
    return f.status[i] == kServed ? fp::min(l, 0.0) : l;
  }
  const bool for_want_of_money = !(firm_budget(k, f, i) - k.access_cost > 0.0) && firm_values_ai(k, f, i, g);
  return for_want_of_money ? k.b_up : 0.0;
}

/// §2.5 (v4) budgets adapt: b_i ← clip(b_i·exp(b_adapt·clip(ℓ_i, −1, 1)), b_floor, b_max),
/// after this tick's bids have been summed (they are read at the old b_i).
CUTOFF_HD_INLINE void firm_adapt_budget(std::uint64_t i, const FirmTickConsts& k, const Table<ProviderClearing>& result,
                                        const FirmView& f) {
  if (f.generation[i] == kNone) return;
  const double l = fp::max(-1.0, fp::min(1.0, budget_signal(i, k, result, f)));
  const double b = static_cast<double>(f.b[i]) * fp::exp(k.b_adapt * l);
  f.b[i] = static_cast<float>(fp::max(k.b_floor, fp::min(k.b_max, b)));
}

// §2.6(e) (v5) the product layer, continued: seats in the plan layer's water-fill

/// Firm i's seats @p s as an element of the plan layer's water-fill (weight: real
/// seats; cap per seat; the plan's weight; the generation's h; a deal host's floor as
/// its users'). Returns the provider, or −1 when it has no seats.
CUTOFF_HD_INLINE int seat_bid(std::uint64_t i, const FirmTickConsts& k, const FirmView& f, const FirmSeats& s,
                              UserBid* b) {
  if (s.gen == kNone) return -1;
  const int c = f.country[i];
  const int p = k.gens.provider[s.gen];
  b->weight = firm_weight(k.layout, f, i) * s.seats;
  b->cap = k.seat_cap * firm_zeta(k, c, p);
  b->plan_weight = fill_weight(k.compute_caps, k.seat_weight, k.gens.h[s.gen]);
  b->cost = k.gens.h[s.gen];
  b->host_floor = ((k.deal_mask[c] >> p) & 1u) != 0;
  return p;
}

/// The seats firm i holds this tick, as its settle decided them (field `seats`).
CUTOFF_HD_INLINE FirmSeats held_seats(std::uint64_t i, const FirmTickConsts& k, const FirmView& f) {
  const double n = f.seats[i];
  if (!(n > 0.0)) return {0.0, kNone};
  return {n, seat_generation(k, f.country[i], f.generation[i])};
}

/// Firm i's bid in the plan layer's water-fill (its seats this tick; −1: none).
CUTOFF_HD_INLINE int firm_seat_bid(std::uint64_t i, const FirmTickConsts& k, const FirmView& f, UserBid* b) {
  return seat_bid(i, k, f, held_seats(i, k, f), b);
}

/// After the water-fill: firm i on seats takes its generation, its seats' compute
/// (seats·use·h, H100e), K and its status (seats, or seats_capped when the level is
/// below the seat cap). Firms without seats are left as the clearing settled them.
CUTOFF_HD_INLINE void firm_seat_settle(std::uint64_t i, const FirmTickConsts& k, const Table<WaterLevel>& levels,
                                       const FirmView& f) {
  const FirmSeats s = held_seats(i, k, f);
  UserBid b;
  const int p = seat_bid(i, k, f, s, &b);
  if (p < 0) return;
  const double use = water_use(b, levels[p]);  // Mtok per seat
  f.generation[i] = static_cast<std::uint8_t>(s.gen);
  f.provider[i] = static_cast<std::uint8_t>(p);
  f.alloc[i] = static_cast<float>(s.seats * use * b.cost);
  f.K[i] = use > 0.0 ? static_cast<float>(k.gens.K[s.gen]) : 0.0f;
  f.flags[i] = static_cast<std::uint8_t>(f.flags[i] | firm_flag::kSeats | (use > 0.0 ? firm_flag::kUsedAI : 0));
  f.status[i] = water_capped(b, levels[p]) ? kSeatsCapped : kSeats;
}

/// Step 7: the AI uplift u_i = φ·K_i·min(1, alloc_i/(q_i·h_g))^ψ + spill_c(t−1);
/// A ← A·(1 + g0 + ρ·u_i + σ_A·ε); lnA_AI += ln(1 + ρ·u_i).
CUTOFF_HD_INLINE void firm_productivity(std::uint64_t i, const FirmTickConsts& k, const Table<double>& spill, double g0,
                                        double sigma_A, const FirmView& f) {
  const int c = f.country[i];
  double u = spill[c];
  if (f.flags[i] & (firm_flag::kBuying | firm_flag::kSeats)) {  // API compute, or seats' tokens (v5)
    const double qh = firm_need(k, f, i) * k.gens.h[f.generation[i]];
    const double ratio = fp::min(1.0, static_cast<double>(f.alloc[i]) / qh);
    u += k.phi * static_cast<double>(f.K[i]) * fp::pow(ratio, k.psi);
  }
  Rng rng(k.seed, k.replicate, i, k.tick, Stream::Productivity);
  const double eps = rng.normal();
  const double growth = 1.0 + g0 + k.rho * u + sigma_A * eps;
  f.A[i] = static_cast<float>(static_cast<double>(f.A[i]) * fp::max(growth, 0.0));
  f.lnA_AI[i] = static_cast<float>(static_cast<double>(f.lnA_AI[i]) + fp::log(1.0 + k.rho * u));
}

#define CUTOFF_FIRM_WEALTH_TABLES(X)                                                   \
  X(double, seg_meanA, "per (country, sector): employment-weighted mean A (entrants)") \
  X(double, wage, "per country: wage_c, US$ per worker-month")                         \
  X(double, spend_price, "per provider: the price the firm pays (pi_p, or pi_rest)")   \
  X(double, home_price, "per provider: pi_home under first-resort")                    \
  X(double, seat_price, "per provider: (v5) a seat a month")                           \
  X(std::uint8_t, first_resort, "per provider: 1 if first-resort splits its clearing this tick")

/// Constants of step 8's second pass.
struct FirmWealthConsts {
  std::uint32_t seed, replicate;
  int tick;
  PoolRule pool;  ///< also the sectors' count and sigma_c
  CUTOFF_FIRM_WEALTH_TABLES(CUTOFF_TABLE_MEMBER)
  int lever_country;
  double other_cost, access_cost, exit_months, entrant_sigma, budget_sigma;
  CUTOFF_TABLES_OF(CUTOFF_FIRM_WEALTH_TABLES, pool.tables(v);)
};

/// Step 8 pass 2 for firm i: revenue by the pool rule, costs (wages, other
/// costs, compute and F_access), profit into wealth, AI value, and exit with
/// replacement in place by an entrant (§2.8). Returns true if the firm exited.
CUTOFF_HD_INLINE bool firm_wealth(std::uint64_t i, const FirmWealthConsts& k, const FirmView& f) {
  const int c = f.country[i];
  const int seg = pool_segment(k.pool, f, i);
  const double a_sigma = pool_power(f, k.pool.sigma_c, i);
  const double rate = pool_rate_at(k.pool, f, a_sigma, i);  // the entrant below earns the same rate
  const double revenue = pool_revenue_at(f, a_sigma, rate, i);
  const double wages = static_cast<double>(f.employees[i]) * k.wage[c];
  double compute = 0.0;
  if (f.flags[i] & firm_flag::kBuying) {
    const int p = f.provider[i];
    const double price = first_resort_home(k.first_resort, k.lever_country, c, p) ? k.home_price[p] : k.spend_price[p];
    compute = price * static_cast<double>(f.alloc[i]) + k.access_cost;
  } else if (f.flags[i] & firm_flag::kSeats) {
    compute = static_cast<double>(f.seats[i]) * k.seat_price[f.provider[i]];  // (v5) seats on the plan layer
  }
  const double W = f.W[i] + revenue - wages - k.other_cost * revenue - compute;
  const double ai = revenue * (1.0 - fp::exp(-k.pool.sigma_c * static_cast<double>(f.lnA_AI[i])));
  if (W >= -k.exit_months * wages) {
    f.W[i] = W;
    f.revenue[i] = static_cast<float>(revenue);
    f.ai_value[i] += ai;
    return false;
  }
  // An entrant takes the place: same country, sector, employees, weight, strata
  // flags; new b_i and A; no clearance, partners or provider.
  Rng rng(k.seed, k.replicate, i, k.tick, Stream::Entrant);
  const double z_A = rng.normal();
  const double z_b = rng.normal();
  const double A = k.seg_meanA[seg] * fp::exp(k.entrant_sigma * z_A);
  f.A[i] = static_cast<float>(A);
  f.b[i] = static_cast<float>(fp::exp(k.budget_sigma * z_b - 0.5 * k.budget_sigma * k.budget_sigma));
  const double earn = pool_revenue(f, k.pool.sigma_c, rate, i);
  f.revenue[i] = static_cast<float>(earn);
  f.W[i] = 3.0 * earn;
  f.flags[i] =
      static_cast<std::uint8_t>((f.flags[i] & (firm_flag::kLarge | firm_flag::kDefender)) | firm_flag::kEntered);
  f.partners[i] = 0;
  f.provider[i] = kNone;
  f.generation[i] = kNone;
  f.lnA_AI[i] = 0.0f;
  f.ai_value[i] = 0.0;
  f.alloc[i] = 0.0f;
  f.K[i] = 0.0f;
  f.seats[i] = 0.0f;
  return true;
}

}  // namespace cutoff
