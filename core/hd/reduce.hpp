#pragma once
/// @file
/// Deterministic sums (MODEL.md §3, §10; docs/determinism.md). Every sum that
/// feeds back into the dynamics uses one canonical order, independent of thread
/// count and backend: an array is cut into chunks of kChunk elements; within a
/// chunk, lane t (of kLanes) adds elements t, t+kLanes, … in order, then the lanes
/// are folded by a fixed binary tree; chunk totals are summed the same way again.
/// A CUDA block of kLanes threads performs exactly these additions, so the GPU
/// gives the same bits as the host.

#include <cstdint>
#include <vector>

#include "core/hd/hd.hpp"

namespace cutoff {

inline constexpr int kLanes = 256;
inline constexpr int kChunkPerLane = 16;
inline constexpr std::uint64_t kChunk = static_cast<std::uint64_t>(kLanes) * kChunkPerLane;

/// K sums carried together (e.g. Y and Z of step 8).
template <int K>
struct Sums {
  double v[K];
  CUTOFF_HD double& operator[](int k) { return v[k]; }
  CUTOFF_HD double operator[](int k) const { return v[k]; }
};

/// Fold kLanes lane partials by the fixed tree (in place; result in lane[0]).
template <int K>
CUTOFF_HD_INLINE void fold_lanes(Sums<K>* lane) {
  for (int s = kLanes / 2; s > 0; s /= 2)
    for (int t = 0; t < s; ++t)
      for (int k = 0; k < K; ++k) lane[t].v[k] += lane[t + s].v[k];
}

/// Canonical sum of get(i), i in [begin, begin+n), n ≤ kChunk. get(i, out)
/// writes K values for element i.
template <int K, class Get>
CUTOFF_HD Sums<K> chunk_sum(const Get& get, std::uint64_t begin, std::uint64_t n) {
  Sums<K> lane[kLanes];
  for (int t = 0; t < kLanes; ++t) {
    for (int k = 0; k < K; ++k) lane[t].v[k] = 0.0;
    for (int j = 0; j < kChunkPerLane; ++j) {
      const std::uint64_t idx = static_cast<std::uint64_t>(t) + static_cast<std::uint64_t>(j) * kLanes;
      if (idx >= n) break;
      Sums<K> x;
      get(begin + idx, x.v);
      for (int k = 0; k < K; ++k) lane[t].v[k] += x.v[k];
    }
  }
  fold_lanes<K>(lane);
  return lane[0];
}

/// Canonical sum of an array of partial sums (the second level and above).
template <int K>
Sums<K> fold_partials(std::vector<Sums<K>> p) {
  while (p.size() > 1) {
    const std::uint64_t m = (p.size() + kChunk - 1) / kChunk;
    std::vector<Sums<K>> next(m);
    for (std::uint64_t c = 0; c < m; ++c) {
      const std::uint64_t b = c * kChunk;
      const std::uint64_t n = p.size() - b < kChunk ? p.size() - b : kChunk;
      next[c] = chunk_sum<K>([&](std::uint64_t i, double* out) {
        for (int k = 0; k < K; ++k) out[k] = p[i].v[k];
      }, b, n);
    }
    p.swap(next);
  }
  if (p.empty()) {
    Sums<K> z;
    for (int k = 0; k < K; ++k) z.v[k] = 0.0;
    return z;
  }
  return p[0];
}

/// Canonical sums over consecutive segments [begin[s], begin[s+1]) of an array,
/// in parallel over (segment, chunk) with OpenMP; the same bits at any thread count.
/// @param[in]  begin  length n_seg + 1, non-decreasing
/// @param[out] out    length n_seg
template <int K, class Get>
void segmented_sum(const std::uint64_t* begin, int n_seg, const Get& get, Sums<K>* out) {
  std::vector<std::uint64_t> first_task(n_seg + 1, 0);
  for (int s = 0; s < n_seg; ++s)
    first_task[s + 1] = first_task[s] + (begin[s + 1] - begin[s] + kChunk - 1) / kChunk;
  const std::int64_t n_tasks = static_cast<std::int64_t>(first_task[n_seg]);
  std::vector<Sums<K>> partial(n_tasks);
  std::vector<int> seg_of(n_tasks);
  for (int s = 0; s < n_seg; ++s)
    for (std::uint64_t t = first_task[s]; t < first_task[s + 1]; ++t) seg_of[t] = s;
#pragma omp parallel for schedule(dynamic, 4)
  for (std::int64_t t = 0; t < n_tasks; ++t) {
    const int s = seg_of[t];
    const std::uint64_t b = begin[s] + (t - first_task[s]) * kChunk;
    const std::uint64_t e = begin[s + 1];
    partial[t] = chunk_sum<K>(get, b, e - b < kChunk ? e - b : kChunk);
  }
  for (int s = 0; s < n_seg; ++s)
    out[s] = fold_partials<K>(std::vector<Sums<K>>(partial.begin() + first_task[s],
                                                   partial.begin() + first_task[s + 1]));
}

/// Canonical sum over the whole range [0, n).
template <int K, class Get>
Sums<K> canonical_sum(std::uint64_t n, const Get& get) {
  const std::uint64_t begin[2] = {0, n};
  Sums<K> out;
  segmented_sum<K>(begin, 1, get, &out);
  return out;
}

}  // namespace cutoff
