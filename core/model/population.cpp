#include "core/model/population.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/model/params.hpp"

namespace cutoff {

double pareto_capped_mean(double alpha, double cap) {
  // E[min(X, cap)] = 1 + ∫_1^cap x^−α dx.
  if (std::fabs(alpha - 1.0) < 1e-12) return 1.0 + std::log(cap);
  return 1.0 + (1.0 - std::pow(cap, 1.0 - alpha)) / (alpha - 1.0);
}

std::vector<std::uint64_t> share_largest_remainder(std::uint64_t total, const std::vector<double>& weight,
                                                   std::uint64_t floor) {
  const std::size_t n = weight.size();
  std::vector<std::uint64_t> out(n, 0);
  if (n == 0) return out;
  // Units below the floor go to the floor; the rest is shared in proportion among
  // those above it, repeated until no share falls below the floor.
  std::vector<bool> pinned(n, false);
  const std::uint64_t f = total >= floor * n ? floor : total / n;
  while (true) {
    std::uint64_t free_total = total;
    double wsum = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (pinned[i])
        free_total -= f;
      else
        wsum += weight[i];
    }
    bool changed = false;
    for (std::size_t i = 0; i < n; ++i)
      if (!pinned[i] && (wsum <= 0 || static_cast<double>(free_total) * weight[i] / wsum < static_cast<double>(f))) {
        pinned[i] = true;
        changed = true;
      }
    if (!changed) {
      std::vector<double> rem(n, -1.0);
      std::uint64_t given = 0;
      for (std::size_t i = 0; i < n; ++i) {
        if (pinned[i]) {
          out[i] = f;
          continue;
        }
        const double exact = static_cast<double>(free_total) * weight[i] / wsum;
        out[i] = static_cast<std::uint64_t>(std::floor(exact));
        rem[i] = exact - static_cast<double>(out[i]);
        given += out[i];
      }
      std::vector<std::size_t> order(n);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return rem[a] > rem[b]; });
      std::uint64_t left = free_total - given;
      for (std::size_t k = 0; k < n && left > 0; ++k)
        if (!pinned[order[k]]) {
          ++out[order[k]];
          --left;
        }
      return out;
    }
  }
}

void size_bands(double x_L, double alpha, double cap, bool strata, std::uint64_t agents, double firms, double* edge,
                std::uint64_t* n, double* w) {
  // Without strata band 0 is the whole small stratum [1, x_L).
  const double lower[kSizeBands] = {1.0, 10.0, 50.0, 250.0};
  for (int b = 0; b < kSizeBands; ++b) edge[b] = strata ? std::min(lower[b], x_L) : (b == 0 ? 1.0 : x_L);
  edge[kSizeBands] = x_L;
  // P(lo ≤ X < hi | X < x_L) for X Pareto(α, min 1); employment ∝ E[min(X, cap); lo ≤ X < hi].
  auto above = [&](double x) { return x < std::numeric_limits<double>::infinity() ? std::pow(x, -alpha) : 0.0; };
  auto mass = [&](double x) {  // ∫_1^min(x, cap) t·α·t^(−α−1) dt + cap·P(X ≥ cap) for x > cap
    const double h = std::min(x, cap);
    const double body =
        std::fabs(alpha - 1.0) < 1e-12 ? alpha * std::log(h) : alpha * (1.0 - std::pow(h, 1.0 - alpha)) / (alpha - 1.0);
    return body + (x > cap ? cap * (std::pow(cap, -alpha) - above(x)) : 0.0);
  };
  std::vector<int> used;
  std::vector<double> employment;
  for (int b = 0; b < kSizeBands; ++b)
    if (edge[b] < edge[b + 1]) {
      used.push_back(b);
      employment.push_back(mass(edge[b + 1]) - mass(edge[b]));
    }
  // Agents in proportion to employment, at least one per band (without strata: all in band 0).
  const std::vector<std::uint64_t> share = share_largest_remainder(agents, employment, 1);
  for (int b = 0; b < kSizeBands; ++b) n[b] = 0, w[b] = 0.0;
  for (std::size_t j = 0; j < used.size(); ++j) {
    const int b = used[j];
    n[b] = share[j];
    const double p_band = (above(edge[b]) - above(edge[b + 1])) / (1.0 - above(x_L));
    w[b] = firms * p_band / static_cast<double>(n[b]);  // one band: p_band = (1 − t)/(1 − t) = 1 exactly
  }
}

namespace {

/// Every country's minimum of agents fits in n_firms and n_users.
void check_agent_counts(const Layout& L, const Params& p) {
  const int C = L.n_countries;
  const std::uint64_t min_firms = static_cast<std::uint64_t>(p.min_firms);
  const std::uint64_t min_users = static_cast<std::uint64_t>(p.min_users);
  if (L.n_firms < min_firms * C)
    throw InputError("key 'n_firms' = " + std::to_string(L.n_firms) + ": too few for " + std::to_string(C) +
                     " countries at min_firms = " + std::to_string(min_firms) + ", allowed at least " +
                     std::to_string(min_firms * C));
  if (L.n_users < min_users * C)
    throw InputError("key 'n_users' = " + std::to_string(L.n_users) + ": too few for " + std::to_string(C) +
                     " countries at min_users = " + std::to_string(min_users) + ", allowed at least " +
                     std::to_string(min_users * C));
}

/// The agents per country: the large stratum (L.large, L.n_large), the small one (L.small)
/// and the users (L.users). Returns each country's real firms outside the large stratum.
std::vector<double> share_agents(Layout& L, const Params& p, const std::vector<double>& gdp,
                                 const std::vector<double>& pop) {
  const int C = L.n_countries;
  const std::uint64_t min_firms = static_cast<std::uint64_t>(p.min_firms);
  const std::uint64_t min_users = static_cast<std::uint64_t>(p.min_users);
  // The large stratum: the world's n_large largest firms, shared by GDP; it shrinks
  // when n_firms cannot hold it beside every country's minimum of small agents.
  std::uint64_t n_large = static_cast<std::uint64_t>(p.n_large);
  if (n_large > L.n_firms || L.n_firms - n_large < min_firms * C) {
    const std::uint64_t fit = L.n_firms - min_firms * C;
    L.warnings.push_back("n_large shrunk from " + std::to_string(n_large) + " to " + std::to_string(fit) +
                         " so that n_firms = " + std::to_string(L.n_firms) +
                         " gives every country min_firms = " + std::to_string(min_firms) + " small-stratum agents");
    n_large = fit;
  }
  L.large = share_largest_remainder(n_large, gdp, 0);
  for (int c = 0; c < C; ++c) {  // a country cannot have more large firms than firms
    const auto cap = static_cast<std::uint64_t>(std::floor(L.real_firms[c] / 2));
    L.large[c] = std::min(L.large[c], cap);
  }
  L.n_large = std::accumulate(L.large.begin(), L.large.end(), std::uint64_t{0});
  std::vector<double> small_firms(C);
  for (int c = 0; c < C; ++c) small_firms[c] = L.real_firms[c] - static_cast<double>(L.large[c]);
  L.small = share_largest_remainder(L.n_firms - L.n_large, small_firms, min_firms);
  L.users = share_largest_remainder(L.n_users, pop, min_users);
  return small_firms;
}

/// Country c's size bands, weights and agent ranges, and its segments: sectors by their
/// shares, for each stratum and band (stratified draw).
void lay_out_country(Layout& L, const Params& p, int c, double small_firms, double pop) {
  const int S = L.n_sectors;
  L.x_L[c] = L.large[c] > 0 ? std::pow(L.real_firms[c] / static_cast<double>(L.large[c]), 1.0 / p.pareto_alpha)
                            : std::numeric_limits<double>::infinity();
  std::uint64_t band_n[kSizeBands];
  size_bands(L.x_L[c], p.pareto_alpha, p.size_cap, p.size_strata, L.small[c], small_firms,
             &L.band_edge[static_cast<std::size_t>(c) * (kSizeBands + 1)], band_n,
             &L.w_small[static_cast<std::size_t>(c) * kSizeBands]);
  L.w_user[c] = pop / static_cast<double>(L.users[c]);
  L.firm_begin[c + 1] = L.firm_begin[c] + L.large[c] + L.small[c];
  L.user_begin[c + 1] = L.user_begin[c] + L.users[c];
  const auto large_s = share_largest_remainder(L.large[c], p.sector_share, 0);
  std::vector<std::vector<std::uint64_t>> band_s;
  for (int b = 0; b < kSizeBands; ++b) band_s.push_back(share_largest_remainder(band_n[b], p.sector_share, 0));
  for (int s = 0; s < S; ++s) {
    const std::size_t k = static_cast<std::size_t>(c) * S + s;
    L.seg_large[k] = static_cast<std::uint32_t>(large_s[s]);
    L.seg_begin[k + 1] = L.seg_begin[k] + large_s[s];
    for (int b = 0; b < kSizeBands; ++b) {
      L.seg_band[k * kSizeBands + b] = static_cast<std::uint32_t>(band_s[b][s]);
      L.seg_begin[k + 1] += band_s[b][s];
    }
  }
}

}  // namespace

Layout make_layout(const std::vector<Country>& countries, const Params& p) {
  Layout L;
  const int C = static_cast<int>(countries.size());
  const int S = static_cast<int>(p.sector_share.size());
  L.n_countries = C;
  L.n_sectors = S;
  L.n_firms = static_cast<std::uint64_t>(p.n_firms);
  L.n_users = static_cast<std::uint64_t>(p.n_users);
  check_agent_counts(L, p);

  const double mean_size = pareto_capped_mean(p.pareto_alpha, p.size_cap);
  std::vector<double> gdp(C), pop(C);
  L.workers.resize(C);
  L.real_firms.resize(C);
  for (int c = 0; c < C; ++c) {
    L.workers[c] = p.worker_share * countries[c].population;
    L.real_firms[c] = L.workers[c] / mean_size;
    gdp[c] = countries[c].gdp_usd;
    pop[c] = countries[c].population;
  }
  const std::vector<double> small_firms = share_agents(L, p, gdp, pop);

  L.x_L.resize(C);
  L.band_edge.assign(static_cast<std::size_t>(C) * (kSizeBands + 1), 1.0);
  L.w_small.assign(static_cast<std::size_t>(C) * kSizeBands, 0.0);
  L.seg_band.assign(static_cast<std::size_t>(C) * S * kSizeBands, 0);
  L.w_user.resize(C);
  L.firm_begin.assign(C + 1, 0);
  L.user_begin.assign(C + 1, 0);
  L.seg_begin.assign(static_cast<std::size_t>(C) * S + 1, 0);
  L.seg_large.assign(static_cast<std::size_t>(C) * S, 0);
  for (int c = 0; c < C; ++c) lay_out_country(L, p, c, small_firms[c], pop[c]);
  return L;
}

}  // namespace cutoff
