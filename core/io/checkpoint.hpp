#pragma once
/// @file
/// Checkpoints of a single run (`cutoff run ... --checkpoint-every K`): everything a
/// Simulation carries from one tick to the next (the registries' State fields, the
/// providers and generations, the countries' lagged aggregates and policies, the tick)
/// plus the metric rows written so far, so that a resumed run rewrites its output from
/// the start and ends byte-identical to an uninterrupted one. Random numbers are
/// counter-based and recomputed, never stored; Scratch fields are recomputed each tick.
///
/// File: a header (magic, format, program version and commit, SHA-256 of the resolved
/// scenario TOML, seed, replicate, n_firms, n_users, tick, payload size and SHA-256),
/// then the payload. Written to PATH.tmp, fsynced and renamed over PATH. A checkpoint
/// whose identity differs from the run's, or whose payload does not match its checksum,
/// is refused with an InputError naming the file and what differs.

#include <string>
#include <vector>

#include "core/sim/simulation.hpp"

namespace cutoff {

/// Metric rows so far: rows[k] holds ticks × cells values of metric k, tick-major.
using MetricRows = std::vector<std::vector<double>>;

/// Writes @p sim's state and @p rows to @p path atomically.
void save_checkpoint(const std::string& path, Simulation& sim, const MetricRows& rows);

/// Restores @p sim (freshly constructed from the same parameters and replicate) and
/// @p rows from @p path. Throws InputError naming @p path when it belongs to another
/// scenario, seed, replicate, size or program version, or is damaged.
void load_checkpoint(const std::string& path, Simulation& sim, MetricRows& rows);

}  // namespace cutoff
