#pragma once
/// @file
/// The one 128-bit unsigned fixed-point type of the project (docs/determinism.md).
/// A term is rounded once, half up, to an integer multiple of 2^−frac_bits of its
/// unit by exact bit manipulation, then added as an integer. Integer addition is
/// associative, so per-thread partial sums merged by addition, a GPU's per-block
/// sums or its 64-bit atomics with carry all give the same bits at any thread
/// count. Used by the keyed sums, the clearing, the water-fill and the ranks.

#include <cstdint>

#include "core/hd/fpmath.hpp"
#include "core/hd/hd.hpp"

namespace cutoff {

/// An unsigned 128-bit integer as two words (POD: usable in CUDA shared memory).
struct Fix128 {
  std::uint64_t lo, hi;
};

CUTOFF_HD_INLINE Fix128 fix_zero() { return Fix128{0, 0}; }

/// a += b; returns true on a carry out of bit 127 (overflow).
CUTOFF_HD_INLINE bool fix_add(Fix128& a, const Fix128& b) {
  const std::uint64_t lo = a.lo + b.lo;
  const std::uint64_t carry = lo < a.lo ? 1u : 0u;
  const std::uint64_t h1 = a.hi + b.hi;
  const bool o1 = h1 < a.hi;
  const std::uint64_t h2 = h1 + carry;
  const bool o2 = h2 < h1;
  a.lo = lo;
  a.hi = h2;
  return o1 || o2;
}

CUTOFF_HD_INLINE bool fix_less(const Fix128& a, const Fix128& b) {
  return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo);
}

/// a − b for a ≥ b.
CUTOFF_HD_INLINE Fix128 fix_sub(const Fix128& a, const Fix128& b) {
  Fix128 r;
  r.lo = a.lo - b.lo;
  r.hi = a.hi - b.hi - (a.lo < b.lo ? 1u : 0u);
  return r;
}

/// The integer as a double (two roundings at most; deterministic).
CUTOFF_HD_INLINE double fix_to_double(const Fix128& a) {
  return static_cast<double>(a.hi) * 18446744073709551616.0 + static_cast<double>(a.lo);
}

/// round(x·2^frac_bits), half up, for x ≥ 0, by exact bit manipulation. Returns 0
/// for x ≤ 0; sets *overflow (never clears it) and returns 0 when x is not finite
/// or the result would reach 2^max_bits (max_bits ≤ 128).
CUTOFF_HD_INLINE Fix128 to_fixed(double x, int frac_bits, bool* overflow, int max_bits = 128) {
  Fix128 r{0, 0};
  if (x != x) {
    *overflow = true;
    return r;
  }
  if (!(x > 0.0)) return r;
  const std::uint64_t u = fp::bits(x);
  int ex = static_cast<int>((u >> 52) & 0x7ff);
  std::uint64_t m = u & 0x000fffffffffffffULL;
  if (ex == 0x7ff) {
    *overflow = true;
    return r;
  }
  if (ex != 0)
    m |= 0x0010000000000000ULL;
  else
    ex = 1;
  const int sh = ex - 1075 + frac_bits;  // x·2^frac_bits = m·2^sh, m < 2^53
  if (sh >= 0) {
    if (sh + 53 > max_bits) {
      *overflow = true;
      return r;
    }
    if (sh == 0)
      r.lo = m;
    else if (sh < 64) {
      r.lo = m << sh;
      r.hi = m >> (64 - sh);
    } else
      r.hi = m << (sh - 64);
  } else {
    const int rs = -sh;
    if (rs > 53) return r;  // below half a unit
    r.lo = (m + (1ULL << (rs - 1))) >> rs;
  }
  return r;
}

/// The same value as the compiler's 128-bit integer (host code and nvcc both have it).
using u128 = unsigned __int128;
CUTOFF_HD_INLINE u128 to_u128(Fix128 f) { return (static_cast<u128>(f.hi) << 64) | f.lo; }

}  // namespace cutoff
