// A run is a pure function of (scenario, seed, replicate, counts): the same bits
// at 1, 2 and 3 threads; other seeds or replicates give other numbers.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>

#include "core/sim/simulation.hpp"
#include "support.hpp"

namespace cutoff {
namespace {

/// Bytes of every registry field of both populations, then every metric.
std::vector<unsigned char> state_bytes(const Simulation& s) {
  std::vector<unsigned char> out;
  auto add = [&](const void* p, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    out.insert(out.end(), b, b + n);
  };
  FirmView f = s.firms().view();
  Firms::for_each(f, [&](const FieldInfo& fi, auto*& ptr) { add(ptr, fi.bytes * s.firms().size()); });
  UserView u = s.users().view();
  Users::for_each(u, [&](const FieldInfo& fi, auto*& ptr) { add(ptr, fi.bytes * s.users().size()); });
  for (std::size_t k = 0; k < s.metrics().specs().size(); ++k) {
    const auto& v = s.metrics()[static_cast<int>(k)];
    add(v.data(), v.size() * sizeof(double));
  }
  return out;
}

std::vector<unsigned char> run(int threads, std::uint32_t replicate, std::int64_t seed = 1) {
  // Several reduction chunks per large country, not a multiple of the chunk size.
  Params p = test::small_params(3 * 4096 * 3 + 777, 25000, 4);
  p.seed = seed;
  RunOptions o;
  o.threads = threads;
  o.replicate = replicate;
  Simulation s(p, load_countries(p.countries), o);
  for (int t = 0; t < 4; ++t) s.step();
  return state_bytes(s);
}

TEST(Determinism, SameBitsAtOneTwoThreeThreads) {
  const auto one = run(1, 0);
  EXPECT_EQ(one, run(2, 0));
  EXPECT_EQ(one, run(3, 0));
  omp_set_num_threads(omp_get_num_procs());
}

TEST(Determinism, SeedsAndReplicatesDiffer) {
  const auto base = run(2, 0);
  EXPECT_NE(base, run(2, 1));
  EXPECT_NE(base, run(2, 0, 2));
}

}  // namespace
}  // namespace cutoff
