#include "core/sim/simulation.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <numeric>
#include <stdexcept>

#include "core/hd/fpmath.hpp"
#include "core/model/spillover.hpp"
#include "core/sim/passes.hpp"

namespace cutoff {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double ratio_or(double num, double den, double fallback) { return den > 0 ? num / den : fallback; }

}  // namespace

const std::vector<std::string>& class_names() {
  static const std::vector<std::string> n{"gov", "trusted", "kyc", "general", "home", "consumer"};
  return n;
}

void pool_rates(int n_countries, int n_sectors, const double* Y, const double* Z, const double* gdp, double omega,
                double* rate, double* own) {
  // Fixed-order host sums over a few thousand segments: the same on every backend.
  std::vector<double> Yc(n_countries, 0.0), Ps(n_sectors, 0.0), Zs(n_sectors, 0.0), P(n_countries * n_sectors);
  for (int c = 0; c < n_countries; ++c)
    for (int s = 0; s < n_sectors; ++s) Yc[c] += Y[c * n_sectors + s];
  for (int c = 0; c < n_countries; ++c)
    for (int s = 0; s < n_sectors; ++s) {
      const int k = c * n_sectors + s;
      P[k] = Yc[c] > 0 ? gdp[c] / 12.0 * Y[k] / Yc[c] : 0.0;
      Ps[s] += P[k];
      Zs[s] += Z[k];
    }
  for (int c = 0; c < n_countries; ++c)
    for (int s = 0; s < n_sectors; ++s) {
      const int k = c * n_sectors + s;
      const double traded = Zs[s] > 0 ? Ps[s] / Zs[s] : 0.0;
      if (own) {
        own[k] = (1.0 - omega) * P[k];
        rate[k] = omega * traded;
        continue;
      }
      const double local = Z[k] > 0 ? P[k] / Z[k] : 0.0;
      rate[k] = (1.0 - omega) * local + omega * traded;
    }
}

// ---------------------------------------------------------------------------
// §2.0 initial state
// ---------------------------------------------------------------------------

Simulation::Simulation(Params params, std::vector<Country> countries, RunOptions options)
    : params_(std::move(params)),
      countries_(std::move(countries)),
      options_(std::move(options)),
      layout_(make_layout(countries_, params_)),
      labs_(params_, countries_),
      exec_(options_.backend.make(exec_shape(layout_, static_cast<int>(params_.provider.size())))) {
  set_threads();
  layout_x_ = exec_->put_constant(layout_.view());
  if (options_.canary >= 0) exec_->fill(static_cast<std::uint8_t>(options_.canary));
  const int C = layout_.n_countries;
  for (const Country& c : countries_) gdp_prev_.push_back(c.gdp_usd);
  adoption_prev_.assign(C, 0.0);
  use_ratio_prev_.assign(C, 1.0);
  firm_use_prev_.assign(C, 0.0);
  level_prev_.assign(params_.provider.size(), WaterLevel{fp::kInf, 0.0, 0.0, 0.0});  // no caps known before tick 0
  spill_.assign(C, 0.0);
  quota_demand_prev_.assign(C, 0.0);
  gap_run_.assign(C, 0);
  policy_provider_.assign(C, -1);
  policy_.assign(C, 0);
  deal_arrival_.assign(C, -1);
  deal_order_tick_.assign(C, -1);
  deal_mask_.assign(C, 0);
  for (const Country& c : countries_) tier_u8_.push_back(static_cast<std::uint8_t>(c.tier));
  for (const Provider& v : labs_.providers()) {
    price_.push_back(v.price);
    price_home_.push_back(v.price_home);
  }
  derive_scales();
  define_metrics();
}

namespace {

/// τ0, need0 and what the derivation reached, as a reference population gives them,
/// with the derivation's warnings as that population's own run gave them.
struct Scales {
  double tau0, need0, tightness0_reached;
  std::vector<std::string> warnings;
};

/// §2.0 (v5): the scales of each scenario's reference population (tau0_ref_firms ×
/// tau0_ref_users agents, seed 0, replicate 0), derived once per process: the members
/// of an ensemble share one derivation, whether their counts are the reference's or
/// not. Keyed by the reference's resolved scenario. Recursive: a run whose counts
/// differ builds the reference population under the lock, and that population
/// derives on its own agents and fills its entry under the same lock.
std::recursive_mutex& scales_mutex() {
  static std::recursive_mutex m;
  return m;
}
std::map<std::string, Scales>& derived_scales() {
  static std::map<std::string, Scales> derived;
  return derived;
}

/// The reference population's parameters for @p run: its counts, seed 0.
Params reference_params(const Params& run) {
  Params p = run;
  p.n_firms = run.tau0_ref_firms;
  p.n_users = run.tau0_ref_users;
  p.seed = 0;
  return p;
}

}  // namespace

void Simulation::derive_scales() {
  // §2.0: τ0 and need0 are constants of the scenario, derived on seed 0, replicate 0
  // whatever this run's own: v5 on the reference population's agent counts, so they do
  // not depend on this run's counts either; v4 (tau0_ref_firms = 0) on this run's.
  const Params& p = params_;
  const bool v4 = !(p.tau0_ref_firms > 0 && p.tau0_ref_users > 0);
  const bool other_counts = uses_reference_population(p);  // v5 at counts other than the reference's
  // Derives on this run's agents, drawn as seed 0, replicate 0.
  auto derive_here = [&] {
    draw_seed_ = 0;
    draw_replicate_ = 0;
    init_firms();
    init_users();
    derive_tau0();
    derive_need0();
  };
  bool drawn_here = false;  // this run's agents hold seed 0, replicate 0's draws
  if (v4) {
    derive_here();
    drawn_here = true;
  } else {
    const Params ref = reference_params(p);
    const std::lock_guard<std::recursive_mutex> lock(scales_mutex());
    const std::string key = to_toml(ref);
    auto it = derived_scales().find(key);
    if (it == derived_scales().end() && !other_counts) {
      // This run is the reference population (its counts): derive on its own agents.
      const std::size_t before = warnings_.size();
      derive_here();
      drawn_here = true;
      const std::vector<std::string> said(warnings_.begin() + static_cast<std::ptrdiff_t>(before), warnings_.end());
      it = derived_scales().emplace(key, Scales{tau0_, need0_, tightness0_reached_, said}).first;
    } else {
      if (it == derived_scales().end()) {
        RunOptions o = options_;
        o.replicate = 0;
        o.canary = -1;
        const Simulation reference(ref, countries_, o);  // its counts are the reference's: it fills the entry
        it = derived_scales().find(key);
      }
      const Scales& s = it->second;
      tau0_ = s.tau0;
      need0_ = s.need0;
      tightness0_reached_ = s.tightness0_reached;
      for (const std::string& w : s.warnings)
        warnings_.push_back(other_counts ? "reference population (" + std::to_string(ref.n_firms) + " firms, " +
                                               std::to_string(ref.n_users) + " users): " + w
                                         : w);
    }
  }
  draw_seed_ = static_cast<std::uint32_t>(p.seed);
  draw_replicate_ = options_.replicate;
  if (!drawn_here || draw_seed_ != 0 || draw_replicate_ != 0) {
    init_firms();
    init_users();
  }
}

void Simulation::set_threads() const {
  // The nthreads ICV is per thread, so concurrent members can each set their own.
  if (options_.threads > 0) omp_set_num_threads(options_.threads);
}

std::vector<std::string> Simulation::provider_names() const {
  std::vector<std::string> names;
  for (const Provider& v : labs_.providers()) names.push_back(v.name);
  return names;
}

PoolRule Simulation::pool_rule(PoolStore& store, std::vector<double>* meanA) {
  // Step 8 pass 1 sums per (country, sector): Y = Σ w·A·e, Z = Σ w·e·A^σ_c.
  const Layout& L = layout_;
  const int C = L.n_countries, S = L.n_sectors;
  const bool taker = params_.pool_price_taker;
  std::vector<double> yz;
  exec_->segment_sums(L.seg_begin, PoolSum{{}, exec_layout(), exec_->firms(), params_.sigma_c}, yz);
  std::vector<double> Y(C * S);
  store.Z.resize(C * S);
  store.rate.resize(C * S);
  store.own.assign(taker ? C * S : 0, 0.0);
  for (int j = 0; j < C * S; ++j) {
    Y[j] = yz[2 * j];
    store.Z[j] = yz[2 * j + 1];
  }
  pool_rates(C, S, Y.data(), store.Z.data(), gdp_prev_.data(), params_.omega, store.rate.data(),
             taker ? store.own.data() : nullptr);
  if (meanA) {
    meanA->resize(C * S);
    for (int j = 0; j < C * S; ++j) (*meanA)[j] = ratio_or(Y[j], seg_E_[j], 1.0);
  }
  PoolRule r{};
  r.n_sectors = S;
  r.sigma_c = params_.sigma_c;
  r.price_taker = taker;
  r.layout = L.view();
  r.rate = table_of(store.rate);
  if (!taker) return r;
  // price_taker: (1−ω)·P_cs shared in proportion to w·e·A^σ·pool_others, so that the
  // segment's revenues sum to its pool.
  r.E = table_of(seg_E_);
  r.Z = table_of(store.Z);
  std::vector<double> R;
  exec_->segment_sums(L.seg_begin, PoolOthersSum{{}, exec_->put(r), exec_->firms()}, R);
  for (int j = 0; j < C * S; ++j) store.own[j] = R[j] > 0 ? store.own[j] / R[j] : 0.0;
  r.own = table_of(store.own);
  return r;
}

void Simulation::init_firms() {
  const Params& p = params_;
  const Layout& L = layout_;
  const int C = L.n_countries, S = L.n_sectors;
  // A_c = (GDP per worker_c / world GDP per worker)^(1/σ_c).
  double world_gdp = 0, world_workers = 0;
  for (int c = 0; c < C; ++c) {
    world_gdp += countries_[c].gdp_usd;
    world_workers += L.workers[c];
  }
  std::vector<double> A_c(C);
  for (int c = 0; c < C; ++c)
    A_c[c] = fp::pow((countries_[c].gdp_usd / L.workers[c]) / (world_gdp / world_workers), 1.0 / p.sigma_c);
  int defender_sector = -1;
  for (int s = 0; s < S; ++s)
    if (p.sector_names[s] == "ict") defender_sector = s;
  const OnExec<LayoutView> Ld = exec_layout();
  const FirmInitConsts k{draw_seed_, draw_replicate_, L.view(),       table_of(A_c), table_of(tier_u8_), p.pareto_alpha,
                         p.size_cap, p.A_sigma0,      p.budget_sigma, p.p_defender,  defender_sector};
  const OnExec<FirmView> f = exec_->firms();
  exec_->loop(L.n_firms, InitFirmLoop{{}, exec_->put(k), f});

  // One factor per country so that weighted employees sum to its workers.
  std::vector<double> raw;
  exec_->segment_sums(L.firm_begin, EmployeesSum{{}, Ld, f}, raw);
  std::vector<double> scale(C);
  for (int c = 0; c < C; ++c) scale[c] = L.workers[c] / raw[c];
  exec_->loop(L.n_firms, ScaleFirmSizeLoop{{}, exec_->put(table_of(scale)), f});
  exec_->segment_sums(L.seg_begin, EmployeesSum{{}, Ld, f}, seg_E_);

  // revenue(−1) by step 8's pool rule at tick 0, and W = 3·revenue(−1).
  PoolStore pool;
  exec_->loop(L.n_firms, InitFirmRevenueLoop{{}, exec_->put(pool_rule(pool, nullptr)), f});
  // The large stratum: the first seg_large agents of each (country, sector) segment.
  large_.clear();
  for (int seg = 0; seg < C * S; ++seg)
    for (std::uint64_t j = 0; j < L.seg_large[seg]; ++j) large_.push_back(L.seg_begin[seg] + j);
  large_firms_ = HostArrays<Firms>(large_.size());
}

std::vector<double> Simulation::wages() const {
  // §2.8 wage_c = labour_share·GDP_c(t−1)/(12·workers_c), US$ per worker-month.
  std::vector<double> w(layout_.n_countries);
  for (int c = 0; c < layout_.n_countries; ++c)
    w[c] = params_.labour_share * gdp_prev_[c] / (12.0 * layout_.workers[c]);
  return w;
}

double Simulation::tau_growth_factor(int t) const {
  // §2.5 tokens per worker grow as exp(tau_growth·t) from tick 0 (flat before it).
  return fp::exp(params_.tau_growth * std::max(t, 0));
}

double Simulation::need_growth_factor(int t) const {
  // §2.5 (v5) S(t) = S∞ / (1 + (S∞ − 1)·exp(−g·t)) from tick 0 (flat before it): S(0) = 1,
  // S → S∞ = need_sat, growing at about g·(1 − S/S∞); S∞ = inf gives exp(g·t).
  const double g = params_.need_growth, sat = params_.need_sat;
  const int tt = std::max(t, 0);
  if (!(sat < fp::kInf)) return fp::exp(g * tt);
  return sat / (1.0 + (sat - 1.0) * fp::exp(-g * tt));
}

double Simulation::connectivity(int c) const {
  const Params& p = params_;
  return fp::clamp(fp::pow(gdp_prev_[c] / countries_[c].population / p.conn_ref, p.conn_exp), p.conn_min, 1.0);
}

UserConsts Simulation::user_consts(int t) {
  const Params& p = params_;
  const int C = layout_.n_countries;
  wage_ = wages();
  adopt_rate_.resize(C);
  for (int c = 0; c < C; ++c) {
    // §2.9 access_c = conn_c·(use ratio_c(t−1))^ψ_u; conn_c at GDP per capita_c(t−1),
    // 0 where nobody serves the country at GENERAL or OPEN.
    const double conn = labs_.serves_generally(c) ? connectivity(c) : 0.0;
    const double access = conn * fp::pow(use_ratio_prev_[c], p.psi_u);
    adopt_rate_[c] = t < 0 ? p.adopt0 * conn : (p.bass_p + p.bass_q * adoption_prev_[c]) * access;
  }
  UserConsts k{};
  k.seed = draw_seed_;
  k.replicate = draw_replicate_;
  k.tick = t;
  k.n_countries = C;
  k.user_begin = table_of(layout_.user_begin);
  k.w_user = table_of(layout_.w_user);
  k.wage = table_of(wage_);
  k.adopt_rate = table_of(adopt_rate_);
  k.zeta = table_of(zeta_);  // empty before tick 0's firm_consts (unused at §2.0)
  k.quota_provider = table_of(quota_provider_);
  k.deal_mask = table_of(deal_mask_);
  k.omega_inc = p.omega_inc;
  k.omega_plan = p.omega_plan;
  k.f_free = p.f_free;
  for (int j = 0; j < 3; ++j) {
    k.plan_price[j] = p.plan_price[j];
    k.plan_need[j] = p.plan_need[j];
    k.plan_weight[j] = p.plan_weight[j];
  }
  k.plan_cap = p.plan_cap;
  k.need_scale = need0_ * need_growth_factor(t);
  k.phi = p.phi;
  k.switch_noise = p.switch_noise;
  k.p_switch = p.p_switch;
  k.plan_repick = p.plan_repick;
  k.plan_priced = p.plan_pass > 0;
  k.compute_caps = p.compute_caps;
  k.psi = p.psi;
  k.p_repick = p.p_repick;
  k.level_prev = table_of(level_prev_);
  price_plans();
  k.plan_mult = table_of(plan_mult_);
  k.gens = labs_.view();
  return k;
}

void Simulation::price_plans() {
  // §2.9 (v5): a provider's plans cost the list prices times (π_p(t−1)/p_min)^plan_pass
  // (π_rest under first-resort: the price of the capacity the plans compete for).
  const Params& p = params_;
  const auto& prov = labs_.providers();
  plan_mult_.assign(prov.size(), 1.0);
  seat_price_.assign(prov.size(), 0.0);
  for (std::size_t q = 0; q < prov.size(); ++q) {
    if (p.plan_pass > 0) plan_mult_[q] = fp::pow(std::max(prov[q].price / labs_.p_min(), 1.0), p.plan_pass);
    seat_price_[q] = p.plan_price[static_cast<std::size_t>(p.seat_plan) - 1] * plan_mult_[q];
  }
}

void Simulation::init_users() {
  const OnExec<UserView> v = exec_->users();
  exec_->loop(layout_.n_users,
              InitUserLoop{{}, exec_->put(user_consts(-1)), params_.income_sigma, params_.need_sigma, v});
  // Lagged adoption share from the initial adopters.
  const int C = layout_.n_countries;
  std::vector<double> adopters;
  exec_->segment_sums(layout_.user_begin, AdoptersSum{{}, v}, adopters);
  for (int c = 0; c < C; ++c) adoption_prev_[c] = adopters[c] * layout_.w_user[c] / countries_[c].population;
}

int Simulation::firm_tables(int t) {
  const Params& p = params_;
  const int C = layout_.n_countries;
  const auto& prov = labs_.providers();
  const int P = static_cast<int>(prov.size());
  const bool levers = t >= p.lever_tick;
  const int lever_country = find_country(countries_, p.lever_country);
  tau_s_.resize(p.mult_s.size());
  for (std::size_t s = 0; s < tau_s_.size(); ++s) tau_s_[s] = tau0_ * p.mult_s[s] * tau_growth_factor(t);
  kyc_rate_c_.resize(C);
  firm_adopt_rate_.resize(C);
  zeta_.resize(C);
  const double quota = p.tier2_quota * fp::pow(1.0 + p.tier2_quota_growth, std::max(t, 0) / 12.0);
  for (int c = 0; c < C; ++c) {
    const double raise = (policy_[c] & policy_flag::kKycRaise) ? p.kyc_raise : 1.0;
    kyc_rate_c_[c] = std::min(1.0, p.kyc_rate[countries_[c].tier - 1] * raise);
    // §2.9 (v5) firms' diffusion: a one-employee firm's adoption probability; its
    // country's connectivity as for people (whoever serves it: eligibility is step 4's).
    const double rate = t <= 0 ? p.firm_adopt0 : p.firm_bass_p + p.firm_bass_q * firm_use_prev_[c];
    firm_adopt_rate_[c] = rate * connectivity(c);
    const bool quota_applies = p.diffusion_rule && levers && countries_[c].tier == 2 && quota_demand_prev_[c] > 0;
    zeta_[c] = quota_applies ? std::min(1.0, quota / quota_demand_prev_[c]) : 1.0;
    deal_mask_[c] = 0;
  }
  for (int c = 0; c < C; ++c)
    if (deal_arrival_[c] >= 0 && t >= deal_arrival_[c])
      deal_mask_[c] |= static_cast<std::uint16_t>(1u << policy_provider_[c]);
  quota_provider_.resize(P);
  first_resort_.resize(P);
  for (int q = 0; q < P; ++q) {
    quota_provider_[q] = countries_[prov[q].home].tier == 1;
    first_resort_[q] = p.first_resort && levers && prov[q].home == lever_country;
    price_[q] = prov[q].price;
    price_home_[q] = prov[q].price_home;
  }
  return lever_country;
}

FirmTickConsts Simulation::firm_consts(int t) {
  const Params& p = params_;
  const int lever_country = firm_tables(t);
  FirmTickConsts k{};
  k.seed = draw_seed_;
  k.replicate = draw_replicate_;
  k.tick = t;
  k.layout = layout_.view();
  k.gens = labs_.view();
  k.tier = table_of(tier_u8_);
  k.kyc_rate = table_of(kyc_rate_c_);
  k.zeta = table_of(zeta_);
  k.deal_mask = table_of(deal_mask_);
  k.quota_provider = table_of(quota_provider_);
  k.first_resort = table_of(first_resort_);
  k.lever_country = lever_country;
  k.price = table_of(price_);
  k.price_home = table_of(price_home_);
  k.tau = table_of(tau_s_);
  k.adopt_rate = table_of(firm_adopt_rate_);
  k.firm_bass = p.firm_bass;
  k.adopt_size = p.firm_adopt_size;
  k.a_kyc = p.a_kyc;
  k.p_switch = p.p_switch;
  k.firm_p_repick = p.firm_p_repick;
  k.switch_noise = p.switch_noise;
  k.phi = p.phi;
  k.psi = p.psi;
  k.rho = p.rho;
  k.sigma_c = p.sigma_c;
  k.wtp_months = p.wtp_months;
  k.access_cost = p.access_cost;
  k.q_min = p.q_min;
  k.beta_W = p.beta_W;
  k.beta_R = p.beta_R;
  k.b_adapt = p.b_adapt;
  k.b_max = p.b_max;
  k.b_floor = p.b_floor;
  k.b_up = p.b_up;
  // §2.6(e) (v5) the product layer: seats on plan seat_plan, a seat needing what a
  // person of need multiplier 1 on that plan needs (capped at plan_cap times it).
  const int sp = static_cast<int>(p.seat_plan) - 1;
  k.seats = p.seats;
  k.seat_share = p.seat_share;
  price_plans();
  k.seat_price = table_of(seat_price_);
  k.seat_cap = need0_ * need_growth_factor(t) * p.plan_need[sp] * std::min(1.0, p.plan_cap);
  k.seat_weight = p.plan_weight[sp];
  k.compute_caps = p.compute_caps;
  k.level_prev = table_of(level_prev_);
  return k;
}

/// Tick 0's firm constants at τ0 = tau.
OnExec<FirmTickConsts> Simulation::put_tick0_consts(double tau) {
  const double saved = tau0_;
  tau0_ = tau;
  const OnExec<FirmTickConsts> k = exec_->put(firm_consts(0));
  tau0_ = saved;
  return k;
}

/// Weighted firm demand at p_min, Σ w·x_i(p_min), with step 4's choices at π(−1)
/// and τ0 = tau (tick 0), over the firms TauChooserLoop marked; nothing is written.
double Simulation::firm_demand_at_pmin(double tau) {
  const OnExec<FirmTickConsts> k = put_tick0_consts(tau);
  KeyedFixed sum(TauDemandSum::kKeys);
  exec_->sum(layout_.n_firms, TauDemandSum{{}, k, exec_->firms(), labs_.p_min()}, sum);
  return sum.value(0, kFixedCompute);
}

void Simulation::derive_tau0() {
  // §2.0: the smallest τ0 at which firm demand at p_min reaches tightness0 × firm
  // capacity at tick 0 (no unused floor): scan up by ×1.1 from 1e−3, then bisect.
  const Params& p = params_;
  double capacity = 0;
  for (const Provider& v : labs_.providers()) {
    const double inference = (1.0 - p.train_share) * v.capacity();
    const bool gov =
        std::find(p.r_gov_homes.begin(), p.r_gov_homes.end(), countries_[v.home].iso3) != p.r_gov_homes.end();
    capacity += inference * (1.0 - (gov ? p.r_gov : 0.0) - p.r_cons);
  }
  double target = p.tightness0 * capacity;
  // Mark the firms that choose at tick 0 (the same at every τ) in the scratch `status`;
  // cleared back to §2.0's 0 below, once τ0 is found.
  exec_->loop(layout_.n_firms, TauChooserLoop{{}, put_tick0_consts(1e-3), exec_->firms(), false});
  // Scan up to 1e5 Mtok per worker-month; demand saturates where budgets bind.
  std::vector<double> taus, demand;
  for (double tau = 1e-3; tau <= 1e5; tau *= 1.1) {
    taus.push_back(tau);
    demand.push_back(firm_demand_at_pmin(tau));
    if (demand.back() >= target) break;
  }
  tightness0_reached_ = p.tightness0;
  if (demand.back() < target) {
    // (v4) Budgets bind before the target: the smallest τ0 reaching 99% of the
    // largest demand over the scan; the run warns and records what it reached.
    const double most = *std::max_element(demand.begin(), demand.end());
    if (!(most > 0))
      throw InputError("key 'tightness0' = " + std::to_string(p.tightness0) +
                       ": no firm demands compute at p_min at any tokens per worker up to 1e5 Mtok a month "
                       "(every firm's budget is below its access cost; raise beta_R or beta_W, or lower access_cost)");
    target = 0.99 * most;
    tightness0_reached_ = target / capacity;
    warnings_.push_back("tightness0 = " + std::to_string(p.tightness0) + " is out of reach (budgets bind): tau0 " +
                        "derived at 99% of the largest firm demand at p_min, tightness " +
                        std::to_string(tightness0_reached_));
  }
  std::size_t j = 0;
  while (demand[j] < target) ++j;
  double hi = taus[j], lo = j > 0 ? taus[j - 1] : hi / 1.1;
  bool lo_below = j > 0;  // demand at lo is known to be below the target (hi's reaches it)
  for (int k = 0; k < 50; ++k) {
    const double mid = 0.5 * (lo + hi);
    // Adjacent doubles: mid is an end whose side is known, so the remaining steps
    // would change nothing; stop without evaluating them (the same τ0).
    if (mid == hi || (mid == lo && lo_below)) break;
    if (firm_demand_at_pmin(mid) >= target) {
      hi = mid;
    } else {
      lo = mid;
      lo_below = true;
    }
  }
  tau0_ = hi;
  exec_->loop(layout_.n_firms, TauChooserLoop{{}, put_tick0_consts(tau0_), exec_->firms(), true});
}

void Simulation::derive_need0() {
  // §2.0: consumer demand at full caps at tick 0, every adopter on its provider's
  // newest GENERAL generation, equals tightness0_cons × the consumer floor; it is
  // linear in need0, so need0 = target / (that demand at need0 = 1).
  const Params& p = params_;
  const GenTableView g = labs_.view();
  const auto& prov = labs_.providers();
  std::vector<double> h_newest(prov.size(), 0.0);
  double floor = 0;
  for (std::size_t q = 0; q < prov.size(); ++q) {
    for (int gen : prov[q].gens)
      if (g.stage[gen] >= kStageGeneral) h_newest[q] = g.h[gen];
    floor += p.r_cons * (1.0 - p.train_share) * prov[q].capacity();
  }
  KeyedFixed sum(NeedUnitSum::kKeys);
  exec_->sum(layout_.n_users,
             NeedUnitSum{{}, exec_->put(user_consts(-1)), exec_->users(), exec_->put(table_of(h_newest))}, sum);
  const double per_unit = sum.value(0, kFixedCompute);
  if (!(per_unit > 0))
    throw InputError("key 'adopt0' = " + std::to_string(p.adopt0) +
                     ": no initial adopters, so need0 cannot be derived (raise adopt0 or n_users)");
  need0_ = p.tightness0_cons * floor / per_unit;
}

// ---------------------------------------------------------------------------
// One tick
// ---------------------------------------------------------------------------

const std::vector<std::string>& Simulation::step_names() {
  static const std::vector<std::string> n{"providers", "choice", "market", "firms", "adoption", "countries", "record"};
  return n;
}

const std::vector<StepAccess>& Simulation::step_accesses() {
  // Written from the per-agent functions each step calls (agents/*_kern.hpp);
  // tests/sim/test_bench.cpp checks every name against the registries.
  static const std::vector<StepAccess> a{
      {"providers", "firms", {"country", "flags", "partners", "revenue"}, {"partners", "provider", "generation"}, 0},
      {"choice",
       "firms",
       {"country", "sector", "provider", "flags", "partners", "employees", "b", "W", "revenue"},
       {"flags", "provider", "generation", "K_elig"},
       1},
      {"choice", "users", {"country", "provider", "flags"}, {"provider", "generation"}, 1},
      {"market",
       "firms",
       {"country", "sector", "generation", "flags", "partners", "band", "employees", "b", "W", "revenue", "alloc", "K",
        "K_elig", "status"},
       {"alloc", "K", "flags", "status", "b", "seats"},
       10},  // clearing 3 passes, settle, sums, 4 status sums, budgets (v5 seats: 2 more passes when on)
      {"market", "users", {"country", "provider", "generation", "plan", "flags", "n", "use"}, {"use", "flags"}, 5},
      {"firms",
       "firms",
       {"country", "sector", "flags", "provider", "generation", "band", "employees", "A", "lnA_AI", "alloc", "K", "W",
        "ai_value", "seats"},
       {"A", "lnA_AI", "W", "revenue", "ai_value"},
       3},  // productivity, pool sums, wealth
      {"adoption", "users", {"country", "flags", "z"}, {"flags", "plan", "provider", "generation"}, 1},
      {"countries",
       "firms",
       {"country", "sector", "flags", "generation", "band", "employees", "A", "K", "K_elig", "W", "ai_value"},
       {},
       5},
      {"countries", "users", {"country", "flags", "provider", "generation", "plan", "n", "use"}, {}, 1},
  };
  return a;
}

void Simulation::step() {
  set_threads();
  exec_->begin_tick();
  const int t = tick_;
  step_seconds_.assign(step_names().size(), 0.0);
  double mark = omp_get_wtime();
  auto lap = [&](int part) {
    const double now = omp_get_wtime();
    step_seconds_[part] += now - mark;
    mark = now;
  };
  const std::vector<int> released = step_labs(t);  // §2.1–§2.3
  const FirmTickConsts fk_host = firm_consts(t);
  const OnExec<FirmTickConsts> fk = exec_->put(fk_host);  // the same, as the passes read it
  const OnExec<UserConsts> uk = exec_->put(user_consts(t));
  if (!released.empty()) choose_partners(released, fk_host);  // §2.2 trusted partners
  lap(0);
  step_choice(fk, uk);  // §2.4
  lap(1);
  step_market(fk, uk);  // §2.5–§2.6
  lap(2);
  step_firms(fk_host, fk);  // §2.7–§2.8
  lap(3);
  step_adoption(uk);  // §2.9
  lap(4);
  step_countries(fk, uk);  // §2.10, §6
  lap(5);
  record();                   // §2.11
  level_prev_ = res_.levels;  // (v5) next tick's choices see this tick's plan-layer levels (§2.4)
  lap(6);
  ++tick_;
}

std::vector<int> Simulation::step_labs(int t) {
  place_policy_orders(t);
  labs_.step_capacity(params_, t);                              // §2.1
  std::vector<int> released = labs_.step_training(params_, t);  // §2.2
  if (t == 0)  // §2.0: every lab's generation entering at t_g = 0 chooses its partners in step 2 of tick 0
    for (int q = 0; q < static_cast<int>(labs_.providers().size()); ++q)
      if (std::find(released.begin(), released.end(), q) == released.end()) released.push_back(q);
  labs_.step_serving_cost(params_, t);  // §2.3
  return released;
}

void Simulation::place_policy_orders(int t) {
  // §6 domestic build: build_share·GDP_c(t−1)/12/capex H100e of hosted orders each tick;
  // compute-for-access: deal_size H100e once.
  const Params& p = params_;
  for (int c = 0; c < layout_.n_countries; ++c) {
    const int q = policy_provider_[c];
    if (q < 0) continue;
    if (policy_[c] & policy_flag::kBuild) labs_.add_hosted_order(q, p.build_share * gdp_prev_[c] / 12.0 / p.capex, t);
    if (deal_order_tick_[c] == t) {
      labs_.add_hosted_order(q, p.deal_size, t);
      deal_arrival_[c] = t + static_cast<int>(p.lead);
    }
  }
}

void Simulation::choose_partners(const std::vector<int>& released, const FirmTickConsts& k) {
  // k: the host constants (this copy of the large stratum is host memory).
  // §2.2: each time a generation enters, its provider's trusted partners are
  // re-chosen among large-stratum firms in countries with align ≥ a_trusted:
  // defenders first, then the others, each by revenue(t−1), until n_trusted real
  // firms (weight 1 each) are covered; ties to the lower index.
  // The large stratum is a few thousand firms: its copy is updated on the host and written back.
  exec_->gather_firms(large_, large_firms_);
  const FirmView f = large_firms_.view();
  const GenTableView g = labs_.view();
  const std::uint64_t n_large = large_.size();
  std::vector<char> chosen(n_large, 0);  // chosen by one of these releases: only they move
  for (const int q : released) {
    std::vector<std::uint64_t> cand;  // positions in the copy (the same order as the firm indices)
    for (std::uint64_t i = 0; i < n_large; ++i) {
      f.partners[i] = static_cast<std::uint16_t>(f.partners[i] & ~(1u << q));
      if (align_of(g, f.country[i], q) >= params_.a_trusted) cand.push_back(i);
    }
    std::stable_sort(cand.begin(), cand.end(), [&](std::uint64_t a, std::uint64_t b) {
      const bool da = f.flags[a] & firm_flag::kDefender, db = f.flags[b] & firm_flag::kDefender;
      if (da != db) return da;
      return f.revenue[a] > f.revenue[b];
    });
    const std::size_t n = std::min<std::size_t>(cand.size(), static_cast<std::size_t>(params_.n_trusted));
    for (std::size_t j = 0; j < n; ++j) {
      f.partners[cand[j]] = static_cast<std::uint16_t>(f.partners[cand[j]] | (1u << q));
      chosen[cand[j]] = 1;
    }
  }
  // A chosen firm moves to its partner provider (if several, the one with the
  // highest noiseless u of step 4); step 4 then picks its generation there.
  for (std::uint64_t i = 0; i < n_large; ++i) {
    if (!chosen[i]) continue;
    const int c = f.country[i];
    const double budget = firm_budget(k, f, i);
    const double need = std::max(firm_need(k, f, i), k.q_min);
    int best = -1;
    double best_u = 0;
    const FirmAccess a{f.flags[i], f.partners[i]};
    for (int gen = 0; gen < g.n_gens; ++gen) {
      const int q = g.provider[gen];
      if (!((f.partners[i] >> q) & 1u) || !firm_eligible(k, a, c, gen)) continue;
      const double u = firm_utility(k, budget, need, c, gen);
      if (best < 0 || u > best_u) {
        best = q;
        best_u = u;
      }
    }
    if (best >= 0 && f.provider[i] != best) {
      f.provider[i] = static_cast<std::uint8_t>(best);
      f.generation[i] = kNone;
    }
  }
  exec_->scatter_firms(large_, large_firms_);
}

void Simulation::step_choice(const OnExec<FirmTickConsts>& fk, const OnExec<UserConsts>& uk) {
  exec_->loop(layout_.n_firms, FirmChooseLoop{{}, fk, exec_->firms()});
  exec_->loop(layout_.n_users, UserChooseLoop{{}, uk, exec_->users()});
}

void Simulation::step_market(const OnExec<FirmTickConsts>& fk, const OnExec<UserConsts>& uk) {
  // §2.5–§2.6, per provider in this order:
  MarketTick m = market_supply(uk);  // (a) the government reserve, (b) consumer demand and the floor
  clear_firm_market(fk, m);          // (c) the firms' clearing at one price; §2.5 budgets adapt
  fill_plan_layer(fk, uk, m);        // (d) what firms did not buy joins (e) the plan layer's fill
  sum_statuses();                    // §7 who is cut off (after the seats' statuses)
  settle_providers(m);               // revenue, prices, forecast
}

Simulation::MarketTick Simulation::market_supply(const OnExec<UserConsts>& uk) {
  // (a) the reserve, (b) consumer demand at full caps and plan revenue, the unused
  // floor joining firm capacity; (v5) the plan layer's bid under plan_split.
  const Params& p = params_;
  const auto& prov = labs_.providers();
  const int P = static_cast<int>(prov.size());
  MarketTick m;
  m.cons = KeyedFixed(P * ConsumerSum::kPerProvider);
  exec_->sum(layout_.n_users, ConsumerSum{{}, uk, exec_->users()}, m.cons);
  m.inference.resize(P);
  m.reserve.resize(P);
  m.floor.resize(P);
  m.cons_demand.resize(P);
  m.supply.resize(P);
  res_.plan_value.assign(P, kNaN);
  for (int q = 0; q < P; ++q) {
    m.inference[q] = (1.0 - p.train_share) * prov[q].capacity();
    const std::string& home = countries_[prov[q].home].iso3;
    const bool gov = std::find(p.r_gov_homes.begin(), p.r_gov_homes.end(), home) != p.r_gov_homes.end();
    m.reserve[q] = gov ? p.r_gov * m.inference[q] : 0.0;  // (a)
    m.floor[q] = p.r_cons * m.inference[q];
    m.cons_demand[q] = m.cons.value(q * ConsumerSum::kPerProvider + ConsumerSum::kDemand, kFixedCompute);
    const double unused_floor = std::max(m.floor[q] - m.cons_demand[q], 0.0);  // (b)
    m.supply[q] = ProviderSupply{m.inference[q] - m.reserve[q] - m.floor[q] + unused_floor, labs_.p_min(), p.p_max,
                                 first_resort_[q] != 0};
    // (v5) the plan layer earns its users' plan revenue on their demand at full caps;
    // under plan_split it bids that, per H100e, for its demand above the floor.
    if (m.cons_demand[q] > 0)
      res_.plan_value[q] =
          m.cons.value(q * ConsumerSum::kPerProvider + ConsumerSum::kPlanRevenue, kFixedMoney) / m.cons_demand[q];
    if (p.plan_split && m.cons_demand[q] > m.floor[q] && res_.plan_value[q] > 0) {
      m.supply[q].plan_need = m.cons_demand[q] - m.floor[q];
      m.supply[q].plan_value = res_.plan_value[q];
    }
  }
  return m;
}

void Simulation::clear_firm_market(const OnExec<FirmTickConsts>& fk, MarketTick& m) {
  // (c) one price per provider (two under first-resort), each firm's settle; per
  // provider and class spend, tokens, allocation, rationing, demand at p_min and D_c;
  // then §2.5 (v4) budgets adapt to what a unit of compute was worth against its price.
  const int P = static_cast<int>(m.supply.size()), C = layout_.n_countries;
  const OnExec<FirmView> f = exec_->firms();
  m.cleared = exec_->clear_firms(layout_.n_firms, m.supply, FirmBids{{}, fk, f});
  const OnExec<Table<ProviderClearing>> cleared_x = exec_->put(table_of(m.cleared));
  exec_->loop(layout_.n_firms, FirmSettleLoop{{}, fk, cleared_x, f});
  const FirmMarketSum market_sum{{}, fk, f, cleared_x, labs_.p_min(), P, C};
  m.firm_sums = KeyedFixed(market_sum.keys());
  exec_->sum(layout_.n_firms, market_sum, m.firm_sums);
  m.firm_demand.resize(P);
  for (int q = 0; q < P; ++q) m.firm_demand[q] = m.firm_sums.value(market_sum.demand_key(q), kFixedCompute);
  quota_firm_demand_.resize(C);
  for (int c = 0; c < C; ++c) quota_firm_demand_[c] = m.firm_sums.value(market_sum.quota_key(c), kFixedCompute);
  if (params_.b_adapt > 0) exec_->loop(layout_.n_firms, FirmAdaptLoop{{}, fk, cleared_x, f});
}

void Simulation::fill_plan_layer(const OnExec<FirmTickConsts>& fk, const OnExec<UserConsts>& uk, MarketTick& m) {
  // (d)+(e): what firms did not buy, water-filled (deal hosts first on their floor);
  // (v5) with the product layer, the firms that got no API compute bid for seats in
  // the same fill, after the users (PlanBids: element n_users + i is firm i).
  const Params& p = params_;
  const int P = static_cast<int>(m.supply.size());
  const OnExec<FirmView> f = exec_->firms();
  const OnExec<UserView> v = exec_->users();
  std::vector<double> cons_capacity(P), cons_floor(P, 0.0);
  res_.sold.assign(P, 0.0);
  for (int q = 0; q < P; ++q) {
    res_.sold[q] = m.cleared[q].sold;
    cons_capacity[q] = std::max(m.inference[q] - m.reserve[q] - res_.sold[q], 0.0);
  }
  for (int c = 0; c < layout_.n_countries; ++c)
    if (deal_mask_[c]) cons_floor[policy_provider_[c]] += p.deal_cons_floor * p.deal_size;
  for (int q = 0; q < P; ++q)
    cons_floor[q] = std::min(cons_floor[q], cons_capacity[q]);  // a floor within what there is
  const std::uint64_t plan_elements = layout_.n_users + (p.seats ? layout_.n_firms : 0);
  const WaterFill fill = exec_->water_fill(plan_elements, P, PlanBids{{}, uk, v, fk, f, layout_.n_users},
                                           cons_capacity.data(), cons_floor.data());
  res_.levels = fill.levels;
  const OnExec<Table<WaterLevel>> levels = exec_->put(table_of(fill.levels));
  exec_->loop(layout_.n_users, UserSettleLoop{{}, uk, levels, v});
  m.use_sums = KeyedFixed(P * ConsumerUseSum::kPerProvider);
  exec_->sum(layout_.n_users, ConsumerUseSum{{}, uk, v}, m.use_sums);
  m.seat_sums = KeyedFixed(P * SeatSum::kPerProvider);
  if (p.seats) {
    exec_->loop(layout_.n_firms, FirmSeatSettleLoop{{}, fk, levels, f});
    exec_->sum(layout_.n_firms, SeatSum{{}, fk, f}, m.seat_sums);
  }
}

void Simulation::sum_statuses() {
  // §7 who is cut off, per country and size class: one segmented pass per size class.
  const int C = layout_.n_countries;
  const OnExec<FirmView> f = exec_->firms();
  res_.status_firms.assign(static_cast<std::size_t>(C) * kSizeClassCount * kStatusCount, 0.0);
  res_.status_emp.assign(res_.status_firms.size(), 0.0);
  res_.class_emp_K.assign(static_cast<std::size_t>(C) * kSizeClassCount, 0.0);
  res_.class_emp.assign(res_.class_emp_K.size(), 0.0);
  std::vector<double> st;
  for (int sc = 0; sc < kSizeClassCount; ++sc) {
    exec_->segment_sums(layout_.firm_begin, StatusSum{{}, exec_layout(), f, sc}, st);
    for (int c = 0; c < C; ++c) {
      const double* o = &st[static_cast<std::size_t>(c) * StatusSum::kOut];
      const std::size_t cs = static_cast<std::size_t>(c) * kSizeClassCount + sc;
      for (int j = 0; j < kStatusCount; ++j) {
        res_.status_firms[cs * kStatusCount + j] = o[StatusSum::kFirms + j];
        res_.status_emp[cs * kStatusCount + j] = o[StatusSum::kEmp + j];
        res_.class_emp[cs] += o[StatusSum::kEmp + j];
      }
      res_.class_emp_K[cs] = o[StatusSum::kEmpK];
    }
  }
  // §2.9 (v5) the share of each country's real firms using AI, for next tick's diffusion.
  for (int c = 0; c < C; ++c) {
    double all = 0, use = 0;
    for (int sc = 0; sc < kSizeClassCount; ++sc)
      for (int j = 0; j < kStatusCount; ++j) {
        const double n = res_.status_firms[(static_cast<std::size_t>(c) * kSizeClassCount + sc) * kStatusCount + j];
        all += n;
        use += status_uses_ai(j) ? n : 0.0;
      }
    firm_use_prev_[c] = all > 0 ? use / all : 0.0;
  }
}

void Simulation::settle_providers(const MarketTick& m) {
  // Provider outcomes of the tick: spend and tokens per class, revenue, prices,
  // utilisation, and the forecast's demand (firms at p_min, users and seats at full caps).
  const auto& prov = labs_.providers();
  const int P = static_cast<int>(prov.size());
  const double p_min = labs_.p_min();
  const GenTableView g = labs_.view();
  res_.price.assign(P, 0.0);
  res_.price_home.assign(P, 0.0);
  res_.revenue.assign(P, 0.0);
  res_.utilisation.assign(P, 0.0);
  res_.class_spend.assign(P * kClassCount, 0.0);
  res_.class_tokens.assign(P * kClassCount, 0.0);
  res_.rationed.assign(P * kClassCount, 0.0);
  auto seat = [&](int q, int what, int bits) { return m.seat_sums.value(q * SeatSum::kPerProvider + what, bits); };
  for (int q = 0; q < P; ++q) {
    double spend = 0;
    for (int cls = kClassTrusted; cls <= kClassHome; ++cls) {
      using M = FirmMarketSum;
      res_.class_spend[q * kClassCount + cls] = m.firm_sums.value(M::key(q, cls, M::kSpend), kFixedMoney);
      res_.class_tokens[q * kClassCount + cls] = m.firm_sums.value(M::key(q, cls, M::kTokens), kFixedTokens);
      res_.rationed[q * kClassCount + cls] = m.firm_sums.value(M::key(q, cls, M::kRationed), kFixedCompute);
      spend += res_.class_spend[q * kClassCount + cls];
    }
    const double plan_revenue = m.cons.value(q * ConsumerSum::kPerProvider + ConsumerSum::kPlanRevenue, kFixedMoney);
    const double newest_h = g.h[prov[q].gens.back()];
    res_.class_spend[q * kClassCount + kClassGov] = p_min * m.reserve[q];
    res_.class_tokens[q * kClassCount + kClassGov] = m.reserve[q] / newest_h;
    // The plan layer's class holds the users' plans and (v5) the firms' seats.
    res_.class_spend[q * kClassCount + kClassConsumer] = plan_revenue + seat(q, SeatSum::kRevenue, kFixedMoney);
    using U = ConsumerUseSum;
    res_.class_tokens[q * kClassCount + kClassConsumer] =
        m.use_sums.value(q * U::kPerProvider + U::kUse, kFixedTokens) + seat(q, SeatSum::kTokens, kFixedTokens);
    res_.rationed[q * kClassCount + kClassConsumer] =
        m.use_sums.value(q * U::kPerProvider + U::kUseShort, kFixedCompute);
    res_.price[q] = m.cleared[q].price;
    res_.price_home[q] = first_resort_[q] ? m.cleared[q].price_home : m.cleared[q].price;
    res_.revenue[q] = spend + p_min * m.reserve[q] + res_.class_spend[q * kClassCount + kClassConsumer];
    const double used = res_.sold[q] + m.reserve[q] +
                        m.use_sums.value(q * U::kPerProvider + U::kUseCompute, kFixedCompute) +
                        seat(q, SeatSum::kUseCompute, kFixedCompute);
    res_.utilisation[q] = m.inference[q] > 0 ? used / m.inference[q] : 0.0;
    labs_.settle(q, res_.revenue[q], res_.price[q], res_.price_home[q],
                 m.firm_demand[q] + m.cons_demand[q] + seat(q, SeatSum::kDemand, kFixedCompute), params_.F_smooth);
  }
}

void Simulation::step_firms(const FirmTickConsts& fk_host, const OnExec<FirmTickConsts>& fk) {
  // §2.7 productivity, then §2.8 pass 1 (pool sums) and pass 2 (revenue, wealth, exit and entry).
  const Params& p = params_;
  const OnExec<FirmView> f = exec_->firms();
  exec_->loop(layout_.n_firms, FirmProductivityLoop{{}, fk, exec_->put(table_of(spill_)), p.g0, p.sigma_A, f});
  std::vector<double> meanA;
  PoolStore pool;
  const std::vector<double> wage = wages();
  FirmWealthConsts k{};
  k.seed = fk_host.seed;
  k.replicate = fk_host.replicate;
  k.tick = fk_host.tick;
  k.pool = pool_rule(pool, &meanA);
  k.seg_meanA = table_of(meanA);
  k.wage = table_of(wage);
  k.spend_price = table_of(res_.price);
  k.home_price = table_of(res_.price_home);
  k.first_resort = fk_host.first_resort;
  k.lever_country = fk_host.lever_country;
  k.other_cost = p.other_cost;
  k.access_cost = p.access_cost;
  k.exit_months = p.exit_months;
  k.entrant_sigma = p.entrant_sigma;
  k.budget_sigma = p.budget_sigma;
  k.seat_price = table_of(seat_price_);
  exec_->loop(layout_.n_firms, FirmWealthLoop{{}, exec_->put(k), f});
}

void Simulation::step_adoption(const OnExec<UserConsts>& uk) {
  exec_->loop(layout_.n_users, UserAdoptLoop{{}, uk, exec_->users()});
}

void Simulation::step_countries(const OnExec<FirmTickConsts>& fk, const OnExec<UserConsts>& uk) {
  aggregate_countries(fk, uk);  // §2.10 aggregates, GDP, spillover
  take_policies();              // §6 policies by rule
  rank_firms();                 // §7 top-20% share of AI value, Gini of wealth
}

namespace {
/// §6 the K a country's AI users access: firms' and users' mean K mixed by w_firm,
/// or the one side that has AI users (NaN: none), or 0 when neither has.
double accessed_K(double w_firm, double firm_K, double user_K) {
  if (!std::isnan(firm_K) && !std::isnan(user_K)) return w_firm * firm_K + (1.0 - w_firm) * user_K;
  if (!std::isnan(firm_K)) return firm_K;
  return std::isnan(user_K) ? 0.0 : user_K;
}
}  // namespace

void Simulation::aggregate_countries(const OnExec<FirmTickConsts>& fk, const OnExec<UserConsts>& uk) {
  // §2.10: per-country aggregates as segmented sums over the country-sorted arrays.
  const Params& p = params_;
  const int C = layout_.n_countries;
  const OnExec<FirmView> f = exec_->firms();
  const OnExec<UserView> v = exec_->users();
  using F = CountryFirmSum;
  using U = CountryUserSum;
  std::vector<double> fsum, usum;
  exec_->segment_sums(layout_.firm_begin, CountryFirmSum{{}, fk, f}, fsum);
  exec_->segment_sums(layout_.user_begin, CountryUserSum{{}, uk, v}, usum);
  auto fs = [&](int c, int k) { return fsum[static_cast<std::size_t>(c) * F::kOut + k]; };
  auto us = [&](int c, int k) { return usum[static_cast<std::size_t>(c) * U::kOut + k]; };

  if (tick_ == 0)
    for (int c = 0; c < C; ++c) Y0_.push_back(fs(c, F::kY));
  const double released = labs_.released_frontier();
  std::vector<double> gdp(C), Kbar(C);
  std::vector<int> tier(C);
  res_.adoption.assign(C, 0.0);
  res_.gap.assign(C, 0.0);
  res_.K_elig.assign(C, 0.0);
  double capped = 0, in_market = 0, negative = 0, firms_real = 0;
  res_.entries = 0;
  res_.capped_c.assign(C, kNaN);
  res_.tokens_per_adopter.assign(C, kNaN);
  res_.plan_share.assign(static_cast<std::size_t>(C) * 3, kNaN);
  for (int c = 0; c < C; ++c) {
    const double wu = layout_.w_user[c];
    gdp[c] = countries_[c].gdp_usd * ratio_or(fs(c, F::kY), Y0_[c], 1.0);
    tier[c] = countries_[c].tier;
    Kbar[c] = ratio_or(fs(c, F::kEmpK), fs(c, F::kEmp), 0.0);
    res_.adoption[c] = us(c, U::kAdopt) * wu / countries_[c].population;
    res_.K_elig[c] = ratio_or(fs(c, F::kEmpKelig), fs(c, F::kEmp), 0.0);
    // §6 access gap: best released K minus the K the country's AI users access.
    const bool has_firms = fs(c, F::kBuyEmp) > 0, has_users = us(c, U::kAdopt) > 0 && us(c, U::kUserK) > 0;
    res_.gap[c] =
        released - accessed_K(p.w_firm, has_firms ? ratio_or(fs(c, F::kBuyEmpK), fs(c, F::kBuyEmp), 0.0) : kNaN,
                              has_users ? ratio_or(us(c, U::kUserK), us(c, U::kAdopt), 0.0) : kNaN);
    adoption_prev_[c] = res_.adoption[c];
    use_ratio_prev_[c] = us(c, U::kCap) > 0 ? us(c, U::kUse) / us(c, U::kCap) : 1.0;
    quota_demand_prev_[c] = quota_firm_demand_[c] + us(c, U::kQuota) * wu;
    capped += us(c, U::kCapped) * wu;
    in_market += us(c, U::kMarket) * wu;
    if (us(c, U::kMarket) > 0) {
      res_.capped_c[c] = us(c, U::kCapped) / us(c, U::kMarket);
      res_.tokens_per_adopter[c] = us(c, U::kUse) / us(c, U::kMarket);
    }
    if (us(c, U::kAdopt) > 0)
      for (int j = 0; j < 3; ++j) res_.plan_share[c * 3 + j] = us(c, U::kPlan + j) / us(c, U::kAdopt);
    negative += fs(c, F::kNegW);
    res_.entries += fs(c, F::kEntered);
    firms_real += layout_.real_firms[c];
  }
  res_.capped_share = ratio_or(capped, in_market, 0.0);
  res_.negative_wealth = negative / firms_real;
  res_.gdp = gdp;
  gdp_prev_ = gdp;
  spill_ = spillover(gdp, tier, Kbar, p.tier_sim, p.xi);
  res_.spill = spill_;
}

void Simulation::take_policies() {
  // §6 policies by rule: a gap above gap_policy for n_policy ticks in a row makes a
  // country take each enabled lever once, for good, with its most aligned provider.
  const Params& p = params_;
  const GenTableView g = labs_.view();
  const bool any = p.policy_build || p.policy_deal || p.policy_kyc;
  const auto& prov = labs_.providers();
  for (int c = 0; c < layout_.n_countries; ++c) {
    gap_run_[c] = res_.gap[c] > p.gap_policy ? gap_run_[c] + 1 : 0;
    if (!any || tick_ < p.lever_tick || policy_provider_[c] >= 0 || gap_run_[c] < p.n_policy) continue;
    int best = 0;
    for (int q = 1; q < static_cast<int>(prov.size()); ++q) {
      const double a = align_of(g, c, q), b = align_of(g, c, best);
      if (a > b || (a == b && prov[q].capacity() > prov[best].capacity())) best = q;
    }
    policy_provider_[c] = best;
    if (p.policy_build) policy_[c] |= policy_flag::kBuild;
    if (p.policy_deal) {
      policy_[c] |= policy_flag::kDeal;
      deal_order_tick_[c] = tick_ + 1;
    }
    if (p.policy_kyc) policy_[c] |= policy_flag::kKycRaise;
  }
}

void Simulation::rank_firms() {
  // §7 ranks: the top-20% share of cumulative AI value (over real firms that have
  // used AI: bought compute or, v5, used a seat at least once), over all of them and
  // over the 250+ class (§8's population), and the Gini of wealth on max(W, 0).
  const OnExec<LayoutView> L = exec_layout();
  const OnExec<FirmView> f = exec_->firms();
  const RankStats value = exec_->rank_stats(layout_.n_firms, AiValueRank{{}, L, f});
  const RankStats large = exec_->rank_stats(layout_.n_firms, AiValueRank{{}, L, f, kSizeClassCount - 1});
  const RankStats wealth = exec_->rank_stats(layout_.n_firms, WealthRank{{}, L, f});
  res_.top20 = value.total_weight > 0 ? value.top_share : kNaN;
  res_.top20_large = large.total_weight > 0 ? large.top_share : kNaN;
  res_.gini = wealth.gini;
}

// ---------------------------------------------------------------------------
// §7 metrics: one declaration each (docs/conventions.md), in the order of /metrics
// ---------------------------------------------------------------------------

namespace {

/// out[j] = f(j) for j < n.
template <class F> void fill_each(std::size_t n, double* out, F f) {
  for (std::size_t j = 0; j < n; ++j) out[j] = f(j);
}

void fill_copy(const std::vector<double>& v, double* out) { std::copy(v.begin(), v.end(), out); }

}  // namespace

const std::vector<Simulation::MetricDecl>& Simulation::metric_decls() {
  // Each fill reads the tick's results (res_) and state after step 10; record() has
  // gathered the large stratum's host copy first (trusted_partners).
  using S = Simulation;
  static const std::vector<MetricDecl> decls{
      {{"capacity", {"provider"}, "H100e", "provider capacity C_p, home plus hosted"},
       [](const S& s, double* o) {
         fill_each(s.labs_.providers().size(), o, [&](std::size_t q) { return s.labs_.providers()[q].capacity(); });
       }},
      {{"capacity_hosted", {"provider"}, "H100e", "hosted part of provider capacity (section 6)"},
       [](const S& s, double* o) {
         fill_each(s.labs_.providers().size(), o, [&](std::size_t q) { return s.labs_.providers()[q].C_hosted; });
       }},
      {{"orders", {"provider"}, "H100e", "home capacity ordered this tick, arriving lead ticks later"},
       [](const S& s, double* o) {
         fill_each(s.labs_.providers().size(), o, [&](std::size_t q) { return s.labs_.providers()[q].order; });
       }},
      {{"revenue",
        {"provider"},
        "USD/month",
        "provider revenue: firms' compute spend + p_min x government reserve + plan prices"},
       [](const S& s, double* o) { fill_copy(s.res_.revenue, o); }},
      {{"utilisation", {"provider"}, "1", "share of inference capacity used (firms, government reserve, consumers)"},
       [](const S& s, double* o) { fill_copy(s.res_.utilisation, o); }},
      {{"compute_price",
        {"provider"},
        "USD per H100e-month",
        "compute price pi_p (pi_rest for non-home firms under first-resort)"},
       [](const S& s, double* o) { fill_copy(s.res_.price, o); }},
      {{"compute_price_home",
        {"provider"},
        "USD per H100e-month",
        "first-resort home price pi_home (NaN where first-resort does not apply)"},
       [](const S& s, double* o) {
         fill_each(s.res_.price_home.size(), o,
                   [&](std::size_t q) { return s.first_resort_[q] ? s.res_.price_home[q] : kNaN; });
       }},
      {{"price",
        {"provider", "class"},
        "USD per Mtok",
        "effective price: the class's compute spend per Mtok (gov: p_min x h of the newest generation; "
        "consumer: plan revenue per Mtok); NaN where the class bought nothing"},
       [](const S& s, double* o) {
         const TickResults& r = s.res_;
         fill_each(r.class_tokens.size(), o,
                   [&](std::size_t j) { return r.class_tokens[j] > 0 ? r.class_spend[j] / r.class_tokens[j] : kNaN; });
       }},
      {{"plan_price",
        {"provider", "plan"},
        "USD per month",
        "price of each plan this tick: the list price times (pi_p(t-1)/p_min)^plan_pass (v5)"},
       [](const S& s, double* o) {
         fill_each(s.plan_mult_.size() * kPlans, o,
                   [&](std::size_t j) { return s.params_.plan_price[j % kPlans] * s.plan_mult_[j / kPlans]; });
       }},
      {{"plan_value",
        {"provider"},
        "USD per H100e-month",
        "the plan layer's earnings per H100e: its users' plan revenue over their demand at full caps "
        "(what it bids for capacity under plan_split, v5); NaN without demand"},
       [](const S& s, double* o) { fill_copy(s.res_.plan_value, o); }},
      {{"rationed",
        {"provider", "class"},
        "H100e",
        "compute rationed: demand at p_min less allocation (consumers: caps less use)"},
       [](const S& s, double* o) { fill_copy(s.res_.rationed, o); }},
      {{"frontier_K", {"provider"}, "K", "provider capability K_p"},
       [](const S& s, double* o) {
         fill_each(s.labs_.providers().size(), o, [&](std::size_t q) { return s.labs_.providers()[q].K; });
       }},
      {{"follower_lag",
        {"provider"},
        "ticks",
        "fast followers: how many ticks ago K_lead (the leaders' best generation at KYC or later) "
        "stood where K_f stands now, t - min{t' <= t : K_lead(t') >= K_f(t)}; 0 ahead of it "
        "(NaN: not a follower)"},
       [](const S& s, double* o) {
         fill_each(s.labs_.providers().size(), o, [&](std::size_t q) {
           const Provider& v = s.labs_.providers()[q];
           return v.follower && v.lag >= 0 ? static_cast<double>(v.lag) : kNaN;
         });
       }},
      {{"serving_cost", {"provider"}, "H100e per Mtok", "serving cost h_g(t) of the provider's newest generation"},
       [](const S& s, double* o) {
         const GenTableView g = s.labs_.view();
         fill_each(s.labs_.providers().size(), o,
                   [&](std::size_t q) { return g.h[s.labs_.providers()[q].gens.back()]; });
       }},
      {{"K_lead", {}, "K", "best K_g among non-followers' generations at stage KYC or later"},
       [](const S& s, double* o) { o[0] = s.labs_.K_lead_latest(); }},
      {{"released_frontier", {}, "K", "best K_g of any generation at stage TRUSTED or later"},
       [](const S& s, double* o) { o[0] = s.labs_.released_frontier(); }},
      {{"top20_value_share",
        {},
        "1",
        "share of cumulative AI value held by the top 20% of firms that have used AI (weighted)"},
       [](const S& s, double* o) { o[0] = s.res_.top20; }},
      {{"top20_value_share_large",
        {},
        "1",
        "share of cumulative AI value held by the top 20% of firms with 250+ employees that have "
        "used AI (weighted; the calibration's population, docs/model.md section 8)"},
       [](const S& s, double* o) { o[0] = s.res_.top20_large; }},
      {{"gini_wealth", {}, "1", "Gini coefficient of firm wealth max(W, 0) (weighted)"},
       [](const S& s, double* o) { o[0] = s.res_.gini; }},
      {{"negative_wealth_share", {}, "1", "weighted share of firms with W < 0"},
       [](const S& s, double* o) { o[0] = s.res_.negative_wealth; }},
      {{"users_capped_share",
        {},
        "1",
        "share of AI users (people) in this tick's market compute-capped (this tick's new adopters "
        "enter the market next tick)"},
       [](const S& s, double* o) { o[0] = s.res_.capped_share; }},
      {{"entries", {}, "firms", "real firms that entered this tick (one per exit)"},
       [](const S& s, double* o) { o[0] = s.res_.entries; }},
      {{"exits", {}, "firms", "real firms that exited this tick"},
       [](const S& s, double* o) { o[0] = s.res_.entries; }},
      {{"adoption_share", {"country"}, "1", "share of people using AI"},
       [](const S& s, double* o) { fill_copy(s.res_.adoption, o); }},
      {{"access_gap", {"country"}, "K", "best released K minus the K the country's AI users access"},
       [](const S& s, double* o) { fill_copy(s.res_.gap, o); }},
      {{"K_eligible", {"country"}, "K", "employment-weighted best K_g eligible to the country's firms"},
       [](const S& s, double* o) { fill_copy(s.res_.K_elig, o); }},
      {{"gdp", {"country"}, "USD per year", "GDP_c(t) = GDP_c0 x Y_c(t) / Y_c(0)"},
       [](const S& s, double* o) { fill_copy(s.res_.gdp, o); }},
      {{"gdp_dispersion", {}, "1", "population-weighted standard deviation of log GDP per capita across countries"},
       [](const S& s, double* o) {
         double pop = 0, mean = 0, var = 0;
         for (std::size_t c = 0; c < s.countries_.size(); ++c) {
           pop += s.countries_[c].population;
           mean += s.countries_[c].population * std::log(s.res_.gdp[c] / s.countries_[c].population);
         }
         mean /= pop;
         for (std::size_t c = 0; c < s.countries_.size(); ++c) {
           const double d = std::log(s.res_.gdp[c] / s.countries_[c].population) - mean;
           var += s.countries_[c].population * d * d;
         }
         o[0] = std::sqrt(var / pop);
       }},
      {{"spillover", {"country"}, "1", "AI uplift spilling over from other countries (next tick)"},
       [](const S& s, double* o) { fill_copy(s.res_.spill, o); }},
      {{"policy", {"country"}, "1", "policies taken (section 6): 1 domestic build, 2 deal, 4 KYC raise"},
       [](const S& s, double* o) { fill_each(s.policy_.size(), o, [&](std::size_t c) { return s.policy_[c]; }); }},
      {{"trusted_partners", {"provider"}, "firms", "real firms that are trusted partners of the provider"},
       [](const S& s, double* o) {
         const std::size_t P = s.labs_.providers().size();
         const FirmView f = s.large_firms_.view();
         std::fill(o, o + P, 0.0);
         for (std::uint64_t i = 0; i < s.large_.size(); ++i)
           for (std::size_t q = 0; q < P; ++q) o[q] += (f.partners[i] >> q) & 1u;  // large firms weigh 1
       }},
      {{"tokens_per_worker",
        {},
        "Mtok per worker-month",
        "tau(t) = tau0 x exp(tau_growth t), before sector multipliers"},
       [](const S& s, double* o) { o[0] = s.tau0_ * s.tau_growth_factor(s.tick_); }},
      // §1 (v5) the small stratum's weights, per size band (the size classes' ranges in raw
      // size): constant over a run, recorded per tick so that ensembles gather them as metrics.
      {{"firms_per_band_agent",
        {"country", "size_class"},
        "firms",
        "real firms per small-stratum firm agent of each size band (the firm snapshots' band field; without "
        "size_strata, band 1-9 holds the whole small stratum)"},
       [](const S& s, double* o) { fill_copy(s.layout_.w_small, o); }},
      // §7 (v4) who is cut off, and why.
      {{"firms_by_status",
        {"country", "size_class", "status"},
        "firms",
        "real firms by size class and access status this tick (steps 4-6)"},
       [](const S& s, double* o) { fill_copy(s.res_.status_firms, o); }},
      {{"employment_by_status",
        {"country", "size_class", "status"},
        "workers",
        "employment of the real firms by size class and access status this tick"},
       [](const S& s, double* o) { fill_copy(s.res_.status_emp, o); }},
      {{"K_accessed",
        {"country", "size_class"},
        "K",
        "employment-weighted K bought by the size class's firms (0 for firms that bought nothing); "
        "NaN where the class has no firms"},
       [](const S& s, double* o) {
         const TickResults& r = s.res_;
         fill_each(r.class_emp.size(), o,
                   [&](std::size_t j) { return r.class_emp[j] > 0 ? r.class_emp_K[j] / r.class_emp[j] : kNaN; });
       }},
      {{"K_gap", {"country", "size_class"}, "K", "best released K (stage TRUSTED or later) minus K_accessed"},
       [](const S& s, double* o) {
         const TickResults& r = s.res_;
         const double released = s.labs_.released_frontier();
         fill_each(r.class_emp.size(), o, [&](std::size_t j) {
           return released - (r.class_emp[j] > 0 ? r.class_emp_K[j] / r.class_emp[j] : kNaN);
         });
       }},
      {{"capped_share",
        {"country"},
        "1",
        "share of the country's adopters in this tick's market that are compute-capped"},
       [](const S& s, double* o) { fill_copy(s.res_.capped_c, o); }},
      {{"tokens_per_adopter", {"country"}, "Mtok per month", "tokens used per adopter in this tick's market"},
       [](const S& s, double* o) { fill_copy(s.res_.tokens_per_adopter, o); }},
      {{"plan_share", {"country", "plan"}, "1", "share of the country's adopters on each plan"},
       [](const S& s, double* o) { fill_copy(s.res_.plan_share, o); }},
      {{"quota_demand",
        {"country"},
        "H100e",
        "D_c: demand on tier-1-homed providers before the quota factor, its bidding firms' x_i at "
        "the price they cleared at plus its users' capped need (section 2.4; sets next tick's zeta)"},
       [](const S& s, double* o) { fill_copy(s.quota_demand_prev_, o); }},
      {{"zeta",
        {"country"},
        "1",
        "tier-2 quota factor zeta_c on tier-1-homed providers this tick (1 where no quota applies; "
        "diffusion_rule)"},
       [](const S& s, double* o) { fill_copy(s.zeta_, o); }},
  };
  return decls;
}

std::size_t Simulation::metric_size(const MetricSpec& spec) const {
  std::size_t n = 1;
  for (const std::string& d : spec.dims) {
    if (d == "provider")
      n *= labs_.providers().size();
    else if (d == "country")
      n *= countries_.size();
    else if (d == "class")
      n *= kClassCount;
    else if (d == "size_class")
      n *= kSizeClassCount;
    else if (d == "status")
      n *= kStatusCount;
    else if (d == "plan")
      n *= kPlans;
    else
      throw std::logic_error("metric '" + spec.name + "': unknown dimension '" + d + "'");
  }
  return n;
}

void Simulation::define_metrics() {
  for (const MetricDecl& m : metric_decls()) metrics_.define(m.spec, metric_size(m.spec));
}

void Simulation::record() {
  exec_->gather_firms(large_, large_firms_);  // the host copy trusted_partners reads
  const auto& decls = metric_decls();
  for (std::size_t k = 0; k < decls.size(); ++k) decls[k].fill(*this, metrics_[static_cast<int>(k)].data());
}

}  // namespace cutoff
