// Philox-4x32-10 known answers and the packing of (seed, replicate, agent, tick, stream).
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "core/hd/rng.hpp"

namespace cutoff {
namespace {

using P = r123::Philox4x32;

P::ctr_type run(P::ctr_type c, P::key_type k) { return P()(c, k); }

// Random123's published known-answer vectors (kat_vectors, philox4x32 10 rounds).
TEST(Rng, PhiloxKnownAnswers) {
  struct Kat {
    P::ctr_type ctr;
    P::key_type key;
    P::ctr_type expect;
  };
  const Kat kats[] = {
      {{{0, 0, 0, 0}}, {{0, 0}}, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}},
      {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}},
       {{0xffffffff, 0xffffffff}},
       {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}},
      {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}},
       {{0xa4093822, 0x299f31d0}},
       {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}},
  };
  for (const Kat& k : kats) {
    const P::ctr_type r = run(k.ctr, k.key);
    for (int j = 0; j < 4; ++j) EXPECT_EQ(r.v[j], k.expect.v[j]) << "word " << j;
  }
}

TEST(Rng, PackingAtBoundaries) {
  const std::uint64_t agent = 0x0000000100000000ULL + 7;  // above 2^32
  Rng r(0xfffffffe, 0xffffffff, agent, 2000000000, Stream::Adopt);
  EXPECT_EQ(r.key().v[0], 0xfffffffeu);
  EXPECT_EQ(r.key().v[1], 0xffffffffu);
  EXPECT_EQ(r.counter().v[0], 7u);
  EXPECT_EQ(r.counter().v[1], 1u);
  EXPECT_EQ(r.counter().v[2], 2000000000u);
  EXPECT_EQ(r.counter().v[3], static_cast<std::uint32_t>(Stream::Adopt) << 16);
  Rng init(1, 0, 5, -1, Stream::FirmInit);
  EXPECT_EQ(init.counter().v[2], 0xffffffffu);  // the initial state's tick
}

TEST(Rng, DistinctAcrossEveryKeyPart) {
  // Agents 2^32 − 1 and 2^32 (and 0), large ticks and replicates: all streams differ.
  const std::uint64_t agents[] = {0, 0xffffffffULL, 0x100000000ULL, 0xffffffffffffffffULL};
  const std::int32_t ticks[] = {-1, 0, 1, 0x7fffffff};
  const std::uint32_t reps[] = {0, 1, 0xffffffffu};
  const Stream streams[] = {Stream::FirmInit, Stream::Kyc, Stream::Adopt};
  std::set<std::uint32_t> firsts;
  int n = 0;
  for (auto a : agents)
    for (auto t : ticks)
      for (auto rep : reps)
        for (auto s : streams) {
          Rng r(42, rep, a, t, s);
          firsts.insert(r.next_u32());
          ++n;
        }
  EXPECT_EQ(static_cast<int>(firsts.size()), n);
}

TEST(Rng, SameKeySameDrawsAndBlocksAdvance) {
  Rng a(3, 1, 99, 5, Stream::Productivity), b(3, 1, 99, 5, Stream::Productivity);
  std::set<std::uint32_t> seen;
  for (int k = 0; k < 64; ++k) {
    const std::uint32_t x = a.next_u32();
    EXPECT_EQ(x, b.next_u32());
    seen.insert(x);
  }
  EXPECT_GT(seen.size(), 60u);  // later blocks are new numbers, not a repeat of the first
}

TEST(Rng, DistributionsHaveTheirMoments) {
  Rng r(7, 0, 1, 0, Stream::Productivity);
  const int n = 200000;
  double su = 0, sz = 0, sz2 = 0, sl = 0, sg = 0;
  double umin = 1, umax = 0;
  for (int k = 0; k < n; ++k) {
    const double u = r.uniform();
    umin = std::min(umin, u);
    umax = std::max(umax, u);
    su += u;
    const double z = r.normal();
    sz += z;
    sz2 += z * z;
    sl += r.lognormal_mean1(0.7);
    sg += r.gumbel();
  }
  EXPECT_GT(umin, 0.0);
  EXPECT_LT(umax, 1.0);
  EXPECT_NEAR(su / n, 0.5, 0.005);
  EXPECT_NEAR(sz / n, 0.0, 0.01);
  EXPECT_NEAR(sz2 / n, 1.0, 0.015);
  EXPECT_NEAR(sl / n, 1.0, 0.01);
  EXPECT_NEAR(sg / n, 0.5772156649, 0.01);  // Euler–Mascheroni
}

}  // namespace
}  // namespace cutoff
