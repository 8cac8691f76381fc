#pragma once
/// @file
/// The firms' market clearing, one price per provider (docs/model.md §2.6(c), §10).
///
/// Each firm that chose provider p bids a `FirmBid`. Its demand at price π is
/// x_i(π) = min(need, money/π) if π ≤ pi_out, else 0, and D(π) = Σ w_i·x_i(π) is
/// non-increasing. Per provider (capacity K, floor p_min, cap p_max):
///  1. π* = inf{π ≥ p_min : D(π) ≤ K}; if D(p_min) ≤ K, π* = p_min.
///  2. If D(π*) > K (a downward jump at π*: the firms with pi_out == π* still buy
///     at π*), those marginal buyers are rationed pro rata, x_i(π*)·r with
///     r = (K − D_nonmarginal(π*)) / D_marginal(π*); below min_alloc → 0 (unsold).
///  3. If π* > p_max: π = p_max and classes 0, 1, 2 are served in order at p_max,
///     the first one that does not fit pro rata (below min_alloc → 0), later ones 0.
///  4. First-resort: the home firms clear first on all of K (rules 1–3) at
///     π_home; the others on K − sold_home at π_rest = max(π_home, their own π).
///     K − sold_home is taken by the rule, not from a rounded sum: when the home
///     firms bind (D_home(p_min) > K) it is exactly the pro-rata shares zeroed
///     by min_alloc (0 without any), else K − D_home(p_min).
///  5. (v5) A provider's plan layer may bid too (ProviderSupply::plan_need): it
///     counts in D(π) as one more bid of the rest (rules 1–4 apply to it), added
///     by the engine to every pass but the statistics, so `sold` and every
///     statistic are the firms' alone.
/// min_alloc applies to pro-rata shares only: an unrationed firm gets x_i(π),
/// which is ≥ min_alloc whenever pi_out ≤ money/min_alloc and need ≥ min_alloc
/// (as §10's pi_out guarantees).
///
/// Algorithm (O(n) passes over the bids, no sort of the bids). A bid has two
/// breakpoints (keys): c = min(money/need, pi_out), up to which it demands `need`,
/// and o = pi_out, above which it demands 0; on (c, o] it demands money/π. So
///   D(π) = A(π) + M(π)/π,  A(π) = Σ_{c ≥ π} w·need,
///   M(π) = Σ_{o ≥ π} w·money − Σ_{c ≥ π, c < o} w·money,
/// both suffix sums over keys ≥ π. Keys are binned by their IEEE bit patterns,
/// which order positive doubles and are logarithmic (64 bins per octave at shift
/// 46): bin j of a range [klo, khi) of bit patterns holds the keys with bits in
/// [klo + j·2^shift, klo + (j+1)·2^shift), and its lower edge from_bits(klo +
/// j·2^shift) is an exact double, so the suffix sums give D at every edge
/// exactly. Pass 1 histograms 4096 coarse bins covering [p_min, p_min·2^64) (plus
/// the keys above); suffix sums over the bins and a bisection on the edges find
/// the bin where D meets K; the
/// next pass gathers that bin's keys (when at most `gather_limit`), otherwise
/// histograms it into 65536 finer bins (shift 30, 14, 0) until the bin is a single
/// key value, whose sums one more pass collects (the many-equal-keys case). An
/// exact sweep over the gathered keys gives π*: a key (jump, rule 2) or the root
/// π = M/(K − A) of the segment between two keys. A last pass sums the
/// allocations (sold, rationing). So a clearing takes 3 passes (2 when
/// everything fits at p_min, +1 per refinement), 5 with first-resort, since the
/// others' clearing waits for what the home firms bought; all providers share
/// each pass.
///
/// Exactness and determinism. Every sum is a 128-bit fixed-point integer: terms
/// w·need and capacity in units of 2^−60 H100e, w·money in 2^−44 $, each rounded
/// once and added as integers (addition modulo 2^128, exact while the true sums
/// stay below 2^128), so the sums, hence every decision and every reported
/// number, are the same bits at any thread count, in any order, and on a GPU.
/// Each term must be below 2^96 units: w·need < 2^36 H100e (6.9e10) and
/// w·money < 2^52 $ (4.5e15) per bid, and n_firms < 2^32; else
/// std::overflow_error. (64-bit sums cannot hold both the range of a decade of
/// growth and a resolution fine enough for 1e-9 relative prices on small
/// markets.) Comparisons D(t) > K are exact rational comparisons on these
/// integers (256-bit products), so the inf of rule 1 is found exactly on the
/// fixed-point data; only the final root π = M/(K − A) and the ratios are
/// rounded (a few ulp).
///
/// The allocation itself is `allocate(bid, result)`, a CUTOFF_HD function of the
/// bid and its provider's `ProviderClearing`, applied per agent by the caller
/// (OpenMP loop or CUDA kernel) without any global state.

#include <cstdint>
#include <cstring>
#include <tuple>
#include <vector>

#include "core/hd/fixed.hpp"
#include "core/hd/fpmath.hpp"
#include "core/hd/hd.hpp"
#include "core/market/solver.hpp"

namespace cutoff {

/// One firm's bid on its provider (§2.5, §10).
struct FirmBid {
  double w;          ///< agent weight (real firms per agent), > 0
  double need;       ///< q'_i·h_g: H100e it wants at most (> 0)
  double money;      ///< B_i − F_access: $ it can spend on compute (> 0)
  double pi_out;     ///< drop-out price ($ per H100e-month): buys nothing above it; ≤ 0: no bid
  double min_alloc;  ///< q_min·h_g: a rationed allocation below this is 0 (≥ 0)
  std::uint8_t cls;  ///< priority class: 0 trusted, 1 kyc, 2 general (values > 2 count as 2)
  bool home;         ///< the firm is in the lever country (first-resort)
};

/// A provider's side of the market (§2.6).
struct ProviderSupply {
  double capacity;    ///< firm capacity K, H100e (≥ 0, finite)
  double p_min;       ///< price floor, $ per H100e-month (> 0, finite)
  double p_max;       ///< price cap (≥ p_min; +inf: none)
  bool first_resort;  ///< the home firms clear first (§2.6, first-resort)
  /// (v5, `plan_split`) the plan layer's bid for capacity above its floor: it wants
  /// `plan_need` H100e (≥ 0, finite; 0: no bid) at any price up to `plan_value` $ per
  /// H100e-month. It clears with the firms (with the rest under first-resort, in the
  /// general class) as one bid of weight 1 that its money never binds and that has no
  /// minimum allocation, and it is left out of every statistic: what it wins is
  /// simply not sold to firms.
  double plan_need = 0.0;
  double plan_value = 0.0;
};

/// The plan layer's bid in provider supply @p s (pi_out 0: it does not bid).
CUTOFF_HD_INLINE FirmBid plan_layer_bid(const ProviderSupply& s) {
  if (!(s.plan_need > 0.0 && s.plan_value > 0.0)) return FirmBid{1.0, 1.0, 1.0, 0.0, 0.0, 2, false};
  // Money a little above need·value, so that money/need ≥ value after rounding: never budget-bound.
  return FirmBid{1.0, s.plan_need, s.plan_need * s.plan_value * (1.0 + 0x1p-50), s.plan_value, 0.0, 2, false};
}

/// How a group's allocation is computed from each firm's demand x_i(price).
enum ClearMode : std::uint8_t {
  kClearAll = 0,       ///< everyone gets x_i(price) (no rationing)
  kClearMarginal = 1,  ///< rule 2: firms with pi_out == price get x_i·ratio (below min_alloc → 0)
  kClearClassCap = 2,  ///< rule 3: class < cut_class full, == cut_class x_i·ratio (below min_alloc → 0), > 0
};

inline constexpr int kClearClasses = 3;

/// One uniform-price clearing: all the provider's firms, or one side of first-resort.
struct ClearingGroup {
  double price;            ///< $ per H100e-month
  double ratio;            ///< the pro-rata factor of the rationed firms (mode ≠ kClearAll)
  std::uint8_t mode;       ///< ClearMode
  std::uint8_t cut_class;  ///< kClearClassCap: the class served pro rata
  // What the clearing did (host diagnostics; not needed by allocate).
  double capacity;                    ///< H100e it cleared on (K, or K − sold_home for the rest)
  double sold;                        ///< Σ w·alloc, H100e (fixed-point sum of the allocations)
  double demand_pmin[kClearClasses];  ///< Σ w·x_i(p_min) per class, H100e
  double rationed[kClearClasses];     ///< Σ w·(x_i(p_min) − alloc_i) per class, H100e
  std::uint64_t n_bidders;            ///< agents with x_i(p_min) > 0
  std::uint64_t n_rationed;           ///< agents with alloc < x_i(price) (pro rata, cut off, or zeroed)
  std::uint64_t n_zeroed;             ///< agents with x_i(price) > 0 and alloc 0
  double w_rationed;                  ///< the same, weighted (real firms)
  double w_zeroed;
};

/// A provider's clearing: everything `allocate` needs, plus diagnostics.
struct ProviderClearing {
  double price;       ///< π_p: the uniform price; under first-resort π_rest (non-home firms)
  double price_home;  ///< π_home under first-resort; equal to `price` otherwise
  double p_min;       ///< the floor (for rationed = x(p_min) − alloc)
  bool first_resort;
  ClearingGroup home;  ///< first-resort only: the home firms' clearing (else unused, zero)
  ClearingGroup rest;  ///< all firms; under first-resort the non-home firms
  double capacity;     ///< K, H100e
  double sold;         ///< home.sold + rest.sold, H100e
  double revenue;      ///< home.price·home.sold + rest.price·rest.sold, $
};

// ---------------------------------------------------------------------------
// Per-agent rules (CUTOFF_HD: compiled for the OpenMP loops and the kernels)
// ---------------------------------------------------------------------------

/// The largest double below x > 0.
CUTOFF_HD_INLINE double clearing_prev_double(double x) { return fp::from_bits(fp::bits(x) - 1); }

/// The price up to which the bid is not budget-bound: money/need.
CUTOFF_HD_INLINE double bid_budget_price(const FirmBid& b) { return b.money / b.need; }

/// x_i(π): min(need, money/π) if 0 < π ≤ pi_out, else 0 (H100e). The result
/// satisfies π·x ≤ money in floating point (stepped down an ulp if rounding
/// would overspend), and is non-increasing in π.
CUTOFF_HD_INLINE double bid_demand(const FirmBid& b, double price) {
  if (!(b.pi_out > 0.0) || !(price > 0.0) || price > b.pi_out) return 0.0;
  double x = price <= bid_budget_price(b) ? b.need : b.money / price;
  for (int k = 0; k < 4 && x > 0.0 && x * price > b.money; ++k) x = clearing_prev_double(x);
  return x;
}

/// The group of `pc` that clears bid `b`.
CUTOFF_HD_INLINE const ClearingGroup& clearing_group(const FirmBid& b, const ProviderClearing& pc) {
  return (pc.first_resort && b.home) ? pc.home : pc.rest;
}

/// The price firm `b` pays per H100e on its provider.
CUTOFF_HD_INLINE double paid_price(const FirmBid& b, const ProviderClearing& pc) { return clearing_group(b, pc).price; }

/// The allocation of firm `b` (H100e per real firm) on the provider it bid on.
CUTOFF_HD_INLINE double allocate(const FirmBid& b, const ProviderClearing& pc) {
  const ClearingGroup& g = clearing_group(b, pc);
  const double x = bid_demand(b, g.price);
  if (!(x > 0.0)) return 0.0;
  double a;
  if (g.mode == kClearMarginal) {
    if (b.pi_out != g.price) return x;
    a = x * g.ratio;
  } else if (g.mode == kClearClassCap) {
    const int c = b.cls < kClearClasses ? b.cls : kClearClasses - 1;
    if (c < g.cut_class) return x;
    if (c > g.cut_class) return 0.0;
    a = x * g.ratio;
  } else {
    return x;
  }
  return a < b.min_alloc || !(a > 0.0) ? 0.0 : a;
}

/// x_i(p_min) − alloc_i: what scarcity withheld from firm `b` (§7), H100e.
CUTOFF_HD_INLINE double bid_rationed(const FirmBid& b, const ProviderClearing& pc) {
  const double r = bid_demand(b, pc.p_min) - allocate(b, pc);
  return r > 0.0 ? r : 0.0;
}

// ---------------------------------------------------------------------------
// Keys, bins and fixed point (CUTOFF_HD so a GPU pass can build the same histograms)
// ---------------------------------------------------------------------------

inline constexpr int kClearComputeBits = 60;             ///< H100e sums in units of 2^−60 H100e
inline constexpr int kClearMoneyBits = 44;               ///< $ sums in units of 2^−44 $
inline constexpr int kClearWeightBits = 32;              ///< weight sums in units of 2^−32 firms
inline constexpr int kClearTermBits = 96;                ///< every term < 2^96 units
inline constexpr int kClearCoarseShift = 46;             ///< 64 bins per octave
inline constexpr std::uint32_t kClearCoarseBins = 4096;  ///< 64 octaves above p_min
inline constexpr int kClearFineLog2 = 16;                ///< 65536 bins per refinement

/// The bin of a key (a price > 0) in the range [klo, khi) of bit patterns cut
/// into bins of 2^shift patterns: −1 below the range (or key ≤ 0), n_bins at or
/// above khi, where n_bins = ((khi − klo − 1) >> shift) + 1.
CUTOFF_HD_INLINE std::int64_t clearing_bin(double key, std::uint64_t klo, std::uint64_t khi, int shift) {
  if (!(key > 0.0)) return -1;
  const std::uint64_t k = fp::bits(key);
  if (k < klo) return -1;
  if (k >= khi) return static_cast<std::int64_t>(((khi - klo - 1) >> shift) + 1);
  return static_cast<std::int64_t>((k - klo) >> shift);
}

/// Driver options.
struct ClearingOptions {
  /// A crossing bin holding at most this many keys is gathered (80 bytes each)
  /// and swept exactly; a fuller one is histogrammed again, 65536 times finer,
  /// which costs a pass. 2^18 keys (≈ 21 MB) gathers the crossing coarse bin
  /// directly up to ~10^8 bids. 0 always refines down to a single key (tests).
  std::uint64_t gather_limit = 1ULL << 18;
};

}  // namespace cutoff

// ---------------------------------------------------------------------------
// Host driver
// ---------------------------------------------------------------------------
namespace cutoff {
namespace clearing_detail {

/// Sums at one key value (gathered), all in fixed point; dM is modular.
struct KeyEvent {
  double key;
  u128 dA;  ///< Σ w·need of the bids with c == key
  u128 dM;  ///< Σ w·money of split bids with o == key, minus that with c == key
  u128 mA;  ///< marginal: Σ w·need of the bids with o == key and c == o
  u128 mM;  ///< marginal: Σ w·money of the bids with o == key and c < o
};

enum TaskKind : std::uint8_t { kTaskIdle, kTaskHist, kTaskGather, kTaskKey, kTaskStats };

/// What one market (provider × {home, rest}) needs from the current pass.
struct Task {
  TaskKind kind = kTaskIdle;
  bool coarse = false;  ///< pass 1: also the class sums at p_max
  std::uint64_t klo = 0, khi = 0;
  int shift = 0;
  std::uint32_t n_bins = 0;  ///< bins of the histogram (the extra last one: keys ≥ khi)
  double p_min = 0.0, p_max = 0.0;
};

/// X(type, name, extent): the statistics pass's sums of one market, per market and
/// summed by every backend's sink (ClearSink::stats). Each is a modular integer sum (any
/// merge order): dem and sold are Σ w·x(p_min) and Σ w·alloc per class (2^−60 H100e),
/// w_rat and w_zero the weights of the rationed and of the zeroed bids (2^−32 firms),
/// unsold Σ w·x·ratio of the pro-rata shares zeroed by min_alloc, n_bid, n_rat and
/// n_zero the counts of bids, rationed and zeroed bids. Adding a statistic is one line
/// here and one in ClearSink::stats; the solver reads them in finish_stats.
#define CUTOFF_CLEAR_STATS(X)    \
  X(u128, dem, [kClearClasses])  \
  X(u128, sold, [kClearClasses]) \
  X(u128, w_rat, )               \
  X(u128, w_zero, )              \
  X(u128, unsold, )              \
  X(std::uint64_t, n_bid, )      \
  X(std::uint64_t, n_rat, )      \
  X(std::uint64_t, n_zero, )

/// A modular sum's merge: a scalar, an array of them, or a key event's four sums.
inline void merge_sum(u128& a, u128 b) { a += b; }
inline void merge_sum(std::uint64_t& a, std::uint64_t b) { a += b; }
template <class T, std::size_t N> void merge_sum(T (&a)[N], const T (&b)[N]) {
  for (std::size_t j = 0; j < N; ++j) merge_sum(a[j], b[j]);
}
inline void merge_sum(KeyEvent& a, const KeyEvent& b) {
  a.dA += b.dA;
  a.dM += b.dM;
  a.mA += b.mA;
  a.mM += b.mM;
}

/// The statistics pass's totals of one market (CUTOFF_CLEAR_STATS): a plain struct, the
/// same on the host and the device, copied back whole.
struct ClearStats {
#define CUTOFF_CLEAR_STAT_MEMBER(T, name, extent) T name extent{};
  CUTOFF_CLEAR_STATS(CUTOFF_CLEAR_STAT_MEMBER)
#undef CUTOFF_CLEAR_STAT_MEMBER
  void merge(const ClearStats& o) {
#define CUTOFF_CLEAR_STAT_MERGE(T, name, extent) merge_sum(name, o.name);
    CUTOFF_CLEAR_STATS(CUTOFF_CLEAR_STAT_MERGE)
#undef CUTOFF_CLEAR_STAT_MERGE
  }
};

/// One market's sums of a pass (which of them a pass fills depends on its task).
struct MarketSums {
  u128 clsA[kClearClasses]{}, clsM[kClearClasses]{};  ///< coarse pass: the class sums at p_max
  KeyEvent key{};                                     ///< key pass: the sums at the key (key.key unused: 0)
  ClearStats stats;                                   ///< stats pass
  void merge(const MarketSums& o) {
    merge_sum(clsA, o.clsA);
    merge_sum(clsM, o.clsM);
    merge_sum(key, o.key);
    stats.merge(o.stats);
  }
};

/// A pass's partial results.
template <template <class> class H> struct ClearParts {
  H<u128> A, M;                ///< the histogram markets' bins, market m's from hist_off[m]
  H<std::uint64_t> cnt;        ///< their counts
  H<MarketSums> sums;          ///< per market
  H<std::uint64_t> first_bad;  ///< one: the lowest invalid bid (~0: none)
  H<int> over;                 ///< one: a term exceeded its fixed-point limit
  auto tie() { return std::tie(A, M, cnt, sums, first_bad, over); }
};
/// A pass's partials, with one list per market: the key events it gathers.
using ClearPassData = Partials<ClearParts, KeyEvent>;

/// A market's state between passes (defined here so that the solver is complete).
struct MarketState {
  enum Phase : std::uint8_t { kNeedHist, kWaitK, kNeedGather, kNeedKey, kNeedStats, kDone };
  int provider = 0, group = 1;  ///< group 0: home (first-resort), 1: rest / all
  bool used = false;
  Phase phase = kNeedHist;
  bool k_known = false;
  u128 K = 0;
  Task task;  ///< the task of the next pass
  // The last histogram.
  bool hist_coarse = false;
  std::vector<u128> A, M;
  std::vector<std::uint64_t> cnt;
  u128 clsA[kClearClasses] = {0, 0, 0}, clsM[kClearClasses] = {0, 0, 0};
  // The crossing range [klo, khi) and the sums over keys ≥ khi.
  std::uint64_t klo = 0, khi = 0;
  u128 hiA = 0, hiM = 0;
  std::vector<KeyEvent> ev;
  ClearStats stats;      ///< the statistics pass's totals
  bool binding = false;  ///< D(p_min) > K: all of K is sold but the zeroed shares
};

/// What a pass reads for each bid: the markets' tasks and the providers' supply
/// and (stats pass) results; host vectors, or their device copies.
struct PassView {
  int n_providers;
  const ProviderSupply* supply;
  const Task* task;  ///< 2 per provider: [2p] home, [2p+1] rest / all
  const ProviderClearing* res;
};

/// One pass of the clearing, as ClearingSolver::next plans it: what every bid's visit
/// reads (host vectors; a device driver uploads them and points a PassView at its copies).
struct ClearPass {
  std::vector<ProviderSupply> supply;  ///< per provider
  std::vector<Task> task;              ///< per market: 2 per provider, [2p] home, [2p+1] rest / all
  std::vector<ProviderClearing> res;   ///< per provider: the results so far (the stats pass reads them)
  /// Market m's bins in the pass's A, M and cnt: [hist_off[m], hist_off[m+1]).
  std::vector<std::uint64_t> hist_off;
  PassView view() const { return PassView{static_cast<int>(supply.size()), supply.data(), task.data(), res.data()}; }
};

/// The partials of `pass` before any bid is added.
ClearPassData clear_pass_fresh(const ClearPass& pass);
/// Adds a thread's partials into `into` (integer sums: any order).
void clear_merge(ClearPassData& into, const ClearPassData& from);

/// Host-side state machine of clear_firms (see the file comment), on the protocol of
/// the water-fill and the ranks (core/market/solver.hpp).
class ClearingSolver {
 public:
  ClearingSolver(std::uint64_t n_firms, const std::vector<ProviderSupply>& supply, const ClearingOptions& opt);

  /// The next pass to run; false when every market is cleared.
  bool next(ClearPass* pass);
  /// The merged partials of the pass last returned by next() (throws on invalid bids or overflow).
  void feed(ClearPassData&& data);
  const std::vector<ProviderClearing>& results() const { return res_; }
  int passes() const { return passes_; }

 private:
  void search(MarketState& mk);
  void resolve_floor(MarketState& mk);
  void sweep(MarketState& mk);
  void finish_stats(MarketState& mk);

  std::uint64_t n_firms_;
  std::vector<ProviderSupply> supply_;
  ClearingOptions opt_;
  std::vector<MarketState> mk_;  ///< 2 per provider: [2p] home, [2p+1] rest / all
  std::vector<Task> task_;       ///< the current pass's task per market
  std::vector<ProviderClearing> res_;
  std::vector<std::uint64_t> hist_off_;  ///< per market of the current pass (ClearPass::hist_off)
  int passes_ = 0;
};

/// Whether a bid (one with pi_out > 0) can be cleared: its provider exists, and its weight,
/// need, money and price are positive and finite, its min_alloc finite and not negative.
CUTOFF_HD_INLINE bool clearing_bid_valid(const PassView& v, int p, const FirmBid& b) {
  return p < v.n_providers && b.w > 0.0 && b.need > 0.0 && b.money > 0.0 && b.w < fp::kInf && b.need < fp::kInf &&
         b.money < fp::kInf && b.pi_out < fp::kInf && b.min_alloc >= 0.0 && b.min_alloc < fp::kInf;
}

/// The statistics pass's terms of a bid in market m (provider p, class cls of task t),
/// against the provider's clearing (clearing_visit).
CUTOFF_HD_TEMPLATE
template <class Sink>
CUTOFF_HD_INLINE void clearing_visit_stats(const PassView& v, const Task& t, int m, int p, int cls, const FirmBid& b,
                                           const Sink& sink) {
  bool ovf = false;
  const ProviderClearing& pc = v.res[p];
  const double x0 = bid_demand(b, t.p_min);
  const double xg = bid_demand(b, clearing_group(b, pc).price);
  const double a = allocate(b, pc);
  u128 unsold = 0;
  if (a == 0.0 && xg > 0.0) {  // a pro-rata share zeroed by min_alloc stays unsold
    const ClearingGroup& g = clearing_group(b, pc);
    const bool pro_rata =
        (g.mode == kClearMarginal && b.pi_out == g.price) || (g.mode == kClearClassCap && cls == g.cut_class);
    if (pro_rata) unsold = to_u128(to_fixed(b.w * (xg * g.ratio), kClearComputeBits, &ovf, kClearTermBits));
  }
  const bool rationed = a < xg;
  sink.stats(m, cls, to_u128(to_fixed(b.w * x0, kClearComputeBits, &ovf, kClearTermBits)),
             to_u128(to_fixed(b.w * a, kClearComputeBits, &ovf, kClearTermBits)), unsold, x0 > 0.0, rationed,
             rationed && a == 0.0, rationed ? to_u128(to_fixed(b.w, kClearWeightBits, &ovf, kClearTermBits)) : u128(0));
  if (ovf) sink.overflow();
}

/// A search pass's terms of a bid in market m (class cls): its budget price c and its
/// outside price o, into the histogram, the gathered events or the sums at one key, as
/// task t asks (clearing_visit).
CUTOFF_HD_TEMPLATE
template <class Sink>
CUTOFF_HD_INLINE void clearing_visit_search(const Task& t, int m, int cls, const FirmBid& b, const Sink& sink) {
  bool ovf = false;
  const double o = b.pi_out;
  if (o < t.p_min) return;  // never buys at a price ≥ p_min
  const double bp = bid_budget_price(b);
  const bool split = bp < o;  // budget-bound on (c, o]
  const double c = split ? bp : o;
  const u128 wn = to_u128(to_fixed(b.w * b.need, kClearComputeBits, &ovf, kClearTermBits));
  const u128 wm = split ? to_u128(to_fixed(b.w * b.money, kClearMoneyBits, &ovf, kClearTermBits)) : 0;
  if (ovf) sink.overflow();
  switch (t.kind) {
    case kTaskHist: {
      const std::int64_t bc = clearing_bin(c, t.klo, t.khi, t.shift);
      if (bc >= 0) sink.hist(m, bc, wn, u128(0) - wm);
      if (split) {
        const std::int64_t bo = clearing_bin(o, t.klo, t.khi, t.shift);
        if (bo >= 0) sink.hist(m, bo, u128(0), wm);
      }
      if (t.coarse && o >= t.p_max) {
        if (c >= t.p_max)
          sink.cls(m, cls, wn, u128(0));
        else
          sink.cls(m, cls, u128(0), wm);
      }
      break;
    }
    case kTaskGather: {
      const std::uint64_t kc = fp::bits(c), ko = fp::bits(o);
      const bool in_c = kc >= t.klo && kc < t.khi, in_o = ko >= t.klo && ko < t.khi;
      if (!split) {
        if (in_c) sink.gather(m, KeyEvent{c, wn, 0, wn, 0});
      } else {
        if (in_c) sink.gather(m, KeyEvent{c, wn, u128(0) - wm, 0, 0});
        if (in_o) sink.gather(m, KeyEvent{o, 0, wm, 0, wm});
      }
      break;
    }
    case kTaskKey: {
      const double k = fp::from_bits(t.klo);
      if (c == k) sink.key(m, wn, split ? u128(0) - wm : u128(0), split ? u128(0) : wn, u128(0));
      if (split && o == k) sink.key(m, u128(0), wm, u128(0), wm);
      break;
    }
    default: break;
  }
}

/// The work of one pass for bid i (provider p, or p < 0: none), shared by the
/// OpenMP loop and the CUDA kernel. The sink receives integer terms (summed in
/// any order: modular 128-bit additions) and gathered events:
///   bad(i), overflow(), hist(m, bin, dA, dM), cls(m, c, dA, dM), gather(m, event),
///   key(m, dA, dM, mA, mM), stats(m, c, dem, sold, unsold, bid, rationed, zeroed, w).
CUTOFF_HD_TEMPLATE
template <class Sink>
CUTOFF_HD_INLINE void clearing_visit(const PassView& v, std::uint64_t i, int p, const FirmBid& b, const Sink& sink) {
  if (p < 0 || !(b.pi_out > 0.0)) return;  // no bid
  if (!clearing_bid_valid(v, p, b)) {
    sink.bad(i);
    return;
  }
  const int m = 2 * p + ((v.supply[p].first_resort && b.home) ? 0 : 1);
  const Task& t = v.task[m];
  if (t.kind == kTaskIdle) return;
  const int cls = b.cls < kClearClasses ? b.cls : kClearClasses - 1;
  if (t.kind == kTaskStats)
    clearing_visit_stats(v, t, m, p, cls, b, sink);
  else
    clearing_visit_search(t, m, cls, b, sink);
}

/// The sink of clearing_visit, over the host's or the device's ops (core/market/solver.hpp).
template <class Ops> struct ClearSink {
  ClearParts<Ptr> p;
  const std::uint64_t* hist_off;  ///< per market (ClearPass::hist_off)
  typename Ops::template Lists<KeyEvent> ev;
  CUTOFF_HD_TEMPLATE CUTOFF_HD_INLINE void bad(std::uint64_t i) const { Ops::lower(*p.first_bad, i); }
  CUTOFF_HD_TEMPLATE CUTOFF_HD_INLINE void overflow() const { Ops::flag(*p.over); }
  CUTOFF_HD_TEMPLATE CUTOFF_HD_INLINE void hist(int m, std::int64_t bin, u128 dA, u128 dM) const {
    const std::uint64_t j = hist_off[m] + static_cast<std::uint64_t>(bin);
    Ops::add(p.A[j], dA);
    Ops::add(p.M[j], dM);
    Ops::count(p.cnt[j]);
  }
  CUTOFF_HD_TEMPLATE CUTOFF_HD_INLINE void cls(int m, int c, u128 dA, u128 dM) const {
    Ops::add(p.sums[m].clsA[c], dA);
    Ops::add(p.sums[m].clsM[c], dM);
  }
  CUTOFF_HD_TEMPLATE CUTOFF_HD_INLINE void gather(int m, const KeyEvent& e) const { ev.push(m, e); }
  CUTOFF_HD_TEMPLATE CUTOFF_HD_INLINE void key(int m, u128 dA, u128 dM, u128 mA, u128 mM) const {
    KeyEvent& k = p.sums[m].key;
    Ops::add(k.dA, dA);
    Ops::add(k.dM, dM);
    Ops::add(k.mA, mA);
    Ops::add(k.mM, mM);
  }
  CUTOFF_HD_TEMPLATE CUTOFF_HD_INLINE void stats(int m, int c, u128 dem, u128 sold, u128 unsold, bool bid,
                                                 bool rationed, bool zeroed, u128 w) const {
    ClearStats& s = p.sums[m].stats;
    Ops::add(s.dem[c], dem);
    Ops::add(s.sold[c], sold);
    Ops::add(s.unsold, unsold);
    if (bid) Ops::count(s.n_bid);
    if (rationed) {
      Ops::count(s.n_rat);
      Ops::add(s.w_rat, w);
    }
    if (zeroed) {
      Ops::count(s.n_zero);
      Ops::add(s.w_zero, w);
    }
  }
};

/// One pass of the clearing over bids 0 … n_firms−1 on the host: every bid visited once into
/// the threads' partials, merged (`bid` as in clear_firms).
template <class BidFn> ClearPassData clear_pass(std::uint64_t n_firms, const BidFn& bid, const ClearPass& pass) {
  const PassView view = pass.view();
  // Small markets are not worth a team of threads (the result is the same bits either way).
  return host_pass(
      n_firms, n_firms >= 16384, clear_pass_fresh(pass),
      [&](ClearPassData& local) {
        return ClearSink<HostOps>{local.ptrs(), pass.hist_off.data(), HostOps::lists(local.lists)};
      },
      [&](std::uint64_t i, const ClearSink<HostOps>& sink) {
        FirmBid b;
        const int p = bid(i, &b);
        clearing_visit(view, i, p, b, sink);
      },
      clear_merge);
}

}  // namespace clearing_detail

/// Clears every provider's firm market (docs/model.md §2.6(c)).
/// @param n_firms  agents are 0 … n_firms−1 (< 2^32)
/// @param supply   one entry per provider
/// @param bid      `int bid(std::uint64_t i, FirmBid* out)`: the provider agent i
///                 bids on (writing its bid), or −1. Called once per agent per
///                 pass (typically 3 passes, 5 with first-resort, at most ~10),
///                 from several threads; it must be pure and must not throw.
/// @return one ProviderClearing per provider; apply `allocate` per agent.
/// @throws std::invalid_argument on a bad supply or bid, std::overflow_error past
///         the fixed-point limits (see the file comment).
template <class BidFn>
std::vector<ProviderClearing> clear_firms(std::uint64_t n_firms, const std::vector<ProviderSupply>& supply,
                                          const BidFn& bid, const ClearingOptions& opt = ClearingOptions{}) {
  using namespace clearing_detail;
  ClearingSolver solver(n_firms, supply, opt);
  ClearPass pass;
  while (solver.next(&pass)) solver.feed(clear_pass(n_firms, bid, pass));
  return solver.results();
}

}  // namespace cutoff
