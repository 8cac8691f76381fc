#pragma once
/// @file
/// The layout's tables as the per-agent functions read them (docs/model.md §1 "Agent
/// weights and firm sizes"): the (country, sector) segments of the country-sorted
/// firm arrays, the large stratum and the agent weights. core/model/population.hpp
/// computes them once on the host (Layout); the per-agent initialisation and the
/// passes read them through LayoutView on either backend.

#include <cstdint>

#include "core/hd/tables.hpp"

namespace cutoff {

/// Size bands of the small stratum (docs/model.md §1): with `size_strata` (v5) the raw
/// sizes [1, 10), [10, 50), [50, 250) and [250, x_L), each with its own agents and
/// weight; without, band 0 is the whole small stratum [1, x_L) and the others are empty.
inline constexpr int kSizeBands = 4;

#define CUTOFF_LAYOUT_TABLES(X)                                                                                   \
  X(std::uint64_t, seg_begin, "length n_countries·n_sectors + 1: firm segments (c, s) in order")                  \
  X(std::uint32_t, seg_large, "length n_countries·n_sectors: large-stratum agents at each segment's start")       \
  X(std::uint32_t, seg_band, "length n_countries·n_sectors·kSizeBands: small agents of each band, after those")   \
  X(std::uint64_t, user_begin, "length n_countries + 1")                                                          \
  X(double, x_L, "length n_countries: Pareto threshold of the large stratum (inf if none)")                       \
  X(double, band_edge, "length n_countries·(kSizeBands + 1): raw-size edges of the bands (equal: an empty band)") \
  X(double, w_small, "length n_countries·kSizeBands: real firms per small-stratum agent of each band")            \
  X(double, w_user, "length n_countries: people per user agent")

/// Read-only tables of a Layout, for per-agent functions on either backend
/// (constant for a run: the CUDA backend uploads them once).
struct LayoutView {
  int n_countries;
  int n_sectors;
  CUTOFF_LAYOUT_TABLES(CUTOFF_TABLE_MEMBER)
  CUTOFF_TABLES_OF(CUTOFF_LAYOUT_TABLES)
};

}  // namespace cutoff
