#pragma once
/// @file
/// Per-firm functions (MODEL.md §1, §2.0, §2.8). Each is a pure function of
/// (agent index, the SoA view, a small constants struct), called by the OpenMP
/// loops in core/ and by the kernels in cuda/kernels.cu.

#include <cstdint>

#include "agents/fields.hpp"
#include "core/fpmath.hpp"
#include "core/hd.hpp"
#include "core/population.hpp"
#include "core/rng.hpp"

namespace cutoff {

/// Constants of the firms' initial draws (§1, §2.0).
struct FirmInitConsts {
  std::uint32_t seed, replicate;
  LayoutView layout;
  const double* A_c;          ///< length n_countries: (GDP per worker_c / world GDP per worker)^(1/σ_c)
  const std::uint8_t* tier;   ///< length n_countries
  double pareto_alpha, size_cap, A_sigma0, budget_sigma, p_defender;
  int defender_sector;        ///< sector whose large tier-1 firms may be defenders (−1: none)
};

/// The (country, sector) segment holding firm i: the last s with seg_begin[s] ≤ i.
CUTOFF_HD_INLINE int firm_segment(const LayoutView& L, std::uint64_t i) {
  int lo = 0, hi = L.n_countries * L.n_sectors;  // seg_begin[lo] ≤ i < seg_begin[hi]
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (L.seg_begin[mid] <= i) lo = mid;
    else hi = mid;
  }
  return lo;
}

/// Raw size of a firm by inverse CDF of the Pareto(α, min 1) distribution,
/// above x_L (large stratum) or below it (the rest), capped at size_cap.
CUTOFF_HD_INLINE double firm_raw_size(bool large, double x_L, double alpha, double cap, double u) {
  double x;
  if (large) {
    x = x_L * fp::pow(u, -1.0 / alpha);
  } else {
    // F(x) = (1 − x^−α) / (1 − x_L^−α) on [1, x_L); x_L = ∞ gives the full Pareto.
    const double tail = x_L < fp::kInf ? fp::pow(x_L, -alpha) : 0.0;
    x = fp::pow(1.0 - u * (1.0 - tail), -1.0 / alpha);
  }
  return fp::min(x, cap);
}

/// §2.0 initial state of firm i, before the per-country size scaling and the
/// pool revenue: country, sector, strata flags, raw size, A, b; nothing else set.
CUTOFF_HD_INLINE void init_firm(std::uint64_t i, const FirmInitConsts& k, const FirmView& f) {
  const LayoutView& L = k.layout;
  const int seg = firm_segment(L, i);
  const int c = seg / L.n_sectors;
  const int s = seg % L.n_sectors;
  const bool large = i - L.seg_begin[seg] < k.layout.seg_large[seg];
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
  f.employees[i] = static_cast<float>(firm_raw_size(large, L.x_L[c], k.pareto_alpha, k.size_cap, u_size));
  f.A[i] = static_cast<float>(k.A_c[c] * fp::exp(k.A_sigma0 * z_A));
  f.lnA_AI[i] = 0.0f;
  f.W[i] = 0.0;
  f.b[i] = static_cast<float>(fp::exp(k.budget_sigma * z_b - 0.5 * k.budget_sigma * k.budget_sigma));
  f.revenue[i] = 0.0f;
  f.alloc[i] = 0.0f;
  f.K[i] = 0.0f;
  f.ai_value[i] = 0.0;
}

/// Weight of firm i in real firms: 1 in the large stratum, else the country's small-stratum weight.
CUTOFF_HD_INLINE double firm_weight(const LayoutView& L, const FirmView& f, std::uint64_t i) {
  return (f.flags[i] & firm_flag::kLarge) ? 1.0 : L.w_small[f.country[i]];
}

/// Scales firm i's raw size so that its country's weighted employees sum to its workers.
CUTOFF_HD_INLINE void scale_firm_size(std::uint64_t i, const double* scale, const FirmView& f) {
  f.employees[i] = static_cast<float>(static_cast<double>(f.employees[i]) * scale[f.country[i]]);
}

/// Step 8, pass 1 terms of firm i: w·A·employees and w·employees·A^σ_c.
CUTOFF_HD_INLINE void pool_terms(const LayoutView& L, const FirmView& f, double sigma_c, std::uint64_t i,
                                 double* out) {
  const double w = firm_weight(L, f, i);
  const double A = f.A[i];
  const double e = f.employees[i];
  out[0] = w * A * e;
  out[1] = w * e * fp::pow(A, sigma_c);
}

/// Step 8, pass 2 pool rule: revenue_i = employees·A^σ_c·rate_(c,s), where
/// rate_(c,s) = (1−ω)·P_cs/Z_cs + ω·Σ_c' P_c's/Z_s (computed per segment on the host).
CUTOFF_HD_INLINE double pool_revenue(const FirmView& f, double sigma_c, const double* seg_rate, int n_sectors,
                                     std::uint64_t i) {
  const double rate = seg_rate[static_cast<int>(f.country[i]) * n_sectors + f.sector[i]];
  return static_cast<double>(f.employees[i]) * fp::pow(f.A[i], sigma_c) * rate;
}

/// §2.0: revenue(−1) by the pool rule and W = 3·revenue(−1).
CUTOFF_HD_INLINE void init_firm_revenue(std::uint64_t i, double sigma_c, const double* seg_rate, int n_sectors,
                                        const FirmView& f) {
  const double r = pool_revenue(f, sigma_c, seg_rate, n_sectors, i);
  f.revenue[i] = static_cast<float>(r);
  f.W[i] = 3.0 * static_cast<double>(f.revenue[i]);
}

}  // namespace cutoff
