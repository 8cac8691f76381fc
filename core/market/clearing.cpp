// The host driver of the firms' clearing (core/market/clearing.hpp, docs/model.md §2.6(c), §10):
// the state machine over passes, the exact crossing search and sweep.
#include "core/market/clearing.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace cutoff {
namespace clearing_detail {
namespace {

constexpr double kComputeUnit = 0x1p-60;  // H100e per fixed-point unit
constexpr double kMoneyUnit = 0x1p-44;    // $ per unit
constexpr double kWeightUnit = 0x1p-32;   // firms per unit
static_assert(kClearComputeBits == 60 && kClearMoneyBits == 44 && kClearWeightBits == 32, "units");

// --- exact comparison D(t) > K on the fixed-point sums --------------------

/// A 256-bit unsigned integer, little-endian 64-bit words.
struct U256 {
  std::uint64_t w[4] = {0, 0, 0, 0};
};

U256 from128(u128 x) {
  U256 r;
  r.w[0] = static_cast<std::uint64_t>(x);
  r.w[1] = static_cast<std::uint64_t>(x >> 64);
  return r;
}

/// x · m (x < 2^128, m < 2^64).
U256 mul(u128 x, std::uint64_t m) {
  const u128 lo = static_cast<u128>(static_cast<std::uint64_t>(x)) * m;
  const u128 hi = static_cast<u128>(static_cast<std::uint64_t>(x >> 64)) * m;
  U256 r;
  r.w[0] = static_cast<std::uint64_t>(lo);
  const u128 mid = (lo >> 64) + static_cast<std::uint64_t>(hi);
  r.w[1] = static_cast<std::uint64_t>(mid);
  const u128 top = (mid >> 64) + (hi >> 64);
  r.w[2] = static_cast<std::uint64_t>(top);
  r.w[3] = static_cast<std::uint64_t>(top >> 64);
  return r;
}

int bitlen(const U256& x) {
  for (int k = 3; k >= 0; --k)
    if (x.w[k]) return 64 * k + 64 - __builtin_clzll(x.w[k]);
  return 0;
}

/// x << s (the caller guarantees that the result fits).
U256 shl(const U256& x, int s) {
  U256 r;
  const int q = s / 64, b = s % 64;
  for (int k = 3; k >= q; --k) {
    std::uint64_t v = x.w[k - q] << b;
    if (b && k - q - 1 >= 0) v |= x.w[k - q - 1] >> (64 - b);
    r.w[k] = v;
  }
  return r;
}

int cmp(const U256& a, const U256& b) {
  for (int k = 3; k >= 0; --k)
    if (a.w[k] != b.w[k]) return a.w[k] < b.w[k] ? -1 : 1;
  return 0;
}

/// Exactly: A·2^−60 + M·2^−44/t > K·2^−60 (D at price t > 0 exceeds capacity K),
/// i.e. M·2^16 > (K − A)·t.
bool exceeds(u128 A, u128 M, double t, u128 K) {
  if (A > K) return true;
  const u128 Y = K - A;
  if (M == 0) return false;
  if (Y == 0) return true;
  if (!(t < fp::kInf)) return false;  // M/t = 0
  const std::uint64_t u = fp::bits(t);
  int ex = static_cast<int>((u >> 52) & 0x7ff);
  std::uint64_t mant = u & 0x000fffffffffffffULL;
  if (ex)
    mant |= 0x0010000000000000ULL;
  else
    ex = 1;
  const int e = ex - 1075;       // t = mant·2^e
  U256 L = shl(from128(M), 16);  // < 2^144
  U256 P = mul(Y, mant);         // < 2^181
  if (e >= 0) {
    if (bitlen(P) + e > 145) return false;  // RHS ≥ 2^145 > LHS
    P = shl(P, e);
  } else {
    if (bitlen(L) - e > 182) return true;  // LHS ≥ 2^182 > RHS
    L = shl(L, -e);
  }
  return cmp(L, P) > 0;
}

double to_d(u128 x) { return static_cast<double>(x); }

/// D in H100e at price t from fixed-point sums.
double demand_at(u128 A, u128 M, double t) { return to_d(A) * kComputeUnit + to_d(M) * kMoneyUnit / t; }

double next_double(double x) { return fp::from_bits(fp::bits(x) + 1); }

/// The clearing price found by the sweep, with what is needed to place other
/// prices relative to it exactly.
struct Solution {
  enum Kind { kFloor, kJump, kCont } kind = kFloor;
  double price = 0.0;
  u128 A = 0, M = 0;                  ///< kJump: sums over keys > price; kCont: the segment's sums
  u128 mA = 0, mM = 0;                ///< kJump: the marginal buyers' sums
  double seg_lo = 0.0, seg_hi = 0.0;  ///< kCont: the true price lies in (seg_lo, seg_hi]
};

/// Whether the true clearing price exceeds x (exact).
bool above(const Solution& s, double x, u128 K) {
  if (s.kind != Solution::kCont) return s.price > x;
  if (x <= s.seg_lo) return true;
  if (x >= s.seg_hi) return false;
  return exceeds(s.A, s.M, x, K);  // D continuous and decreasing on the segment
}

std::uint32_t bins_for(std::uint64_t klo, std::uint64_t khi, int shift) {
  return static_cast<std::uint32_t>(((khi - klo - 1) >> shift) + 1);
}

}  // namespace

ClearingSolver::ClearingSolver(std::uint64_t n_firms, const std::vector<ProviderSupply>& supply,
                               const ClearingOptions& opt)
    : n_firms_(n_firms), supply_(supply), opt_(opt) {
  if (n_firms >= (1ULL << 32)) throw std::invalid_argument("clear_firms: n_firms must be below 2^32");
  const int P = static_cast<int>(supply.size());
  mk_.resize(2 * P);
  task_.resize(2 * P);
  res_.assign(P, ProviderClearing{});
  for (int p = 0; p < P; ++p) {
    const ProviderSupply& s = supply[p];
    if (!(s.p_min > 0.0 && s.p_min < fp::kInf))
      throw std::invalid_argument("clear_firms: provider " + std::to_string(p) + ": p_min must be positive and finite");
    if (!(s.p_max >= s.p_min))
      throw std::invalid_argument("clear_firms: provider " + std::to_string(p) + ": p_max must be ≥ p_min");
    if (!(s.capacity >= 0.0 && s.capacity < fp::kInf))
      throw std::invalid_argument("clear_firms: provider " + std::to_string(p) + ": capacity must be finite and ≥ 0");
    if (!(s.plan_need >= 0.0 && s.plan_need < fp::kInf && s.plan_value >= 0.0 && s.plan_value < fp::kInf))
      throw std::invalid_argument("clear_firms: provider " + std::to_string(p) +
                                  ": the plan layer's need and value must be finite and ≥ 0");
    bool ovf = false;
    const u128 K = to_u128(to_fixed(s.capacity, kClearComputeBits, &ovf, kClearTermBits));
    if (ovf) throw std::overflow_error("clear_firms: provider " + std::to_string(p) + ": capacity above 2^36 H100e");
    ProviderClearing& r = res_[p];
    r.first_resort = s.first_resort;
    r.p_min = s.p_min;
    r.capacity = s.capacity;
    for (int g = 0; g < 2; ++g) {
      MarketState& mk = mk_[2 * p + g];
      mk.provider = p;
      mk.group = g;
      mk.used = g == 1 || s.first_resort;
      mk.phase = mk.used ? MarketState::kNeedHist : MarketState::kDone;
      // Home (or everyone) clears on all of K; the rest waits for sold_home.
      mk.k_known = !(s.first_resort && g == 1);
      mk.K = mk.k_known ? K : 0;
      if (mk.used) {
        const std::uint64_t klo = fp::bits(s.p_min);
        const std::uint64_t span = static_cast<std::uint64_t>(kClearCoarseBins) << kClearCoarseShift;
        Task& t = mk.task;
        t.kind = kTaskHist;
        t.coarse = true;
        t.klo = klo;
        t.khi = fp::kInfBits - klo > span ? klo + span : fp::kInfBits;
        t.shift = kClearCoarseShift;
        t.n_bins = bins_for(t.klo, t.khi, t.shift);
      }
    }
  }
}

bool ClearingSolver::next(ClearPass* pass) {
  bool any = false;
  for (std::size_t m = 0; m < mk_.size(); ++m) {
    MarketState& mk = mk_[m];
    Task t;
    switch (mk.phase) {
      case MarketState::kNeedHist: t = mk.task; break;
      case MarketState::kNeedGather:
        t.kind = kTaskGather;
        t.klo = mk.klo;
        t.khi = mk.khi;
        break;
      case MarketState::kNeedKey:
        t.kind = kTaskKey;
        t.klo = mk.klo;
        t.khi = mk.khi;
        break;
      case MarketState::kNeedStats: t.kind = kTaskStats; break;
      default: break;
    }
    t.p_min = supply_[mk.provider].p_min;
    t.p_max = supply_[mk.provider].p_max;
    task_[m] = t;
    any |= t.kind != kTaskIdle;
  }
  if (any) {
    ++passes_;
    hist_off_.assign(1, 0);
    for (const Task& t : task_) hist_off_.push_back(hist_off_.back() + (t.kind == kTaskHist ? t.n_bins + 1 : 0));
    *pass = ClearPass{supply_, task_, res_, hist_off_};
  }
  return any;
}

ClearPassData clear_pass_fresh(const ClearPass& pass) {
  ClearPassData d;
  ClearParts<Vec>& p = d.parts;
  p.A.assign(pass.hist_off.back(), 0);
  p.M.assign(pass.hist_off.back(), 0);
  p.cnt.assign(pass.hist_off.back(), 0);
  p.sums.assign(pass.task.size(), MarketSums{});
  p.first_bad.assign(1, ~std::uint64_t{0});
  p.over.assign(1, 0);
  d.lists.resize(pass.task.size());
  for (const Task& t : pass.task) d.gathers.push_back(t.kind == kTaskGather ? 1 : 0);
  return d;
}

void clear_merge(ClearPassData& into, const ClearPassData& from) {
  ClearParts<Vec>& a = into.parts;
  const ClearParts<Vec>& b = from.parts;
  for (std::size_t j = 0; j < a.A.size(); ++j) {
    a.A[j] += b.A[j];
    a.M[j] += b.M[j];
    a.cnt[j] += b.cnt[j];
  }
  for (std::size_t m = 0; m < a.sums.size(); ++m) a.sums[m].merge(b.sums[m]);
  a.first_bad[0] = std::min(a.first_bad[0], b.first_bad[0]);
  a.over[0] |= b.over[0];
  into.append_lists(from);
}

void ClearingSolver::feed(ClearPassData&& data) {
  // (v5) each provider's plan layer bids in every pass but the statistics (rule 5).
  const PassView v{static_cast<int>(supply_.size()), supply_.data(), task_.data(), res_.data()};
  const ClearSink<HostOps> sink{data.ptrs(), hist_off_.data(), HostOps::lists(data.lists)};
  for (int p = 0; p < v.n_providers; ++p)
    if (task_[2 * p + 1].kind != kTaskStats)
      clearing_visit(v, n_firms_ + static_cast<std::uint64_t>(p), p, plan_layer_bid(supply_[p]), sink);
  const ClearParts<Vec>& d = data.parts;
  if (d.first_bad[0] != ~std::uint64_t{0})
    throw std::invalid_argument("clear_firms: invalid bid of agent " + std::to_string(d.first_bad[0]) +
                                " (needs a provider index in range, finite w, need, money > 0, finite pi_out "
                                "and min_alloc ≥ 0)");
  if (d.over[0])
    throw std::overflow_error(
        "clear_firms: a bid exceeds the fixed-point term limit (w·need < 2^36 H100e, "
        "w·money < 2^52 $, w < 2^64; a plan layer's need < 2^36 H100e)");
  // Stats first: a home market's sold sets its rest market's capacity.
  for (std::size_t m = 0; m < mk_.size(); ++m) {
    MarketState& mk = mk_[m];
    const MarketSums& a = d.sums[m];
    switch (task_[m].kind) {
      case kTaskHist:
        mk.hist_coarse = task_[m].coarse;
        mk.task = task_[m];
        mk.A.assign(d.A.begin() + hist_off_[m], d.A.begin() + hist_off_[m + 1]);
        mk.M.assign(d.M.begin() + hist_off_[m], d.M.begin() + hist_off_[m + 1]);
        mk.cnt.assign(d.cnt.begin() + hist_off_[m], d.cnt.begin() + hist_off_[m + 1]);
        if (task_[m].coarse)
          for (int c = 0; c < kClearClasses; ++c) {
            mk.clsA[c] = a.clsA[c];
            mk.clsM[c] = a.clsM[c];
          }
        if (mk.k_known)
          search(mk);
        else
          mk.phase = MarketState::kWaitK;
        break;
      case kTaskGather:
        mk.ev.swap(data.lists[m]);
        sweep(mk);
        break;
      case kTaskKey: {
        KeyEvent e = a.key;
        e.key = fp::from_bits(task_[m].klo);
        mk.ev.assign(1, e);
        sweep(mk);
        break;
      }
      case kTaskStats:
        mk.stats = a.stats;
        finish_stats(mk);
        break;
      default: break;
    }
  }
}

/// Resolution helpers shared by search and sweep: turn a Solution into the group's rule.
namespace {

void resolve(MarketState& mk, const Solution& s, const ProviderSupply& sup, ProviderClearing& pc) {
  ClearingGroup& g = mk.group == 0 ? pc.home : pc.rest;
  const bool rest_of_fr = sup.first_resort && mk.group == 1;
  g = ClearingGroup{};
  g.capacity = to_d(mk.K) * kComputeUnit;
  g.cut_class = 0;
  g.ratio = 1.0;
  mk.binding = s.kind != Solution::kFloor;
  if (sup.p_max < fp::kInf && above(s, sup.p_max, mk.K)) {
    // Rule 3: classes served in order at p_max; the first that does not fit pro rata.
    g.price = sup.p_max;
    g.mode = kClearClassCap;
    u128 cA = 0, cM = 0;
    int cut = kClearClasses;
    for (int c = 0; c < kClearClasses; ++c) {
      if (exceeds(cA + mk.clsA[c], cM + mk.clsM[c], sup.p_max, mk.K)) {
        cut = c;
        break;
      }
      cA += mk.clsA[c];
      cM += mk.clsM[c];
    }
    if (cut == kClearClasses) {  // cannot happen (D(p_max) > K); keep everyone
      g.mode = kClearAll;
    } else {
      const double left = to_d(mk.K - cA) * kComputeUnit - to_d(cM) * kMoneyUnit / sup.p_max;
      const double dc = demand_at(mk.clsA[cut], mk.clsM[cut], sup.p_max);
      g.cut_class = static_cast<std::uint8_t>(cut);
      g.ratio = fp::clamp(left / dc, 0.0, 1.0);
    }
  } else if (rest_of_fr && !above(s, pc.home.price, mk.K) && !(s.kind == Solution::kJump && s.price == pc.home.price)) {
    // Rule 4: the rest's own price is below π_home; all of them buy at π_home
    // (D_rest(π_home) ≤ K_rest since π_home lies above their inf).
    g.price = pc.home.price;
    g.mode = kClearAll;
  } else {
    g.price = fp::min(s.price, sup.p_max);
    if (rest_of_fr) g.price = fp::max(g.price, pc.home.price);
    g.mode = kClearAll;
    if (s.kind == Solution::kJump) {
      g.mode = kClearMarginal;
      const double left = to_d(mk.K - s.A) * kComputeUnit - to_d(s.M) * kMoneyUnit / s.price;
      g.ratio = fp::clamp(left / demand_at(s.mA, s.mM, s.price), 0.0, 1.0);
    }
  }
  mk.phase = MarketState::kNeedStats;
  mk.ev.clear();
  mk.ev.shrink_to_fit();
  mk.A.clear();
  mk.A.shrink_to_fit();
  mk.M.clear();
  mk.M.shrink_to_fit();
  mk.cnt.clear();
  mk.cnt.shrink_to_fit();
}

}  // namespace

void ClearingSolver::resolve_floor(MarketState& mk) {
  Solution s;
  s.kind = Solution::kFloor;
  s.price = supply_[mk.provider].p_min;
  resolve(mk, s, supply_[mk.provider], res_[mk.provider]);
}

/// After a histogram: find the bin where D meets K, and what the next pass must do.
void ClearingSolver::search(MarketState& mk) {
  const Task& t = mk.task;
  const std::uint32_t nb = t.n_bins;
  // Suffix sums in place: (A[j], M[j]) = sums over keys ≥ edge_j; j = nb: keys ≥ khi.
  for (std::uint32_t j = nb; j-- > 0;) {
    mk.A[j] += mk.A[j + 1];
    mk.M[j] += mk.M[j + 1];
  }
  auto edge = [&](std::uint32_t j) { return fp::from_bits(t.klo + (static_cast<std::uint64_t>(j) << t.shift)); };
  if (mk.hist_coarse && !exceeds(mk.A[0], mk.M[0], supply_[mk.provider].p_min, mk.K)) {  // D(p_min) ≤ K
    resolve_floor(mk);
    return;
  }
  std::uint64_t klo, khi, count;
  u128 hiA, hiM;
  if (t.khi < fp::kInfBits && exceeds(mk.A[nb], mk.M[nb], fp::from_bits(t.khi), mk.K)) {
    // The crossing lies above this histogram's range (keys ≥ p_min·2^64).
    klo = t.khi;
    khi = fp::kInfBits;
    hiA = hiM = 0;
    count = ~0ULL;
  } else {
    // The largest j with D(edge_j) > K, by bisection (D(edge_j) is non-increasing
    // in j); D(edge_0) > K is known and D(edge_nb) ≤ K.
    std::uint32_t lo = 0, hi = nb;
    while (hi - lo > 1) {
      const std::uint32_t mid = lo + (hi - lo) / 2;
      if (exceeds(mk.A[mid], mk.M[mid], edge(mid), mk.K))
        lo = mid;
      else
        hi = mid;
    }
    const std::uint32_t j = lo;
    hiA = mk.A[j + 1];
    hiM = mk.M[j + 1];
    klo = t.klo + (static_cast<std::uint64_t>(j) << t.shift);
    const std::uint64_t top = t.klo + (static_cast<std::uint64_t>(j + 1) << t.shift);
    khi = top < t.khi ? top : t.khi;
    count = mk.cnt[j];
  }
  mk.klo = klo;
  mk.khi = khi;
  mk.hiA = hiA;
  mk.hiM = hiM;
  if (count <= opt_.gather_limit) {
    mk.phase = MarketState::kNeedGather;
  } else if (khi - klo == 1) {
    mk.phase = MarketState::kNeedKey;
  } else {
    const int shift = shift_for(khi - klo - 1, 1 << kClearFineLog2);
    Task n;
    n.kind = kTaskHist;
    n.coarse = false;
    n.klo = klo;
    n.khi = khi;
    n.shift = shift;
    n.n_bins = bins_for(klo, khi, shift);
    mk.task = n;
    mk.phase = MarketState::kNeedHist;
  }
  mk.A.clear();
  mk.M.clear();
  mk.cnt.clear();
}

/// The exact sweep of the crossing range [klo, khi) over its keys, from the top down.
void ClearingSolver::sweep(MarketState& mk) {
  std::vector<KeyEvent>& ev = mk.ev;
  std::sort(ev.begin(), ev.end(), [](const KeyEvent& a, const KeyEvent& b) { return a.key < b.key; });
  // Aggregate equal keys (integer sums: the order within a key does not matter).
  std::size_t n = 0;
  for (std::size_t k = 0; k < ev.size(); ++k) {
    if (n > 0 && ev[n - 1].key == ev[k].key) {
      ev[n - 1].dA += ev[k].dA;
      ev[n - 1].dM += ev[k].dM;
      ev[n - 1].mA += ev[k].mA;
      ev[n - 1].mM += ev[k].mM;
    } else {
      ev[n++] = ev[k];
    }
  }
  ev.resize(n);
  const double lo = fp::from_bits(mk.klo);
  double upper = mk.khi >= fp::kInfBits ? fp::kInf : fp::from_bits(mk.khi);
  u128 A = mk.hiA, M = mk.hiM;  // sums over keys above the current point
  Solution s;
  auto continuous = [&](double seg_lo, double seg_hi) {
    s.kind = Solution::kCont;
    s.A = A;
    s.M = M;
    s.seg_lo = seg_lo;
    s.seg_hi = seg_hi;
    const u128 Y = mk.K - A;                               // > 0 here: D(seg_hi) ≤ K with M > 0
    double pi = Y ? to_d(M) / to_d(Y) * 65536.0 : seg_hi;  // (M·2^−44)/((K − A)·2^−60)
    if (!(pi > seg_lo)) pi = next_double(seg_lo);
    if (pi > seg_hi) pi = seg_hi;
    s.price = pi;
  };
  bool done = false;
  for (std::size_t k = n; k-- > 0;) {
    const KeyEvent& e = ev[k];
    // On (e.key, upper] D = A + M/π: its left limit at e.key.
    if (exceeds(A, M, e.key, mk.K)) {
      continuous(e.key, upper);
      done = true;
      break;
    }
    const u128 A2 = A + e.dA, M2 = M + e.dM;
    if (exceeds(A2, M2, e.key, mk.K)) {  // D(key) > K ≥ D(key+): a jump at key
      s.kind = Solution::kJump;
      s.price = e.key;
      s.A = A;
      s.M = M;
      s.mA = e.mA;
      s.mM = e.mM;
      done = true;
      break;
    }
    A = A2;
    M = M2;
    upper = e.key;
  }
  if (!done) continuous(lo, upper);  // D(lo) > K, D(upper) ≤ K, no key in between
  resolve(mk, s, supply_[mk.provider], res_[mk.provider]);
}

void ClearingSolver::finish_stats(MarketState& mk) {
  ProviderClearing& pc = res_[mk.provider];
  ClearingGroup& g = mk.group == 0 ? pc.home : pc.rest;
  const ClearStats& st = mk.stats;
  u128 sold = 0;
  for (int c = 0; c < kClearClasses; ++c) {
    sold += st.sold[c];
    g.demand_pmin[c] = to_d(st.dem[c]) * kComputeUnit;
    g.rationed[c] = to_d(st.dem[c] > st.sold[c] ? st.dem[c] - st.sold[c] : 0) * kComputeUnit;
  }
  g.sold = to_d(sold) * kComputeUnit;
  g.n_bidders = st.n_bid;
  g.n_rationed = st.n_rat;
  g.n_zeroed = st.n_zero;
  g.w_rationed = to_d(st.w_rat) * kWeightUnit;
  g.w_zeroed = to_d(st.w_zero) * kWeightUnit;
  mk.phase = MarketState::kDone;
  const ProviderSupply& sup = supply_[mk.provider];
  if (sup.first_resort && mk.group == 0) {
    // K_rest = K − sold_home by the rule, not by the rounded sum: when the home
    // firms bind (D_home(p_min) > K) they buy all of K except the pro-rata
    // shares zeroed by min_alloc; otherwise exactly D_home(p_min).
    MarketState& rest = mk_[2 * mk.provider + 1];
    if (mk.binding)
      rest.K = st.unsold < mk.K ? st.unsold : mk.K;
    else
      rest.K = mk.K > sold ? mk.K - sold : 0;
    rest.k_known = true;
    if (rest.phase == MarketState::kWaitK) search(rest);
  }
  // Provider totals once both groups are done.
  const MarketState& other = mk_[2 * mk.provider + (mk.group == 0 ? 1 : 0)];
  if (other.phase == MarketState::kDone) {
    const MarketState& h = mk_[2 * mk.provider];
    const MarketState& r = mk_[2 * mk.provider + 1];
    u128 tot = 0;
    for (int c = 0; c < kClearClasses; ++c) tot += r.stats.sold[c] + (h.used ? h.stats.sold[c] : 0);
    pc.sold = to_d(tot) * kComputeUnit;
    pc.price = pc.rest.price;
    pc.price_home = sup.first_resort ? pc.home.price : pc.rest.price;
    pc.revenue = pc.rest.price * pc.rest.sold + (sup.first_resort ? pc.home.price * pc.home.sold : 0.0);
  }
}

}  // namespace clearing_detail
}  // namespace cutoff
