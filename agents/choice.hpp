#pragma once
/// @file
/// The generation table seen by per-agent code, and the (provider, generation)
/// choice of docs/model.md §2.4 shared by firms and users.

#include <cstdint>

#include "agents/fields.hpp"
#include "core/hd/fpmath.hpp"
#include "core/hd/hd.hpp"
#include "core/hd/rng.hpp"
#include "core/hd/tables.hpp"

namespace cutoff {

/// Release stages (docs/model.md §2.2); OPEN follows GENERAL under the open-weights lever.
enum Stage : std::uint8_t { kStageGov = 0, kStageTrusted = 1, kStageKyc = 2, kStageGeneral = 3, kStageOpen = 4 };

#define CUTOFF_GEN_TABLES(X)                                          \
  X(std::uint8_t, provider, "length n_gens: the lab that trained it") \
  X(double, K, "length n_gens: capability K_g")                       \
  X(std::uint8_t, stage, "length n_gens: Stage this tick")            \
  X(double, h, "length n_gens: serving cost h_g(t), H100e per Mtok")  \
  X(double, align, "length n_countries·n_providers: align(c, p)")

/// This tick's generations (a few dozen), read-only for agents.
struct GenTableView {
  int n_gens;
  int n_providers;
  CUTOFF_GEN_TABLES(CUTOFF_TABLE_MEMBER)
  CUTOFF_TABLES_OF(CUTOFF_GEN_TABLES)
};

CUTOFF_HD_INLINE double align_of(const GenTableView& g, int c, int p) { return g.align[c * g.n_providers + p]; }

/// §2.4 for a user: GENERAL with align(c, p) ≥ 0, or OPEN.
CUTOFF_HD_INLINE bool user_eligible(const GenTableView& g, int c, int gen) {
  const std::uint8_t st = g.stage[gen];
  return st == kStageOpen || (st == kStageGeneral && align_of(g, c, g.provider[gen]) >= 0.0);
}

/// §2.6(e) the water-fill's weight of a plan of weight w_plan on a generation of cost
/// h: w_plan, the level counting tokens (v4); (v5) w_plan/h under compute caps, the
/// level counting H100e, so a generation h times cheaper gives h times the tokens.
CUTOFF_HD_INLINE double fill_weight(bool compute_caps, double w_plan, double h) {
  return compute_caps ? w_plan / h : w_plan;
}

/// §2.4 (v5, compute caps) the share of demand at full caps `cap` (Mtok) that a plan-layer
/// level `level` (H100e per plan weight) serves at fill weight `fill_w` (w_plan/h_g):
/// min(1, level·fill_w/cap)^ψ; 1 when every cap fitted (level = +∞) or nothing is demanded.
CUTOFF_HD_INLINE double served_share(double level, double fill_w, double cap, double psi) {
  if (!(level < fp::kInf) || !(cap > 0.0)) return 1.0;
  return fp::pow(fp::min(1.0, level * fill_w / cap), psi);
}

/// The served share of every generation without compute caps (v4): 1.
struct ServedFully {
  CUTOFF_HD_INLINE double operator()(int) const { return 1.0; }
};

/// §2.4 choice for a user: the eligible generation maximising
/// φ·K_g·served(g) + switch_noise·γ (the affordability factor is 1 for users; v5's
/// compute caps put the share of its cap the generation would serve there); when
/// `only_provider` is not kNone, only that provider's generations compete.
/// Returns kNone when nothing is eligible. One Gumbel draw per candidate, in
/// generation order, from the agent's ChoiceNoise stream of this tick.
template <class Served = ServedFully>
CUTOFF_HD_INLINE std::uint8_t choose_user_generation(const GenTableView& g, int c, double phi, double noise,
                                                     std::uint8_t only_provider, Rng& rng,
                                                     const Served& served = Served{}) {
  std::uint8_t best = kNone;
  double best_u = 0.0;
  for (int gen = 0; gen < g.n_gens; ++gen) {
    if (!user_eligible(g, c, gen)) continue;
    if (only_provider != kNone && g.provider[gen] != only_provider) continue;
    const double u = phi * g.K[gen] * served(gen) + noise * rng.gumbel();
    if (best == kNone || u > best_u) {
      best = static_cast<std::uint8_t>(gen);
      best_u = u;
    }
  }
  return best;
}

}  // namespace cutoff
