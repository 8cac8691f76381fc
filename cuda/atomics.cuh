#pragma once
/// @file
/// Warp-aggregated atomic integer sums on the device, private to cuda/exec.cu: the
/// keyed sums' global adds (k_keyed) and the solvers' device sinks (cuda/solvers.cuh)
/// add through them. Integer adds give the host's totals in any order.

#include <cooperative_groups.h>
#include <cooperative_groups/reduce.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/hd/fixed.hpp"
#include "core/market/solver.hpp"

namespace cutoff::cuda {
namespace {

using ull = unsigned long long;
using u128 = unsigned __int128;
namespace cg = cooperative_groups;

// ---------------------------------------------------------------------------
// Atomic integer sums (the same totals as the host's in any order)
// ---------------------------------------------------------------------------

/// (lo, hi) += x modulo 2^128; returns true when the high word wrapped (the
/// total reached 2^128: only possible for sums of non-negative terms that overflow).
__device__ bool atomic_add_u128(ull* lo, ull* hi, std::uint64_t xlo, std::uint64_t xhi) {
  const ull old = atomicAdd(lo, static_cast<ull>(xlo));
  const ull carry = old + xlo < old ? 1 : 0;
  if (xhi == 0 && carry == 0) return false;
  const ull add = xhi + carry;
  const ull old_hi = atomicAdd(hi, add);
  return (xhi == ~0ULL && carry) || old_hi + add < old_hi;
}

/// The lanes of this warp, among those here together, that name the same address.
__device__ cg::coalesced_group same_address(const void* p) {
  return cg::labeled_partition(cg::coalesced_threads(), reinterpret_cast<ull>(p));
}

/// Σ x over group g at every lane, and whether it reached 2^128. The 32-bit limbs
/// are summed in 64 bits (at most 32 lanes: no limb sum overflows), then joined.
__device__ u128 group_sum_u128(const cg::coalesced_group& g, u128 x, bool* over) {
  ull l[4];
  for (int k = 0; k < 4; ++k)
    l[k] = cg::reduce(g, static_cast<ull>(static_cast<std::uint32_t>(x >> (32 * k))), cg::plus<ull>());
  const u128 low = static_cast<u128>(l[0]) + (static_cast<u128>(l[1]) << 32) + (static_cast<u128>(l[2]) << 64);
  const u128 top = static_cast<u128>(l[3] & 0xffffffffULL) << 96;
  const u128 total = low + top;
  *over = (l[3] >> 32) != 0 || total < low;
  return total;
}

/// Warp-aggregated (lo, hi) += x (lo and hi adjacent words): true on overflow (at the lane that added).
__device__ bool agg_add_u128(ull* lohi, u128 x) {
  const cg::coalesced_group g = same_address(lohi);
  if (g.size() == 1)
    return atomic_add_u128(lohi, lohi + 1, static_cast<std::uint64_t>(x), static_cast<std::uint64_t>(x >> 64));
  bool over = false;
  const u128 total = group_sum_u128(g, x, &over);
  if (g.thread_rank() != 0) return false;
  return atomic_add_u128(lohi, lohi + 1, static_cast<std::uint64_t>(total), static_cast<std::uint64_t>(total >> 64)) ||
         over;
}

/// Warp-aggregated *p += 1 (a count).
__device__ void agg_count(ull* p) {
  const cg::coalesced_group g = same_address(p);
  if (g.thread_rank() == 0) atomicAdd(p, static_cast<ull>(g.size()));
}

/// Warp-aggregated atomicMax.
__device__ void agg_max(ull* p, ull v) {
  const cg::coalesced_group g = same_address(p);
  const ull m = g.size() == 1 ? v : cg::reduce(g, v, cg::greater<ull>());
  if (g.thread_rank() == 0) atomicMax(p, m);
}

/// A slot in an append-only array whose length is *count: one atomic per warp
/// (slot order is any order; the host solvers sort what they gather).
__device__ ull agg_slot(ull* count) {
  const cg::coalesced_group g = same_address(count);
  ull base = 0;
  if (g.thread_rank() == 0) base = atomicAdd(count, static_cast<ull>(g.size()));
  return g.shfl(base, 0) + g.thread_rank();
}

/// The atomic twin of BinAdd (core/market/ranks.hpp), aggregated over the lanes adding into one bin.
struct AtomicBinAdd {
  __device__ bool operator()(FixedBin& bin, std::uint64_t key, const Fix128& a, const Fix128& b) const {
    const cg::coalesced_group g = same_address(&bin);
    const u128 xa = (static_cast<u128>(a.hi) << 64) | a.lo, xb = (static_cast<u128>(b.hi) << 64) | b.lo;
    bool oa = false, ob = false;
    u128 sa = xa, sb = xb;
    ull kmin = key, kmax = key;
    if (g.size() > 1) {
      sa = group_sum_u128(g, xa, &oa);
      sb = group_sum_u128(g, xb, &ob);
      kmin = cg::reduce(g, static_cast<ull>(key), cg::less<ull>());
      kmax = cg::reduce(g, static_cast<ull>(key), cg::greater<ull>());
    }
    if (g.thread_rank() != 0) return false;
    atomicAdd(reinterpret_cast<ull*>(&bin.count), static_cast<ull>(g.size()));
    bool o = oa || ob;
    if (sa)
      o |= atomic_add_u128(reinterpret_cast<ull*>(&bin.a.lo), reinterpret_cast<ull*>(&bin.a.hi),
                           static_cast<std::uint64_t>(sa), static_cast<std::uint64_t>(sa >> 64));
    if (sb)
      o |= atomic_add_u128(reinterpret_cast<ull*>(&bin.b.lo), reinterpret_cast<ull*>(&bin.b.hi),
                           static_cast<std::uint64_t>(sb), static_cast<std::uint64_t>(sb >> 64));
    atomicMin(reinterpret_cast<ull*>(&bin.kmin), kmin);
    atomicMax(reinterpret_cast<ull*>(&bin.kmax), kmax);
    return o;
  }
};

}  // namespace
}  // namespace cutoff::cuda
