#pragma once
/// @file
/// Order-independent keyed sums in 64-bit fixed point (docs/determinism.md):
/// each term is rounded once to a multiple of 2^−bits of its unit and summed as
/// an integer, so any thread count, any order and a GPU's atomics give the same
/// bits. Used where many agents add into a few keys (providers × classes).

#include <omp.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/fpmath.hpp"
#include "core/hd.hpp"

namespace cutoff {

/// Resolution of each quantity: 2^−bits of its unit. Magnitudes stay below 2^62.
inline constexpr double kFixedMoney = 65536.0;     ///< $: 2^−16 $ (up to 7e13 $)
inline constexpr double kFixedCompute = 268435456.0;  ///< H100e: 2^−28 (up to 1.7e10 H100e)
inline constexpr double kFixedTokens = 1048576.0;  ///< Mtok: 2^−20 (up to 4.4e12 Mtok)
inline constexpr double kFixedWeight = 65536.0;    ///< real firms or people: 2^−16 (up to 7e13)

/// x in fixed point with `scale` units per 1, rounded half away from zero;
/// saturates (and the host check reports) beyond ±2^62.
CUTOFF_HD_INLINE std::int64_t to_fixed(double x, double scale) {
  const double y = x * scale;
  if (!(y < 4.6e18 && y > -4.6e18)) return y > 0 ? INT64_C(0x4000000000000000) : -INT64_C(0x4000000000000000);
  return static_cast<std::int64_t>(fp::round_nearest(y));
}

/// Sums of fixed-point terms into n_keys keys, over agents in parallel.
class KeyedFixed {
 public:
  explicit KeyedFixed(int n_keys) : sums_(n_keys, 0) {}

  /// Calls f(i, add) for i in [0, n); f calls add(key, value, scale) for each term.
  template <class F>
  void accumulate(std::uint64_t n, const F& f) {
    const int K = static_cast<int>(sums_.size());
#pragma omp parallel
    {
      std::vector<std::int64_t> local(K, 0);
      bool saturated = false;
      auto add = [&](int key, double value, double scale) {
        const std::int64_t v = to_fixed(value, scale);
        saturated |= v == INT64_C(0x4000000000000000) || v == -INT64_C(0x4000000000000000);
        local[key] += v;
      };
#pragma omp for schedule(static) nowait
      for (std::int64_t i = 0; i < static_cast<std::int64_t>(n); ++i) f(static_cast<std::uint64_t>(i), add);
#pragma omp critical(cutoff_keyed_fixed)
      {
        for (int k = 0; k < K; ++k) sums_[k] += local[k];
        saturated_ |= saturated;
      }
    }
    if (saturated_) throw std::overflow_error("a fixed-point sum term exceeded 2^62 of its resolution");
  }

  double value(int key, double scale) const { return static_cast<double>(sums_[key]) / scale; }
  std::int64_t raw(int key) const { return sums_[key]; }

 private:
  std::vector<std::int64_t> sums_;
  bool saturated_ = false;
};

}  // namespace cutoff
