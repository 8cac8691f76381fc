#pragma once
/// @file
/// One run from parameters to a finished HDF5 file: memory check, initial
/// state, tick loop, metrics each tick, snapshots through the background writer.

#include <atomic>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/model/params.hpp"
#include "core/sim/simulation.hpp"

namespace cutoff {

class OutputWriter;

/// Thrown when SIGINT or SIGTERM stops a run (the .part file is removed).
class Interrupted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct RunRequest {
  Params params;
  RunOptions options;
  std::string scenario_file;  ///< for provenance, and an input the output must not replace
  /// Other files the run reads (inherited scenarios): the output must not replace one.
  std::vector<std::string> inputs;
  std::string out;           ///< final output path
  std::string command_line;  ///< for provenance only
  int snapshot_every = 0;    ///< 0: no snapshots
  /// > 0: save `out + ".checkpoint"` every K ticks and resume from it when present
  /// (core/io/checkpoint.hpp); removed once the output is committed.
  int checkpoint_every = 0;
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
