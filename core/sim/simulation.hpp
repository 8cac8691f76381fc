#pragma once
/// @file
/// A Simulation holds one run's whole state and parameters, with no globals,
/// so one process can run many members (ensembles) side by side. It owns the
/// agent arrays (core/hd/registry.hpp), the providers (core/model/providers.hpp), the
/// countries' lagged aggregates and the metrics of the current tick; step()
/// advances one month in docs/model.md §2's order, each step a member named after it.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agents/fields.hpp"
#include "agents/firm_kern.hpp"
#include "agents/user_kern.hpp"
#include "core/hd/registry.hpp"
#include "core/model/countries.hpp"
#include "core/model/metrics.hpp"
#include "core/model/params.hpp"
#include "core/model/population.hpp"
#include "core/model/providers.hpp"
#include "core/sim/exec.hpp"

namespace cutoff {

/// The registry fields one step of the tick reads and writes, for one population,
/// and how many passes over that population it makes: the benchmark harness counts
/// a tick's compulsory bytes (each field used read once, each field changed written
/// once) and the bytes moved (each pass reading the step's fields again) from it.
struct StepAccess {
  std::string step, population;
  std::vector<std::string> read, written;
  int passes;
};

/// The policies a country has taken (docs/model.md §6): the bits of its `policy` value,
/// as `/metrics/policy` reports them.
namespace policy_flag {
inline constexpr std::uint8_t kBuild = 1u << 0;     ///< a domestic build (hosted orders)
inline constexpr std::uint8_t kDeal = 1u << 1;      ///< a deal with its provider
inline constexpr std::uint8_t kKycRaise = 1u << 2;  ///< a KYC raise
}  // namespace policy_flag

/// How a run executes, as opposed to what it models (Params).
struct RunOptions {
  std::uint32_t replicate = 0;
  int threads = 0;                  ///< OpenMP threads; 0 = the OpenMP default
  Backend backend = cpu_backend();  ///< the backend that runs it (core/sim/exec.hpp)
  int canary = -1;                  ///< 0…255: fill the agent arrays with this byte before §2.0 (tests)
};

/// Names of the `class` dimension (MetricClass, core/sim/passes.hpp), in order.
const std::vector<std::string>& class_names();

class Simulation {
 public:
  /// Builds the layout and the initial state of §2.0 (before tick 0), τ0 and need0 included.
  Simulation(Params params, std::vector<Country> countries, RunOptions options);

  /// Advances one tick (the next one) and fills metrics().
  void step();
  /// Ticks done so far; the next step() computes tick `tick()`.
  int tick() const { return tick_; }

  const Params& params() const { return params_; }
  const RunOptions& options() const { return options_; }
  const std::vector<Country>& countries() const { return countries_; }
  const Layout& layout() const { return layout_; }
  const Labs& labs() const { return labs_; }
  /// Host copies of the agents, current (on CUDA: copied from the device at each call).
  const HostArrays<Firms>& firms() const { return exec_->host_firms(); }
  const HostArrays<Users>& users() const { return exec_->host_users(); }
  /// The backend: snapshots (core/app/run.cpp) and per-pass access (tests).
  Exec& exec() const { return *exec_; }
  const Metrics& metrics() const { return metrics_; }
  /// Derived at §2.0: tokens per worker-month at tick 0 (Mtok) and the consumer need scale (Mtok a month).
  double tau0() const { return tau0_; }
  double need0() const { return need0_; }
  /// Firm demand at p_min over firm capacity at tick 0 that τ0 reaches: tightness0,
  /// or less where budgets bind (then a warning says so).
  double tightness0_reached() const { return tightness0_reached_; }
  /// Warnings of the initial state (the layout's are in layout().warnings).
  const std::vector<std::string>& warnings() const { return warnings_; }

  /// Names of the timed parts of a tick, in order, and their wall seconds in the last tick.
  static const std::vector<std::string>& step_names();
  const std::vector<double>& step_seconds() const { return step_seconds_; }
  /// What each timed part reads and writes (see StepAccess).
  static const std::vector<StepAccess>& step_accesses();

  /// Provider names (the `provider` coordinate).
  std::vector<std::string> provider_names() const;

  /// wage_c of every country from GDP(t−1) (§2.8).
  std::vector<double> wages() const;
  /// exp(tau_growth·max(t, 0)): the growth of tokens per worker (firms' need).
  double tau_growth_factor(int t) const;
  /// The growth of a person's need since tick 0 (§2.5, v5): logistic from 1 at rate
  /// need_growth towards need_sat; exp(need_growth·max(t, 0)) when need_sat is inf.
  double need_growth_factor(int t) const;
  /// conn_c of §2.9 at GDP per capita_c(t−1): clip((GDP per capita / conn_ref)^conn_exp, conn_min, 1).
  double connectivity(int c) const;
  /// The constants of the firms' and users' per-agent steps at tick t, on the
  /// host (tables owned by *this); exec().put(k) gives them as the passes read them.
  FirmTickConsts firm_consts(int t);
  UserConsts user_consts(int t);
  /// The layout as the backend's passes read it (uploaded once).
  OnExec<LayoutView> exec_layout() const { return layout_x_; }

  /// One §7 metric: its name, dimensions, units and meaning (written to /metrics and,
  /// by `cutoff validate --doc-metrics`, to docs/metrics.md) and how its value is read
  /// off the tick (docs/conventions.md: one declaration per metric).
  struct MetricDecl {
    MetricSpec spec;
    void (*fill)(const Simulation& s, double* out);  ///< out: metric_size(spec) values
  };
  /// Every metric, in the order of /metrics (core/sim/simulation.cpp).
  static const std::vector<MetricDecl>& metric_decls();
  /// The number of values of a metric: the product of its dimensions' lengths.
  std::size_t metric_size(const MetricSpec& spec) const;

  /// Visits every member that carries state from one tick to the next (checkpoints:
  /// core/io/checkpoint.cpp defines it for its archives). Agent arrays are not included.
  template <class Archive> void checkpoint_io(Archive& ar);

 private:
  // §2.0
  void init_firms();
  void init_users();
  void derive_scales();  // τ0 and need0, on the reference population or this run's
  void derive_tau0();
  OnExec<FirmTickConsts> put_tick0_consts(double tau);
  void derive_need0();
  double firm_demand_at_pmin(double tau);
  void price_plans();  // §2.9 (v5): plan_mult_ and seat_price_ from π(t−1)
  // §2 steps
  std::vector<int> step_labs(int t);  // §2.1–§2.3; returns the labs that chose partners (§2.2)
  void place_policy_orders(int t);    // §6 hosted orders, before step 1
  int firm_tables(int t);             // firm_consts' per-country and per-provider tables; the lever country
  // fk, uk: this tick's constants as the passes read them; fk_host: the same on the host.
  void choose_partners(const std::vector<int>& released, const FirmTickConsts& fk_host);  // §2.2
  void step_choice(const OnExec<FirmTickConsts>& fk, const OnExec<UserConsts>& uk);       // §2.4
  void step_market(const OnExec<FirmTickConsts>& fk, const OnExec<UserConsts>& uk);       // §2.5–§2.6
  /// One tick's market (§2.6), per provider: what each part of step_market hands on.
  struct MarketTick {
    std::vector<double> inference, reserve, floor;                ///< H100e: inference capacity, (a), (b)
    std::vector<double> cons_demand;                              ///< (b) users' demand at full caps, H100e
    std::vector<double> firm_demand;                              ///< Σ w·x_i(p_min) (the forecast's firm part)
    std::vector<ProviderSupply> supply;                           ///< (c)'s supply (and v5 plan-layer bid)
    std::vector<ProviderClearing> cleared;                        ///< (c)'s result
    KeyedFixed cons{0}, firm_sums{0}, use_sums{0}, seat_sums{0};  ///< ConsumerSum, FirmMarketSum, …
  };
  MarketTick market_supply(const OnExec<UserConsts>& uk);                   // (a), (b)
  void clear_firm_market(const OnExec<FirmTickConsts>& fk, MarketTick& m);  // (c), §2.5 budgets
  void fill_plan_layer(const OnExec<FirmTickConsts>& fk, const OnExec<UserConsts>& uk, MarketTick& m);  // (d), (e)
  void sum_statuses();                                                                  // §7 who is cut off
  void settle_providers(const MarketTick& m);                                           // revenue, prices, forecast
  void step_firms(const FirmTickConsts& fk_host, const OnExec<FirmTickConsts>& fk);     // §2.7–§2.8
  void step_adoption(const OnExec<UserConsts>& uk);                                     // §2.9
  void step_countries(const OnExec<FirmTickConsts>& fk, const OnExec<UserConsts>& uk);  // §2.10, §6
  void aggregate_countries(const OnExec<FirmTickConsts>& fk, const OnExec<UserConsts>& uk);  // §2.10
  void take_policies();                                                                      // §6 by rule
  void rank_firms();                                                                         // §7 ranks
  void define_metrics();
  void record();
  void set_threads() const;
  /// Host storage behind a PoolRule's tables (§2.8).
  struct PoolStore {
    std::vector<double> rate, own, Z;
  };
  /// Step 8 pass 1 and the pool rule's tables, backed by `store` and seg_E_; `meanA`:
  /// each segment's employment-weighted mean A (entrants), if given.
  PoolRule pool_rule(PoolStore& store, std::vector<double>* meanA);

  Params params_;
  std::vector<Country> countries_;
  RunOptions options_;
  Layout layout_;
  Labs labs_;
  std::unique_ptr<Exec> exec_;
  OnExec<LayoutView> layout_x_;  ///< the layout as the backend's passes read it
  Metrics metrics_;
  int tick_ = 0;
  double tau0_ = 0, need0_ = 0, tightness0_reached_ = 0;
  std::uint32_t draw_seed_ = 0, draw_replicate_ = 0;  ///< keys of the draws (seed 0, replicate 0 while deriving τ0)
  std::vector<std::string> warnings_;
  std::vector<double> step_seconds_;

  // Country state: lagged aggregates (t−1), policies (§6).
  std::vector<double> gdp_prev_;  ///< GDP_c(t−1), US$ a year
  std::vector<double> Y0_;        ///< Y_c(0)
  std::vector<double> adoption_prev_, use_ratio_prev_, spill_, quota_demand_prev_;
  std::vector<double> firm_use_prev_;     ///< (v5) per country: share of real firms using AI at t−1 (§2.9)
  std::vector<WaterLevel> level_prev_;    ///< (v5) per provider: the plan layer's water levels at t−1 (§2.4)
  std::vector<double> seg_E_;             ///< Σ w·employees per (country, sector) (constant)
  std::vector<int> gap_run_;              ///< consecutive ticks with access gap > gap_policy
  std::vector<int> policy_provider_;      ///< provider of the country's policies, −1 none
  std::vector<std::uint8_t> policy_;      ///< policy_flag bits
  std::vector<int> deal_arrival_;         ///< tick the deal's capacity arrives (−1: none)
  std::vector<int> deal_order_tick_;      ///< tick the deal order is placed (−1: none pending)
  std::vector<std::uint16_t> deal_mask_;  ///< bit p: hosts an arrived deal of p
  std::vector<std::uint64_t> large_;      ///< indices of large-stratum firms (from the layout)
  HostArrays<Firms> large_firms_;         ///< their copy for the host steps (§2.2 partners, metrics)

  // Tables the per-agent constants point into (rebuilt each tick).
  std::vector<std::uint8_t> tier_u8_, quota_provider_, first_resort_;
  std::vector<double> kyc_rate_c_, zeta_, tau_s_, price_, price_home_, wage_, adopt_rate_, firm_adopt_rate_;
  std::vector<double> plan_mult_, seat_price_;  ///< per provider (§2.9, v5: plans priced by scarcity)

  // This tick's results, for the metrics.
  struct TickResults {
    std::vector<double> price, price_home, revenue, utilisation, sold, reserve, cons_use;
    std::vector<double> plan_value;  ///< (v5) per provider: the plan layer's revenue per H100e at full caps
    std::vector<WaterLevel> levels;  ///< per provider: the plan layer's water levels (§2.6e)
    std::vector<double> class_spend, class_tokens, rationed;  ///< provider × class
    std::vector<double> adoption, gap, K_elig, gdp, spill;
    double top20 = 0, top20_large = 0, gini = 0, negative_wealth = 0, capped_share = 0, entries = 0;
    std::vector<double> status_firms, status_emp;                  ///< country × size class × status
    std::vector<double> class_emp, class_emp_K;                    ///< country × size class
    std::vector<double> capped_c, tokens_per_adopter, plan_share;  ///< per country (plan_share: × 3 plans)
  } res_;
  std::vector<double> quota_firm_demand_;  ///< D_c's firm part this tick (§2.4), before ζ
};

/// Step 8's pool rates per (country, sector) segment (also §2.0's revenue(−1)):
/// rate_cs = (1−ω)·P_cs/Z_cs + ω·Σ_c' P_c's/Z_s with P_cs = GDP_c/12·Y_cs/Y_c.
/// @param[in] Y, Z       length n_countries·n_sectors
/// @param[in] gdp        length n_countries: GDP_c(t−1), US$ a year
/// @param[out] rate      length n_countries·n_sectors
/// @param[out] own     price_taker (PoolRule) only, else null: (1−ω)·P_cs, and `rate` then
///                     holds only ω·Σ_c' P_c's/Z_s
void pool_rates(int n_countries, int n_sectors, const double* Y, const double* Z, const double* gdp, double omega,
                double* rate, double* own = nullptr);

}  // namespace cutoff
