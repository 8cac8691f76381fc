#pragma once
/// @file
/// Per-user functions (docs/model.md §1, §2.0, §2.9), shared by both backends.

#include <cstdint>

#include "agents/choice.hpp"
#include "agents/fields.hpp"
#include "core/hd/fpmath.hpp"
#include "core/hd/hd.hpp"
#include "core/hd/rng.hpp"
#include "core/market/waterfill.hpp"

namespace cutoff {

#define CUTOFF_USER_TABLES(X)                                                                                    \
  X(std::uint64_t, user_begin, "length n_countries + 1")                                                         \
  X(double, w_user, "length n_countries: people per user agent")                                                 \
  X(double, wage, "length n_countries: labour_share GDP_c(t-1)/(12 workers_c), US$ a month")                     \
  X(double, adopt_rate, "length n_countries: adoption rate before afford_u (section 2.0: adopt0 access_c)")      \
  X(double, zeta, "length n_countries: tier-2 quota factor (1: none)")                                           \
  X(std::uint8_t, quota_provider, "per provider: 1 if the quota applies (homed in tier 1)")                      \
  X(double, plan_mult, "per provider: its plan prices' multiple of the list prices (section 2.9, v5)")           \
  X(WaterLevel, level_prev, "per provider: its plan layer's water levels at t-1 (section 2.4, v5 compute caps)") \
  X(std::uint16_t, deal_mask, "length n_countries: bit p set when it hosts an arrived deal of p (section 6)")

/// Constants of the users' rules (§2.4 choice, §2.5 demand, §2.6e use, §2.9
/// adoption and plans) for one tick; §2.0 uses them with tick −1.
struct UserConsts {
  std::uint32_t seed, replicate;
  int tick;
  int n_countries;
  CUTOFF_USER_TABLES(CUTOFF_TABLE_MEMBER)
  double omega_inc, omega_plan, f_free;
  double plan_price[3];  ///< free, plus, pro, US$ a month
  double plan_need[3], plan_weight[3], plan_cap;
  double need_scale;  ///< need0·S(t), Mtok a month (S: need_growth_factor, §2.5)
  double phi, switch_noise, p_switch;
  bool plan_repick;   ///< adopters re-choose their plan each tick (else kept from adoption)
  bool plan_priced;   ///< (v5) plans priced by scarcity: an adopter steps down to the plan it can afford
  bool compute_caps;  ///< (v5) plans cap compute; adopters choose by the tokens a generation gives
  double psi;         ///< exponent of the served share in the uplift (§2.4; compute caps)
  double p_repick;    ///< (v5) under compute caps, the probability of re-choosing the generation
  GenTableView gens;
  CUTOFF_TABLES_OF(CUTOFF_USER_TABLES, gens.tables(v);)
};

/// Country of user i: the last c with user_begin[c] ≤ i.
CUTOFF_HD_INLINE int user_country(const Table<std::uint64_t>& user_begin, int n_countries, std::uint64_t i) {
  int lo = 0, hi = n_countries;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (user_begin[mid] <= i)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

/// §2.9 (v5) the price of plan index j (0 free, 1 plus, 2 pro) on provider p this
/// tick: the list price times the provider's multiple (1 at list prices, and for
/// p = kNone: an adopter with nothing eligible).
CUTOFF_HD_INLINE double plan_price_on(const UserConsts& k, int j, int p) {
  return p == kNone ? k.plan_price[j] : k.plan_price[j] * k.plan_mult[p];
}

/// §2.9 affordability on provider p: max(f_free, min(1, ω_inc·income / price[plus])).
CUTOFF_HD_INLINE double user_afford(const UserConsts& k, double income, int p) {
  return fp::max(k.f_free, fp::min(1.0, k.omega_inc * income / plan_price_on(k, 1, p)));
}

/// §2.9 plan by income on provider p: pro if ω_plan·income ≥ its price, else plus, else free.
CUTOFF_HD_INLINE std::uint8_t user_plan(const UserConsts& k, double income, int p) {
  const double budget = k.omega_plan * income;
  if (budget >= plan_price_on(k, 2, p)) return kPlanPro;
  if (budget >= plan_price_on(k, 1, p)) return kPlanPlus;
  return kPlanFree;
}

/// Plan index 0…2 of an adopter (plan − 1).
CUTOFF_HD_INLINE int plan_index(std::uint8_t plan) { return plan - 1; }

/// §2.5 user demand at full caps on provider p, min(need_u, plancap_u), Mtok, with ζ_c
/// on tier-1-homed providers: need_u = need0·S(t)·plan_need·n_u (S: consumer need's
/// growth, v5), plancap_u = plan_cap·need_u/n_u.
CUTOFF_HD_INLINE double user_cap_on(const UserConsts& k, const UserView& v, std::uint64_t i, int p) {
  const int c = v.country[i];
  const double base = k.need_scale * k.plan_need[plan_index(v.plan[i])];
  const double need = base * static_cast<double>(v.n[i]);
  const double cap = fp::min(need, k.plan_cap * base);
  return k.quota_provider[p] ? cap * k.zeta[c] : cap;
}

/// The same on the provider user i uses.
CUTOFF_HD_INLINE double user_cap(const UserConsts& k, const UserView& v, std::uint64_t i) {
  return user_cap_on(k, v, i, v.provider[i]);
}

/// §2.4 (v5, compute caps) how much of user i's demand at full caps generation `gen`
/// would serve at its provider's plan-layer level of t−1: min(1, Λ·w_plan/(h_g·c))^ψ,
/// Λ the level user i would rise to there (a deal host's head start included); 1 when
/// every cap fitted, and for every generation without compute caps.
struct UserServed {
  const UserConsts& k;
  const UserView& v;
  std::uint64_t i;
  CUTOFF_HD_INLINE double operator()(int gen) const {
    if (!k.compute_caps) return 1.0;
    const int p = k.gens.provider[gen];
    UserBid b{};
    b.cap = user_cap_on(k, v, i, p);
    b.plan_weight = fill_weight(true, k.plan_weight[plan_index(v.plan[i])], k.gens.h[gen]);
    b.host_floor = ((k.deal_mask[v.country[i]] >> p) & 1u) != 0;
    return served_share(water_level(b, k.level_prev[p]), b.plan_weight, b.cap, k.psi);
  }
};

/// Step 4 for an adopter: re-pick the generation among its provider's eligible
/// ones; re-choose the provider with probability p_switch, and when none of its
/// provider's generations is eligible (then possibly none at all: it uses nothing).
CUTOFF_HD_INLINE void user_choose(std::uint64_t i, const UserConsts& k, const UserView& v) {
  if (!(v.flags[i] & user_flag::kAdopter)) return;
  const int c = v.country[i];
  Rng draws(k.seed, k.replicate, i, k.tick, Stream::Switch);
  const bool switching = draws.uniform() < k.p_switch;
  // (v5) under compute caps an adopter re-chooses its generation with probability p_repick
  const int held = v.generation[i];
  if (k.compute_caps && !switching && held != kNone && user_eligible(k.gens, c, held) &&
      !(draws.uniform() < k.p_repick))
    return;
  Rng noise(k.seed, k.replicate, i, k.tick, Stream::ChoiceNoise);
  const UserServed served{k, v, i};
  std::uint8_t g = kNone;
  if (!switching && v.provider[i] != kNone)
    g = choose_user_generation(k.gens, c, k.phi, k.switch_noise, v.provider[i], noise, served);
  if (g == kNone) g = choose_user_generation(k.gens, c, k.phi, k.switch_noise, kNone, noise, served);
  v.generation[i] = g;
  v.provider[i] = g == kNone ? kNone : k.gens.provider[g];
}

/// Adopts user i with probability adopt_rate_c·afford_u at the prices of the provider
/// it would choose: sets plan, generation and provider (it does not adopt when no
/// generation is eligible). afford_u ≤ 1, so a draw at or above adopt_rate_c decides
/// "no" before the choice is made. The choice is §2.4's with the served share 1 (its
/// plan is not chosen yet; under compute caps it re-chooses with its caps in step 4
/// of the next tick, before it first uses anything).
CUTOFF_HD_INLINE void user_try_adopt(std::uint64_t i, int c, const UserConsts& k, double u_adopt, const UserView& v) {
  if (!(u_adopt < k.adopt_rate[c])) return;
  Rng noise(k.seed, k.replicate, i, k.tick, Stream::ChoiceNoise);
  const std::uint8_t gen = choose_user_generation(k.gens, c, k.phi, k.switch_noise, kNone, noise);
  if (gen == kNone) return;
  const int p = k.gens.provider[gen];
  const double income = static_cast<double>(v.z[i]) * k.wage[c];
  if (!(u_adopt < k.adopt_rate[c] * user_afford(k, income, p))) return;
  v.flags[i] |= user_flag::kAdopter;
  v.plan[i] = user_plan(k, income, p);
  v.generation[i] = gen;
  v.provider[i] = static_cast<std::uint8_t>(p);
}

/// §2.0 initial state of user i: z_u (lognormal, mean 1, σ income_sigma),
/// n_u (lognormal, median 1, σ need_sigma), then adoption with probability
/// adopt0·access_c·afford_u (use ratio 1), plan and generation.
CUTOFF_HD_INLINE void init_user(std::uint64_t i, const UserConsts& k, double income_sigma, double need_sigma,
                                const UserView& v) {
  const int c = user_country(k.user_begin, k.n_countries, i);
  Rng rng(k.seed, k.replicate, i, -1, Stream::UserInit);
  const double z_z = rng.normal();
  const double z_n = rng.normal();
  const double u_adopt = rng.uniform();
  v.country[i] = static_cast<std::uint16_t>(c);
  v.provider[i] = kNone;
  v.generation[i] = kNone;
  v.plan[i] = kPlanNone;
  v.flags[i] = 0;
  v.z[i] = static_cast<float>(fp::exp(income_sigma * z_z - 0.5 * income_sigma * income_sigma));
  v.n[i] = static_cast<float>(fp::exp(need_sigma * z_n));
  v.use[i] = 0.0f;
  user_try_adopt(i, c, k, u_adopt, v);
}

/// Step 6(e): user i's part in its provider's water-fill; returns the provider,
/// or −1 when it uses nothing (not an adopter, or nothing eligible).
CUTOFF_HD_INLINE int user_bid(std::uint64_t i, const UserConsts& k, const UserView& v, UserBid* b) {
  const int gen = v.generation[i];
  if (!(v.flags[i] & user_flag::kAdopter) || gen == kNone) return -1;
  const int c = v.country[i];
  const int p = k.gens.provider[gen];
  b->weight = k.w_user[c];
  b->cap = user_cap(k, v, i);
  b->plan_weight = fill_weight(k.compute_caps, k.plan_weight[plan_index(v.plan[i])], k.gens.h[gen]);
  b->cost = k.gens.h[gen];
  b->host_floor = ((k.deal_mask[c] >> p) & 1u) != 0;
  return p;
}

/// Step 6(e) for user i: use_u = min(need_u, plancap_u, λ_p·w_plan) (λ_p·w_plan/h_g
/// under compute caps, v5) and the compute-capped flag (the level below its cap; a
/// plan's own cap is not scarcity).
CUTOFF_HD_INLINE void user_settle(std::uint64_t i, const UserConsts& k, const Table<WaterLevel>& levels,
                                  const UserView& v) {
  UserBid b;
  const int p = user_bid(i, k, v, &b);
  const bool capped = p >= 0 && water_capped(b, levels[p]);
  v.use[i] = p >= 0 ? static_cast<float>(water_use(b, levels[p])) : 0.0f;
  v.flags[i] = static_cast<std::uint8_t>((v.flags[i] & ~(user_flag::kCapped | user_flag::kNew)) |
                                         (capped ? user_flag::kCapped : 0));
}

/// Step 9 for user i: a non-adopter adopts with probability adopt_rate_c·afford_u,
/// then picks a plan by its income and a generation (§2.4); adopters keep their
/// plan, or re-choose it by this tick's income under plan_repick, or (v5, plans
/// priced by scarcity) step down to the plan their income affords at their
/// provider's prices, never up.
CUTOFF_HD_INLINE void user_adopt(std::uint64_t i, const UserConsts& k, const UserView& v) {
  const int c = v.country[i];
  if (v.flags[i] & user_flag::kAdopter) {
    if (!(k.plan_repick || k.plan_priced)) return;
    const std::uint8_t plan = user_plan(k, static_cast<double>(v.z[i]) * k.wage[c], v.provider[i]);
    if (k.plan_repick || plan < v.plan[i]) v.plan[i] = plan;
    return;
  }
  Rng rng(k.seed, k.replicate, i, k.tick, Stream::Adopt);
  user_try_adopt(i, c, k, rng.uniform(), v);
  if (v.flags[i] & user_flag::kAdopter) v.flags[i] |= user_flag::kNew;  // in the market from the next tick
}

}  // namespace cutoff
