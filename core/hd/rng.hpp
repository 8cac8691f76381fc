#pragma once
/// @file
/// Counter-based random numbers: Philox-4x32-10 from Random123, keyed by
/// (seed, replicate) and counted by (agent, tick, stream, draw). Any draw is a
/// pure function of those numbers, so results do not depend on thread count,
/// agent order or backend (docs/model.md §3).
///
/// Packing (tests/hd/test_rng.cpp checks the boundaries):
///   key[0] = seed            key[1] = replicate
///   ctr[0] = agent & 2^32−1  ctr[1] = agent >> 32
///   ctr[2] = tick as uint32 (tick −1, the initial state, is 0xffffffff)
///   ctr[3] = stream << 16 | block, block = 0, 1, 2 … for successive 4-word blocks

#include <Random123/philox.h>

#include <cstdint>

#include "core/hd/fpmath.hpp"
#include "core/hd/hd.hpp"

namespace cutoff {

/// One stream id per purpose, so that adding a draw to one rule never shifts another's.
enum class Stream : std::uint16_t {
  FirmInit = 1,      ///< sector-free firm draws at initialisation: size, A, b, defender
  UserInit = 2,      ///< z_u, n_u, initial adoption and choice noise
  Kyc = 3,           ///< KYC clearance draws (step 4)
  Switch = 4,        ///< provider re-choice (step 4)
  ChoiceNoise = 5,   ///< Gumbel noise of the (provider, generation) choice (step 4)
  Productivity = 6,  ///< ε of step 7
  Entrant = 7,       ///< an entrant's b_i and A (step 8)
  Adopt = 8,         ///< adoption (step 9)
};

/// Draws for one (seed, replicate, agent, tick, stream). Cheap to construct;
/// make one where the draws are needed.
class Rng {
 public:
  using Philox = r123::Philox4x32;

  CUTOFF_HD Rng(std::uint32_t seed, std::uint32_t replicate, std::uint64_t agent, std::int32_t tick, Stream stream) {
    key_ = {{seed, replicate}};
    ctr_ = {{static_cast<std::uint32_t>(agent), static_cast<std::uint32_t>(agent >> 32),
             static_cast<std::uint32_t>(tick), static_cast<std::uint32_t>(stream) << 16}};
  }

  /// The key and first counter, for tests of the packing.
  CUTOFF_HD Philox::key_type key() const { return key_; }
  CUTOFF_HD Philox::ctr_type counter() const { return ctr_; }

  /// Next raw 32-bit word.
  CUTOFF_HD std::uint32_t next_u32() {
    if (used_ == 4) refill();
    return buf_.v[used_++];
  }

  /// Uniform on the open interval (0, 1) with 53 random bits.
  CUTOFF_HD double uniform() {
    const std::uint64_t hi = next_u32();
    const std::uint64_t lo = next_u32();
    const std::uint64_t m = ((hi << 32) | lo) >> 11;  // 53 bits
    return (static_cast<double>(m) + 0.5) * (1.0 / 9007199254740992.0);
  }

  /// Standard normal by Box–Muller; the second value of each pair is kept.
  CUTOFF_HD double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = uniform();
    const double u2 = uniform();
    const double rad = sqrt_(-2.0 * fp::log(u1));
    double s, c;
    fp::sincos_turns(u2, &s, &c);
    spare_ = rad * s;
    has_spare_ = true;
    return rad * c;
  }

  /// Lognormal with median 1: exp(σ·z).
  CUTOFF_HD double lognormal_median1(double sigma) { return fp::exp(sigma * normal()); }
  /// Lognormal with mean 1: exp(σ·z − σ²/2).
  CUTOFF_HD double lognormal_mean1(double sigma) { return fp::exp(sigma * normal() - 0.5 * sigma * sigma); }
  /// Standard Gumbel: −ln(−ln u).
  CUTOFF_HD double gumbel() { return -fp::log(-fp::log(uniform())); }
  /// True with probability p.
  CUTOFF_HD bool bernoulli(double p) { return uniform() < p; }

 private:
  CUTOFF_HD static double sqrt_(double x) {
#if defined(__CUDA_ARCH__)
    return ::sqrt(x);
#else
    return __builtin_sqrt(x);
#endif
  }
  CUTOFF_HD void refill() {
    buf_ = Philox()(ctr_, key_);
    ctr_.v[3] += 1;  // next block of the same stream
    used_ = 0;
  }

  Philox::key_type key_;
  Philox::ctr_type ctr_;
  Philox::ctr_type buf_{};
  int used_ = 4;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

}  // namespace cutoff
