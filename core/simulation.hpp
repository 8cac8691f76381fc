#pragma once
/// @file
/// A Simulation holds one run's whole state and parameters, with no globals,
/// so one process can run many members (ensembles) side by side. It owns the
/// agent arrays (core/registry.hpp), the providers (core/providers.hpp) and the
/// metrics of the current tick; step() advances one month in MODEL.md §2's order.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agents/fields.hpp"
#include "core/countries.hpp"
#include "core/metrics.hpp"
#include "core/params.hpp"
#include "core/population.hpp"
#include "core/providers.hpp"
#include "core/registry.hpp"

namespace cutoff {

/// How a run executes, as opposed to what it models (Params).
struct RunOptions {
  std::uint32_t replicate = 0;
  int threads = 0;               ///< OpenMP threads; 0 = the OpenMP default
  std::string backend = "cpu";   ///< the backend actually used
};

class Simulation {
 public:
  /// Builds the layout and the initial state of §2.0 (before tick 0).
  Simulation(Params params, std::vector<Country> countries, RunOptions options);

  /// Advances one tick (the next one) and fills metrics().
  void step();
  /// Ticks done so far; the next step() computes tick `tick()`.
  int tick() const { return tick_; }

  const Params& params() const { return params_; }
  const RunOptions& options() const { return options_; }
  const std::vector<Country>& countries() const { return countries_; }
  const Layout& layout() const { return layout_; }
  const Market& market() const { return market_; }
  const HostArrays<Firms>& firms() const { return firms_; }
  const HostArrays<Users>& users() const { return users_; }
  const Metrics& metrics() const { return metrics_; }

  /// Provider names (the `provider` coordinate).
  std::vector<std::string> provider_names() const;

 private:
  void init_firms();
  void init_users();
  void define_metrics();
  void record();
  void set_threads() const;

  Params params_;
  std::vector<Country> countries_;
  RunOptions options_;
  Layout layout_;
  Market market_;
  HostArrays<Firms> firms_;
  HostArrays<Users> users_;
  Metrics metrics_;
  int tick_ = 0;

  // Per-country lagged values (§2.0 "Lagged values").
  std::vector<double> gdp_prev_;  ///< GDP_c(t−1), US$ a year

  // Metric ids.
  int m_capacity_ = -1, m_capacity_hosted_ = -1, m_orders_ = -1, m_frontier_K_ = -1, m_follower_lag_ = -1,
      m_serving_cost_ = -1, m_K_lead_ = -1, m_released_frontier_ = -1;
};

/// Step 8's pool rates per (country, sector) segment (also §2.0's revenue(−1)):
/// rate_cs = (1−ω)·P_cs/Z_cs + ω·Σ_c' P_c's/Z_s with P_cs = GDP_c/12·Y_cs/Y_c.
/// @param[in] YZ       length n_countries·n_sectors: {Y_cs, Z_cs}
/// @param[in] gdp      length n_countries: GDP_c(t−1), US$ a year
/// @param[out] rate    length n_countries·n_sectors
void pool_rates(int n_countries, int n_sectors, const double* Y, const double* Z, const double* gdp, double omega,
                double* rate);

}  // namespace cutoff
