#pragma once
/// @file
/// Monte Carlo ensembles (docs/ensembles.md): members = (scenario, sweep or design point,
/// replicate), each exactly the run `cutoff run <scenario> --set <point's keys> --replicate R`
/// writes (member R of every scenario shares its random draws: common random numbers), run
/// concurrently (--jobs) and over MPI ranks, resumable (a member is finished only when
/// its completeness record's SHA-256 matches its file), gathered by rank 0 into
/// OUTDIR/ensemble.h5 and OUTDIR/summary.h5.

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/app/design.hpp"
#include "core/model/params.hpp"

namespace cutoff {

class Comm;

/// One `--sweep key=v1,v2,...` or `--sweep key=lo:hi:n`.
struct Sweep {
  std::string key;
  std::vector<double> values;      ///< the coordinate
  std::vector<std::string> texts;  ///< what each member passes to --set (the TOML value)
};

/// Parses a --sweep argument. Throws InputError naming --sweep, the text and what is allowed.
Sweep parse_sweep(const std::string& spec);

struct EnsembleRequest {
  std::string scenario, outdir, command_line, backend = "cpu";
  std::vector<std::string> scenarios;  ///< --scenarios (instead of `scenario`): run on common random numbers
  std::string design;                  ///< --design FILE.csv (instead of sweeps)
  std::vector<std::string> sets;       ///< base overrides (--set, then --firms etc. as `cutoff run` orders them)
  std::vector<Sweep> sweeps;
  std::int64_t replicates = 1;
  int jobs = 1;
  int threads = 0;  ///< per member; 0: max(1, cores / jobs)
  std::uint64_t max_memory = 0;
  std::function<void(std::int64_t done, std::int64_t total)> on_member;  ///< this rank's members
  std::function<void(const std::string&)> log;
  std::function<void(const std::string&)> error;  ///< a member's failure (shown even when quiet); else log
  const std::atomic<int>* stop_signal = nullptr;
};

/// Every member's parameters, resolved and checked before anything runs. Points are
/// numbered g = s·P + p: scenario s (0 without --scenarios), then sweep or design point p.
struct EnsemblePlan {
  Params base;                               ///< the (first) scenario with the base overrides
  std::vector<std::string> scenario_files;   ///< the scenario, or each of --scenarios
  std::vector<std::string> scenario_labels;  ///< --scenarios only: each file's stem
  std::vector<Sweep> sweeps;
  bool has_design = false;
  Design design;  ///< --design only
  std::int64_t replicates = 1;
  std::size_t per_scenario = 1;  ///< P: sweep or design points of one scenario
  std::vector<Params> points;    ///< g = s·P + p; p row-major over the sweeps, the last fastest, or the design's row
  std::vector<std::vector<std::size_t>> point_index;  ///< each point's index along each sweep
  std::vector<std::vector<std::string>> point_sets;   ///< each point's --set list (base, then sweeps or design row)
  std::vector<std::string> warnings;  ///< every point's size_warnings() (run.hpp), each once, naming its point
  std::int64_t members() const { return static_cast<std::int64_t>(points.size()) * replicates; }
  /// Text that identifies the ensemble (OUTDIR/ensemble.plan): a resumed run must match it.
  std::string fingerprint;
};

/// Resolves and validates every sweep point (InputError naming the --sweep, key and value).
EnsemblePlan plan_ensemble(const EnsembleRequest& req);

/// members/m000123.h5 under @p outdir.
std::string member_path(const std::string& outdir, std::int64_t member);

/// Whether @p member's file is finished: its completeness record exists and holds the
/// SHA-256 of the file as it is now.
bool member_finished(const std::string& outdir, std::int64_t member);

/// Runs this rank's missing members, then (rank 0, when every rank succeeded) writes
/// ensemble.h5 and summary.h5. Returns the exit status: 0, 1 (a member failed, message
/// logged), 130 (interrupted). Throws InputError before anything runs.
int run_ensemble(const EnsembleRequest& req, const Comm& comm);

/// Names of summary.h5's `stat` coordinate: mean, std, q05, q25, q50, q75, q95.
const std::vector<std::string>& summary_stats();
/// The statistics of summary_stats() over one cell's replicates, NaN replicates skipped
/// (all NaN: NaN; std needs two): sequential mean, std with ddof 1, quantiles by numpy's
/// default linear rule. @param[in,out] v the replicates' values (reordered)
/// @param[out] out length summary_stats().size()
void summarise(std::vector<double>& v, double* out);

/// Gathers the finished members of @p plan under @p outdir into ensemble.h5 and summary.h5.
void write_ensemble_files(const EnsemblePlan& plan, const std::string& outdir);

}  // namespace cutoff
