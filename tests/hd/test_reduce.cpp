// Canonical sums: independent of thread count, exact on integers, and chunked
// as documented (so the GPU's block reduction can match them).
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/hd/reduce.hpp"

namespace cutoff {
namespace {

std::vector<double> noisy(std::size_t n, unsigned seed) {
  std::mt19937_64 g(seed);
  std::lognormal_distribution<double> d(0.0, 3.0);  // many decades: order matters in floating point
  std::vector<double> x(n);
  for (auto& v : x) v = d(g) * ((g() & 1) ? 1 : -1);
  return x;
}

TEST(Reduce, SameBitsAtOneTwoThreeThreads) {
  // Several chunks, not a multiple of the chunk size, uneven segments (one empty).
  const std::size_t n = 5 * kChunk + 1234;
  const auto x = noisy(n, 1);
  const std::vector<std::uint64_t> begin{0, 17, 17, kChunk + 5, 3 * kChunk, n};
  const int S = static_cast<int>(begin.size()) - 1;
  std::vector<std::vector<Sums<2>>> results;
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    std::vector<Sums<2>> out(S);
    segmented_sum<2>(
        begin.data(), S,
        [&](std::uint64_t i, double* o) {
          o[0] = x[i];
          o[1] = x[i] * x[i];
        },
        out.data());
    results.push_back(out);
  }
  for (int s = 0; s < S; ++s)
    for (int r = 1; r < 3; ++r)
      for (int k = 0; k < 2; ++k) EXPECT_EQ(results[0][s][k], results[r][s][k]) << "segment " << s;
  EXPECT_EQ(results[0][1][0], 0.0);  // the empty segment
}

TEST(Reduce, FollowsTheDocumentedOrder) {
  // A hand-written reference of the canonical order for one chunk and for two chunks.
  const std::size_t n = kChunk + 999;
  const auto x = noisy(n, 2);
  auto one_chunk = [&](std::size_t b, std::size_t len) {
    std::vector<double> lane(kLanes, 0.0);
    for (int t = 0; t < kLanes; ++t)
      for (int j = 0; j < kChunkPerLane; ++j) {
        const std::size_t idx = t + static_cast<std::size_t>(j) * kLanes;
        if (idx < len) lane[t] += x[b + idx];
      }
    for (int s = kLanes / 2; s > 0; s /= 2)
      for (int t = 0; t < s; ++t) lane[t] += lane[t + s];
    return lane[0];
  };
  const double c0 = one_chunk(0, kChunk), c1 = one_chunk(kChunk, n - kChunk);
  // The two chunk totals fold like a chunk of two elements: lane 0 gets c0, lane 1 c1.
  const double expect = c0 + c1;
  const Sums<1> got = canonical_sum<1>(n, [&](std::uint64_t i, double* o) { o[0] = x[i]; });
  EXPECT_EQ(got[0], expect);
  // And the order does matter for such data: a plain left-to-right sum differs.
  double naive = 0;
  for (double v : x) naive += v;
  EXPECT_NEAR(got[0], naive, 1e-9 * std::fabs(naive) + 1e-6);
}

TEST(Reduce, PlanFoldsEverySegmentDownToOnePartial) {
  // The plan that both backends run: an empty segment, a one-chunk segment, and one of
  // kChunk² + 7 elements, which needs kChunk + 1 chunks, then 2 folds, then 1.
  const std::uint64_t big = kChunk * kChunk + 7;
  const std::vector<std::uint64_t> begin{0, 0, 5, 5 + big};
  const SumPlan plan = sum_plan(begin.data(), 3);
  ASSERT_EQ(plan.levels.size(), 3u);
  EXPECT_EQ(plan.levels[0].begin.size(), 1 + (kChunk + 1));
  EXPECT_EQ(plan.levels[1].begin.size(), 2u);
  EXPECT_EQ(plan.levels[2].begin.size(), 1u);
  EXPECT_EQ(plan.result[0], -1);  // empty
  EXPECT_EQ(plan.result[1], 0);   // its one chunk is the first task
  EXPECT_EQ(plan.result[2], static_cast<std::int64_t>(plan.n_partials) - 1);
  // Level 0 covers every element once, in order; a later level reads only partials
  // written by the levels before it; no task is longer than a chunk.
  std::uint64_t next = 0, written = 0;
  for (std::size_t L = 0; L < plan.levels.size(); ++L) {
    const SumPlan::Level& level = plan.levels[L];
    EXPECT_EQ(level.first, written);
    for (std::size_t t = 0; t < level.begin.size(); ++t) {
      EXPECT_GE(level.len[t], 1u);
      EXPECT_LE(level.len[t], kChunk);
      if (L == 0) {
        EXPECT_EQ(level.begin[t], next);
        next += level.len[t];
      } else {
        EXPECT_LE(level.begin[t] + level.len[t], level.first);
      }
    }
    written += level.begin.size();
  }
  EXPECT_EQ(next, begin.back());
  EXPECT_EQ(written, plan.n_partials);
}

TEST(Reduce, ExactOnIntegers) {
  const std::size_t n = 3 * kChunk + 7;
  const Sums<1> s = canonical_sum<1>(n, [](std::uint64_t i, double* o) { o[0] = static_cast<double>(i); });
  EXPECT_EQ(s[0], static_cast<double>(n) * (n - 1) / 2);
}

}  // namespace
}  // namespace cutoff
