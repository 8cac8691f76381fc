// cutoff_bench: what bench/run measures in-process.
//   cutoff_bench stream [--mib M] [--threads T]       STREAM triad bandwidth (JSON)
//   cutoff_bench devcopy [--mib M]                    GPU device-to-device copy bandwidth (JSON)
//   cutoff_bench tick SCENARIO --firms N --users N --ticks T [--warmup W] [--threads T] [--backend B] [--set k=v]...
//   cutoff_bench bids SCENARIO --firms N --users N [--warmup W] [--reps R] [--threads T] [--set k=v]...
// The tick mode times steady-state ticks (initialisation and output excluded),
// per step, and counts the tick's bytes from the field registries.
#include <omp.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "agents/fields.hpp"
#include "agents/firm_kern.hpp"
#include "core/app/backend.hpp"
#include "core/market/clearing.hpp"
#include "core/model/params.hpp"
#include "core/model/scenario.hpp"
#include "core/sim/simulation.hpp"
#if defined(CUTOFF_WITH_CUDA)
#include "cuda/device.hpp"
#endif

namespace {

using cutoff::Simulation;

/// a[i] = b[i] + s·c[i] over three arrays: 24 bytes per element (STREAM's count).
int stream(std::size_t mib, int threads) {
  if (threads > 0) omp_set_num_threads(threads);
  const std::size_t n = mib * (1u << 20) / sizeof(double);
  std::vector<double> a(n), b(n), c(n);
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(n); ++i) {
    a[i] = 0.0;
    b[i] = 1.0 + static_cast<double>(i % 7);
    c[i] = 2.0;
  }
  double best = 1e30;
  const double s = 3.0;
  for (int rep = 0; rep < 10; ++rep) {
    const double t0 = omp_get_wtime();
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(n); ++i) a[i] = b[i] + s * c[i];
    best = std::min(best, omp_get_wtime() - t0);
  }
  double check = 0;
  for (std::size_t i = 0; i < n; i += 4097) check += a[i];
  std::printf("{\"stream_GBps\": %.4f, \"stream_array_mib\": %zu, \"threads\": %d, \"check\": %.1f}\n",
              24.0 * static_cast<double>(n) / best / 1e9, mib, omp_get_max_threads(), check);
  return 0;
}

template <class Pop> std::map<std::string, std::size_t> field_bytes() {
  std::map<std::string, std::size_t> m;
  for (const cutoff::FieldInfo& f : Pop::kFields) m[f.name] = f.bytes;
  return m;
}

/// Per-agent bytes of one population in a tick: compulsory (each field used read
/// once, each field changed written once) and moved (every pass reads again).
void tick_bytes(const std::string& pop, const std::map<std::string, std::size_t>& bytes, double* compulsory,
                double* moved) {
  std::set<std::string> read, written;
  *moved = 0;
  for (const cutoff::StepAccess& a : Simulation::step_accesses()) {
    if (a.population != pop) continue;
    double r = 0, w = 0;
    for (const auto& f : a.read) {
      read.insert(f);
      r += bytes.at(f);
    }
    for (const auto& f : a.written) {
      written.insert(f);
      w += bytes.at(f);
    }
    *moved += std::max(a.passes, 1) * r + w;
  }
  *compulsory = 0;
  for (const auto& f : read) *compulsory += bytes.at(f);
  for (const auto& f : written) *compulsory += bytes.at(f);
}

/// The GPU's copy bandwidth, or exit 2 where no GPU is usable.
int devcopy(std::size_t mib) {
  std::string why;
  if (!cutoff::gpu_usable(&why)) throw cutoff::InputError("devcopy: no usable GPU (" + why + ")");
#if defined(CUTOFF_WITH_CUDA)
  std::size_t free = 0;
  const double gbps = cutoff::device_copy_GBps(mib, &free);
  std::printf("{\"device_copy_GBps\": %.4f, \"device_copy_mib\": %zu, \"device\": \"%s\", \"free_bytes\": %zu}\n", gbps,
              mib, why.c_str(), free);
#endif
  return 0;
}

/// The scenario at these counts and horizon, its --set overrides applied.
cutoff::Params sized(const std::string& scenario, std::int64_t firms, std::int64_t users, int horizon,
                     std::vector<std::string> sets) {
  sets.push_back("n_firms=" + std::to_string(firms));
  sets.push_back("n_users=" + std::to_string(users));
  sets.push_back("horizon=" + std::to_string(horizon));
  return cutoff::load_scenario(scenario, sets, "--set");
}

cutoff::RunOptions run_options(int threads, const std::string& backend) {
  cutoff::RunOptions o;
  o.threads = threads;
  o.backend = cutoff::choose_backend(backend, true);
  return o;
}

int tick(const std::string& scenario, std::int64_t firms, std::int64_t users, int ticks, int warmup, int threads,
         const std::string& backend, const std::vector<std::string>& sets) {
  const cutoff::Params p = sized(scenario, firms, users, ticks + warmup, sets);
  const cutoff::RunOptions o = run_options(threads, backend);
  const double t0 = omp_get_wtime();
  Simulation sim(p, cutoff::load_countries(p.countries), o);
  const double init = omp_get_wtime() - t0;
  for (int t = 0; t < warmup; ++t) sim.step();
  std::vector<double> per_tick;
  std::vector<double> per_step(Simulation::step_names().size(), 0.0);
  const std::uint64_t waits0 = sim.exec().host_waits();
  for (int t = 0; t < ticks; ++t) {
    const double a = omp_get_wtime();
    sim.step();
    per_tick.push_back(omp_get_wtime() - a);
    for (std::size_t k = 0; k < per_step.size(); ++k) per_step[k] += sim.step_seconds()[k] / ticks;
  }
  const double waits = static_cast<double>(sim.exec().host_waits() - waits0) / ticks;
  double cf, mf, cu, mu;
  tick_bytes("firms", field_bytes<cutoff::Firms>(), &cf, &mf);
  tick_bytes("users", field_bytes<cutoff::Users>(), &cu, &mu);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  std::vector<double> sorted = per_tick;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  std::ostringstream js;
  js.precision(6);
  js << "{\"firms\": " << firms << ", \"users\": " << users << ", \"backend\": \"" << o.backend.name
     << "\", \"threads\": " << omp_get_max_threads() << ", \"init_seconds\": " << init
     << ", \"warmup_ticks\": " << warmup << ", \"tick_seconds\": [";
  for (std::size_t k = 0; k < per_tick.size(); ++k) js << (k ? ", " : "") << per_tick[k];
  js << "], \"median_tick_seconds\": " << median << ", \"step_seconds\": {";
  for (std::size_t k = 0; k < per_step.size(); ++k)
    js << (k ? ", " : "") << "\"" << Simulation::step_names()[k] << "\": " << per_step[k];
  js << "}, \"bytes_per_firm_tick\": {\"compulsory\": " << cf << ", \"moved\": " << mf << "}"
     << ", \"bytes_per_user_tick\": {\"compulsory\": " << cu << ", \"moved\": " << mu << "}"
     << ", \"compulsory_bytes\": " << (cf * firms + cu * users) << ", \"moved_bytes\": " << (mf * firms + mu * users)
     << ", \"state_bytes_per_firm\": " << cutoff::bytes_per_agent<cutoff::Firms>()
     << ", \"state_bytes_per_user\": " << cutoff::bytes_per_agent<cutoff::Users>()
     << ", \"peak_rss_bytes\": " << static_cast<long long>(ru.ru_maxrss) * 1024
     << ", \"agent_updates_per_s\": " << static_cast<double>(firms + users) / median
     << ", \"host_waits_per_tick\": " << waits << "}";
  std::cout << js.str() << std::endl;
  return 0;
}

/// Issue 36, item 3: is a firm's bid cheaper recomputed at each pass that reads it
/// (as the tick does: the clearing's passes, the settle, the outcome sums and the
/// budget adaptation) or computed once a tick and read back from a scratch array?
/// After `warmup` ticks, times alternately, `reps` times each, on the tick's own
/// firms and constants: a pass recomputing every bid (firm_bid), the pass filling
/// the scratch array (a FirmBid and its provider per firm, the 49 bytes the cache
/// would add to the firm's state), and a pass reading the array. Both reading passes
/// do the same work with the bid (its demand at the clearing price), so the
/// difference is where the bid comes from. Prints the fastest of each, per firm.
int bids(const std::string& scenario, std::int64_t firms, std::int64_t users, int warmup, int reps, int threads,
         const std::vector<std::string>& sets) {
  const cutoff::Params p = sized(scenario, firms, users, warmup + 1, sets);
  Simulation sim(p, cutoff::load_countries(p.countries), run_options(threads, "cpu"));
  for (int t = 0; t < warmup; ++t) sim.step();
  const cutoff::FirmTickConsts k = sim.firm_consts(sim.tick());
  const cutoff::FirmView& f = sim.firms().view();
  const auto n = static_cast<std::int64_t>(sim.layout().n_firms);
  std::vector<double> price(sim.labs().providers().size());
  for (std::size_t q = 0; q < price.size(); ++q) price[q] = sim.labs().providers()[q].price;
  std::vector<cutoff::FirmBid> cache(n);
  std::vector<std::uint8_t> cache_p(n);  // 255: no bid
  double best_recompute = 1e30, best_fill = 1e30, best_read = 1e30, check_recompute = 0, check_read = 0;
  for (int r = 0; r < reps; ++r) {
    double sum = 0, t0 = omp_get_wtime();
#pragma omp parallel for schedule(static) reduction(+ : sum)
    for (std::int64_t i = 0; i < n; ++i) {
      cutoff::FirmBid b{};
      const int q = cutoff::firm_bid(i, k, f, &b);
      if (q >= 0) sum += b.w * cutoff::bid_demand(b, price[q]);
    }
    best_recompute = std::min(best_recompute, omp_get_wtime() - t0);
    check_recompute = sum;
    t0 = omp_get_wtime();
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < n; ++i) {
      const int q = cutoff::firm_bid(i, k, f, &cache[i]);
      cache_p[i] = static_cast<std::uint8_t>(q < 0 ? 255 : q);
    }
    best_fill = std::min(best_fill, omp_get_wtime() - t0);
    sum = 0;
    t0 = omp_get_wtime();
#pragma omp parallel for schedule(static) reduction(+ : sum)
    for (std::int64_t i = 0; i < n; ++i) {
      const int q = cache_p[i];
      if (q != 255) sum += cache[i].w * cutoff::bid_demand(cache[i], price[q]);
    }
    best_read = std::min(best_read, omp_get_wtime() - t0);
    check_read = sum;
  }
  if (check_read != check_recompute)
    throw std::runtime_error("bids: the cached pass disagrees with the recomputing one");
  const double ns = 1e9 / static_cast<double>(n);
  std::printf(
      "{\"firms\": %lld, \"threads\": %d, \"warmup_ticks\": %d, \"reps\": %d, \"ns_per_firm\": {\"recompute\": "
      "%.3f, \"fill\": %.3f, \"read\": %.3f}, \"cache_bytes_per_firm\": %zu}\n",
      static_cast<long long>(n), omp_get_max_threads(), warmup, reps, best_recompute * ns, best_fill * ns,
      best_read * ns, sizeof(cutoff::FirmBid) + sizeof(std::uint8_t));
  return 0;
}

}  // namespace

// NOLINTNEXTLINE(bugprone-exception-escape): only the CLI11 set-up below can throw, on a programming error
int main(int argc, char** argv) {
  CLI::App app{"cutoff_bench: STREAM bandwidth and steady-state tick timings (used by bench/run)"};
  app.require_subcommand(1);
  std::size_t mib = 512;
  int threads = 0;
  auto* s = app.add_subcommand("stream", "STREAM triad bandwidth");
  s->add_option("--mib", mib, "MiB per array (three arrays)");
  s->add_option("--threads", threads, "OpenMP threads (0: all)");
  auto* d = app.add_subcommand("devcopy", "GPU device-to-device copy bandwidth");
  std::size_t dmib = 1024;
  d->add_option("--mib", dmib, "MiB copied");
  std::string scenario, backend = "cpu";
  std::int64_t firms = 10000, users = 100000;
  int ticks = 5, warmup = 2, tthreads = 0;
  std::vector<std::string> sets;
  auto simulation_options = [&](CLI::App* sub) {  // what tick and bids set up a simulation from
    sub->add_option("scenario", scenario)->required();
    sub->add_option("--firms", firms);
    sub->add_option("--users", users);
    sub->add_option("--warmup", warmup, "Ticks run before measuring");
    sub->add_option("--threads", tthreads);
    sub->add_option("--set", sets);
  };
  auto* t = app.add_subcommand("tick", "Steady-state tick timings");
  simulation_options(t);
  t->add_option("--ticks", ticks, "Measured ticks");
  t->add_option("--backend", backend, "cpu, cuda or auto")->check(CLI::IsMember(cutoff::backend_names()));
  int reps = 10;
  auto* b = app.add_subcommand("bids", "A firm's bid recomputed at each pass against read from a once-a-tick cache");
  simulation_options(b);
  b->add_option("--reps", reps, "Timings of each pass (the fastest is reported)");
  CLI11_PARSE(app, argc, argv);
  try {
    if (*s) return stream(mib, threads);
    if (*d) return devcopy(dmib);
    if (*b) return bids(scenario, firms, users, warmup, reps, tthreads, sets);
    return tick(scenario, firms, users, ticks, warmup, tthreads, backend, sets);
  } catch (const cutoff::InputError& e) {
    std::cerr << "cutoff_bench: error: " << e.what() << '\n';
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "cutoff_bench: failed: " << e.what() << '\n';
    return 1;
  }
}
