#pragma once
/// @file
/// The model's own transcendental functions, identical bit for bit on the host
/// and the device (docs/determinism.md). glibc's and CUDA's exp/log differ in the
/// last bit, which moves histogram bins and so prices; these use only IEEE
/// +, −, ×, ÷, sqrt (correctly rounded on both, with FMA contraction off) and
/// exact bit manipulation. Accuracy: within 2 ulp of the true value in double.

#include <cstdint>
#include <cstring>

#include "core/hd/hd.hpp"

namespace cutoff::fp {

CUTOFF_HD_INLINE std::uint64_t bits(double x) {
  std::uint64_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
CUTOFF_HD_INLINE double from_bits(std::uint64_t u) {
  double x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

inline constexpr double kInf = __builtin_huge_val();
inline constexpr std::uint64_t kInfBits = 0x7ff0000000000000ULL;  ///< bits(+inf)
inline constexpr double kLn2Hi = 6.93147180369123816490e-01;      // high bits of ln 2 (exact in 32 bits)
inline constexpr double kLn2Lo = 1.90821492927058770002e-10;      // ln 2 − kLn2Hi
inline constexpr double kInvLn2 = 1.44269504088896338700e+00;
inline constexpr double kPi = 3.14159265358979311600e+00;

/// 2^k for an integer k in [−1022, 1023], exactly.
CUTOFF_HD_INLINE double pow2i(int k) { return from_bits(static_cast<std::uint64_t>(k + 1023) << 52); }

/// Round half away from zero to an integer, without relying on the current rounding mode.
CUTOFF_HD_INLINE double round_nearest(double x) {
  double t = static_cast<double>(static_cast<long long>(x));  // truncation
  double d = x - t;
  if (d >= 0.5) t += 1.0;
  if (d <= -0.5) t -= 1.0;
  return t;
}

/// e^x. Reduces x = k·ln2 + r, |r| ≤ ln2/2, and sums the Taylor series of e^r
/// (degree 13: truncation below 1e-17 relative) by Horner's rule.
CUTOFF_HD_INLINE double exp(double x) {
  if (x != x) return x;
  if (x > 709.7) return kInf;
  if (x < -745.2) return 0.0;
  const double k = round_nearest(x * kInvLn2);
  const double r = (x - k * kLn2Hi) - k * kLn2Lo;
  double p = 1.0 / 6227020800.0;  // 1/13!
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  int ki = static_cast<int>(k);
  // Split the scaling so that results near the subnormal range stay exact.
  if (ki < -1021) return p * pow2i(ki + 600) * pow2i(-600);
  if (ki > 1023) return p * pow2i(ki - 600) * pow2i(600);
  return p * pow2i(ki);
}

/// Natural logarithm. Writes x = m·2^e with m in [√½, √2), then
/// ln m = 2·atanh(f), f = (m−1)/(m+1), |f| ≤ 0.1716, by its odd series to f^23.
CUTOFF_HD_INLINE double log(double x) {
  if (x != x || x < 0.0) return __builtin_nan("");
  if (x == 0.0) return -kInf;
  if (x == kInf) return kInf;
  int e = 0;
  if (x < 2.2250738585072014e-308) {  // subnormal: scale into the normal range
    x *= 18014398509481984.0;         // 2^54
    e = -54;
  }
  std::uint64_t u = bits(x);
  e += static_cast<int>((u >> 52) & 0x7ff) - 1023;
  double m = from_bits((u & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL);  // [1, 2)
  if (m > 1.4142135623730951) {
    m *= 0.5;
    e += 1;
  }
  const double f = (m - 1.0) / (m + 1.0);
  const double f2 = f * f;
  double s = 1.0 / 23.0;
  s = s * f2 + 1.0 / 21.0;
  s = s * f2 + 1.0 / 19.0;
  s = s * f2 + 1.0 / 17.0;
  s = s * f2 + 1.0 / 15.0;
  s = s * f2 + 1.0 / 13.0;
  s = s * f2 + 1.0 / 11.0;
  s = s * f2 + 1.0 / 9.0;
  s = s * f2 + 1.0 / 7.0;
  s = s * f2 + 1.0 / 5.0;
  s = s * f2 + 1.0 / 3.0;
  const double lnm = 2.0 * f + 2.0 * f * f2 * s;
  const double de = static_cast<double>(e);
  return (de * kLn2Hi + lnm) + de * kLn2Lo;
}

/// x^y for x > 0 (the model only raises positive quantities to powers).
CUTOFF_HD_INLINE double pow(double x, double y) {
  if (x == 0.0) return y > 0.0 ? 0.0 : (y == 0.0 ? 1.0 : kInf);
  return fp::exp(y * fp::log(x));
}

/// sin(2π·t) and cos(2π·t) for t in [0, 1). The reduction is exact because the
/// argument is in turns: the octant comes from t's bits, not from a division by π.
CUTOFF_HD_INLINE void sincos_turns(double t, double* s, double* c) {
  // q = nearest quarter turn; r in [−1/8, 1/8] turns.
  const double q = round_nearest(4.0 * t);
  const double r = (t - 0.25 * q) * (2.0 * kPi);  // |r| ≤ π/4
  const double r2 = r * r;
  // Taylor series to r^17 / r^16: truncation below 2e-17 at |r| = π/4.
  double sp = -1.0 / 355687428096000.0;  // −1/17!
  sp = sp * r2 + 1.0 / 1307674368000.0;
  sp = sp * r2 - 1.0 / 6227020800.0;
  sp = sp * r2 + 1.0 / 39916800.0;
  sp = sp * r2 - 1.0 / 362880.0;
  sp = sp * r2 + 1.0 / 5040.0;
  sp = sp * r2 - 1.0 / 120.0;
  sp = sp * r2 + 1.0 / 6.0;
  const double sr = r - r * r2 * sp;
  double cp = 1.0 / 20922789888000.0;  // 1/16!
  cp = cp * r2 - 1.0 / 87178291200.0;
  cp = cp * r2 + 1.0 / 479001600.0;
  cp = cp * r2 - 1.0 / 3628800.0;
  cp = cp * r2 + 1.0 / 40320.0;
  cp = cp * r2 - 1.0 / 720.0;
  cp = cp * r2 + 1.0 / 24.0;
  cp = cp * r2 - 0.5;
  const double cr = 1.0 + r2 * cp;
  switch (static_cast<int>(q) & 3) {
    case 0:
      *s = sr;
      *c = cr;
      break;
    case 1:
      *s = cr;
      *c = -sr;
      break;
    case 2:
      *s = -sr;
      *c = -cr;
      break;
    default:
      *s = -cr;
      *c = sr;
      break;
  }
}

CUTOFF_HD_INLINE double min(double a, double b) { return b < a ? b : a; }
CUTOFF_HD_INLINE double max(double a, double b) { return a < b ? b : a; }
CUTOFF_HD_INLINE double clamp(double x, double lo, double hi) { return min(max(x, lo), hi); }

}  // namespace cutoff::fp
