#pragma once
/// @file
/// Who stands for whom (docs/model.md §1 "Agent weights and firm sizes"): how many
/// firm and user agents each country gets, their weights in real firms and
/// people, the large-firm stratum, and the (country, sector) segments of the
/// country-sorted firm arrays. Computed once on the host from the country table
/// and the parameters; the per-agent initialisation reads it through LayoutView.

#include <cstdint>
#include <string>
#include <vector>

#include "agents/layout.hpp"
#include "core/model/countries.hpp"

namespace cutoff {

struct Params;

struct Layout {
  std::uint64_t n_firms = 0, n_users = 0, n_large = 0;
  int n_countries = 0, n_sectors = 0;
  std::vector<double> workers;           ///< worker_share · population
  std::vector<double> real_firms;        ///< N_c
  std::vector<std::uint64_t> large;      ///< n_large,c
  std::vector<std::uint64_t> small;      ///< small-stratum firm agents
  std::vector<std::uint64_t> users;      ///< user agents
  std::vector<std::uint64_t> seg_begin;  ///< firm segments (c, s)
  std::vector<std::uint32_t> seg_large;
  std::vector<std::uint32_t> seg_band;                  ///< (c, s, band)
  std::vector<std::uint64_t> firm_begin;                ///< length n_countries + 1
  std::vector<std::uint64_t> user_begin;                ///< length n_countries + 1
  std::vector<double> x_L, band_edge, w_small, w_user;  ///< band_edge: (c, band edge); w_small: (c, band)
  std::vector<std::string> warnings;                    ///< e.g. n_large shrunk to fit

  LayoutView view() const {
    return {n_countries,          n_sectors,     table_of(seg_begin), table_of(seg_large), table_of(seg_band),
            table_of(user_begin), table_of(x_L), table_of(band_edge), table_of(w_small),   table_of(w_user)};
  }
};

/// E[min(X, cap)] for X Pareto with index alpha and minimum 1.
double pareto_capped_mean(double alpha, double cap);

/// Shares `total` integer units in proportion to `weight`, each at least `floor`
/// (when total allows), by largest remainder; ties to the lower index.
std::vector<std::uint64_t> share_largest_remainder(std::uint64_t total, const std::vector<double>& weight,
                                                   std::uint64_t floor);

/// §1 the size bands of a country's small stratum: their raw-size edges (kSizeBands + 1),
/// agents and weights (kSizeBands each) for @p agents agents standing for @p firms real
/// firms below x_L. With @p strata, bands [1, 10), [10, 50), [50, 250), [250, x_L) (cut
/// at x_L) get agents in proportion to their expected employment, at least one each, and
/// weigh their expected real firms; without, band 0 holds every agent at firms/agents.
void size_bands(double x_L, double alpha, double cap, bool strata, std::uint64_t agents, double firms, double* edge,
                std::uint64_t* n, double* w);

/// Builds the layout; throws InputError naming n_firms or n_users when they
/// cannot give every country its minimum.
Layout make_layout(const std::vector<Country>& countries, const Params& p);

}  // namespace cutoff
