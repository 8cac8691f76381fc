#include "core/model/providers.hpp"

#include <algorithm>
#include <stdexcept>

#include "core/hd/fpmath.hpp"
#include "core/model/params.hpp"

namespace cutoff {

std::vector<double> alignment_matrix(const Params& p, const std::vector<Country>& countries) {
  const int C = static_cast<int>(countries.size());
  const int P = static_cast<int>(p.provider.size());
  std::vector<double> a(static_cast<std::size_t>(C) * P);
  for (int q = 0; q < P; ++q) {
    const ProviderParams& pp = p.provider[q];
    for (int c = 0; c < C; ++c) a[c * P + q] = pp.align[countries[c].tier - 1];
    for (const auto& [iso3, v] : pp.align_country) {
      const int c = find_country(countries, iso3);
      if (c < 0)
        throw InputError("provider '" + pp.name + "': key 'align_country' names '" + iso3 +
                         "', which is not in the country table");
      a[c * P + q] = v;
    }
    const int home = find_country(countries, pp.home);
    if (home < 0)
      throw InputError("provider '" + pp.name + "': key 'home' = '" + pp.home + "': not in the country table");
    a[home * P + q] = 1.0;
  }
  return a;
}

Labs::Labs(const Params& p, const std::vector<Country>& countries)
    : n_countries_(static_cast<int>(countries.size())), lead_(static_cast<int>(p.lead)) {
  align_ = alignment_matrix(p, countries);
  for (const Country& c : countries) tier_.push_back(c.tier);
  lever_country_ = find_country(countries, p.lever_country);
  if (lever_country_ < 0) throw InputError("key 'lever_country' = '" + p.lever_country + "': not in the country table");
  p_min_ = (1.0 + p.markup) * (p.opex + p.capex / p.life);
  const double G = fp::pow(p.g_cap, 1.0 / 12.0);
  const std::size_t n_arrive = static_cast<std::size_t>(p.horizon + p.lead + 1);
  const double s = p.train_share;
  const int P = static_cast<int>(p.provider.size());

  for (int q = 0; q < P; ++q) {
    const ProviderParams& pp = p.provider[q];
    Provider v;
    v.name = pp.name;
    v.home = find_country(countries, pp.home);
    v.follower = pp.follower;
    v.cap_share = pp.cap_share;
    v.offset = pp.offset;
    v.d_gov = static_cast<int>(pp.d_gov);
    v.d_trusted = static_cast<int>(pp.d_trusted);
    v.d_kyc = static_cast<int>(pp.d_kyc);
    v.C_home = pp.cap_share * p.capacity0;
    v.arrive_home.assign(n_arrive, 0.0);
    v.arrive_hosted.assign(n_arrive, 0.0);
    // Orders of ticks 1−lead … −1, as if C_p had grown by g_cap a year.
    for (int k = 1; k <= lead_ - 1; ++k) v.arrive_home[k] = v.C_home * fp::pow(G, k - 1) * (G - 1.0);
    // T_p(0): 24 months of that history.
    for (int j = 1; j <= 24; ++j) v.T += s * v.C_home * fp::pow(G, -j);
    v.revenue = (1.0 - s) * v.C_home * p_min_;
    v.cash = 12.0 * v.revenue;
    v.forecast = (1.0 - s) * v.C_home;
    v.price = p_min_;
    v.price_home = p_min_;
    providers_.push_back(std::move(v));
  }
  for (const Provider& v : providers_)
    if (!v.follower) T_ref_ = std::max(T_ref_, v.T);
  if (!(T_ref_ > 0)) throw InputError("key 'provider': at least one provider must not be a follower");

  // K_p(0) by step 2's formulas, with the released frontier's history for t < 0.
  int holder = -1;
  for (int q = 0; q < P; ++q) {
    Provider& v = providers_[q];
    v.K_own = p.K_lead0 + p.beta * fp::log(v.T / T_ref_) + v.offset;
    if (!v.follower) {
      v.K = v.K_own;
      if (holder < 0 || v.K > providers_[holder].K ||
          (v.K == providers_[holder].K && v.capacity() > providers_[holder].capacity()))
        holder = q;
    }
  }
  for (Provider& v : providers_) {
    if (!v.follower) continue;
    const bool blocked = align_[v.home * P + holder] < 0.0;
    const bool crack = p.crackdown && 0 >= p.lever_tick;
    const int L = static_cast<int>(p.L0 + (crack ? p.dL_cd : 0) + (blocked ? p.dL_api : 0));
    const double Kl = lead_history(p, -L);
    v.K = Kl + p.chi * fp::max(v.K_own - Kl, 0.0);
  }
  // One generation at GENERAL since tick −6, one entering the pipeline at tick 0.
  for (int q = 0; q < P; ++q) {
    const Provider& v = providers_[q];
    add_generation(q, v.K - p.dK_release, -6 - (v.d_gov + v.d_trusted + v.d_kyc));
    add_generation(q, v.K, 0);
  }
  step_serving_cost(p, 0);
}

void Labs::add_generation(int q, double K, int t_g) {
  if (gens_.size() >= kNone)
    throw std::runtime_error("more than 254 generations in one run: shorten 'horizon' or raise 'dK_release'");
  Provider& v = providers_[q];
  Generation g;
  g.provider = q;
  g.K = K;
  g.t_g = t_g;
  g.general = t_g + v.d_gov + v.d_trusted + v.d_kyc;
  v.gens.push_back(static_cast<int>(gens_.size()));
  gens_.push_back(g);
}

double Labs::lead_history(const Params& p, int t) const {
  if (t < 0) return p.K_lead0 - p.dK_release + t * p.K_trend;
  return K_lead_hist_.at(t);
}

int Labs::follower_lag(const Params& p, int t, double K_f) const {
  // §7 (v4): how many months ago the leaders' released frontier stood where the
  // follower stands now, t − min{t' ≤ t : K_lead(t') ≥ K_f}; 0 at or ahead of it.
  // K_lead never falls (released generations stay), so walk back while it holds;
  // before tick 0 it is §2.0's trend (at most 10^4 ticks back, where K_trend = 0).
  int from = t;
  while (from > t - 10000 && lead_history(p, from - 1) >= K_f) --from;
  return t - from;
}

Stage Labs::stage_of(const Params& p, const Generation& g, int t) const {
  const Provider& v = providers_[g.provider];
  const int age = t - g.t_g;
  if (age < v.d_gov) return kStageGov;
  if (age < v.d_gov + v.d_trusted) return kStageTrusted;
  if (age < v.d_gov + v.d_trusted + v.d_kyc) return kStageKyc;
  if (p.open_weights && t >= p.lever_tick && t >= g.general + p.n_open) return kStageOpen;
  return kStageGeneral;
}

void Labs::step_capacity(const Params& p, int t) {
  const double plan = p.bm * fp::pow(p.g_cap, p.lead / 12.0);
  for (Provider& v : providers_) {
    v.C_home += v.arrive_home.at(t);
    v.C_hosted += v.arrive_hosted.at(t);
    double pipeline = 0;
    for (std::size_t k = t + 1; k < v.arrive_home.size(); ++k) pipeline += v.arrive_home[k] + v.arrive_hosted[k];
    const double C = v.capacity();
    const double x_cap = home_tier(v.home) == 3 ? p.x_max_t3 : p.x_max;
    double order = fp::max(
        0.0, fp::min(fp::min(plan * v.forecast / (1.0 - p.train_share) - C - pipeline, fp::max(v.cash, 0.0) / p.capex),
                     p.bm * x_cap * C));
    if (p.moratorium && t >= p.lever_tick && v.home == lever_country_) order = 0.0;
    v.order = order;
    v.cash += (1.0 + p.bm * p.outside_finance) * v.revenue - p.opex * C - p.capex * order;
    v.arrive_home.at(t + lead_) += order;
  }
}

std::vector<int> Labs::step_training(const Params& p, int t) {
  std::vector<int> released;
  const int P = static_cast<int>(providers_.size());
  auto maybe_release = [&](int q) {
    Provider& v = providers_[q];
    if (v.K >= gens_[v.gens.back()].K + p.dK_release) {
      add_generation(q, v.K, t);
      released.push_back(q);
    }
  };
  for (int q = 0; q < P; ++q) {
    Provider& v = providers_[q];
    v.T += p.train_share * v.capacity();
    v.K_own = p.K_lead0 + p.beta * fp::log(v.T / T_ref_) + v.offset;
    if (v.follower) continue;
    v.K = v.K_own;
    maybe_release(q);
  }
  // K_lead(t) after the non-followers' step 2: the best K_g at KYC or later.
  double best = -fp::kInf;
  int holder = -1;
  for (const Generation& g : gens_) {
    if (providers_[g.provider].follower || stage_of(p, g, t) < kStageKyc) continue;
    const Provider& h = providers_[g.provider];
    if (holder < 0 || g.K > best || (g.K == best && h.capacity() > providers_[holder].capacity())) {
      best = g.K;
      holder = g.provider;
    }
  }
  if (holder < 0) best = lead_history(p, t);  // no leader generation released yet
  K_lead_hist_.push_back(best);
  for (int q = 0; q < P; ++q) {
    Provider& v = providers_[q];
    if (!v.follower) continue;
    const bool blocked = holder >= 0 && align_[v.home * P + holder] < 0.0;
    const bool crack = p.crackdown && t >= p.lever_tick;
    const int L = static_cast<int>(p.L0 + (crack ? p.dL_cd : 0) + (blocked ? p.dL_api : 0));
    const double Kl = lead_history(p, t - L);
    v.K = Kl + p.chi * fp::max(v.K_own - Kl, 0.0);
    v.lag = follower_lag(p, t, v.K);
    maybe_release(q);
  }
  return released;
}

void Labs::add_hosted_order(int q, double amount, int t) { providers_[q].arrive_hosted.at(t + lead_) += amount; }

void Labs::settle(int q, double revenue, double price, double price_home, double demand, double F_smooth) {
  Provider& v = providers_[q];
  v.revenue = revenue;
  v.price = price;
  v.price_home = price_home;
  v.forecast += F_smooth * (demand - v.forecast);
}

void Labs::step_serving_cost(const Params& p, int t) {
  const std::size_t n = gens_.size();
  gen_provider_.resize(n);
  gen_stage_.resize(n);
  gen_K_.resize(n);
  gen_h_.resize(n);
  for (std::size_t k = 0; k < n; ++k) {
    const Generation& g = gens_[k];
    gen_provider_[k] = static_cast<std::uint8_t>(g.provider);
    gen_stage_[k] = stage_of(p, g, t);
    gen_K_[k] = g.K;
    gen_h_[k] = p.h0 * fp::exp(-p.delta * t) * fp::exp(p.kappa * (g.K - p.K_ref)) * fp::exp(-p.eta * (t - g.t_g));
  }
}

GenTableView Labs::view() const {
  return {static_cast<int>(gens_.size()),
          static_cast<int>(providers_.size()),
          table_of(gen_provider_),
          table_of(gen_K_),
          table_of(gen_stage_),
          table_of(gen_h_),
          table_of(align_)};
}

double Labs::K_lead(int t) const { return K_lead_hist_.at(t); }

double Labs::released_frontier() const {
  double best = 0.0;
  for (std::size_t k = 0; k < gens_.size(); ++k)
    if (gen_stage_[k] >= kStageTrusted) best = std::max(best, gen_K_[k]);
  return best;
}

bool Labs::serves_generally(int c) const {
  const GenTableView g = view();
  for (int k = 0; k < g.n_gens; ++k)
    if (user_eligible(g, c, k)) return true;
  return false;
}

}  // namespace cutoff
