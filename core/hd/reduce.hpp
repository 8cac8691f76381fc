#pragma once
/// @file
/// Deterministic sums (docs/model.md §3, §10; docs/determinism.md). Every sum that
/// feeds back into the dynamics uses one canonical order, independent of thread
/// count and backend: an array is cut into chunks of kChunk elements; within a
/// chunk, lane t (of kLanes) adds elements t, t+kLanes, … in order, then the lanes
/// are folded by a fixed binary tree; chunk totals are summed the same way again.
/// The order is written once, here: sum_plan() cuts the work into chunks, lane_sum() is
/// one lane's share and fold_lanes() the tree. The CPU backend runs them through
/// segmented_sum(); the CUDA backend runs the same plan, a block of kLanes threads a chunk,
/// each thread calling lane_sum() and the block folding by the same tree, so the GPU
/// gives the same bits as the host.

#include <cstdint>
#include <utility>
#include <vector>

#include "core/hd/hd.hpp"

namespace cutoff {

inline constexpr int kLanes = 256;
inline constexpr int kChunkPerLane = 16;
inline constexpr std::uint64_t kChunk = static_cast<std::uint64_t>(kLanes) * kChunkPerLane;

/// K sums carried together (e.g. Y and Z of step 8).
template <int K> struct Sums {
  double v[K];
  CUTOFF_HD double& operator[](int k) { return v[k]; }
  CUTOFF_HD double operator[](int k) const { return v[k]; }
};

/// Fold kLanes lane partials by the fixed tree (in place; result in lane[0]).
template <int K> CUTOFF_HD_INLINE void fold_lanes(Sums<K>* lane) {
  for (int s = kLanes / 2; s > 0; s /= 2)
    for (int t = 0; t < s; ++t)
      for (int k = 0; k < K; ++k) lane[t].v[k] += lane[t + s].v[k];
}

/// Lane @p t's share of a chunk [begin, begin + n), n ≤ kChunk: elements t, t + kLanes, …
/// below n, added in order into @p acc (K values, zeroed here). A device thread runs the
/// same function as its lane.
template <int K, class Get>
CUTOFF_HD_INLINE void lane_sum(const Get& get, std::uint64_t begin, std::uint64_t n, int t, double* acc) {
  for (int k = 0; k < K; ++k) acc[k] = 0.0;
  for (int j = 0; j < kChunkPerLane; ++j) {
    const std::uint64_t idx = static_cast<std::uint64_t>(t) + static_cast<std::uint64_t>(j) * kLanes;
    if (idx >= n) break;
    double x[K];
    get(begin + idx, x);
    for (int k = 0; k < K; ++k) acc[k] += x[k];
  }
}

/// Canonical sum of get(i), i in [begin, begin+n), n ≤ kChunk. get(i, out)
/// writes K values for element i.
template <int K, class Get> CUTOFF_HD Sums<K> chunk_sum(const Get& get, std::uint64_t begin, std::uint64_t n) {
  Sums<K> lane[kLanes];
  for (int t = 0; t < kLanes; ++t) lane_sum<K>(get, begin, n, t, lane[t].v);
  fold_lanes<K>(lane);
  return lane[0];
}

/// Element i of a level above the first: partial sum i of a flat array (K values each).
template <int K> struct PartialGet {
  const double* partials;
  CUTOFF_HD void operator()(std::uint64_t i, double* o) const {
    for (int k = 0; k < K; ++k) o[k] = partials[i * K + k];
  }
};

/// The canonical order of a sum over consecutive segments [begin[s], begin[s+1]), as
/// tasks that both backends run: each task is one chunk_sum. Level 0 cuts each segment
/// into chunks of kChunk elements; each later level cuts the partials of every segment
/// that still has more than one into chunks of kChunk partials; a segment's total is its
/// one partial left (an empty segment has none and sums to 0).
struct SumPlan {
  struct Level {
    std::uint64_t first = 0;                ///< index in the partials of the level's first output
    std::vector<std::uint64_t> begin, len;  ///< level 0: element ranges; later: partial ranges
  };
  std::vector<Level> levels;
  std::uint64_t n_partials = 0;
  std::vector<std::int64_t> result;  ///< per segment: the index of its total in the partials; −1: empty
};

/// The plan of a segmented sum. @param begin length n_seg + 1, non-decreasing
inline SumPlan sum_plan(const std::uint64_t* begin, int n_seg) {
  SumPlan plan;
  // Each segment's current partials: [first, first + count), as indices into the partials.
  std::vector<std::uint64_t> first(n_seg), count(n_seg);
  SumPlan::Level level;
  for (int s = 0; s < n_seg; ++s) {
    first[s] = level.begin.size();
    for (std::uint64_t b = begin[s]; b < begin[s + 1]; b += kChunk) {
      level.begin.push_back(b);
      level.len.push_back(begin[s + 1] - b < kChunk ? begin[s + 1] - b : kChunk);
    }
    count[s] = level.begin.size() - first[s];
  }
  while (!level.begin.empty()) {
    level.first = plan.n_partials;
    plan.n_partials += level.begin.size();
    plan.levels.push_back(std::move(level));
    level = SumPlan::Level{};
    for (int s = 0; s < n_seg; ++s) {
      if (count[s] <= 1) continue;
      const std::uint64_t f0 = first[s], c0 = count[s];
      first[s] = plan.n_partials + level.begin.size();
      for (std::uint64_t b = 0; b < c0; b += kChunk) {
        level.begin.push_back(f0 + b);
        level.len.push_back(c0 - b < kChunk ? c0 - b : kChunk);
      }
      count[s] = plan.n_partials + level.begin.size() - first[s];
    }
  }
  plan.result.assign(n_seg, -1);
  for (int s = 0; s < n_seg; ++s)
    if (count[s] == 1) plan.result[s] = static_cast<std::int64_t>(first[s]);
  return plan;
}

/// Canonical sums over consecutive segments [begin[s], begin[s+1]) of an array: the tasks
/// of sum_plan, each level in parallel with OpenMP; the same bits at any thread count.
/// @param[in]  begin  length n_seg + 1, non-decreasing
/// @param[out] out    length n_seg
template <int K, class Get> void segmented_sum(const std::uint64_t* begin, int n_seg, const Get& get, Sums<K>* out) {
  const SumPlan plan = sum_plan(begin, n_seg);
  std::vector<double> partials(plan.n_partials * K);
  for (std::size_t L = 0; L < plan.levels.size(); ++L) {
    const SumPlan::Level& level = plan.levels[L];
    const auto n_tasks = static_cast<std::int64_t>(level.begin.size());
#pragma omp parallel for schedule(dynamic, 4)
    for (std::int64_t t = 0; t < n_tasks; ++t) {
      const Sums<K> x = L == 0 ? chunk_sum<K>(get, level.begin[t], level.len[t])
                               : chunk_sum<K>(PartialGet<K>{partials.data()}, level.begin[t], level.len[t]);
      for (int k = 0; k < K; ++k) partials[(level.first + t) * K + k] = x.v[k];
    }
  }
  for (int s = 0; s < n_seg; ++s)
    for (int k = 0; k < K; ++k) out[s].v[k] = plan.result[s] >= 0 ? partials[plan.result[s] * K + k] : 0.0;
}

/// Canonical sum over the whole range [0, n).
template <int K, class Get> Sums<K> canonical_sum(std::uint64_t n, const Get& get) {
  const std::uint64_t begin[2] = {0, n};
  Sums<K> out;
  segmented_sum<K>(begin, 1, get, &out);
  return out;
}

}  // namespace cutoff
