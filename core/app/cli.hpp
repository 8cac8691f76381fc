#pragma once
/// @file
/// The `cutoff` command line: run, validate, info. Exit codes: 0 success,
/// 2 bad input (flag, value, scenario, country table, memory), 1 runtime failure.

#include <iosfwd>

namespace cutoff {

int cli_main(int argc, char** argv);

/// docs/parameters.md: the schema's reference (schema_markdown) under a
/// "generated" header, with how the command line gives overrides. `cutoff validate
/// --doc-params` writes this; a test compares the committed file.
void write_parameters_doc(std::ostream& os);
/// Writes docs/metrics.md: every metric of Simulation::metric_decls (`cutoff validate --doc-metrics`).
void write_metrics_doc(std::ostream& os);

}  // namespace cutoff
