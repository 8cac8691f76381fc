#pragma once
/// @file
/// The `cutoff` command line: run, validate, info. Exit codes: 0 success,
/// 2 bad input (flag, value, scenario, country table, memory), 1 runtime failure.

namespace cutoff {

int cli_main(int argc, char** argv);

}  // namespace cutoff
