#include "core/app/cli.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <sstream>

#include "core/app/backend.hpp"
#include "core/app/comm.hpp"
#include "core/app/ensemble.hpp"
#include "core/app/info.hpp"
#include "core/app/memory.hpp"
#include "core/app/run.hpp"
#include "core/io/hdf5.hpp"
#include "core/model/params.hpp"
#include "core/model/scenario.hpp"
#include "core/sim/simulation.hpp"
#include "cutoff_version.hpp"

namespace cutoff {
namespace {

std::atomic<int> g_signal{0};  // the one process-wide flag: a signal handler can only reach globals
extern "C" void on_signal(int sig) { g_signal.store(sig); }

/// A progress line on a terminal: tick, agent-updates per second, ETA.
class Progress {
 public:
  Progress(bool enabled, int ticks, double agents) : on_(enabled), ticks_(ticks), agents_(agents) {}
  void update(int done) {
    if (!on_) return;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double rate = s > 0 ? done * agents_ / s : 0;
    const double eta = done > 0 ? s / done * (ticks_ - done) : 0;
    std::fprintf(stderr, "\rtick %d/%d  %.3g agent-updates/s  ETA %02d:%02d:%02d ", done, ticks_, rate,
                 static_cast<int>(eta) / 3600, static_cast<int>(eta) / 60 % 60, static_cast<int>(eta) % 60);
    std::fflush(stderr);
  }
  void finish() {
    if (on_) std::fputc('\n', stderr);
  }

 private:
  bool on_;
  int ticks_;
  double agents_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

/// A progress line on a terminal for ensembles: members done/total, members per hour, ETA.
class MemberProgress {
 public:
  explicit MemberProgress(bool enabled) : on_(enabled) {}
  void update(std::int64_t done, std::int64_t total) {
    if (first_ < 0) first_ = done;  // members finished by an earlier invocation
    last_ = done;
    if (!on_) return;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double fresh = static_cast<double>(done - first_);
    const double per_hour = s > 0 ? fresh * 3600 / s : 0;
    const double eta = fresh > 0 ? s / fresh * static_cast<double>(total - done) : 0;
    std::fprintf(stderr, "\rmembers %lld/%lld  %.3g members/h  ETA %02d:%02d:%02d ", static_cast<long long>(done),
                 static_cast<long long>(total), per_hour, static_cast<int>(eta) / 3600, static_cast<int>(eta) / 60 % 60,
                 static_cast<int>(eta) % 60);
    std::fflush(stderr);
  }
  void finish() {
    if (on_) std::fputc('\n', stderr);
  }
  /// "N members in S s: X members per hour" for this invocation's members.
  std::string summary() const {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const std::int64_t n = last_ - std::max<std::int64_t>(first_, 0);
    char buf[128];
    std::snprintf(buf, sizeof buf, "%lld members in %.1f s: %.3g members per hour", static_cast<long long>(n), s,
                  s > 0 ? static_cast<double>(n) * 3600 / s : 0.0);
    return buf;
  }

 private:
  bool on_;
  std::int64_t first_ = -1, last_ = 0;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

/// Every integer flag reads its value as `--set` reads an integer key (parse_integer(),
/// issue 37): `--firms 1e5` is 100000, `--firms 2.5` is refused saying integers only.
CLI::Validator integer_text() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        const auto v = parse_integer(s);
        if (!v) return std::string(integer_rule()) + ", got '" + s + "'";
        s = std::to_string(*v);
        return "";
      },
      "");
}

/// Closes HDF5 when the command returns, on every path (hdf5.hpp: stop_library()).
struct Hdf5Library {
  explicit Hdf5Library(bool verbose) { h5::start_library(verbose); }
  ~Hdf5Library() { h5::stop_library(); }
  Hdf5Library(const Hdf5Library&) = delete;
  Hdf5Library& operator=(const Hdf5Library&) = delete;
};

struct RunFlags {
  std::string scenario, out, backend = "auto", max_memory;
  std::vector<std::string> sets;
  std::int64_t firms = -1, users = -1, ticks = -1, seed = -1, replicate = 0, snapshot_every = 0, checkpoint_every = 0;
  int threads = 0;
  bool quiet = false;
  RunCounts counts() const { return {firms, users, ticks, seed}; }
};

/// The scenario with the command-line overrides applied, in flag order after --set.
Params resolve(const std::string& scenario, std::vector<std::string> sets, const RunFlags* f,
               std::vector<std::string>* files = nullptr) {
  if (f)
    for (std::string& s : count_sets(f->counts())) sets.push_back(std::move(s));
  return load_scenario(scenario, sets, "--set", files);
}

int cmd_run(const RunFlags& f, const std::string& command_line) {
  RunRequest req;
  req.params = resolve(f.scenario, f.sets, &f, &req.inputs);
  req.scenario_file = f.scenario;
  req.out = f.out;
  req.options.replicate = static_cast<std::uint32_t>(f.replicate);
  req.options.threads = f.threads;
  req.options.backend = choose_backend(f.backend, f.quiet);
  req.snapshot_every = static_cast<int>(f.snapshot_every);
  req.checkpoint_every = static_cast<int>(f.checkpoint_every);
  req.max_memory = f.max_memory.empty() ? 0 : parse_bytes(f.max_memory, "--max-memory");
  req.command_line = command_line;
  req.stop_signal = &g_signal;

  const bool tty = !f.quiet && isatty(STDERR_FILENO);
  Progress progress(tty, static_cast<int>(req.params.horizon),
                    static_cast<double>(req.params.n_firms + req.params.n_users));
  req.on_tick = [&](int done) { progress.update(done); };
  req.log = [&](const std::string& line) {
    if (!f.quiet) std::cerr << "cutoff: " << line << '\n';
  };
  run_to_file(req);
  progress.finish();
  return 0;
}

struct EnsembleFlags {
  RunFlags run;
  std::string scenarios, design;
  std::vector<std::string> sweeps;
  std::int64_t replicates = 1;
  int jobs = 1;
};

int cmd_ensemble(const EnsembleFlags& f, const std::string& command_line, int* argc, char*** argv) {
  if (f.run.scenario.empty() == f.scenarios.empty())
    throw InputError(f.scenarios.empty() ? "ensemble: a SCENARIO or --scenarios a.toml,b.toml,... is required"
                                         : "ensemble: a SCENARIO ('" + f.run.scenario + "') and --scenarios '" +
                                               f.scenarios + "' given; allowed: one of them");
  Comm comm(argc, argv);
  EnsembleRequest req;
  req.scenario = f.run.scenario;
  if (!f.scenarios.empty()) {
    std::stringstream list(f.scenarios);
    for (std::string item; std::getline(list, item, ',');) {
      item.erase(0, item.find_first_not_of(" \t"));
      item.erase(item.find_last_not_of(" \t") + 1);
      req.scenarios.push_back(item);
    }
    if (f.scenarios.back() == ',') req.scenarios.emplace_back();  // named as an empty entry
  }
  req.design = f.design;
  req.outdir = f.run.out;
  req.command_line = command_line;
  // The same overrides, in the same order, as `cutoff run` applies them.
  std::vector<std::string> sets = f.run.sets;
  for (std::string& s : count_sets(f.run.counts())) sets.push_back(std::move(s));
  req.sets = sets;
  for (const std::string& s : f.sweeps) req.sweeps.push_back(parse_sweep(s));
  req.replicates = f.replicates;
  req.jobs = f.jobs;
  req.threads = f.run.threads;
  req.backend = choose_backend(f.run.backend, f.run.quiet || comm.rank() != 0).name;
  req.max_memory = f.run.max_memory.empty() ? 0 : parse_bytes(f.run.max_memory, "--max-memory");
  req.stop_signal = &g_signal;
  const bool tty = !f.run.quiet && comm.rank() == 0 && isatty(STDERR_FILENO);
  MemberProgress progress(tty);
  std::mutex progress_mu;
  req.on_member = [&](std::int64_t done, std::int64_t total) {
    std::lock_guard<std::mutex> lk(progress_mu);
    progress.update(done, total);
  };
  const int rank = comm.rank();
  req.log = [&f, rank](const std::string& line) {
    if (!f.run.quiet) std::cerr << "cutoff: " << (rank ? "rank " + std::to_string(rank) + ": " : "") << line << '\n';
  };
  // One process: the member's failure is the command's one line (issue 37). Several
  // ranks: each prints its own, and "see above" must hold under --quiet too.
  std::string failure;
  const bool single = comm.size() == 1;
  req.error = [rank, single, &failure](const std::string& line) {
    if (single) {
      failure = line.rfind("failed: ", 0) == 0 ? line.substr(8) : line;
      return;
    }
    std::cerr << "cutoff: " << (rank ? "rank " + std::to_string(rank) + ": " : "") << line << '\n';
  };
  const int status = run_ensemble(req, comm);
  progress.finish();
  if (status == 0 && comm.rank() == 0)
    req.log("ran " + progress.summary() + (comm.size() > 1 ? " on rank 0" : "") + "; wrote " + req.outdir +
            "/ensemble.h5" + (req.replicates >= 2 ? " and summary.h5" : " (one replicate: no summary.h5)"));
  if (status == 130) throw Interrupted("interrupted; finished members are kept, the same command resumes");
  if (status == 1)
    throw std::runtime_error(failure.empty() ? "a member failed (see above); the same command resumes"
                                             : failure + "; the same command resumes");
  return status;
}

struct ValidateFlags {
  std::string scenario;
  std::vector<std::string> sets;
  bool doc = false, doc_metrics = false, print = false;
};

int cmd_validate(const ValidateFlags& f) {
  if (f.doc) {
    write_parameters_doc(std::cout);
    return 0;
  }
  if (f.doc_metrics) {
    write_metrics_doc(std::cout);
    return 0;
  }
  if (f.scenario.empty()) {
    std::cerr << "cutoff: error: validate: a SCENARIO is required (or --doc-params, --doc-metrics)\n";
    return 2;
  }
  const Params p = resolve(f.scenario, f.sets, nullptr);
  const std::string summary = check_scenario(p);
  if (f.print)
    std::cout << to_toml(p);
  else
    std::cout << f.scenario << ": ok; " << summary << '\n';
  return 0;
}

const char* const kVerboseHelp = "On a failure, also print the HDF5 library's own error stack";

/// `cutoff run` and its flags, into @p rf (--verbose into @p verbose).
CLI::App* add_run_command(CLI::App& app, RunFlags& rf, bool& verbose) {
  CLI::App* run = app.add_subcommand("run", "Run one scenario and write its HDF5 output");
  run->add_option("scenario", rf.scenario, "Scenario TOML file (e.g. data/scenarios/baseline.toml)")->required();
  run->add_option("-o,--out", rf.out, "Output file; written as OUT.part and renamed on success")->required();
  run->add_option("--firms", rf.firms, "Firm agents (scenario key n_firms)")
      ->transform(integer_text())
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 40));
  run->add_option("--users", rf.users, "User agents (scenario key n_users)")
      ->transform(integer_text())
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 40));
  run->add_option("--ticks", rf.ticks, "Ticks (months) to run (scenario key horizon)")
      ->transform(integer_text())
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{100000}));
  run->add_option("--seed", rf.seed, "Random seed, 0 to 2^32-1 (scenario key seed)")
      ->transform(integer_text())
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{4294967295}));
  run->add_option("--replicate", rf.replicate, "Replicate index, 0 to 2^32-1 (keys the random numbers with the seed)")
      ->transform(integer_text())
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{4294967295}));
  run->add_option("--snapshot-every", rf.snapshot_every, "Write every agent field each K ticks (0: never)")
      ->transform(integer_text())
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{100000}));
  run->add_option("--checkpoint-every", rf.checkpoint_every,
                  "Save OUT.checkpoint each K ticks; the same command resumes from it (0: never)")
      ->transform(integer_text())
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{100000}));
  run->add_option("--threads", rf.threads, "OpenMP threads (0: all cores)")
      ->transform(integer_text())
      ->check(CLI::Range(0, 4096));
  run->add_option("--backend", rf.backend, "auto (the GPU when usable, else the CPU), cpu or cuda")
      ->check(CLI::IsMember(backend_names()));
  run->add_option("--max-memory", rf.max_memory, "Refuse to run above this many bytes (e.g. 8G)");
  run->add_option("--set", rf.sets, "Override a scenario key: key=value (TOML value), repeatable");
  run->add_flag("-q,--quiet", rf.quiet, "No progress line or messages on stderr");
  run->add_flag("--verbose", verbose, kVerboseHelp);
  return run;
}

/// `cutoff ensemble` and its flags, into @p ef (--verbose into @p verbose).
CLI::App* add_ensemble_command(CLI::App& app, EnsembleFlags& ef, bool& verbose) {
  CLI::App* ens = app.add_subcommand(
      "ensemble", "Run replicates, sweeps or a design of one scenario or several, paired (docs/ensembles.md)");
  ens->add_option("scenario", ef.run.scenario, "Scenario TOML file (or --scenarios)");
  ens->add_option("-o,--out", ef.run.out, "Output directory (members/, ensemble.h5, summary.h5 with 2+ replicates)")
      ->required();
  ens->add_option("--replicates", ef.replicates, "Replicates per point of each scenario (replicate indices 0..N-1)")
      ->required()
      ->transform(integer_text())
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{4294967295}));
  ens->add_option("--sweep", ef.sweeps,
                  "key=v1,v2,... or key=lo:hi:n (inclusive); repeatable, the last varies fastest");
  ens->add_option("--scenarios", ef.scenarios,
                  "a.toml,b.toml,...: instead of SCENARIO, run every scenario on the same seeds and replicates "
                  "(common random numbers); a dim `scenario` labelled by the files' stems");
  ens->add_option("--design", ef.design,
                  "FILE.csv: a header row of scenario keys, one row of numbers per point (booleans 0/1/true/false); "
                  "runs every row x replicates, a dim `point`; not with --sweep");
  ens->add_option("--firms", ef.run.firms, "Firm agents (scenario key n_firms)")
      ->transform(integer_text())
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 40));
  ens->add_option("--users", ef.run.users, "User agents (scenario key n_users)")
      ->transform(integer_text())
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 40));
  ens->add_option("--ticks", ef.run.ticks, "Ticks (months) to run (scenario key horizon)")
      ->transform(integer_text())
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{100000}));
  ens->add_option("--seed", ef.run.seed, "Random seed, 0 to 2^32-1 (scenario key seed)")
      ->transform(integer_text())
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{4294967295}));
  ens->add_option("--jobs", ef.jobs, "Members run at once in this process (each with its own threads)")
      ->transform(integer_text())
      ->check(CLI::Range(1, 4096));
  ens->add_option("--threads", ef.run.threads, "OpenMP threads per member (0: cores / jobs)")
      ->transform(integer_text())
      ->check(CLI::Range(0, 4096));
  ens->add_option("--backend", ef.run.backend, "auto (the GPU when usable, else the CPU), cpu or cuda; every member")
      ->check(CLI::IsMember(backend_names()));
  ens->add_option("--max-memory", ef.run.max_memory,
                  "Refuse to run above this many bytes (all jobs together, e.g. 8G)");
  ens->add_option("--set", ef.run.sets,
                  "Override a scenario key of every member (every scenario): key=value, repeatable");
  ens->add_flag("-q,--quiet", ef.run.quiet, "No progress line or messages on stderr");
  ens->add_flag("--verbose", verbose, kVerboseHelp);
  return ens;
}

/// `cutoff validate` and its flags, into @p vf.
CLI::App* add_validate_command(CLI::App& app, ValidateFlags& vf) {
  CLI::App* validate = app.add_subcommand("validate", "Check a scenario without running it");
  validate->add_option("scenario", vf.scenario, "Scenario TOML file");
  validate->add_option("--set", vf.sets, "Override a scenario key: key=value (TOML value), repeatable");
  validate->add_flag("--print", vf.print, "Print the fully resolved scenario as TOML");
  validate->add_flag("--doc-params", vf.doc, "Print docs/parameters.md (every parameter, from the schema)");
  validate->add_flag("--doc-metrics", vf.doc_metrics, "Print docs/metrics.md (every metric, from its declaration)");
  return validate;
}

/// A parse that failed on anything but --help or --version: one line, exit 2.
int parse_failure(const CLI::ParseError& e, int argc, char** argv) {
  if (argc > 1 && argv[1][0] != '-' && std::string(argv[1]) != "run" && std::string(argv[1]) != "validate" &&
      std::string(argv[1]) != "ensemble" && std::string(argv[1]) != "info") {
    std::cerr << "cutoff: error: unknown command '" << argv[1]
              << "'; allowed: run, ensemble, validate, info (see cutoff --help)\n";
    return 2;
  }
  std::cerr << "cutoff: error: " << e.what() << " (see cutoff --help)\n";
  return 2;
}

}  // namespace

int cli_main(int argc, char** argv) {
  CLI::App app{"cutoff: an agent-based model of geopolitical access to frontier AI (version " + std::string(kVersion) +
               ")"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(kVersion) + " (" + kGitCommit + ")");
  bool verbose = false;
  RunFlags rf;
  CLI::App* run = add_run_command(app, rf, verbose);
  EnsembleFlags ef;
  CLI::App* ens = add_ensemble_command(app, ef, verbose);
  ValidateFlags vf;
  CLI::App* validate = add_validate_command(app, vf);
  std::string i_file;
  CLI::App* info = app.add_subcommand("info", "Describe a cutoff output file");
  info->add_option("file", i_file, "Output .h5 file")->required();
  info->add_flag("--verbose", verbose, kVerboseHelp);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return parse_failure(e, argc, argv);
  }

  std::string command_line;
  for (int k = 0; k < argc; ++k) command_line += (k ? " " : "") + std::string(argv[k]);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  const Hdf5Library hdf5(verbose);
  try {
    if (*run) return cmd_run(rf, command_line);
    if (*ens) return cmd_ensemble(ef, command_line, &argc, &argv);
    if (*validate) return cmd_validate(vf);
    if (*info) {
      std::cout << describe_output(i_file, &g_signal);
      return 0;
    }
  } catch (const InputError& e) {
    std::cerr << "cutoff: error: " << e.what() << '\n';
    return 2;
  } catch (const Interrupted& e) {
    std::cerr << "\ncutoff: " << e.what() << '\n';
    return 130;
  } catch (const FileError& e) {  // a file that failed while running (hdf5.hpp: the one translator)
    std::cerr << "\ncutoff: failed: " << e.what() << '\n';
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "\ncutoff: failed: " << e.what() << '\n';
    return 1;
  }
  return 0;
}

void write_parameters_doc(std::ostream& os) {
  os << "# Parameters\n\n"
        "<!-- Generated by `cutoff validate --doc-params` from the schema in core/model/params.cpp; "
        "do not edit by hand. -->\n\n"
     << schema_markdown()
     << "\n## Overrides\n\n"
        "On the command line, `--set key=value` (repeatable, on `run`, `ensemble`, `validate` "
        "and `cutoff_bench tick`) overrides a key after all files, and `--set "
        "provider.N.field=value` one field of provider N; errors in them name `--set`.\n";
}

void write_metrics_doc(std::ostream& os) {
  os << "# Metrics\n\n"
        "<!-- Generated by `cutoff validate --doc-metrics` from the declarations in core/sim/simulation.cpp "
        "(Simulation::metric_decls); do not edit by hand. -->\n\n"
        "Every metric is written each tick to `/metrics/<name>(tick, dimensions…)` of a run's output, with "
        "its units and meaning as the attributes `units` and `long_name` (docs/model.md §7). An ensemble "
        "gathers each one with a leading `replicate` dimension (and the swept keys).\n\n"
        "| metric | dimensions | units | meaning |\n|---|---|---|---|\n";
  for (const Simulation::MetricDecl& m : Simulation::metric_decls()) {
    std::string dims = "tick";
    for (const std::string& d : m.spec.dims) dims += ", " + d;
    os << "| `" << m.spec.name << "` | " << dims << " | " << m.spec.units << " | " << m.spec.long_name << " |\n";
  }
}

}  // namespace cutoff
