#pragma once
/// @file
/// Ranks without sorting (docs/model.md §7, §10): the top-share and the weighted Gini
/// coefficient of n weighted values from O(n) passes over log-spaced histograms,
/// and the fixed-point log-bin histograms they share with core/market/waterfill.hpp
/// (their bin, FixedBin, is the solvers' protocol's: core/market/solver.hpp).
///
/// ## Fixed-point log-bin histograms (shared with the water-fill)
///
/// * **Keys.** A value x ≥ 0 is binned by its IEEE-754 bit pattern
///   `key = bits(x)` (x = 0 → key 0), which is monotone in x. The top 11 bits are
///   the binary exponent, so `key >> 52` is a log-spaced bin of ratio 2 (the
///   *exponent bins*, 2047 of them for finite x), and a bin of key width 2^s inside
///   one exponent spans a value ratio of at most 1 + 2^(s−52): finer log bins by
///   integer arithmetic only, no range pass and no logarithm, identical on the host
///   and a GPU. A HistSpec cuts the keys [klo, min(klo + nbins·2^shift, khi + 1))
///   into nbins bins of key width 2^shift. x = 0 has its own bin.
/// * **Sums.** Every bin holds an exact count, two 128-bit unsigned fixed-point
///   sums (Fix128: the term is rounded once, half up, to an integer multiple of
///   2^−scale of its unit by exact bit manipulation, then added as an integer) and
///   the exact minimum and maximum key of its elements. Integer addition is
///   associative, so per-thread private histograms merged by addition, a GPU's
///   per-block histograms or its 64-bit atomics with carry (add the low words,
///   carry into the high words) all give the same bits at any thread count.
///   A carry out of bit 127 is detected and reported (std::overflow_error).
/// * **Scales (ranks).** Weights: 2^−64 of one weight unit (sums up to 2^64 ≈
///   1.8e19 weight units). Weighted values w·x: per bin, in units of 2^(E−64)
///   where 2^E ≤ the bin's largest possible x < 2^(E+1) (the bin's *exponent*), so
///   a term is w·x·2^(64−E) < 2^65·w and a bin sum overflows only if the bin's
///   weight reaches 2^63. Bins are never wider than 2^52 keys (one octave), so
///   x·2^−E ≥ 1/2 and rounding changes a term by at most 2^−64/w of itself, at
///   any magnitude of x. Sums of different bins are combined on the host in
///   double (compensated summation, in a fixed order).
///
/// ## What rank_stats computes
///
/// Elements i = 0 … n−1 with weight w_i ≥ 0 and value x_i ≥ 0 (finite), given by
/// a pure functor `bool get(std::uint64_t i, double* w, double* x)` that returns
/// false to skip element i; elements with w_i = 0 count for nothing. With
/// W = Σ w_i and X = Σ w_i·x_i:
///
/// * **top_share**(f): rank the elements by x descending and take the top f·W of
///   weight, the element straddling the cut counting with the part of its weight
///   inside it: top_share = (Σ_{x_i > x*} w_i·x_i + (f·W − Σ_{x_i > x*} w_i)·x*)/X,
///   where x* is the value at which the cumulative weight from the top reaches
///   f·W (ties at x* are interchangeable, so the value is well defined). It lies
///   in [f, 1] (clamped there against rounding). Exact up to floating-point
///   rounding (relative ~1e-15): the bin holding the cut is refined until it
///   holds a single value or at most `gather_limit` elements, which are gathered
///   and sorted (a sort of that small subset only).
/// * **gini**: rank ascending (x_1 ≤ … ≤ x_m), S_k = Σ_{j≤k} w_j·x_j:
///   G = 1 − Σ_k w_k·(2·S_{k−1} + w_k·x_k) / (W·X), i.e. one minus twice the area
///   under the weighted Lorenz curve (trapezoids); the same for any order of tied
///   values, 0 when all positive-weight x are equal, in [0, 1). Within a histogram
///   bin the ranks are unknown; the bin's term Σ w_k(2·S^in_{k−1} + w_k x_k) lies
///   between W_b·X_b (all values equal; the chord) and the two-point value for
///   the bin's actual minimum a and maximum b (the lowest convex Lorenz piece),
///   which differ by W_b²·(b−a)·t·(1−t), t = (b·W_b − X_b)/((b−a)·W_b). The
///   estimate takes the midpoint, so |G − G_exact| ≤ gini_error =
///   Σ_b W_b²(b−a)t(1−t)/(2·W·X) (returned; 0 when every bin holds one value).
///   A priori: the Gini histogram has at most `fine_bins` (2^15 by default,
///   ≥ 2^14 used) bins of key width 2^s over the occupied key range
///   [min positive x, max x] (never wider than one octave), so every bin has
///   b/a − 1 ≤ 2^(s−51) ≤ octaves/2^13 (octaves = log2(max x / min positive x)),
///   and gini_error ≤ max_b (b/a − 1)/8 ≤ octaves/2^16 (worst case: all mass in
///   one bin). In practice the bound scales as 1/bins² because the mass spreads
///   over many bins: with 2^15 bins and 1e6 elements, lognormal(σ = 1, 3, 6),
///   Pareto(1.1) and log-uniform over 58 octaves with 30% zeros all give
///   gini_error ≤ 1e-8 (actual errors ≤ 3e-9); tests/market/test_ranks.cpp checks
///   |G − G_exact| ≤ gini_error against a sorting oracle and gini_error against
///   the a-priori bound.
///
/// ## Passes
///
/// Pass 1: exponent histogram (2047 bins + a bin for x = 0): totals, the occupied
/// key range, and the bin holding the top-share cut. Pass 2 (skipped when every
/// occupied bin holds a single value): the fine histogram over the occupied range
/// for the Gini, also gathering the cut's exponent bin if it holds at most
/// `gather_limit` elements. Further passes only while the cut is unresolved:
/// gather the cut's fine bin, or split it into 2^refine_bits bins. So 1–2 passes
/// for small n, typically 3 for n ≳ 1e6 (lognormal values, 1e8 elements: the
/// cut's fine bin holds ~1e4).
///
/// RankSolver is the host-side state machine; rank_stats drives it with OpenMP
/// passes. A GPU backend runs the same passes (rank_accumulate per element) and
/// feeds the merged histograms to the same RankSolver, so both give the same bits.

#include <cstdint>
#include <tuple>
#include <vector>

#include "core/hd/fixed.hpp"
#include "core/hd/fpmath.hpp"
#include "core/hd/hd.hpp"
#include "core/market/solver.hpp"

namespace cutoff {

// ---------------------------------------------------------------------------
// Keys and histogram layout
// ---------------------------------------------------------------------------

inline constexpr int kExponentBins = 2047;  ///< finite exponents 0 … 2046

/// The monotone key of a value x ≥ 0 (x = ±0 → 0).
CUTOFF_HD_INLINE std::uint64_t value_key(double x) { return x == 0.0 ? 0 : fp::bits(x); }

/// The binary exponent E of the doubles with exponent field e: 2^E ≤ x < 2^(E+1)
/// (subnormals: E = −1022, x < 2^E).
CUTOFF_HD_INLINE int field_exponent(std::uint64_t key) {
  const int e = static_cast<int>((key >> 52) & 0x7ff);
  return (e == 0 ? 1 : e) - 1023;
}

/// Bins of key width 2^shift from klo: bin j holds keys [klo + j·2^shift, klo + (j+1)·2^shift),
/// keys above khi excluded (a refinement covers exactly the keys of the bin it refines).
struct HistSpec {
  std::uint64_t klo;
  int shift;
  int nbins;  ///< 0: no histogram
  std::uint64_t khi;

  /// The bin of a key, −1 outside.
  CUTOFF_HD_INLINE int bin(std::uint64_t key) const {
    if (nbins <= 0 || key < klo || key > khi) return -1;
    const std::uint64_t d = (key - klo) >> shift;
    return d < static_cast<std::uint64_t>(nbins) ? static_cast<int>(d) : -1;
  }
  /// First key of bin j (j = nbins: one past the last).
  CUTOFF_HD_INLINE std::uint64_t edge(int j) const { return klo + (static_cast<std::uint64_t>(j) << shift); }
  /// The exponent of bin j's largest finite key (the rank histograms' per-bin scale).
  CUTOFF_HD_INLINE int top_exponent(int j) const {
    std::uint64_t top = edge(j + 1) - 1;
    if (top > fp::kInfBits - 1) top = fp::kInfBits - 1;
    return field_exponent(top);
  }
};

/// The exponent-bin layout: bin = key >> 52 (one bin per binary exponent).
inline constexpr HistSpec kExponentSpec{0, 52, kExponentBins, fp::kInfBits - 1};

/// Neumaier's compensated sum (host): sums of a few thousand bin totals to ~1 ulp,
/// in the fixed order the caller adds them.
struct CompensatedSum {
  double s = 0, c = 0;
  void add(double x) {
    const double t = s + x;
    if ((s < 0 ? -s : s) >= (x < 0 ? -x : x))
      c += (s - t) + x;
    else
      c += (x - t) + s;
    s = t;
  }
  double value() const { return s + c; }
};

// ---------------------------------------------------------------------------
// Ranks
// ---------------------------------------------------------------------------

struct RankStats {
  double top_share;     ///< share of X held by the top `top_fraction` of weight (NaN if W = 0 or X = 0)
  double gini;          ///< weighted Gini coefficient (NaN if W = 0; 0 if X = 0)
  double gini_error;    ///< rigorous bound on |gini − exact| from within-bin ranks (0: exact)
  double total_weight;  ///< W = Σ w
  double total_value;   ///< X = Σ w·x
  int passes;           ///< passes over the elements
};

struct RankOptions {
  int fine_bins = 1 << 15;                ///< most bins of the Gini histogram (≥ half are used)
  std::uint64_t gather_limit = 1u << 16;  ///< gather and sort the cut bin when it holds at most this many
  int refine_bits = 13;                   ///< a refinement pass splits the cut bin into ≤ 2^refine_bits bins
};

/// One pass: a histogram of positive keys and/or a gather of keys in [glo, ghi].
/// Zero values are always counted in a separate bin (a = Σ w).
struct RankPass {
  HistSpec hist;
  bool gather;
  std::uint64_t glo, ghi;
};

/// A gathered element.
struct RankItem {
  std::uint64_t key;
  double w;
};

/// A pass's partial results: the histogram's bins, then the zero bin (x = 0);
/// bins: a = Σ w (2^−64), b = Σ w·x (2^(E−64), E = top_exponent).
template <template <class> class H> struct RankParts {
  H<FixedBin> bins;
  H<std::uint64_t> first_bad;  ///< one: the lowest invalid element (~0: none)
  H<int> over;                 ///< one: a sum overflowed
  auto tie() { return std::tie(bins, first_bad, over); }
};
/// One list: the gathered elements.
using RankPassData = Partials<RankParts, RankItem>;

/// Per-element work of a pass (host and device): adds (w, x) with w > 0, x ≥ 0
/// finite to the zero bin or its histogram bin, and reports whether the element is
/// to be gathered. Returns true on overflow.
CUTOFF_HD_TEMPLATE
template <class Add = BinAdd>
CUTOFF_HD_INLINE bool rank_accumulate(const RankPass& pass, FixedBin* bins, FixedBin& zero, double w, double x,
                                      bool* gather, const Add& add = Add{}) {
  bool o = false;
  const Fix128 wf = to_fixed(w, 64, &o);
  const std::uint64_t key = value_key(x);
  *gather = pass.gather && key >= pass.glo && key <= pass.ghi && key != 0;
  if (key == 0) return add(zero, 0, wf, fix_zero()) || o;
  const int j = pass.hist.bin(key);
  if (j >= 0) {
    const Fix128 xf = to_fixed(w * x, 64 - pass.hist.top_exponent(j), &o);
    o = add(bins[j], key, wf, xf) || o;
  }
  return o;
}

/// One element of a rank pass (host and device): get(i, &w, &x) → false skips it.
/// The sink takes bad(i), overflow(), gather(item) and holds bins(), zero(), adder().
CUTOFF_HD_TEMPLATE
template <class Get, class Sink>
CUTOFF_HD_INLINE void rank_visit(const RankPass& pass, std::uint64_t i, const Get& get, const Sink& sink) {
  double w = 0, x = 0;
  if (!get(i, &w, &x)) return;
  if (!(w >= 0.0 && w < fp::kInf && x >= 0.0 && x < fp::kInf)) {
    sink.bad(i);
    return;
  }
  if (w == 0.0) return;
  bool g = false;
  if (rank_accumulate(pass, sink.bins(), sink.zero(), w, x, &g, sink.adder())) sink.overflow();
  if (g) sink.gather(RankItem{value_key(x), w});
}

/// The sink of rank_visit, over the host's or the device's ops (core/market/solver.hpp).
template <class Ops> struct RankSink {
  RankParts<Ptr> p;
  int nbins;
  typename Ops::template Lists<RankItem> items;
  CUTOFF_HD_INLINE FixedBin* bins() const { return p.bins; }
  CUTOFF_HD_INLINE FixedBin& zero() const { return p.bins[nbins]; }
  CUTOFF_HD_INLINE typename Ops::BinAdd adder() const { return {}; }
  CUTOFF_HD_TEMPLATE CUTOFF_HD_INLINE void bad(std::uint64_t i) const { Ops::lower(*p.first_bad, i); }
  CUTOFF_HD_TEMPLATE CUTOFF_HD_INLINE void overflow() const { Ops::flag(*p.over); }
  CUTOFF_HD_TEMPLATE CUTOFF_HD_INLINE void gather(const RankItem& r) const { items.push(0, r); }
};

/// The partials of a pass before any element is added.
RankPassData rank_pass_fresh(const RankPass& pass);
/// Adds a thread's partials into `into` (integer sums: any order).
void rank_merge(RankPassData& into, const RankPassData& from);

/// §7: the metrics' top share is the share of the top 20% of weight (`top_fraction`).
inline constexpr double kTopFraction = 0.2;

/// Host-side state machine of rank_stats (see the file comment).
class RankSolver {
 public:
  explicit RankSolver(double top_fraction = kTopFraction, const RankOptions& options = {});
  /// The next pass to run; false when the result is ready.
  bool next(RankPass* pass);
  /// The merged partials of the pass last returned by next() (throws std::invalid_argument
  /// naming the lowest element with a negative or non-finite weight or value).
  void feed(RankPassData&& data);
  RankStats result() const;

 private:
  enum class Stage { kFirst, kFine, kCut, kDone };
  void locate_cut(const std::vector<FixedBin>& bins, const HistSpec& spec, const FixedBin* zero, Fix128 w_above,
                  CompensatedSum x_above);
  void resolve_gathered(std::vector<RankItem>& items);
  void gini_from(const std::vector<FixedBin>& bins, const HistSpec& spec, const FixedBin& zero);
  void plan_cut_pass();
  /// The first pass (per binary exponent): the totals, then the cut, the Gini or the next pass.
  void feed_first(const std::vector<FixedBin>& bins, const FixedBin& zero);

  double f_;
  RankOptions opt_;
  Stage stage_ = Stage::kFirst;
  RankPass pass_{};
  bool gini_done_ = false, cut_done_ = false;
  // totals
  Fix128 W_fix_{0, 0};
  double W_ = 0, X_ = 0;
  Fix128 T_fix_{0, 0};
  std::uint64_t kmin_pos_ = 0, kmax_ = 0;
  // the unresolved cut: keys [cut_lo_, cut_hi_], count, weight and value above it
  std::uint64_t cut_lo_ = 0, cut_hi_ = 0, cut_count_ = 0;
  Fix128 w_above_{0, 0};
  CompensatedSum x_above_;
  double top_ = 0;
  double gini_ = 0, gini_err_ = 0;
  int passes_ = 0;
};

/// One OpenMP pass of rank_stats over the elements (private histograms merged by
/// integer addition: the same bits at any thread count).
template <class Get> RankPassData rank_pass(std::uint64_t n, const Get& get, const RankPass& pass) {
  const int nb = pass.hist.nbins > 0 ? pass.hist.nbins : 0;
  return host_pass(
      n, true, rank_pass_fresh(pass),
      [&](RankPassData& local) {
        return RankSink<HostOps>{local.ptrs(), nb, HostOps::lists(local.lists)};
      },
      [&](std::uint64_t i, const RankSink<HostOps>& sink) { rank_visit(pass, i, get, sink); }, rank_merge);
}

/// Top-share and Gini of n weighted values (see the file comment). `get(i, &w, &x)`
/// is a pure function; returns false to skip element i.
template <class Get>
RankStats rank_stats(std::uint64_t n, const Get& get, double top_fraction = kTopFraction,
                     const RankOptions& options = {}) {
  RankSolver solver(top_fraction, options);
  RankPass pass;
  while (solver.next(&pass)) solver.feed(rank_pass(n, get, pass));
  return solver.result();
}

}  // namespace cutoff
