#include "core/simulation.hpp"

#include <omp.h>

#include <cmath>
#include <limits>

#include "agents/firm_kern.hpp"
#include "agents/user_kern.hpp"
#include "core/fpmath.hpp"
#include "core/reduce.hpp"

namespace cutoff {

void pool_rates(int n_countries, int n_sectors, const double* Y, const double* Z, const double* gdp, double omega,
                double* rate) {
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
      const double local = Z[k] > 0 ? P[k] / Z[k] : 0.0;
      const double traded = Zs[s] > 0 ? Ps[s] / Zs[s] : 0.0;
      rate[k] = (1.0 - omega) * local + omega * traded;
    }
}

Simulation::Simulation(Params params, std::vector<Country> countries, RunOptions options)
    : params_(std::move(params)),
      countries_(std::move(countries)),
      options_(std::move(options)),
      layout_(make_layout(countries_, params_)),
      market_(params_, countries_),
      firms_(layout_.n_firms),
      users_(layout_.n_users) {
  set_threads();
  for (const Country& c : countries_) gdp_prev_.push_back(c.gdp_usd);
  init_firms();
  init_users();
  define_metrics();
}

void Simulation::set_threads() const {
  // The nthreads ICV is per thread, so concurrent members can each set their own.
  if (options_.threads > 0) omp_set_num_threads(options_.threads);
}

std::vector<std::string> Simulation::provider_names() const {
  std::vector<std::string> names;
  for (const Provider& v : market_.providers()) names.push_back(v.name);
  return names;
}

void Simulation::init_firms() {
  const Params& p = params_;
  const Layout& L = layout_;
  const LayoutView Lv = L.view();
  const int C = L.n_countries, S = L.n_sectors;
  // A_c = (GDP per worker_c / world GDP per worker)^(1/σ_c).
  double world_gdp = 0, world_workers = 0;
  for (int c = 0; c < C; ++c) {
    world_gdp += countries_[c].gdp_usd;
    world_workers += L.workers[c];
  }
  std::vector<double> A_c(C);
  std::vector<std::uint8_t> tier(C);
  for (int c = 0; c < C; ++c) {
    A_c[c] = fp::pow((countries_[c].gdp_usd / L.workers[c]) / (world_gdp / world_workers), 1.0 / p.sigma_c);
    tier[c] = static_cast<std::uint8_t>(countries_[c].tier);
  }
  int defender_sector = -1;
  for (int s = 0; s < S; ++s)
    if (p.sector_names[s] == "ict") defender_sector = s;
  const FirmInitConsts k{static_cast<std::uint32_t>(p.seed), options_.replicate, Lv, A_c.data(), tier.data(),
                         p.pareto_alpha, p.size_cap, p.A_sigma0, p.budget_sigma, p.p_defender, defender_sector};
  const FirmView f = firms_.view();
  const auto n = static_cast<std::int64_t>(L.n_firms);
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) init_firm(static_cast<std::uint64_t>(i), k, f);

  // One factor per country so that weighted employees sum to its workers.
  std::vector<Sums<1>> raw(C);
  segmented_sum<1>(L.firm_begin.data(), C, [&](std::uint64_t i, double* o) {
    o[0] = firm_weight(Lv, f, i) * static_cast<double>(f.employees[i]);
  }, raw.data());
  std::vector<double> scale(C);
  for (int c = 0; c < C; ++c) scale[c] = L.workers[c] / raw[c][0];
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) scale_firm_size(static_cast<std::uint64_t>(i), scale.data(), f);

  // revenue(−1) by step 8's pool rule at tick 0, and W = 3·revenue(−1).
  std::vector<Sums<2>> yz(static_cast<std::size_t>(C) * S);
  segmented_sum<2>(L.seg_begin.data(), C * S,
                   [&](std::uint64_t i, double* o) { pool_terms(Lv, f, p.sigma_c, i, o); }, yz.data());
  std::vector<double> Y(C * S), Z(C * S), rate(C * S);
  for (int j = 0; j < C * S; ++j) {
    Y[j] = yz[j][0];
    Z[j] = yz[j][1];
  }
  pool_rates(C, S, Y.data(), Z.data(), gdp_prev_.data(), p.omega, rate.data());
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i)
    init_firm_revenue(static_cast<std::uint64_t>(i), p.sigma_c, rate.data(), S, f);
}

void Simulation::init_users() {
  const Params& p = params_;
  const int C = layout_.n_countries;
  std::vector<double> wage(C), adopt_rate(C);
  for (int c = 0; c < C; ++c) {
    wage[c] = p.labour_share * gdp_prev_[c] / (12.0 * layout_.workers[c]);
    // §2.9 connectivity at GDP per capita_c(−1); 0 where nobody serves at GENERAL or OPEN.
    const double conn = market_.serves_generally(c)
                            ? fp::clamp(fp::pow(gdp_prev_[c] / countries_[c].population / p.conn_ref, p.conn_exp),
                                        p.conn_min, 1.0)
                            : 0.0;
    adopt_rate[c] = p.adopt0 * conn;  // use ratio 1 at the start
  }
  UserConsts k{};
  k.seed = static_cast<std::uint32_t>(p.seed);
  k.replicate = options_.replicate;
  k.n_countries = C;
  k.user_begin = layout_.user_begin.data();
  k.wage = wage.data();
  k.adopt_rate = adopt_rate.data();
  k.omega_inc = p.omega_inc;
  k.omega_plan = p.omega_plan;
  k.f_free = p.f_free;
  for (int j = 0; j < 3; ++j) k.plan_price[j] = p.plan_price[j];
  k.phi = p.phi;
  k.switch_noise = p.switch_noise;
  k.gens = market_.view();
  const UserView v = users_.view();
  const auto n = static_cast<std::int64_t>(layout_.n_users);
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) init_user(static_cast<std::uint64_t>(i), k, p.income_sigma, p.need_sigma, v);
}

void Simulation::define_metrics() {
  const std::size_t P = market_.providers().size();
  m_capacity_ = metrics_.define({"capacity", {"provider"}, "H100e", "provider capacity C_p, home plus hosted"}, P);
  m_capacity_hosted_ =
      metrics_.define({"capacity_hosted", {"provider"}, "H100e", "hosted part of provider capacity (section 6 deals)"}, P);
  m_orders_ = metrics_.define({"orders", {"provider"}, "H100e", "home capacity ordered this tick, arriving lead ticks later"}, P);
  m_frontier_K_ = metrics_.define({"frontier_K", {"provider"}, "K", "provider capability K_p"}, P);
  m_follower_lag_ = metrics_.define(
      {"follower_lag", {"provider"}, "ticks",
       "fast followers: ticks from the last reached leader generation's pipeline entry until K_f reached its K_g (NaN: none yet or not a follower)"},
      P);
  m_serving_cost_ = metrics_.define(
      {"serving_cost", {"provider"}, "H100e per Mtok", "serving cost h_g(t) of the provider's newest generation"}, P);
  m_K_lead_ = metrics_.define({"K_lead", {}, "K", "best K_g among non-followers' generations at stage KYC or later"}, 1);
  m_released_frontier_ = metrics_.define(
      {"released_frontier", {}, "K", "best K_g of any generation at stage TRUSTED or later"}, 1);
}

void Simulation::step() {
  set_threads();
  const int t = tick_;
  market_.step_capacity(params_, t);    // §2.1
  market_.step_training(params_, t);    // §2.2
  market_.step_serving_cost(params_, t);  // §2.3
  record();                              // §2.11
  ++tick_;
}

void Simulation::record() {
  const auto& prov = market_.providers();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const GenTableView g = market_.view();
  for (std::size_t q = 0; q < prov.size(); ++q) {
    const Provider& v = prov[q];
    metrics_[m_capacity_][q] = v.capacity();
    metrics_[m_capacity_hosted_][q] = v.C_hosted;
    metrics_[m_orders_][q] = v.order;
    metrics_[m_frontier_K_][q] = v.K;
    metrics_[m_follower_lag_][q] = v.follower && v.lag >= 0 ? v.lag : nan;
    metrics_[m_serving_cost_][q] = g.h[v.gens.back()];
  }
  metrics_[m_K_lead_][0] = market_.K_lead(tick_);
  metrics_[m_released_frontier_][0] = market_.released_frontier();
}

}  // namespace cutoff
