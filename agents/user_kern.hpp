#pragma once
/// @file
/// Per-user functions (MODEL.md §1, §2.0, §2.9), shared by both backends.

#include <cstdint>

#include "agents/choice.hpp"
#include "agents/fields.hpp"
#include "core/fpmath.hpp"
#include "core/hd.hpp"
#include "core/rng.hpp"

namespace cutoff {

/// Constants of the users' adoption and plan rules (§2.9), per tick.
struct UserConsts {
  std::uint32_t seed, replicate;
  int n_countries;
  const std::uint64_t* user_begin;  ///< length n_countries + 1
  const double* wage;               ///< length n_countries: labour_share·GDP_c(t−1)/(12·workers_c), US$ a month
  const double* adopt_rate;         ///< length n_countries: adoption rate before afford_u (§2.0: adopt0·access_c)
  double omega_inc, omega_plan, f_free;
  double plan_price[3];             ///< free, plus, pro, US$ a month
  double phi, switch_noise;
  GenTableView gens;
};

/// Country of user i: the last c with user_begin[c] ≤ i.
CUTOFF_HD_INLINE int user_country(const std::uint64_t* user_begin, int n_countries, std::uint64_t i) {
  int lo = 0, hi = n_countries;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (user_begin[mid] <= i) lo = mid;
    else hi = mid;
  }
  return lo;
}

/// §2.9 affordability: max(f_free, min(1, ω_inc·income / price[plus])).
CUTOFF_HD_INLINE double user_afford(const UserConsts& k, double income) {
  return fp::max(k.f_free, fp::min(1.0, k.omega_inc * income / k.plan_price[1]));
}

/// §2.9 plan by income: pro if ω_plan·income ≥ its price, else plus, else free.
CUTOFF_HD_INLINE std::uint8_t user_plan(const UserConsts& k, double income) {
  const double budget = k.omega_plan * income;
  if (budget >= k.plan_price[2]) return kPlanPro;
  if (budget >= k.plan_price[1]) return kPlanPlus;
  return kPlanFree;
}

/// Adopts user i with probability adopt_rate_c·afford_u: sets plan, generation
/// and provider (kNone if no generation is eligible, in which case it does not adopt).
CUTOFF_HD_INLINE void user_try_adopt(std::uint64_t i, int c, const UserConsts& k, double u_adopt, int tick,
                                     const UserView& v) {
  const double income = static_cast<double>(v.z[i]) * k.wage[c];
  if (!(u_adopt < k.adopt_rate[c] * user_afford(k, income))) return;
  Rng noise(k.seed, k.replicate, i, tick, Stream::ChoiceNoise);
  const std::uint8_t gen = choose_user_generation(k.gens, c, k.phi, k.switch_noise, kNone, noise);
  if (gen == kNone) return;
  v.flags[i] |= user_flag::kAdopter;
  v.plan[i] = user_plan(k, income);
  v.generation[i] = gen;
  v.provider[i] = k.gens.provider[gen];
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
  user_try_adopt(i, c, k, u_adopt, -1, v);
}

}  // namespace cutoff
