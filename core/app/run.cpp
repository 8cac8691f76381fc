#include "core/app/run.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "core/app/memory.hpp"
#include "core/io/checkpoint.hpp"
#include "core/io/output.hpp"
#include "cutoff_version.hpp"

namespace cutoff {
namespace {

DType dtype_of(FieldType t) {
  switch (t) {
    case FieldType::U8: return DType::U8;
    case FieldType::U16: return DType::U16;
    case FieldType::U32: return DType::U32;
    case FieldType::F32: return DType::F32;
    case FieldType::F64: return DType::F64;
    default: throw std::logic_error("no HDF5 type for a registry field type");
  }
}

/// The same file, also through links and `..`.
bool same_file(const std::string& a, const std::string& b) {
  namespace fs = std::filesystem;
  std::error_code ea, eb;
  if (fs::equivalent(a, b, ea)) return true;  // both exist: hard links, symlinks
  const fs::path ca = fs::weakly_canonical(fs::absolute(a), ea), cb = fs::weakly_canonical(fs::absolute(b), eb);
  return !ea && !eb && ca == cb;
}

/// Every file the run writes: the output, its `.part`, its checkpoint and the checkpoint's
/// temporary (docs/conventions.md 12).
std::vector<std::string> written_files(const std::string& out) {
  const std::string ck = checkpoint_path(out);
  return {out, out + ".part", ck, ck + ".tmp"};
}

/// An output path the run can use: a file name in an existing folder it may write to,
/// none of the names it writes being one of its inputs (issue 37: `-o` on the scenario
/// replaced the TOML). Bad paths are input errors (exit 2), found before any work.
void check_output_path(const std::string& out, const std::vector<std::string>& inputs, const std::string& origin) {
  namespace fs = std::filesystem;
  const fs::path p(out);
  if (out.empty()) throw InputError(origin + " is empty: give the output file, e.g. run.h5");
  std::error_code ec;
  if (fs::is_directory(p, ec)) throw InputError(origin + " '" + out + "' is a directory; expected a file name");
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  if (!fs::is_directory(dir, ec))
    throw InputError(origin + " '" + out + "': directory '" + dir.string() + "' does not exist");
  for (const std::string& w : written_files(out))
    for (const std::string& in : inputs)
      if (same_file(w, in))
        throw InputError(origin + " '" + out + "': the run would write '" + w + "', which is its input '" + in +
                         "'; allowed: an output name that is none of the run's inputs");
  // Can the folder take a new file? (Permission bits alone do not say: root ignores them,
  // a read-only mount does not.) The probe is the `.part` the writer creates first.
  const std::string probe = out + ".part";
  const bool existed = fs::exists(probe, ec);
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT, 0644);
  if (fd < 0) {
    const int err = errno;
    const FileProblem problem = file_problem_of_errno(err);
    throw InputError(origin + " " + file_message(problem, out, "cannot create " + probe + ": " + std::strerror(err)));
  }
  ::close(fd);
  if (!existed) ::unlink(probe.c_str());
}

template <class Pop> void snapshot_all(OutputWriter& w, const HostArrays<Pop>& arrays, int index, int tick) {
  typename Pop::View v = arrays.view();
  Pop::for_each(v, [&](const FieldInfo& f, auto*& ptr) {
    if (f.role != FieldRole::State) return;
    w.snapshot(Pop::kName, f.name, dtype_of(f.type), f.unit, f.description, index, tick, ptr, arrays.size());
  });
}

/// §7 (v4) the run's generation table, so that snapshots' generation indices can be
/// read: its provider, K_g and the tick it enters each stage (a tick past the horizon
/// where it had not yet got there; open: −1 without the open-weights lever).
void write_generations(OutputWriter& w, const Simulation& sim) {
  const Params& p = sim.params();
  const auto& prov = sim.labs().providers();
  const auto& gens = sim.labs().generations();
  std::vector<std::int32_t> index;
  std::vector<std::int64_t> provider, entry, trusted, kyc, general, open;
  std::vector<double> K;
  for (std::size_t k = 0; k < gens.size(); ++k) {
    const Generation& g = gens[k];
    const Provider& v = prov[g.provider];
    index.push_back(static_cast<std::int32_t>(k));
    provider.push_back(g.provider);
    K.push_back(g.K);
    entry.push_back(g.t_g);
    trusted.push_back(g.t_g + v.d_gov);
    kyc.push_back(g.t_g + v.d_gov + v.d_trusted);
    general.push_back(g.general);
    open.push_back(p.open_weights ? std::max<std::int64_t>(g.general + p.n_open, p.lever_tick) : -1);
  }
  w.dim("generation", index, "1", "generation index (snapshots' generation field; 255 = none)");
  auto put = [&](const char* name, const std::vector<std::int64_t>& v, const char* units, const char* long_name) {
    w.write_block(w.array(name, {"generation"}, units, long_name, DType::I64), {}, v.data());
  };
  put("generation_provider", provider, "1", "index of the provider that trained it (the provider dimension)");
  w.write_block(w.array("generation_K", {"generation"}, "K", "capability K_g"), {}, K.data());
  put("generation_entry", entry, "tick", "tick it entered the release pipeline (GOV), t_g");
  put("generation_trusted", trusted, "tick", "tick it reaches TRUSTED");
  put("generation_kyc", kyc, "tick", "tick it reaches KYC");
  put("generation_general", general, "tick", "tick it reaches GENERAL");
  put("generation_open", open, "tick", "tick it becomes OPEN (-1: never, open_weights off)");
}

/// Root attributes, coordinates and metric datasets of the output.
std::vector<int> write_header(OutputWriter& w, const Simulation& sim, const RunRequest& req) {
  const Params& p = sim.params();
  w.attr("title", "cutoff run");
  w.attr("scenario", to_toml(p));
  w.attr("seed", static_cast<std::int64_t>(p.seed));
  w.attr("replicate", static_cast<std::int64_t>(req.options.replicate));
  w.attr("n_firms", static_cast<std::int64_t>(p.n_firms));
  w.attr("n_users", static_cast<std::int64_t>(p.n_users));
  w.attr("n_large", static_cast<std::int64_t>(sim.layout().n_large));
  w.attr("ticks", static_cast<std::int64_t>(p.horizon));
  w.attr("snapshot_every", static_cast<std::int64_t>(req.snapshot_every));
  w.attr("backend", req.options.backend.name);
  w.attr("tau0", sim.tau0());
  w.attr("need0", sim.need0());
  w.attr("tightness0_reached", sim.tightness0_reached());
  w.attr("schema_version", static_cast<std::int64_t>(kSchemaVersion));
  // Provenance: may differ between otherwise identical runs.
  w.attr("version", kVersion);
  w.attr("git_commit", kGitCommit);
  w.attr("scenario_file", req.scenario_file);
  w.attr("command", req.command_line);
  w.attr("threads", static_cast<std::int64_t>(req.options.threads));
  w.attr("provenance_attributes", "version git_commit scenario_file command threads provenance_attributes");

  const auto& cs = sim.countries();
  const Layout& L = sim.layout();
  std::vector<std::string> iso, name, income;
  std::vector<double> pop, gdp0, w_user, w_small;
  std::vector<std::int32_t> tier, firm_agents, user_agents, large;
  for (std::size_t c = 0; c < cs.size(); ++c) {
    iso.push_back(cs[c].iso3);
    name.push_back(cs[c].name);
    income.push_back(cs[c].income_group);
    pop.push_back(cs[c].population);
    gdp0.push_back(cs[c].gdp_usd);
    tier.push_back(cs[c].tier);
    w_user.push_back(L.w_user[c]);
    w_small.push_back((L.real_firms[c] - static_cast<double>(L.large[c])) / static_cast<double>(L.small[c]));
    firm_agents.push_back(static_cast<std::int32_t>(L.firm_begin[c + 1] - L.firm_begin[c]));
    user_agents.push_back(static_cast<std::int32_t>(L.users[c]));
    large.push_back(static_cast<std::int32_t>(L.large[c]));
  }
  w.dim("country", iso, "country (ISO 3166-1 alpha-3)");
  w.coord("country_name", "country", name, "1", "country name");
  w.coord("population", "country", pop, "people", "population");
  w.coord("gdp0", "country", gdp0, "USD per year", "GDP at the start (data year in data/countries.csv)");
  w.coord("tier", "country", tier, "1", "export tier (January 2025 US AI diffusion framework)");
  w.coord("income_group", "country", income, "1", "income group (World Bank thresholds on GDP per capita)");
  w.coord("firm_agents", "country", firm_agents, "agents", "firm agents in the country");
  w.coord("large_firm_agents", "country", large, "agents", "large-stratum firm agents (one real firm each)");
  w.coord("user_agents", "country", user_agents, "agents", "user agents in the country");
  w.coord("people_per_user", "country", w_user, "people", "people per user agent");
  w.coord("firms_per_small_agent", "country", w_small, "firms",
          "real firms per small-stratum firm agent (the mean over its size bands)");

  w.dim("provider", sim.provider_names(), "provider (AI lab)");
  std::vector<std::string> homes;
  for (const Provider& v : sim.labs().providers()) homes.push_back(cs[v.home].iso3);
  w.coord("provider_home", "provider", homes, "1", "home country of the provider (ISO3)");
  w.dim("class", std::vector<std::string>{"gov", "trusted", "kyc", "general", "home", "consumer"},
        "priority class of compute");
  w.dim("size_class", std::vector<std::string>{"1-9", "10-49", "50-249", "250+"},
        "firm size class by employees per real firm (OECD)");
  w.dim("status", std::vector<std::string>(std::begin(kStatusNames), std::end(kStatusNames)),
        "access status of a firm this tick (docs/model.md section 7)");
  w.dim("plan", std::vector<std::string>{"free", "plus", "pro"}, "consumer plan");

  std::vector<int> ids;
  for (const MetricSpec& m : sim.metrics().specs()) ids.push_back(w.metric(m.name, m.dims, m.units, m.long_name));
  if (req.snapshot_every > 0) {
    w.snapshot_population(Firms::kName, sim.layout().n_firms);
    w.snapshot_population(Users::kName, sim.layout().n_users);
  }
  return ids;
}

}  // namespace

std::vector<std::string> size_warnings(const Params& p, const Layout& L) {
  std::vector<std::string> out = L.warnings;
  if (p.n_firms < kConvergedFirms)
    out.push_back(
        "n_firms = " + std::to_string(p.n_firms) + ": below " + std::to_string(kConvergedFirms) +
        " firm agents the baseline's results depend on the agent count, beyond their noise (docs/model.md, "
        "\"Convergence with the agent count, with a control\"); fit for tests and quick looks, not for results");
  return out;
}

std::string check_scenario(const Params& p, std::vector<std::string>* warnings) {
  const auto countries = load_countries(p.countries);
  const Layout L = make_layout(countries, p);
  const Labs m(p, countries);
  std::ostringstream s;
  s << countries.size() << " countries, " << m.providers().size() << " providers, " << p.n_firms << " firms ("
    << L.n_large << " large), " << p.n_users << " users, " << p.horizon << " ticks";
  const std::vector<std::string> warned = size_warnings(p, L);
  for (const std::string& w : warned) s << "; warning: " << w;
  if (warnings) warnings->insert(warnings->end(), warned.begin(), warned.end());
  return s.str();
}

void check_memory(const Params& p, std::uint64_t snapshot_in_flight, std::uint64_t max_memory) {
  const auto n_f = static_cast<std::uint64_t>(p.n_firms);
  const auto n_u = static_cast<std::uint64_t>(p.n_users);
  MemoryEstimate need = estimate_memory(n_f, n_u, snapshot_in_flight);
  // §2.0 (v5): below or above the reference counts, the reference population is built
  // beside the run's own agents while τ0 is derived.
  const bool reference = uses_reference_population(p);
  if (reference) {
    const MemoryEstimate ref =
        estimate_memory(static_cast<std::uint64_t>(p.tau0_ref_firms), static_cast<std::uint64_t>(p.tau0_ref_users), 0);
    need.fixed += ref.total();
  }
  std::string which;
  const std::uint64_t avail = available_memory(max_memory, &which);
  if (need.total() > avail) {
    std::ostringstream s;
    s << "not enough memory for n_firms = " << n_f << " and n_users = " << n_u << ": needs " << need.total()
      << " bytes (" << format_bytes(need.total()) << ": firms " << format_bytes(need.firms) << ", users "
      << format_bytes(need.users) << ", snapshot buffers " << format_bytes(need.snapshot) << ", fixed "
      << format_bytes(need.fixed) << (reference ? " with the tau0 reference population" : "") << "), available "
      << avail << " bytes (" << format_bytes(avail) << ", " << which << ")";
    throw InputError(s.str());
  }
}

std::string checkpoint_path(const std::string& out) { return out + ".checkpoint"; }

namespace {
/// Every file the run reads (scenario, inherited files, country table): none may be an output.
std::vector<std::string> run_inputs(const RunRequest& req) {
  std::vector<std::string> inputs = req.inputs;
  if (!req.scenario_file.empty()) inputs.push_back(req.scenario_file);
  inputs.push_back(req.params.countries);
  return inputs;
}
}  // namespace

std::vector<std::string> count_sets(const RunCounts& counts) {
  std::vector<std::string> sets;
  if (counts.firms >= 0) sets.push_back("n_firms=" + std::to_string(counts.firms));
  if (counts.users >= 0) sets.push_back("n_users=" + std::to_string(counts.users));
  if (counts.ticks >= 0) sets.push_back("horizon=" + std::to_string(counts.ticks));
  if (counts.seed >= 0) sets.push_back("seed=" + std::to_string(counts.seed));
  return sets;
}

void append_rows(MetricRows& rows, const Metrics& m) {
  for (std::size_t k = 0; k < rows.size(); ++k)
    rows[k].insert(rows[k].end(), m[static_cast<int>(k)].begin(), m[static_cast<int>(k)].end());
}

std::unique_ptr<Simulation> start_run(const RunRequest& req, std::uint64_t snapshot_in_flight) {
  check_memory(req.params, snapshot_in_flight, req.max_memory);
  auto countries = load_countries(req.params.countries);
  auto sim = std::make_unique<Simulation>(req.params, std::move(countries), req.options);
  if (req.log)
    for (const auto& list : {size_warnings(req.params, sim->layout()), sim->warnings()})
      for (const std::string& w : list) req.log("warning: " + w);
  return sim;
}

void write_run(const RunRequest& req, Simulation& sim, MetricRows& rows, int until) {
  check_output_path(req.out, run_inputs(req), req.out_origin);
  const std::string ck = checkpoint_path(req.out);
  // From here a failure removes the `.part` (the writer's destructor) and names what is
  // kept: the checkpoint a resumed run needs, or nothing.
  int saved_after = req.checkpoint_every > 0 ? sim.tick() - 1 : -1;  // the tick the checkpoint on disk holds
  try {
    OutputWriter w(req.out, req.snapshot_in_flight);
    const std::vector<int> ids = write_header(w, sim, req);
    if (req.extra_header) req.extra_header(w);
    const int ticks = until < 0 ? static_cast<int>(req.params.horizon) : until;
    // Snapshots: the backend copies the State fields out (on CUDA asynchronously, into
    // pinned buffers on its own stream); the writer takes them once the copy is done
    // (on CUDA after the next tick has been computed) and writes while later ticks run.
    Exec& exec = sim.exec();
    int snapshots = 0, pending = -1;
    auto hand_over = [&]() {
      if (pending < 0) return;
      snapshot_all(w, exec.snapshot_firms(), snapshots, pending);
      snapshot_all(w, exec.snapshot_users(), snapshots, pending);
      ++snapshots;
      pending = -1;
    };
    // The ticks already run (a checkpoint's, or the Python API's steps) are written from
    // their rows; they have no snapshots (refused by the callers).
    for (int t = 0; t < sim.tick(); ++t) {
      for (std::size_t k = 0; k < ids.size(); ++k) {
        const std::size_t cells = sim.metrics()[static_cast<int>(k)].size();
        w.write(ids[k], t, rows[k].data() + static_cast<std::size_t>(t) * cells);
      }
      w.end_tick(t);
      if (req.on_tick) req.on_tick(t + 1);
    }
    for (int t = sim.tick(); t < ticks; ++t) {
      if (req.stop_signal && req.stop_signal->load() != 0)
        throw Interrupted("interrupted by signal " + std::to_string(req.stop_signal->load()) + "; no output written");
      sim.step();
      hand_over();
      const Metrics& m = sim.metrics();
      for (std::size_t k = 0; k < ids.size(); ++k) w.write(ids[k], t, m[static_cast<int>(k)].data());
      if (req.checkpoint_every > 0 || req.keep_rows) append_rows(rows, m);
      w.end_tick(t);
      if (req.checkpoint_every > 0 && (t + 1) % req.checkpoint_every == 0 && t + 1 < ticks) {
        save_checkpoint(ck, sim, rows);
        saved_after = t;
      }
      if (req.snapshot_every > 0 && t % req.snapshot_every == 0) {
        exec.snapshot_begin();
        pending = t;
        if (!exec.snapshots_detached()) hand_over();
      }
      if (req.on_tick) req.on_tick(t + 1);
    }
    hand_over();
    write_generations(w, sim);
    w.commit();
  } catch (const FileError& e) {
    std::error_code ec;
    const bool kept = req.checkpoint_every > 0 && saved_after >= 0 && std::filesystem::exists(ck, ec);
    throw FileError(e.problem(), e.file(),
                    std::string(e.what()) + (kept ? "; kept '" + ck + "' (after tick " + std::to_string(saved_after) +
                                                        "): the same command resumes from it"
                                                  : "; nothing was kept"));
  }
  // The finished output supersedes any checkpoint beside it, this run's or an earlier
  // one's (issue 37: a run without --checkpoint-every left a stale one).
  std::error_code ec;
  if (std::filesystem::remove(ck, ec) && req.checkpoint_every == 0 && req.log)
    req.log("removed '" + ck + "', a checkpoint of an earlier run of this output");
  std::filesystem::remove(ck + ".tmp", ec);  // from a run killed while saving
}

void run_to_file(const RunRequest& req) {
  check_output_path(req.out, run_inputs(req), req.out_origin);  // before any work (write_run checks again)
  if (req.checkpoint_every > 0 && req.snapshot_every > 0)
    throw InputError("--checkpoint-every " + std::to_string(req.checkpoint_every) + " with --snapshot-every " +
                     std::to_string(req.snapshot_every) + ": snapshots are not checkpointed; allowed: one of the two");
  std::unique_ptr<Simulation> sim = start_run(req, req.snapshot_every > 0 ? req.snapshot_in_flight : 0);

  // Resume: the checkpoint restores the state after its tick and the metric rows so far,
  // which write_run writes again so the file is the one an uninterrupted run writes.
  const std::string ck = checkpoint_path(req.out);
  MetricRows rows(sim->metrics().specs().size());
  std::error_code ec;
  if (req.checkpoint_every > 0 && std::filesystem::exists(ck, ec)) {
    load_checkpoint(ck, *sim, rows);
    bool fits = rows.size() == sim->metrics().specs().size();
    for (std::size_t k = 0; fits && k < rows.size(); ++k)
      fits = rows[k].size() == static_cast<std::size_t>(sim->tick()) * sim->metrics()[static_cast<int>(k)].size();
    if (!fits) throw InputError("checkpoint '" + ck + "' holds metrics of another shape; delete it to start over");
    if (req.log) req.log("resuming from " + ck + " after tick " + std::to_string(sim->tick() - 1));
  }
  write_run(req, *sim, rows);
}

}  // namespace cutoff
