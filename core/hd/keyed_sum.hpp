#pragma once
/// @file
/// Order-independent keyed sums in 128-bit fixed point (docs/determinism.md):
/// each term is converted exactly (to the resolution below) into an integer and
/// summed as an integer, so any thread count, any order and a GPU give the same
/// bits. Used where many agents add into a few keys (providers × classes).
/// Terms are non-negative and below 2^96 units (to_fixed); quantities
/// grow many-fold over a run, so the resolutions leave wide headroom.

#include <omp.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

#include "core/hd/fixed.hpp"

namespace cutoff {

/// Resolution of each quantity, in fraction bits: a term may reach 2^(96 − bits).
inline constexpr int kFixedMoney = 40;    ///< $: terms up to 7e16 $
inline constexpr int kFixedCompute = 56;  ///< H100e: terms up to 1.1e12 H100e
inline constexpr int kFixedTokens = 32;   ///< Mtok: terms up to 1.8e19 Mtok

/// Every keyed term is below 2^kKeyedTermBits units.
inline constexpr int kKeyedTermBits = 96;

/// Sums of fixed-point terms into n_keys keys, over agents in parallel.
class KeyedFixed {
 public:
  explicit KeyedFixed(int n_keys) : sums_(n_keys, 0) {}

  /// Calls f(i, add) for i in [0, n); f calls add(key, value ≥ 0, bits) for each term.
  template <class F> void accumulate(std::uint64_t n, const F& f) {
    const int K = static_cast<int>(sums_.size());
    bool overflow = false;
#pragma omp parallel
    {
      std::vector<u128> local(K, 0);
      bool over = false;
      auto add = [&](int key, double value, int bits) {
        local[key] += to_u128(to_fixed(value, bits, &over, kKeyedTermBits));
      };
#pragma omp for schedule(static) nowait
      for (std::int64_t i = 0; i < static_cast<std::int64_t>(n); ++i) f(static_cast<std::uint64_t>(i), add);
#pragma omp critical(cutoff_keyed_fixed)
      {
        for (int k = 0; k < K; ++k) sums_[k] += local[k];
        overflow |= over;
      }
    }
    if (overflow) throw_overflow();
  }

  int keys() const { return static_cast<int>(sums_.size()); }
  /// Adds a 128-bit partial sum (lo, hi words) to key `key` (a device pass's merged sums).
  void add_raw(int key, std::uint64_t lo, std::uint64_t hi) { sums_[key] += (static_cast<u128>(hi) << 64) | lo; }
  [[noreturn]] static void throw_overflow() {
    throw std::overflow_error("a keyed fixed-point sum term is not finite or exceeds 2^96 units");
  }

  /// The exact 128-bit sum of key `key` (what two backends must agree on bit for bit).
  u128 raw(int key) const { return sums_[key]; }
  /// The sum of key `key`, in the unit of the quantity (bits as given to add).
  double value(int key, int bits) const {
    const u128 s = sums_[key];
    const double hi = static_cast<double>(static_cast<std::uint64_t>(s >> 64));
    const double lo = static_cast<double>(static_cast<std::uint64_t>(s));
    return (hi * 18446744073709551616.0 + lo) * fp::pow2i(-bits);
  }

 private:
  std::vector<u128> sums_;
};

}  // namespace cutoff
