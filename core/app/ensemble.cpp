/// @file
/// Ensembles; see ensemble.hpp and docs/ensembles.md.
///
/// Why it looks like this:
///  - A member is the run `cutoff run` would make: it goes through run_to_file with the
///    point's --set list and its replicate; the ensemble only adds root attributes.
///  - Finished means proven finished: the completeness record (members/mXXXXXX.h5.done,
///    written atomically after the member file is renamed into place) holds the file's
///    SHA-256, checked on every start. Any other state is redone from scratch.
///  - Rank 0 gathers by reading the member files, never from memory, so ensemble.h5 and
///    summary.h5 do not depend on how many ranks or jobs made the members.

#include "core/app/ensemble.hpp"

#include <fcntl.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>
#include <utility>

#include "core/app/backend.hpp"
#include "core/app/comm.hpp"
#include "core/app/memory.hpp"
#include "core/app/run.hpp"
#include "core/hd/error.hpp"
#include "core/io/atomic_file.hpp"
#include "core/io/hdf5.hpp"
#include "core/io/output.hpp"
#include "core/io/sha256.hpp"
#include "core/model/scenario.hpp"
#include "cutoff_version.hpp"

namespace cutoff {

namespace fs = std::filesystem;

namespace {

const char* const kSweepForms = "allowed: key=v1,v2,... (numbers) or key=lo:hi:n (n >= 2 points, inclusive)";

std::string sweep_text(const Sweep& s) {
  std::string t = s.key + "=";
  for (std::size_t i = 0; i < s.texts.size(); ++i) t += (i ? "," : "") + s.texts[i];
  return t;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string done_path(const std::string& outdir, std::int64_t member) { return member_path(outdir, member) + ".done"; }

std::string done_record(std::int64_t member, const std::string& file) {
  return "cutoff member " + std::to_string(member) + "\nsha256 " + sha256_file(file) + "\nbytes " +
         std::to_string(fs::file_size(file)) + "\n";
}

/// Unit of a scenario key, for the swept or design coordinate.
std::string unit_of(const std::string& key) {
  const FieldSpec* f = key_spec(key);
  return f ? f->unit : "1";
}

}  // namespace

// ---------------------------------------------------------------------------
// Sweeps and the plan
// ---------------------------------------------------------------------------

Sweep parse_sweep(const std::string& spec) {
  const auto eq = spec.find('=');
  if (eq == std::string::npos || trim(spec.substr(0, eq)).empty())
    throw InputError("--sweep '" + spec + "': expected key=values; " + kSweepForms);
  Sweep s;
  s.key = trim(spec.substr(0, eq));
  const std::string rhs = trim(spec.substr(eq + 1));
  const std::string what = "--sweep '" + spec + "'";
  if (rhs.empty()) throw InputError(what + ": empty list of values; " + kSweepForms);
  if (rhs.find(':') != std::string::npos && rhs.find(',') == std::string::npos) {
    const auto parts = split_trimmed(rhs, ':');
    double lo = 0, hi = 0, n = 0;
    if (parts.size() != 3 || !parse_number(parts[0], lo) || !parse_number(parts[1], hi) || !parse_number(parts[2], n) ||
        n != std::floor(n) || n < 2 || n > 1e6)
      throw InputError(what + ": bad range '" + rhs + "'; " + kSweepForms);
    const int count = static_cast<int>(n);
    for (int i = 0; i < count; ++i) {
      const double v = i == count - 1 ? hi : lo + (hi - lo) * i / (count - 1);
      s.values.push_back(v);
      s.texts.push_back(render_value(ParamValue(v)));
    }
  } else {
    for (const std::string& t : split_trimmed(rhs, ',')) {
      double v = 0;
      if (t.empty()) throw InputError(what + ": an empty value in the list; " + kSweepForms);
      if (!parse_number(t, v)) throw InputError(what + ": value '" + t + "' is not a number; " + kSweepForms);
      s.values.push_back(v);
      s.texts.push_back(t);
    }
  }
  for (std::size_t i = 0; i < s.values.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (s.values[i] == s.values[j])
        throw InputError(what + ": value " + s.texts[i] + " appears twice; allowed: distinct values");
  return s;
}

namespace {

/// Each --scenarios file's label, its stem (`baseline` for data/scenarios/baseline.toml).
std::vector<std::string> labels_of(const std::vector<std::string>& files) {
  std::vector<std::string> labels;
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (files[i].empty())
      throw InputError("--scenarios: entry " + std::to_string(i + 1) +
                       " is empty; allowed: a comma-separated list of scenario files");
    labels.push_back(fs::path(files[i]).stem().string());
    for (std::size_t j = 0; j < i; ++j)
      if (labels[j] == labels[i])
        throw InputError("--scenarios: '" + files[j] + "' and '" + files[i] + "' have the same label '" + labels[i] +
                         "' (a scenario's label is its file's stem); allowed: files with distinct names");
  }
  return labels;
}

/// "scenario 'label': " in a message about one scenario of several (--scenarios).
std::string of_scenario(const EnsemblePlan& plan, std::size_t s) {
  return plan.scenario_labels.empty() ? std::string() : "scenario '" + plan.scenario_labels[s] + "': ";
}

/// The flags that exclude each other, before any scenario is read.
void check_request(const EnsembleRequest& req) {
  if (req.replicates < 1) throw InputError("--replicates " + std::to_string(req.replicates) + ": allowed 1 or more");
  if (!req.scenarios.empty() && !req.scenario.empty())
    throw InputError("--scenarios with a SCENARIO ('" + req.scenario + "'): allowed: one of them");
  if (!req.design.empty() && !req.sweeps.empty())
    throw InputError("--design '" + req.design +
                     "' with --sweep: allowed: one of them (a design lists every point itself; add the swept key as "
                     "a column)");
}

/// Each sweep's key, and each of its values alone first, so a bad one is named with its own --sweep.
void check_sweeps(const EnsembleRequest& req, const EnsemblePlan& plan) {
  for (std::size_t k = 0; k < req.sweeps.size(); ++k) {
    const Sweep& sw = req.sweeps[k];
    if (sw.key == "horizon")
      throw InputError("--sweep '" + sweep_text(sw) +
                       "': horizon cannot be swept (members share the tick axis); "
                       "use --ticks");
    for (std::size_t j = 0; j < k; ++j)
      if (req.sweeps[j].key == sw.key)
        throw InputError("--sweep '" + sweep_text(sw) + "': key '" + sw.key + "' swept twice");
    for (const std::string& t : sw.texts) {
      std::vector<std::string> sets = req.sets;
      sets.push_back(sw.key + "=" + t);
      for (std::size_t s = 0; s < plan.scenario_files.size(); ++s) {
        try {
          load_scenario(plan.scenario_files[s], sets, "--set");
        } catch (const InputError& e) {
          throw InputError("--sweep '" + sweep_text(sw) + "': value " + t + ": " + of_scenario(plan, s) + e.what());
        }
      }
    }
  }
}

/// Point p of scenario s refused (@p e): with a design, names the first column whose
/// value alone the scenario refuses; otherwise the point (@p where).
[[noreturn]] void refuse_point(const EnsembleRequest& req, const EnsemblePlan& plan, std::size_t s, std::size_t p,
                               const std::string& where, const InputError& e) {
  const Design& design = plan.design;
  if (plan.has_design) {
    for (std::size_t c = 0; c < design.keys.size(); ++c) {
      std::vector<std::string> one = req.sets;
      one.push_back(design.keys[c] + "=" + design.texts[p][c]);
      try {
        load_scenario(plan.scenario_files[s], one, "--set");
      } catch (const InputError& e1) {
        throw InputError(design_where(design, p, c) + ": " + of_scenario(plan, s) + e1.what());
      }
    }
  }
  throw InputError(where + ": " + of_scenario(plan, s) + e.what());
}

/// Every point: each scenario's, in order; within one, row-major with the last sweep
/// fastest, or the design's rows. Returns the points' TOML, one after another.
std::string plan_points(const EnsembleRequest& req, EnsemblePlan& plan) {
  const Design& design = plan.design;
  std::size_t n_points = 1;
  for (const Sweep& sw : req.sweeps) n_points *= sw.values.size();
  if (plan.has_design) n_points = design.rows();
  plan.per_scenario = n_points;
  std::string all;
  for (std::size_t s = 0; s < plan.scenario_files.size(); ++s) {
    for (std::size_t p = 0; p < n_points; ++p) {
      std::vector<std::size_t> idx(req.sweeps.size());
      std::size_t rest = p;
      for (std::size_t k = req.sweeps.size(); k-- > 0;) {
        idx[k] = rest % req.sweeps[k].values.size();
        rest /= req.sweeps[k].values.size();
      }
      std::vector<std::string> sets = req.sets;
      std::string label;
      for (std::size_t k = 0; k < req.sweeps.size(); ++k) {
        sets.push_back(req.sweeps[k].key + "=" + req.sweeps[k].texts[idx[k]]);
        label += (k ? " " : "") + sets.back();
      }
      if (plan.has_design)
        for (std::size_t c = 0; c < design.keys.size(); ++c) sets.push_back(design.keys[c] + "=" + design.texts[p][c]);
      const std::string where = plan.has_design ? "--design '" + design.file + "' row " + std::to_string(p + 1) +
                                                      " (line " + std::to_string(design.lines[p]) + ")"
                                                : "--sweep point " + std::to_string(p) + " (" + label + ")";
      try {
        Params params = load_scenario(plan.scenario_files[s], sets, "--set");
        std::vector<std::string> warned;
        check_scenario(params, &warned);
        for (const std::string& w : warned) {
          const std::string named =
              of_scenario(plan, s) + (req.sweeps.empty() && !plan.has_design ? w : where + ": " + w);
          if (std::find(plan.warnings.begin(), plan.warnings.end(), named) == plan.warnings.end())
            plan.warnings.push_back(named);
        }
        all += to_toml(params);
        plan.points.push_back(std::move(params));
      } catch (const InputError& e) {
        refuse_point(req, plan, s, p, where, e);
      }
      plan.point_index.push_back(std::move(idx));
      plan.point_sets.push_back(std::move(sets));
    }
  }
  return all;
}

/// Common random numbers: member R of every scenario has the same seed and replicate,
/// and all share the tick axis.
void check_common_numbers(const EnsemblePlan& plan) {
  const std::size_t n_points = plan.per_scenario;
  for (std::size_t s = 1; s < plan.scenario_files.size(); ++s)
    for (std::size_t p = 0; p < n_points; ++p) {
      const Params &a = plan.points[p], &b = plan.points[s * n_points + p];
      if (a.seed != b.seed)
        throw InputError("--scenarios: '" + plan.scenario_files[s] + "' has seed " + std::to_string(b.seed) + ", '" +
                         plan.scenario_files[0] + "' " + std::to_string(a.seed) +
                         "; common random numbers need one seed: allowed: scenarios of one seed, or --seed S");
      if (a.horizon != b.horizon)
        throw InputError("--scenarios: '" + plan.scenario_files[s] + "' runs " + std::to_string(b.horizon) +
                         " ticks, '" + plan.scenario_files[0] + "' " + std::to_string(a.horizon) +
                         "; members share the tick axis: allowed: scenarios of one horizon, or --ticks N");
    }
}

/// Memory: `jobs` members at once, the largest point each.
void check_memory(const EnsembleRequest& req, const EnsemblePlan& plan) {
  std::uint64_t need = 0;
  for (const Params& p : plan.points)
    need = std::max(
        need, estimate_memory(static_cast<std::uint64_t>(p.n_firms), static_cast<std::uint64_t>(p.n_users), 0).total());
  const std::uint64_t concurrent = static_cast<std::uint64_t>(std::min<std::int64_t>(req.jobs, plan.members()));
  std::string which;
  const std::uint64_t avail = available_memory(req.max_memory, &which);
  if (need * concurrent > avail)
    throw InputError("--jobs " + std::to_string(req.jobs) + ": " + std::to_string(concurrent) +
                     " members at once need " + format_bytes(need * concurrent) + ", available " + format_bytes(avail) +
                     " (" + which + "); allowed: fewer jobs or smaller members");
}

/// The plan's fingerprint (OUTDIR/ensemble.plan); @p all is its points' TOML.
std::string fingerprint_of(const EnsembleRequest& req, const EnsemblePlan& plan, const std::string& all) {
  // Lines are added only for the newer flags, so an ensemble without them keeps its plan.
  std::ostringstream f;
  f << "cutoff ensemble plan\nversion " << kVersion << " " << kGitCommit << "\nschema " << kSchemaVersion
    << "\nreplicates " << req.replicates << "\n";
  if (!plan.scenario_labels.empty()) {
    f << "scenarios";
    for (std::size_t s = 0; s < plan.scenario_labels.size(); ++s) f << (s ? "," : " ") << plan.scenario_labels[s];
    f << "\n";
  }
  for (const Sweep& sw : req.sweeps) f << "sweep " << sweep_text(sw) << "\n";
  if (plan.has_design) {
    const Design& design = plan.design;
    f << "design keys";
    for (std::size_t c = 0; c < design.keys.size(); ++c) f << (c ? "," : " ") << design.keys[c];
    f << " rows " << design.rows() << " sha256 " << design.sha256 << "\n";
  }
  f << "points " << plan.points.size() << " sha256 " << sha256_hex(all) << "\n";
  return f.str();
}

}  // namespace

EnsemblePlan plan_ensemble(const EnsembleRequest& req) {
  EnsemblePlan plan;
  check_request(req);
  const bool multi = !req.scenarios.empty();
  plan.scenario_files = multi ? req.scenarios : std::vector<std::string>{req.scenario};
  if (multi) plan.scenario_labels = labels_of(req.scenarios);
  for (std::size_t s = 0; s < plan.scenario_files.size(); ++s) {
    Params base = load_scenario(plan.scenario_files[s], req.sets, "--set");
    if (s == 0) plan.base = std::move(base);
  }
  plan.sweeps = req.sweeps;
  plan.replicates = req.replicates;
  check_sweeps(req, plan);
  if (!req.design.empty()) {
    plan.design = read_design(req.design);
    plan.has_design = true;
  }
  const std::string all = plan_points(req, plan);
  check_common_numbers(plan);
  check_memory(req, plan);
  plan.fingerprint = fingerprint_of(req, plan, all);
  return plan;
}

// ---------------------------------------------------------------------------
// Members
// ---------------------------------------------------------------------------

std::string member_path(const std::string& outdir, std::int64_t member) {
  char name[32];
  std::snprintf(name, sizeof name, "m%06lld.h5", static_cast<long long>(member));
  return (fs::path(outdir) / "members" / name).string();
}

bool member_finished(const std::string& outdir, std::int64_t member) {
  const std::string file = member_path(outdir, member), done = done_path(outdir, member);
  std::error_code ec;
  if (!fs::is_regular_file(done, ec) || !fs::is_regular_file(file, ec)) return false;
  try {
    return read_text(done) == done_record(member, file);
  } catch (const std::exception&) {
    return false;
  }
}

namespace {

/// Scenario keys a run file already holds as root attributes of its own (int64; n_large
/// as laid out): a member keeps those rather than overwrite them with the swept double.
bool run_records(const std::string& key) {
  return key == "seed" || key == "n_firms" || key == "n_users" || key == "n_large";
}

/// Removes whatever a killed or corrupted attempt at @p member left.
void clear_member(const std::string& outdir, std::int64_t member) {
  const std::string file = member_path(outdir, member);
  std::error_code ec;
  for (const std::string& p : {done_path(outdir, member), done_path(outdir, member) + ".tmp", file + ".part", file})
    fs::remove(p, ec);
}

void run_member(const EnsembleRequest& req, const EnsemblePlan& plan, std::int64_t member, int threads) {
  const std::size_t g = static_cast<std::size_t>(member / plan.replicates);
  const std::size_t scenario = g / plan.per_scenario, point = g % plan.per_scenario;
  RunRequest r;
  r.params = plan.points[g];
  r.options.replicate = static_cast<std::uint32_t>(member % plan.replicates);
  r.options.threads = threads;
  r.options.backend = backend_named(req.backend);
  r.scenario_file = plan.scenario_files[scenario];
  r.out = member_path(req.outdir, member);
  r.command_line = req.command_line;
  r.stop_signal = req.stop_signal;
  r.extra_header = [&](OutputWriter& w) {
    w.attr("member", member);
    w.attr("ensemble_point", static_cast<std::int64_t>(point));
    // Not `scenario`: a run file's `scenario` attribute is its resolved TOML.
    if (!plan.scenario_labels.empty()) w.attr("ensemble_scenario", plan.scenario_labels[scenario]);
    for (std::size_t k = 0; k < plan.sweeps.size(); ++k)
      if (!run_records(plan.sweeps[k].key)) w.attr(plan.sweeps[k].key, plan.sweeps[k].values[plan.point_index[g][k]]);
    if (plan.has_design)
      for (std::size_t c = 0; c < plan.design.keys.size(); ++c)
        if (!run_records(plan.design.keys[c])) w.attr(plan.design.keys[c], plan.design.values[point][c]);
  };
  run_to_file(r);
  try {
    write_atomically(done_path(req.outdir, member), {done_record(member, r.out)});
  } catch (...) {
    clear_member(req.outdir, member);  // a member file without its record is not finished
    throw;
  }
}

/// Rank 0's claim on OUTDIR for this plan (OUTDIR/members created, the plan written); a
/// different ensemble's directory is refused. Returns the problem, empty when claimed;
/// *created: OUTDIR did not exist before.
std::string claim_outdir(const EnsembleRequest& req, const EnsemblePlan& plan, bool* created) {
  std::string problem;
  const fs::path members = fs::path(req.outdir) / "members";
  std::error_code ec;
  *created = !fs::exists(req.outdir, ec);
  fs::create_directories(members, ec);
  const std::string plan_file = (fs::path(req.outdir) / "ensemble.plan").string();
  if (ec) {
    problem = "-o/--out " + file_message(file_problem_of_errno(ec.value()), req.outdir,
                                         "cannot create " + members.string() + ": " + ec.message());
  } else if (fs::exists(plan_file) && read_text(plan_file) != plan.fingerprint) {
    problem = "-o/--out '" + req.outdir + "' holds another ensemble (" + plan_file +
              " differs: other scenarios, sweeps, design, replicates or version); allowed: the same command, or a "
              "new directory";
  } else {
    try {
      write_atomically(plan_file, {plan.fingerprint});
    } catch (const std::exception& e) {
      problem = "-o/--out '" + req.outdir + "': " + e.what();
    }
  }
  return problem;
}

/// This rank's members still to run (member % size == rank): finished ones are kept, the
/// rest cleared to be redone. *mine: how many members this rank has in all.
std::vector<std::int64_t> pending_members(const EnsembleRequest& req, const EnsemblePlan& plan, const Comm& comm,
                                          std::int64_t* mine) {
  std::vector<std::int64_t> pending;
  *mine = 0;
  for (std::int64_t m = comm.rank(); m < plan.members(); m += comm.size()) {
    ++*mine;
    if (member_finished(req.outdir, m)) continue;
    clear_member(req.outdir, m);
    pending.push_back(m);
  }
  return pending;
}

/// How a rank's pool of jobs ended.
struct PoolEnd {
  std::string failure;  ///< the first failed member's number and message; empty: none failed
  bool interrupted = false;
};

/// Runs @p pending on @p jobs threads at once (@p threads OpenMP threads each); the first
/// failure or interrupt stops the rest. req.on_member hears @p done of @p mine, then each one finished.
PoolEnd run_pending(const EnsembleRequest& req, const EnsemblePlan& plan, const std::vector<std::int64_t>& pending,
                    int jobs, int threads, std::int64_t done, std::int64_t mine) {
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex mu;
  PoolEnd end;
  if (req.on_member) req.on_member(done, mine);
  auto worker = [&] {
    for (;;) {
      if (stop.load()) return;
      const std::size_t i = next.fetch_add(1);
      if (i >= pending.size()) return;
      try {
        run_member(req, plan, pending[i], threads);
        std::lock_guard<std::mutex> lk(mu);
        ++done;
        if (req.on_member) req.on_member(done, mine);
      } catch (const Interrupted&) {
        std::lock_guard<std::mutex> lk(mu);
        end.interrupted = true;
        stop = true;
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lk(mu);
        if (end.failure.empty()) end.failure = "member " + std::to_string(pending[i]) + ": " + e.what();
        stop = true;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int j = 1; j < jobs; ++j) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();
  return end;
}

/// After a failure, on rank 0: without a finished member there is nothing to resume, so no
/// plan is left behind (issue 37; docs/conventions.md 12). With one, the plan and the
/// finished members are kept.
void remove_unresumable(const EnsembleRequest& req, const EnsemblePlan& plan, bool created_outdir) {
  bool any = false;
  for (std::int64_t m = 0; m < plan.members() && !any; ++m) any = member_finished(req.outdir, m);
  if (!any) {
    std::error_code ec;
    fs::remove(fs::path(req.outdir) / "ensemble.plan", ec);
    fs::remove(fs::path(req.outdir) / "ensemble.plan.tmp", ec);
    fs::remove(fs::path(req.outdir) / "members", ec);  // only when empty
    if (created_outdir) fs::remove(req.outdir, ec);
  }
}

}  // namespace

int run_ensemble(const EnsembleRequest& req, const Comm& comm) {
  if (req.jobs < 1) throw InputError("--jobs " + std::to_string(req.jobs) + ": allowed 1 or more");
  const EnsemblePlan plan = plan_ensemble(req);
  auto log = [&](const std::string& s) {
    if (req.log) req.log(s);
  };

  // The size warnings of every point (run.hpp size_warnings), as `run` prints them.
  if (comm.rank() == 0)
    for (const std::string& w : plan.warnings) log("warning: " + w);

  int status = 0;
  std::string problem;
  bool created_outdir = false;
  if (comm.rank() == 0) {
    problem = claim_outdir(req, plan, &created_outdir);
    if (!problem.empty()) status = 2;
  }
  if (comm.max_over_ranks(status) != 0) {
    if (comm.rank() == 0) throw InputError(problem);
    return 2;
  }

  std::int64_t mine = 0;
  const std::vector<std::int64_t> pending = pending_members(req, plan, comm, &mine);
  const auto n_pending = static_cast<std::int64_t>(pending.size());
  if (n_pending > 0 && n_pending < mine)
    log("resuming: " + std::to_string(mine - n_pending) + " of " + std::to_string(mine) + " members already finished");

  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int jobs = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(req.jobs, n_pending)));
  // From --jobs, not from the members left: the `threads` attribute of a member file is
  // then the same in every invocation, so a resumed ensemble is byte-identical.
  const int threads = req.threads > 0 ? req.threads : std::max(1, hw / req.jobs);
  const PoolEnd end = run_pending(req, plan, pending, jobs, threads, mine - n_pending, mine);

  int local = 0;
  if (!end.failure.empty()) {
    if (req.error)
      req.error("failed: " + end.failure);
    else
      log("failed: " + end.failure);
    local = 1;
  } else if (end.interrupted) {
    local = 130;
  }
  status = comm.max_over_ranks(local);
  if (status != 0) {
    if (comm.rank() == 0) remove_unresumable(req, plan, created_outdir);
    return status;
  }
  if (comm.rank() == 0) write_ensemble_files(plan, req.outdir);
  return 0;
}

// ---------------------------------------------------------------------------
// Gathering: reading member files
// ---------------------------------------------------------------------------

namespace {

using h5::Hid;

/// What a member's /metrics holds, from member 0.
struct Var {
  enum Kind { Dim, Coord, Metric } kind;
  std::string name, units, long_name;
  std::vector<std::string> dims;  ///< Metric: its fixed dims after tick; Coord: its one dim
  H5T_class_t cls = H5T_FLOAT;
  std::vector<hsize_t> shape;     ///< Metric: (tick, dims...)
  std::size_t cells = 1;          ///< Metric: product of the fixed dims
  std::vector<std::string> text;  ///< Dim, Coord values by type
  std::vector<std::int32_t> ints;
  std::vector<double> reals;
};

template <class T> std::vector<T> read_all(hid_t ds, hid_t mtype, std::size_t expect, const std::string& what) {
  Hid space(H5Dget_space(ds));
  if (static_cast<std::size_t>(H5Sget_simple_extent_npoints(space)) != expect)
    throw std::runtime_error(what + " has " + std::to_string(H5Sget_simple_extent_npoints(space)) +
                             " values, member 0 has " + std::to_string(expect));
  std::vector<T> v(expect);
  h5::check(H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), "H5Dread", what);
  return v;
}

/// The variables of /metrics in creation order, and the tick count.
std::vector<Var> read_layout(const std::string& path, hsize_t* ticks) {
  std::lock_guard<std::mutex> g(hdf5_mutex());
  h5::set_error_printing();
  const h5::FileContext file(path);
  Hid f = h5::own(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), "H5Fopen", path);
  Hid m = h5::own(H5Gopen2(f, "metrics", H5P_DEFAULT), "H5Gopen2", path + ":/metrics");
  std::vector<std::string> names;
  H5Literate(
      m, H5_INDEX_CRT_ORDER, H5_ITER_INC, nullptr,
      [](hid_t, const char* name, const H5L_info_t*, void* out) -> herr_t {
        static_cast<std::vector<std::string>*>(out)->push_back(name);
        return 0;
      },
      &names);
  std::vector<Var> vars;
  for (const std::string& name : names) {
    const std::string what = path + ":/metrics/" + name;
    Hid ds = h5::own(H5Dopen2(m, name.c_str(), H5P_DEFAULT), "H5Dopen2", what);
    const std::vector<hsize_t> shape = h5::shape(ds);
    if (name == "tick") {
      *ticks = shape.at(0);
      continue;
    }
    if (name == "date") continue;
    Var v;
    v.name = name;
    v.units = h5::attr_text(ds, "units");
    v.long_name = h5::attr_text(ds, "long_name");
    Hid type(H5Dget_type(ds));
    v.cls = H5Tget_class(type);
    const bool scale = H5DSis_scale(ds) > 0;
    if (scale || (shape.size() == 1 && h5::scale_name(ds, 0) != "tick")) {
      v.kind = scale ? Var::Dim : Var::Coord;
      if (!scale) v.dims = {h5::scale_name(ds, 0)};
      const std::size_t n = static_cast<std::size_t>(shape.at(0));
      if (v.cls == H5T_STRING)
        v.text = h5::read_strings(ds, what);
      else if (v.cls == H5T_INTEGER)
        v.ints = read_all<std::int32_t>(ds, H5T_NATIVE_INT32, n, what);
      else
        v.reals = read_all<double>(ds, H5T_NATIVE_DOUBLE, n, what);
    } else {
      v.kind = Var::Metric;
      v.shape = shape;
      for (unsigned a = 1; a < shape.size(); ++a) {
        v.dims.push_back(h5::scale_name(ds, a));
        v.cells *= static_cast<std::size_t>(shape[a]);
      }
    }
    vars.push_back(std::move(v));
  }
  return vars;
}

/// Every metric of one member file, in the order of @p vars' metrics.
std::vector<std::vector<double>> read_metrics(const std::string& path, const std::vector<Var>& vars, hsize_t ticks) {
  std::lock_guard<std::mutex> g(hdf5_mutex());
  h5::set_error_printing();
  const h5::FileContext file(path);
  Hid f = h5::own(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), "H5Fopen", path);
  std::vector<std::vector<double>> out;
  for (const Var& v : vars) {
    if (v.kind != Var::Metric) continue;
    const std::string what = path + ":/metrics/" + v.name;
    Hid ds = h5::own(H5Dopen2(f, ("metrics/" + v.name).c_str(), H5P_DEFAULT), "H5Dopen2", what);
    if (h5::shape(ds) != v.shape) throw std::runtime_error(what + " differs in shape from member 0's");
    out.push_back(read_all<double>(ds, H5T_NATIVE_DOUBLE, static_cast<std::size_t>(ticks) * v.cells, what));
  }
  return out;
}

/// Dims and coordinates of the members, in their order, on @p w.
void copy_coordinates(OutputWriter& w, const std::vector<Var>& vars) {
  for (const Var& v : vars) {
    if (v.kind == Var::Dim) {
      if (v.cls == H5T_STRING)
        w.dim(v.name, v.text, v.long_name);
      else if (v.cls == H5T_INTEGER)
        w.dim(v.name, v.ints, v.units, v.long_name);
      else
        w.dim(v.name, v.reals, v.units, v.long_name);
    } else if (v.kind == Var::Coord) {
      if (v.cls == H5T_STRING)
        w.coord(v.name, v.dims[0], v.text, v.units, v.long_name);
      else if (v.cls == H5T_INTEGER)
        w.coord(v.name, v.dims[0], v.ints, v.units, v.long_name);
      else
        w.coord(v.name, v.dims[0], v.reals, v.units, v.long_name);
    }
  }
}

void common_header(OutputWriter& w, const EnsemblePlan& plan, const char* kind) {
  std::string keys;
  for (std::size_t k = 0; k < plan.sweeps.size(); ++k) keys += (k ? "," : "") + plan.sweeps[k].key;
  w.attr("title", std::string("cutoff ") + kind);
  w.attr("kind", kind);
  w.attr("scenario", to_toml(plan.base));
  w.attr("replicates", plan.replicates);
  w.attr("sweep_keys", keys);
  w.attr("schema_version", static_cast<std::int64_t>(kSchemaVersion));
  w.attr("version", kVersion);
  auto joined = [](const std::vector<std::string>& v) {
    std::string t;
    for (std::size_t i = 0; i < v.size(); ++i) t += (i ? "," : "") + v[i];
    return t;
  };
  if (!plan.scenario_labels.empty()) w.attr("scenarios", joined(plan.scenario_labels));
  if (plan.has_design) {
    w.attr("design_keys", joined(plan.design.keys));
    w.attr("design_file", plan.design.file);
    w.attr("design_sha256", plan.design.sha256);
  }
}

/// Point g's indices along the dims before `replicate`: scenario (with --scenarios), then
/// each sweep's or the design point's.
std::vector<std::uint64_t> lead_of(const EnsemblePlan& plan, std::size_t g) {
  std::vector<std::uint64_t> lead;
  if (!plan.scenario_labels.empty()) lead.push_back(g / plan.per_scenario);
  if (plan.has_design) lead.push_back(g % plan.per_scenario);
  lead.insert(lead.end(), plan.point_index[g].begin(), plan.point_index[g].end());
  return lead;
}

/// numpy's linear interpolation between neighbours (numpy.lib.function_base._lerp).
double lerp(double a, double b, double t) {
  const double d = b - a;
  return t >= 0.5 ? b - d * (1 - t) : a + d * t;
}

}  // namespace

const std::vector<std::string>& summary_stats() {
  static const std::vector<std::string> s{"mean", "std", "q05", "q25", "q50", "q75", "q95"};
  return s;
}

void summarise(std::vector<double>& v, double* out) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return std::isnan(x); }), v.end());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::size_t k = v.size();
  double sum = 0;
  for (double x : v) sum += x;
  const double mean = k ? sum / static_cast<double>(k) : nan;
  double ss = 0;
  for (double x : v) ss += (x - mean) * (x - mean);
  out[0] = mean;
  out[1] = k >= 2 ? std::sqrt(ss / static_cast<double>(k - 1)) : nan;
  std::sort(v.begin(), v.end());
  static constexpr double q[5] = {0.05, 0.25, 0.50, 0.75, 0.95};
  for (int j = 0; j < 5; ++j) {
    if (k == 0) {
      out[2 + j] = nan;
      continue;
    }
    const double pos = static_cast<double>(k - 1) * q[j];
    const double lo = std::floor(pos);
    const std::size_t i = static_cast<std::size_t>(lo), i1 = std::min(i + 1, k - 1);
    out[2 + j] = lerp(v[i], v[i1], pos - lo);
  }
}

namespace {

/// The dims before `replicate`, on every writer of @p both: scenario (with --scenarios),
/// each sweep's key, or the design's point with its columns. Returns their names.
std::vector<std::string> write_lead_dims(const EnsemblePlan& plan, const std::vector<OutputWriter*>& both) {
  std::vector<std::string> keys;
  if (!plan.scenario_labels.empty()) {
    keys.emplace_back("scenario");
    for (OutputWriter* w : both)
      w->dim("scenario", plan.scenario_labels, "scenario (its file's stem, in --scenarios order)");
  }
  for (const Sweep& s : plan.sweeps) {
    keys.push_back(s.key);
    for (OutputWriter* w : both) w->dim(s.key, s.values, unit_of(s.key), "swept parameter " + s.key);
  }
  if (plan.has_design) {
    keys.emplace_back("point");
    const Design& d = plan.design;
    std::vector<std::int64_t> index(d.rows());
    for (std::size_t p = 0; p < index.size(); ++p) index[p] = static_cast<std::int64_t>(p);
    for (OutputWriter* w : both) {
      w->dim("point", index, "1", "design point (data row of the design file, from 0)");
      for (std::size_t c = 0; c < d.keys.size(); ++c) {
        std::vector<double> column(d.rows());
        for (std::size_t p = 0; p < column.size(); ++p) column[p] = d.values[p][c];
        const std::string unit = unit_of(d.keys[c]);  // booleans have none in the schema: 1, as CF writes it
        w->coord(d.keys[c], "point", column, unit.empty() ? "1" : unit, "design column " + d.keys[c]);
      }
    }
  }
  return keys;
}

/// The gathered metrics' arrays: in ensemble.h5 and, with 2+ replicates, summary.h5.
struct MetricArrays {
  std::vector<int> ens_ids, sum_ids;
  std::vector<const Var*> metrics;
};

/// Each metric of @p vars over (@p member_dims, tick, its dims) in @p ens, and over
/// (stat, @p keys, tick, its dims) in @p summary where there is one.
MetricArrays declare_metrics(const std::vector<Var>& vars, const std::vector<std::string>& member_dims,
                             const std::vector<std::string>& keys, OutputWriter& ens, OutputWriter* summary) {
  MetricArrays a;
  for (const Var& v : vars) {
    if (v.kind != Var::Metric) continue;
    std::vector<std::string> d = member_dims;
    d.push_back("tick");
    d.insert(d.end(), v.dims.begin(), v.dims.end());
    a.ens_ids.push_back(ens.array(v.name, d, v.units, v.long_name));
    std::vector<std::string> s{"stat"};
    s.insert(s.end(), keys.begin(), keys.end());
    s.push_back("tick");
    s.insert(s.end(), v.dims.begin(), v.dims.end());
    if (summary) a.sum_ids.push_back(summary->array(v.name, s, v.units, v.long_name));
    a.metrics.push_back(&v);
  }
  return a;
}

/// Point p's members, read from their files, into @p ens; and where there is a summary,
/// their statistics over replicates into it.
void gather_point(const EnsemblePlan& plan, const std::string& outdir, std::size_t p, const std::vector<Var>& vars,
                  hsize_t ticks, const MetricArrays& a, OutputWriter& ens, OutputWriter* summary) {
  const std::size_t N = static_cast<std::size_t>(plan.replicates);
  const std::size_t S = summary_stats().size();
  const std::vector<std::uint64_t> at = lead_of(plan, p);
  std::vector<std::vector<std::vector<double>>> rep_data(N);  // [replicate][metric][tick·cells]
  for (std::size_t r = 0; r < N; ++r) {
    const std::int64_t m = static_cast<std::int64_t>(p * N + r);
    rep_data[r] = read_metrics(member_path(outdir, m), vars, ticks);
    std::vector<std::uint64_t> lead = at;
    lead.push_back(r);
    for (std::size_t k = 0; k < a.metrics.size(); ++k) ens.write_block(a.ens_ids[k], lead, rep_data[r][k].data());
  }
  for (std::size_t k = 0; summary && k < a.metrics.size(); ++k) {
    const std::size_t n = static_cast<std::size_t>(ticks) * a.metrics[k]->cells;
    std::vector<double> stats(S * n), cell(N), out(S);
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t r = 0; r < N; ++r) cell[r] = rep_data[r][k][i];
      summarise(cell, out.data());
      cell.resize(N);
      for (std::size_t s = 0; s < S; ++s) stats[s * n + i] = out[s];
    }
    for (std::size_t s = 0; s < S; ++s) {
      std::vector<std::uint64_t> lead{s};
      lead.insert(lead.end(), at.begin(), at.end());
      summary->write_block(a.sum_ids[k], lead, stats.data() + s * n);
    }
  }
}

}  // namespace

void write_ensemble_files(const EnsemblePlan& plan, const std::string& outdir) {
  const std::size_t N = static_cast<std::size_t>(plan.replicates);
  hsize_t ticks = 0;
  const std::vector<Var> vars = read_layout(member_path(outdir, 0), &ticks);
  if (ticks == 0) throw std::runtime_error(member_path(outdir, 0) + " has no ticks");

  OutputWriter ens((fs::path(outdir) / "ensemble.h5").string());
  // Statistics over replicates need two of them: one replicate has no summary.h5 (a
  // 1,000-point design would otherwise write seven copies of its ensemble.h5).
  std::unique_ptr<OutputWriter> summary;
  if (N >= 2) summary = std::make_unique<OutputWriter>((fs::path(outdir) / "summary.h5").string());
  std::vector<OutputWriter*> both{&ens};
  if (summary) both.push_back(summary.get());
  common_header(ens, plan, "ensemble");
  if (summary) {
    common_header(*summary, plan, "summary");
    summary->dim("stat", summary_stats(),
                 "statistic over replicates (std: ddof 1; qNN: linear interpolation; NaN skipped)");
  }
  const std::vector<std::string> keys = write_lead_dims(plan, both);
  std::vector<std::int32_t> reps(N);
  for (std::size_t r = 0; r < N; ++r) reps[r] = static_cast<std::int32_t>(r);
  ens.dim("replicate", reps, "1", "replicate index (keys the random numbers with the seed)");
  for (OutputWriter* w : both) {
    copy_coordinates(*w, vars);
    for (hsize_t t = 0; t < ticks; ++t) w->end_tick(static_cast<int>(t));
  }

  std::vector<std::string> member_dims = keys;
  member_dims.push_back("replicate");
  const int member_id = ens.array("member", member_dims, "1", "member index (file members/m<index>.h5)", DType::I64);
  std::vector<std::int64_t> members(static_cast<std::size_t>(plan.members()));
  for (std::size_t m = 0; m < members.size(); ++m) members[m] = static_cast<std::int64_t>(m);
  ens.write_block(member_id, {}, members.data());

  const MetricArrays arrays = declare_metrics(vars, member_dims, keys, ens, summary.get());
  for (std::size_t p = 0; p < plan.points.size(); ++p)
    gather_point(plan, outdir, p, vars, ticks, arrays, ens, summary.get());
  ens.commit();
  if (summary) summary->commit();
}

}  // namespace cutoff
