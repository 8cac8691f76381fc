#pragma once
/// @file
/// The host side of the protocol the three multi-pass solvers share (the clearing, the
/// water-fill and the ranks). A solver plans a pass; every element is visited once by a
/// shared `CUTOFF_HD` visit (`clearing_visit`, `water_visit`, `rank_visit`) into a sink;
/// the sinks' partial results are merged; the solver reads the merged data and plans
/// the next pass or stops. Partials are integer (fixed-point) sums and gathered items
/// the solver sorts before use, so any merge order gives the same bits: that is what
/// lets a thread's private partials here and a GPU's atomics give the same answer.

#include <cstdint>

namespace cutoff {

/// One host pass over elements [0, n): each OpenMP thread makes its partials with
/// make_local(), calls visit(i, local) for its share of the elements, then
/// merge(local) once, under one lock. Without @p parallel, one thread does it all
/// (the same bits: a small pass is not worth a team).
template <class MakeLocal, class Visit, class Merge>
void host_pass(std::uint64_t n, bool parallel, const MakeLocal& make_local, const Visit& visit, const Merge& merge) {
#pragma omp parallel if (parallel)
  {
    auto local = make_local();
#pragma omp for schedule(static) nowait
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(n); ++i) visit(static_cast<std::uint64_t>(i), local);
#pragma omp critical(cutoff_solver_merge)
    merge(local);
  }
}

}  // namespace cutoff
