#pragma once
/// @file
/// Providers (AI labs) and their generations: few, so they update on the host
/// (docs/model.md §1). Steps 1 (capacity), 2 (training, releases, fast followers,
/// open weights) and 3 (serving cost), and the providers' part of §2.0.

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "agents/choice.hpp"
#include "core/model/countries.hpp"

namespace cutoff {

struct Params;

/// One model generation of one lab.
struct Generation {
  int provider = 0;
  double K = 0;     ///< capability K_g
  int t_g = 0;      ///< tick it entered the release pipeline
  int general = 0;  ///< tick it reaches GENERAL: t_g + d_gov + d_trusted + d_kyc
};

struct Provider {
  std::string name;
  int home = 0;  ///< country index
  bool follower = false;
  double cap_share = 0, offset = 0;
  int d_gov = 0, d_trusted = 0, d_kyc = 0;
  // state
  double C_home = 0, C_hosted = 0;  ///< H100e
  double cash = 0;                  ///< US$
  double T = 0;                     ///< cumulative training compute, H100e-months
  double K_own = 0, K = 0;          ///< capability
  double price = 0;                 ///< π_p(t−1), US$ per H100e-month (π_rest under first-resort)
  double price_home = 0;            ///< π_home(t−1) under first-resort, else = price
  double forecast = 0;              ///< F_p, H100e of inference demanded
  double revenue = 0;               ///< revenue_p(t−1), US$ a month
  double order = 0;                 ///< home order placed this tick, H100e
  double lag = -1;  ///< followers: t − min{t' ≤ t : K_lead(t') ≥ K_f(t)}, ticks (§7, v4); −1 otherwise
  std::vector<double> arrive_home, arrive_hosted;  ///< arrivals by absolute tick (index t + lead)
  std::vector<int> gens;                           ///< indices into the generation table, oldest first

  double capacity() const { return C_home + C_hosted; }
};

/// All labs, their generations, and the derived constants of step 3.
class Labs {
 public:
  Labs(const Params& p, const std::vector<Country>& countries);

  /// Step 1 of tick t: arrivals, home orders, cash.
  void step_capacity(const Params& p, int t);
  /// Step 2 of tick t: training, releases, followers, open weights. Returns the
  /// indices of providers that released a generation this tick.
  std::vector<int> step_training(const Params& p, int t);
  /// Step 3 of tick t: h_g(t) and stages of every generation.
  void step_serving_cost(const Params& p, int t);

  /// §6 hosted capacity: `amount` H100e ordered at tick t for provider q, arriving
  /// `lead` ticks later (capex paid by the host, so the provider's cash is untouched).
  void add_hosted_order(int q, double amount, int t);
  /// Step 6's provider outcome: revenue_p(t), π_p(t) (and π_home under
  /// first-resort), and the forecast F_p ← F_p + F_smooth·(demand − F_p), demand in H100e.
  void settle(int q, double revenue, double price, double price_home, double demand, double F_smooth);

  /// The generation table as per-agent code sees it (valid until the next step).
  GenTableView view() const;

  const std::vector<Provider>& providers() const { return providers_; }
  const std::vector<Generation>& generations() const { return gens_; }
  double p_min() const { return p_min_; }
  /// K_lead(t): the best K_g among non-followers' generations at KYC or later.
  double K_lead(int t) const;
  /// K_lead of the latest tick stepped (step_training's), the `K_lead` metric.
  double K_lead_latest() const { return K_lead_hist_.back(); }
  /// Best released frontier (any provider's generation at TRUSTED or later) this tick.
  double released_frontier() const;
  /// Whether some provider serves country c at GENERAL or OPEN this tick (§2.9 conn_c).
  bool serves_generally(int c) const;

  /// Visits every member that changes during a run (checkpoints: core/io/checkpoint.cpp).
  template <class Archive> void checkpoint_io(Archive& ar);

 private:
  Stage stage_of(const Params& p, const Generation& g, int t) const;
  void add_generation(int provider, double K, int t_g);
  double lead_history(const Params& p, int t) const;
  int follower_lag(const Params& p, int t, double K_f) const;
  int home_tier(int c) const { return tier_[c]; }

  int n_countries_ = 0, lead_ = 0;
  int lever_country_ = -1;  ///< country index of lever_country
  std::vector<int> tier_;   ///< export tier of each country
  double p_min_ = 0, T_ref_ = 0;
  std::vector<Provider> providers_;
  std::vector<Generation> gens_;
  std::vector<double> align_;  ///< n_countries × n_providers
  std::vector<std::uint8_t> gen_provider_, gen_stage_;
  std::vector<double> gen_K_, gen_h_;
  std::vector<double> K_lead_hist_;    ///< K_lead(t) for t ≥ 0, by tick
  std::vector<int> lead_holder_hist_;  ///< provider holding K_lead(t)
};

/// align(c, p) (docs/model.md §5): 1 at the provider's home, else the provider's
/// per-country override, else its value for the country's tier.
std::vector<double> alignment_matrix(const Params& p, const std::vector<Country>& countries);

}  // namespace cutoff
