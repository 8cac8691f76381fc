#pragma once
/// @file
/// One run from parameters to a finished HDF5 file: memory check, initial
/// state, tick loop, metrics each tick, snapshots through the background writer.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/io/checkpoint.hpp"
#include "core/model/params.hpp"
#include "core/sim/simulation.hpp"

namespace cutoff {

class OutputWriter;

/// Thrown when SIGINT or SIGTERM stops a run (the .part file is removed).
class Interrupted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The counts a run may set apart from the scenario (`cutoff run --firms ...`, the Python
/// API's `firms=`): each, when given (>= 0), is one override after the others.
struct RunCounts {
  std::int64_t firms = -1, users = -1, ticks = -1, seed = -1;
};

/// The overrides of @p counts, in the order `run`, `ensemble` and the Python API apply them
/// after their own: n_firms, n_users, horizon, seed.
std::vector<std::string> count_sets(const RunCounts& counts);

struct RunRequest {
  Params params;
  RunOptions options;
  std::string scenario_file;  ///< for provenance, and an input the output must not replace
  /// Other files the run reads (inherited scenarios): the output must not replace one.
  std::vector<std::string> inputs;
  std::string out;  ///< final output path
  /// What errors about `out` name as its origin: the command line's flag, or the Python
  /// API's argument (docs/conventions.md 12: the caller adds the origin).
  std::string out_origin = "-o/--out";
  std::string command_line;  ///< for provenance only
  int snapshot_every = 0;    ///< 0: no snapshots
  /// > 0: save `out + ".checkpoint"` every K ticks and resume from it when present
  /// (core/io/checkpoint.hpp); removed once the output is committed.
  int checkpoint_every = 0;
  /// Keep every tick's metric rows (write_run's @p rows) even without checkpoints: the Python
  /// API reads them again after save(). Off, a run holds only the current tick's.
  bool keep_rows = false;
  std::uint64_t max_memory = 0;                   ///< --max-memory; 0: none
  std::uint64_t snapshot_in_flight = 1ull << 30;  ///< bytes the writer may hold
  std::function<void(int ticks_done)> on_tick;
  /// Adds root attributes after the run's own header (ensembles: member, sweep values).
  std::function<void(OutputWriter&)> extra_header;
  std::function<void(const std::string&)> log;
  const std::atomic<int>* stop_signal = nullptr;  ///< non-zero: stop
};

/// The checkpoint file of a run writing @p out.
std::string checkpoint_path(const std::string& out);

/// Runs and writes req.out. Throws InputError (bad input, not enough memory;
/// nothing written), Interrupted, or another exception on failure; in every
/// failure no file is left under req.out or req.out + ".part".
void run_to_file(const RunRequest& req);

/// The simulation of @p req: the memory check (with @p snapshot_in_flight bytes of
/// snapshot buffers), the country table, the initial state; its warnings go to req.log.
/// Throws InputError (nothing allocated for agents) or another exception.
std::unique_ptr<Simulation> start_run(const RunRequest& req, std::uint64_t snapshot_in_flight);

/// Appends this tick's metrics @p m to @p rows (one row per metric, as write_run reads them).
void append_rows(MetricRows& rows, const Metrics& m);

/// Writes req.out for @p sim, a simulation made by start_run(req) that has run sim.tick()
/// ticks already, whose metrics are @p rows (one per metric, sim.tick() ticks of values each):
/// the header, those rows, then the ticks it runs on to @p until (-1: the horizon, as `cutoff
/// run` does; the Python API also writes where it stands), appending their rows to @p rows
/// where checkpoints or req.keep_rows need them.
/// The one path to an output file: run_to_file (also on resuming from a checkpoint) and the
/// Python API's save() go through it. Throws as run_to_file; on failure nothing is left
/// under req.out or its `.part`.
void write_run(const RunRequest& req, Simulation& sim, MetricRows& rows, int until = -1);

/// The fewest firm agents at which the baseline's figures were measured to agree with
/// twice as many (docs/model.md "Convergence with the agent count, with a control"):
/// below it, who is cut off in tier 2 depends on the agent count beyond the noise.
/// `run`, `ensemble` and `validate` warn below it; the tests and peers run smaller on
/// purpose.
inline constexpr std::int64_t kConvergedFirms = 100000;

/// The warnings of a run before it starts: the layout's (the large stratum shrunk to fit)
/// and, below kConvergedFirms firm agents, that its results depend on the agent count.
std::vector<std::string> size_warnings(const Params& p, const Layout& L);

/// Checks what a run would check before allocating (country table, layout,
/// providers); returns a one-line summary (with size_warnings(), which also go to
/// @p warnings when given). Throws InputError.
std::string check_scenario(const Params& p, std::vector<std::string>* warnings = nullptr);

/// The memory check of run_to_file: InputError naming the counts, the bytes
/// needed and the bytes available when the run does not fit.
void check_memory(const Params& p, std::uint64_t snapshot_in_flight, std::uint64_t max_memory);

}  // namespace cutoff
