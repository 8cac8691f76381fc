#pragma once
/// @file
/// The consumer water-fill of docs/model.md §2.6(e), for all providers at once, in
/// O(n) passes over log-spaced histograms of the users' breakpoints (§10), with
/// the deal hosts' consumer floor of §6 as a first stage.
///
/// ## The fill
///
/// User u of provider p has weight w_u, cap c_u = min(need_u, plancap_u) (Mtok),
/// plan weight p_u (w_plan) and serving cost h_u (H100e per Mtok of its
/// generation). At level λ it uses use_u(λ) = min(c_u, λ·p_u), and the provider's
/// consumer load is S(λ) = Σ_u w_u·h_u·use_u(λ) (H100e): continuous, piecewise
/// linear and non-decreasing, with a breakpoint at λ_u = c_u/p_u (below it u
/// rises with slope w·h·p, above it u is saturated at w·h·c). With consumer
/// capacity C (H100e):
///
///     λ = max{λ ≥ 0 : S(λ) ≤ C},   λ = +inf when S(∞) = Σ w·h·c ≤ C.
///
/// User u is **compute-capped** when λ·p_u < c_u (water_capped); hitting its own
/// plan cap is not scarcity. A finite λ has S(λ) = C (continuity).
///
/// ## Deal hosts' floor (§6): two stages
///
/// Users flagged `host_floor` (a deal host's users on the provider it dealt
/// with) first share the floor F' = min(F, C) alone: λ1 = max{λ : S_host(λ) ≤ F'}
/// (+inf if all their caps fit). That uses U1 = min(F', S_host(∞)). Then everyone
/// shares the whole capacity C, the host users keeping their head start: user u
/// rises to Λ_u = max(λ, λ1) if flagged, else λ, with
///
///     λ = max{λ : S_other(λ) + S_host(max(λ, λ1)) ≤ C}.
///
/// Equivalently (what the solver does, with three plain fills): let λ_J be the
/// joint fill of all users on C; if λ_J ≥ λ1 then λ = λ_J (everyone is above the
/// head start), else λ = the fill of the other users alone on C − U1 (< λ1).
/// With F = 0, or no host user with positive demand, there is no first stage and
/// lambda_floor = 0. So the floor is a reservation: unused floor capacity is
/// shared by everyone, and host users are never worse off than without it.
///
/// ## Method, exactness, determinism
///
/// Pass 1: per (provider, class) an exponent histogram (core/market/ranks.hpp) of the
/// breakpoint keys bits(λ_u), holding the count, Σ w·h·c and Σ w·h·p, in 128-bit
/// fixed point (order-independent: the same bits at any thread count and on a
/// GPU), plus the exact min and max breakpoint of each bin. A prefix over the bins
/// finds the bin where S crosses C: below it users are saturated (Σ w·h·c), above
/// it they rise (Σ w·h·p). Pass 2 gathers that bin's users (at most
/// `gather_limit`) and sweeps their sorted breakpoints, solving S(λ) = C exactly
/// on the linear piece: λ = (C − A)/B with A (saturated load) an exact fixed-point
/// integer and B (rising slope) compensated; a bin holding a single breakpoint
/// value is solved without gathering, and a bin with more users is first split
/// into 2^refine_bits sub-bins (another pass). All fills of all providers share
/// the passes: typically 2, 3 with huge bins.
///
/// Scales: for provider p with capacity C, 2^s_p with C·2^s_p in [2^63, 2^64)
/// (s_p = 64 if C = 0 or C = +inf): w·h·c is held in units of 2^−s_p H100e
/// (resolution C·2^−64), and w·h·p in units of 2^−(s_p+E) where 2^E is the lower
/// edge of the bin's breakpoints (so that term is ≤ w·h·c too). `demand` is
/// Σ w·h·c at that resolution. Sums overflow only when S(∞) ≥ 2^64·C (capacity
/// below 5e-20 of demand): the provider's histograms are then rebuilt once with
/// the scale taken from its largest term and user count (one more pass; λ is
/// then resolved to ~2^−100 of demand, in absolute terms), and a second overflow
/// throws std::overflow_error.
///
/// Accuracy: λ = R/B with R = C − A exact in fixed point and B compensated, so λ
/// is within a few ulp of exact plus the conditioning of S(λ) = C (the change of
/// λ that moves S by a few ulp of C). tests/market/test_waterfill.cpp checks |λ − λ_exact|
/// ≤ 1e-12·λ_exact + 4 ulp(C)/S'(λ) against a __float128 oracle; in 12,000 random
/// fills, all but the degenerate "floor takes all of C" cases (λ ≈ 1e-17 by
/// rounding vs 0) were within 1e-12 relative, most within 1e-15.
///
/// WaterSolver is the host state machine and water_fill drives it with OpenMP
/// passes; a GPU backend runs the same passes (water_add_level0, water_add_job
/// per user) and feeds the same WaterSolver, so it gives the same bits.

#include <cstdint>
#include <tuple>
#include <vector>

#include "core/hd/fpmath.hpp"
#include "core/hd/hd.hpp"
#include "core/market/ranks.hpp"
#include "core/market/solver.hpp"

namespace cutoff {

/// One user's bid in the consumer layer.
struct UserBid {
  double weight;       ///< w_u, people per agent (≥ 0)
  double cap;          ///< c_u = min(need_u, plancap_u), Mtok (≥ 0)
  double plan_weight;  ///< p_u = w_plan (> 0 where cap > 0)
  double cost;         ///< h_u, H100e per Mtok of the generation it uses (≥ 0)
  bool host_floor;     ///< a deal host's user: filled first on the provider's floor (§6)
};

/// One provider's water level.
struct WaterLevel {
  double lambda;        ///< λ_p (+inf: every cap fits)
  double lambda_floor;  ///< λ1 of its host_floor users' first stage (0: no first stage; +inf: all fit the floor)
  double demand;        ///< S(∞) = Σ w·h·c over its users, H100e (consumer demand at full caps)
  double demand_floor;  ///< the same over its host_floor users
};

/// The level user u rises to: max(λ, λ1) for host_floor users, else λ.
CUTOFF_HD_INLINE double water_level(const UserBid& b, const WaterLevel& l) {
  return b.host_floor && l.lambda_floor > l.lambda ? l.lambda_floor : l.lambda;
}
/// use_u = min(c_u, Λ_u·p_u), Mtok.
CUTOFF_HD_INLINE double water_use(const UserBid& b, const WaterLevel& l) {
  return fp::min(b.cap, water_level(b, l) * b.plan_weight);
}
/// Compute-capped: Λ_u·p_u < c_u.
CUTOFF_HD_INLINE bool water_capped(const UserBid& b, const WaterLevel& l) {
  return water_level(b, l) * b.plan_weight < b.cap;
}

struct WaterfillOptions {
  std::uint64_t gather_limit = 1u << 16;  ///< gather and sort the crossing bin when it holds at most this many users
  int refine_bits = 13;                   ///< a refinement pass splits the crossing bin into ≤ 2^refine_bits bins
};

/// A user's histogram terms: key = bits(λ_u), λ_u = c/p; whc = (w·h)·c; whp = (w·h)·p.
struct BidTerms {
  std::uint64_t key;
  double whc, whp;
};

/// 1: the user loads the provider (terms set); 0: it costs nothing (w·h·c = 0);
/// −1: invalid (a negative or non-finite field, or cap > 0 with plan weight ≤ 0).
CUTOFF_HD_INLINE int bid_terms(const UserBid& b, BidTerms* t) {
  const bool ok = b.weight >= 0.0 && b.weight < fp::kInf && b.cap >= 0.0 && b.cap < fp::kInf && b.plan_weight >= 0.0 &&
                  b.plan_weight < fp::kInf && b.cost >= 0.0 && b.cost < fp::kInf;
  if (!ok || (b.cap > 0.0 && !(b.plan_weight > 0.0))) return -1;
  const double wh = b.weight * b.cost;
  t->whc = wh * b.cap;
  if (!(t->whc > 0.0)) return 0;
  const double lam = b.cap / b.plan_weight;
  if (!(lam < fp::kInf)) return -1;
  t->whp = wh * b.plan_weight;
  t->key = fp::bits(lam);
  return 1;
}

/// A refinement histogram or a gather for one fill (bit 0 of mask: ordinary
/// users; bit 1: host_floor users).
struct WaterJob {
  int provider;
  unsigned mask;
  HistSpec hist;  ///< nbins > 0: histogram; else gather keys in [glo, ghi]
  std::uint64_t glo, ghi;
  int s_c, s_p;  ///< fixed-point scales: Σ whc·2^s_c, Σ whp·2^s_p
};

/// What a pass reads per user: the WaterPass's arrays (host, or device copies).
struct WaterPassView {
  int n_providers;
  bool level0;
  const int* scale;  ///< per provider
  const WaterJob* jobs;
  const int* job_begin;  ///< n_providers + 1
};

struct WaterPass {
  bool level0 = false;                  ///< build the exponent histograms per (provider, class)
  std::vector<int> scale;               ///< per provider: s_p (level 0: whc·2^s, whp·2^(s+E_bin))
  std::vector<WaterJob> jobs;           ///< ordered by provider
  std::vector<int> job_begin;           ///< jobs of provider p: [job_begin[p], job_begin[p+1])
  std::vector<std::uint64_t> hist_off;  ///< job k's bins in the pass's hist part: [hist_off[k], hist_off[k+1])
  WaterPassView view(int n_providers) const {
    return WaterPassView{n_providers, level0, scale.data(), jobs.data(), job_begin.data()};
  }
};

struct WaterItem {
  std::uint64_t key;
  double whc, whp;
};

/// A pass's partial results.
template <template <class> class H> struct WaterParts {
  H<FixedBin> level0;            ///< [(p·2 + class)·kExponentBins + bin] (level 0): a = Σ whc, b = Σ whp
  H<FixedBin> hist;              ///< the jobs' bins (WaterPass::hist_off)
  H<std::uint64_t> max_whc_key;  ///< per provider: the largest bits(whc) (level 0)
  H<int> over;                   ///< per provider: a sum overflowed
  H<std::uint64_t> first_bad;    ///< one: the lowest invalid user (~0: none)
  auto tie() { return std::tie(level0, hist, max_whc_key, over, first_bad); }
};
/// One list per job: its gathered users.
using WaterPassData = Partials<WaterParts, WaterItem>;

/// The whp exponent of exponent bin j: E with 2^E its lower edge (−1022 for subnormals).
CUTOFF_HD_INLINE int water_bin_exponent(int j) { return (j == 0 ? 1 : j) - 1023; }

/// Level-0 work for one user (host and device); bins = its (provider, class) histogram.
CUTOFF_HD_TEMPLATE
template <class Add = BinAdd>
CUTOFF_HD_INLINE bool water_add_level0(FixedBin* bins, const BidTerms& t, int s, const Add& add = Add{}) {
  const int j = static_cast<int>(t.key >> 52);
  bool o = false;
  const Fix128 c = to_fixed(t.whc, s, &o);
  const Fix128 p = to_fixed(t.whp, s + water_bin_exponent(j), &o);
  return add(bins[j], t.key, c, p) || o;
}

/// Job work for one user of the job's provider and class: histogram or gather flag.
CUTOFF_HD_TEMPLATE
template <class Add = BinAdd>
CUTOFF_HD_INLINE bool water_add_job(const WaterJob& job, FixedBin* bins, const BidTerms& t, bool* gather,
                                    const Add& add = Add{}) {
  *gather = false;
  if (job.hist.nbins <= 0) {
    *gather = t.key >= job.glo && t.key <= job.ghi;
    return false;
  }
  const int j = job.hist.bin(t.key);
  if (j < 0) return false;
  bool o = false;
  const Fix128 c = to_fixed(t.whc, job.s_c, &o);
  const Fix128 p = to_fixed(t.whp, job.s_p, &o);
  return add(bins[j], t.key, c, p) || o;
}

/// One user of a water pass (host and device). get(u, &bid) gives its provider
/// (−1: skip). The sink takes bad(u), overflow(p), max_key(p, key), gather(job, item)
/// and holds level0(p, class), hist(job) (bin arrays) and adder().
CUTOFF_HD_TEMPLATE
template <class Get, class Sink>
CUTOFF_HD_INLINE void water_visit(const WaterPassView& v, std::uint64_t u, const Get& get, const Sink& sink) {
  UserBid b{};
  const int p = get(u, &b);
  if (p < 0) return;
  BidTerms t{};
  const int st = p < v.n_providers ? bid_terms(b, &t) : -1;
  if (st < 0) {
    sink.bad(u);
    return;
  }
  if (st == 0) return;
  const int cls = b.host_floor ? 1 : 0;
  bool o = false;
  if (v.level0) {
    o = water_add_level0(sink.level0(p, cls), t, v.scale[p], sink.adder());
    sink.max_key(p, fp::bits(t.whc));
  }
  for (int k = v.job_begin[p]; k < v.job_begin[p + 1]; ++k) {
    const WaterJob& job = v.jobs[k];
    if (!((job.mask >> cls) & 1u)) continue;
    bool g = false;
    o = water_add_job(job, sink.hist(k), t, &g, sink.adder()) || o;
    if (g) sink.gather(k, WaterItem{t.key, t.whc, t.whp});
  }
  if (o) sink.overflow(p);
}

/// Host-side state machine of water_fill (see the file comment).
class WaterSolver {
 public:
  /// capacity[p] ≥ 0 (may be +inf); floor may be null (no floors), else floor[p] ≥ 0.
  WaterSolver(int n_providers, const double* capacity, const double* floor, const WaterfillOptions& options = {});
  /// The next pass to run; false when the result is ready.
  bool next(WaterPass* pass);
  /// The merged partials of the pass last returned by next() (throws std::invalid_argument
  /// naming the lowest user with an invalid bid or provider index).
  void feed(WaterPassData&& data);
  const std::vector<WaterLevel>& levels() const { return levels_; }
  int passes() const { return passes_; }

 private:
  struct Fill {
    int provider = 0;
    unsigned mask = 0;
    Fix128 cap{0, 0};
    bool done = false;
    double lambda = 0;
    // the unresolved crossing: users with keys in [klo, khi]; below: load A; above: slope B
    Fix128 A{0, 0};
    CompensatedSum B;
    std::uint64_t klo = 0, khi = 0, count = 0;
    int E = 0;
    double lam_lo = 0, lam_hi = fp::kInf;
  };
  void start_fills();
  void locate(Fill& f, const FixedBin* bins, const HistSpec& spec, bool level0);
  void resolve_items(Fill& f, std::vector<WaterItem>& items);
  void finish();

  int P_;
  WaterfillOptions opt_;
  std::vector<double> C_, F_;
  std::vector<int> s_;
  std::vector<char> retried_;
  bool level0_done_ = false, done_ = false;
  std::vector<FixedBin> level0_;
  std::vector<Fill> fills_;
  std::vector<int> fill_J_, fill_F_, fill_U_;  // per provider, −1: none
  std::vector<char> stage1_;
  std::vector<WaterLevel> levels_;
  WaterPass pass_;
  std::vector<int> job_fill_;  // the fill of each job of pass_
  int passes_ = 0;
};

/// The partials of a pass before any user is added (zero sums, empty bins).
WaterPassData water_pass_fresh(const WaterPass& pass, int n_providers);
/// Adds a thread's partials into `into` (integer sums: any order); a bin sum that
/// overflows flags its provider.
void water_merge(const WaterPass& pass, WaterPassData& into, const WaterPassData& from);

/// The sink of water_visit, over the host's or the device's ops (core/market/solver.hpp).
template <class Ops> struct WaterSink {
  WaterParts<Ptr> p;
  const std::uint64_t* hist_off;  ///< per job (WaterPass::hist_off)
  typename Ops::template Lists<WaterItem> items;
  CUTOFF_HD_INLINE FixedBin* level0(int pr, int cls) const {
    return p.level0 + (static_cast<std::size_t>(pr) * 2 + cls) * kExponentBins;
  }
  CUTOFF_HD_INLINE FixedBin* hist(int job) const { return p.hist + hist_off[job]; }
  CUTOFF_HD_INLINE typename Ops::BinAdd adder() const { return {}; }
  CUTOFF_HD_TEMPLATE CUTOFF_HD_INLINE void bad(std::uint64_t u) const { Ops::lower(*p.first_bad, u); }
  CUTOFF_HD_TEMPLATE CUTOFF_HD_INLINE void overflow(int pr) const { Ops::flag(p.over[pr]); }
  CUTOFF_HD_TEMPLATE CUTOFF_HD_INLINE void max_key(int pr, std::uint64_t key) const {
    Ops::raise(p.max_whc_key[pr], key);
  }
  CUTOFF_HD_TEMPLATE CUTOFF_HD_INLINE void gather(int job, const WaterItem& item) const { items.push(job, item); }
};

/// One OpenMP pass of water_fill over the users (private histograms merged by
/// integer addition). `get(u, &bid)` returns u's provider, or −1 to skip u.
template <class Get> WaterPassData water_pass(std::uint64_t n, int n_providers, const Get& get, const WaterPass& pass) {
  const WaterPassView view = pass.view(n_providers);
  return host_pass(
      n, true, water_pass_fresh(pass, n_providers),
      [&](WaterPassData& local) {
        return WaterSink<HostOps>{local.ptrs(), pass.hist_off.data(), HostOps::lists(local.lists)};
      },
      [&](std::uint64_t u, const WaterSink<HostOps>& sink) { water_visit(view, u, get, sink); },
      [&](WaterPassData& into, const WaterPassData& from) { water_merge(pass, into, from); });
}

struct WaterFill {
  std::vector<WaterLevel> levels;  ///< per provider
  int passes = 0;                  ///< passes over the users
};

/// The water levels of n_providers providers (see the file comment).
/// `get(u, &bid)` is a pure function returning u's provider in [0, n_providers)
/// or −1 to skip u; capacity[p] is C_p (H100e, ≥ 0, may be +inf); floor (null:
/// none) is the deal-host floor F_p (H100e, ≥ 0). Then, per user, in the
/// caller's own pass: water_use(bid, levels[p]) and water_capped(bid, levels[p]).
template <class Get>
WaterFill water_fill(std::uint64_t n, int n_providers, const Get& get, const double* capacity,
                     const double* floor = nullptr, const WaterfillOptions& options = {}) {
  WaterSolver solver(n_providers, capacity, floor, options);
  WaterPass pass;
  while (solver.next(&pass)) solver.feed(water_pass(n, n_providers, get, pass));
  return WaterFill{solver.levels(), solver.passes()};
}

}  // namespace cutoff
