#pragma once
/// @file
/// Every pass over the agents that a tick (and §2.0's initial state) makes, as a
/// named CUTOFF_HD functor holding only plain values and pointers. The Simulation
/// builds them with pointers from its Exec (core/sim/exec.hpp): host memory on the
/// CPU backend, device memory on the CUDA backend. Both backends run these very
/// functors, so the per-agent arithmetic exists once (docs/backends.md).
///
/// Four shapes, one list each below:
///  - loops:      `void operator()(i)`, one per agent, writing that agent only;
///  - keyed sums: `operator()(i, add)` calls add(key, value ≥ 0, fraction bits):
///                128-bit fixed-point sums into a few keys (core/hd/fixed.hpp);
///  - segment sums: `operator()(i, double* out)` writes kOut terms, summed per
///                segment of the country-sorted arrays in the canonical order
///                (core/hd/reduce.hpp);
///  - ranks:      `bool operator()(i, double* w, double* x)` (core/market/ranks.hpp);
/// plus the firms' bids (core/market/clearing.hpp) and the users' bids (core/market/waterfill.hpp).
///
/// Every table and agent array a functor reads is an `OnExec<...>` view from
/// its Exec (`put`, `firms()`, `users()`; core/hd/tables.hpp). Each functor derives
/// from `Pass`, whose `open(view)` is the only way to read one, so host code cannot read
/// a device address. Adding a pass is its rule (agents/*_kern.hpp), its functor here,
/// and one line in its shape's list (CUTOFF_LOOPS, ...): both backends then run it.
/// A functor is an aggregate with an empty base: it is built as `F{{}, views...}`.

#include <cstdint>

#include "agents/fields.hpp"
#include "agents/firm_kern.hpp"
#include "agents/user_kern.hpp"
#include "core/hd/hd.hpp"
#include "core/hd/keyed_sum.hpp"
#include "core/hd/tables.hpp"
#include "core/market/clearing.hpp"
#include "core/market/waterfill.hpp"

namespace cutoff {

/// Classes of the `class` dimension (docs/model.md §9), in this order.
enum MetricClass { kClassGov = 0, kClassTrusted, kClassKyc, kClassGeneral, kClassHome, kClassConsumer, kClassCount };

// ---------------------------------------------------------------------------
// Loops
// ---------------------------------------------------------------------------

struct InitFirmLoop : Pass {
  OnExec<FirmInitConsts> k;
  OnExec<FirmView> f;
  CUTOFF_HD_INLINE void operator()(std::uint64_t i) const { init_firm(i, open(k), open(f)); }
};

struct ScaleFirmSizeLoop : Pass {
  OnExec<Table<double>> scale;  ///< per country
  OnExec<FirmView> f;
  CUTOFF_HD_INLINE void operator()(std::uint64_t i) const { scale_firm_size(i, open(scale), open(f)); }
};

struct InitFirmRevenueLoop : Pass {
  OnExec<PoolRule> pool;
  OnExec<FirmView> f;
  CUTOFF_HD_INLINE void operator()(std::uint64_t i) const { init_firm_revenue(i, open(pool), open(f)); }
};

struct InitUserLoop : Pass {
  OnExec<UserConsts> k;
  double income_sigma, need_sigma;
  OnExec<UserView> v;
  CUTOFF_HD_INLINE void operator()(std::uint64_t i) const { init_user(i, open(k), income_sigma, need_sigma, open(v)); }
};

struct FirmChooseLoop : Pass {
  OnExec<FirmTickConsts> k;
  OnExec<FirmView> f;
  CUTOFF_HD_INLINE void operator()(std::uint64_t i) const { firm_choose(i, open(k), open(f)); }
};

struct UserChooseLoop : Pass {
  OnExec<UserConsts> k;
  OnExec<UserView> v;
  CUTOFF_HD_INLINE void operator()(std::uint64_t i) const { user_choose(i, open(k), open(v)); }
};

struct FirmSettleLoop : Pass {
  OnExec<FirmTickConsts> k;
  OnExec<Table<ProviderClearing>> cleared;  ///< per provider
  OnExec<FirmView> f;
  CUTOFF_HD_INLINE void operator()(std::uint64_t i) const { firm_settle(i, open(k), open(cleared), open(f)); }
};

struct UserSettleLoop : Pass {
  OnExec<UserConsts> k;
  OnExec<Table<WaterLevel>> levels;  ///< per provider
  OnExec<UserView> v;
  CUTOFF_HD_INLINE void operator()(std::uint64_t i) const { user_settle(i, open(k), open(levels), open(v)); }
};

struct FirmAdaptLoop : Pass {
  OnExec<FirmTickConsts> k;
  OnExec<Table<ProviderClearing>> cleared;  ///< per provider
  OnExec<FirmView> f;
  CUTOFF_HD_INLINE void operator()(std::uint64_t i) const { firm_adapt_budget(i, open(k), open(cleared), open(f)); }
};

/// §2.6(e) (v5): after the water-fill, a firm on seats takes its seats' compute and status.
struct FirmSeatSettleLoop : Pass {
  OnExec<FirmTickConsts> k;
  OnExec<Table<WaterLevel>> levels;  ///< per provider
  OnExec<FirmView> f;
  CUTOFF_HD_INLINE void operator()(std::uint64_t i) const { firm_seat_settle(i, open(k), open(levels), open(f)); }
};

struct FirmProductivityLoop : Pass {
  OnExec<FirmTickConsts> k;
  OnExec<Table<double>> spill;  ///< per country
  double g0, sigma_A;
  OnExec<FirmView> f;
  CUTOFF_HD_INLINE void operator()(std::uint64_t i) const {
    firm_productivity(i, open(k), open(spill), g0, sigma_A, open(f));
  }
};

struct FirmWealthLoop : Pass {
  OnExec<FirmWealthConsts> k;
  OnExec<FirmView> f;
  CUTOFF_HD_INLINE void operator()(std::uint64_t i) const { firm_wealth(i, open(k), open(f)); }
};

struct UserAdoptLoop : Pass {
  OnExec<UserConsts> k;
  OnExec<UserView> v;
  CUTOFF_HD_INLINE void operator()(std::uint64_t i) const { user_adopt(i, open(k), open(v)); }
};

/// §2.0, around τ0's scan: whether firm i chooses a generation at tick 0, into the
/// scratch field `status` (1: it does; 0: nothing eligible, or it does not adopt AI),
/// or (clear) `status` back to §2.0's 0. At tick 0 that does not depend on τ: step 4's
/// KYC and adoption draws, its eligibility and its adoption probability do not read it,
/// and a firm past them always chooses (firm_pick). So TauDemandSum skips the others,
/// which bid nothing at any τ (issue 40: the same sum, without their draws).
struct TauChooserLoop : Pass {
  OnExec<FirmTickConsts> k;
  OnExec<FirmView> f;
  bool clear;
  CUTOFF_HD_INLINE void operator()(std::uint64_t i) const {
    const FirmView& v = open(f);
    v.status[i] = clear ? 0 : static_cast<std::uint8_t>(firm_pick(i, open(k), v).generation != kNone);
  }
};

#define CUTOFF_LOOPS(X)   \
  X(InitFirmLoop)         \
  X(ScaleFirmSizeLoop)    \
  X(InitFirmRevenueLoop)  \
  X(InitUserLoop)         \
  X(FirmChooseLoop)       \
  X(UserChooseLoop)       \
  X(FirmSettleLoop)       \
  X(FirmAdaptLoop)        \
  X(UserSettleLoop)       \
  X(FirmSeatSettleLoop)   \
  X(FirmProductivityLoop) \
  X(FirmWealthLoop)       \
  X(UserAdoptLoop)        \
  X(TauChooserLoop)

// ---------------------------------------------------------------------------
// Keyed fixed-point sums
// ---------------------------------------------------------------------------

/// §2.0: weighted firm demand at p_min with step 4's choices (nothing written), over
/// the firms that choose at tick 0 (`status` 1: TauChooserLoop). One key.
struct TauDemandSum : Pass {
  static constexpr int kKeys = 1;
  OnExec<FirmTickConsts> kx;
  OnExec<FirmView> fx;
  double p_min;
  CUTOFF_HD_TEMPLATE
  template <class Add> CUTOFF_HD_INLINE void operator()(std::uint64_t i, Add& add) const {
    const FirmView& f = open(fx);
    if (!f.status[i]) return;  // no generation at tick 0 whatever τ: no bid
    const FirmTickConsts& k = open(kx);
    const FirmPick pick = firm_pick(i, k, f);
    FirmBid bid;
    if (firm_bid_at(i, k, f, pick.generation, FirmAccess{pick.flags, f.partners[i]}, &bid) >= 0)
      add(0, bid.w * bid_demand(bid, p_min), kFixedCompute);
  }
};

/// §2.0: consumer demand at full caps per unit need0, adopters on their provider's newest GENERAL generation.
struct NeedUnitSum : Pass {
  static constexpr int kKeys = 1;
  OnExec<UserConsts> kx;
  OnExec<UserView> vx;
  OnExec<Table<double>> h_newest_x;  ///< per provider
  CUTOFF_HD_TEMPLATE
  template <class Add> CUTOFF_HD_INLINE void operator()(std::uint64_t i, Add& add) const {
    const UserConsts& k = open(kx);
    const UserView& v = open(vx);
    const Table<double>& h_newest = open(h_newest_x);
    if (!(v.flags[i] & user_flag::kAdopter)) return;
    const double pn = k.plan_need[v.plan[i] - 1];
    const double n = static_cast<double>(v.n[i]);
    add(0, k.w_user[v.country[i]] * pn * fp::min(n, k.plan_cap) * h_newest[v.provider[i]], kFixedCompute);
  }
};

/// §2.6(b): per provider, consumer demand at full caps (H100e) and plan revenue ($).
struct ConsumerSum : Pass {
  enum { kDemand, kPlanRevenue, kPerProvider };
  OnExec<UserConsts> kx;
  OnExec<UserView> vx;
  CUTOFF_HD_TEMPLATE
  template <class Add> CUTOFF_HD_INLINE void operator()(std::uint64_t i, Add& add) const {
    const UserConsts& k = open(kx);
    const UserView& v = open(vx);
    UserBid b;
    const int q = user_bid(i, k, v, &b);
    if (q < 0) return;
    add(q * kPerProvider + kDemand, b.weight * b.cap * b.cost, kFixedCompute);
    add(q * kPerProvider + kPlanRevenue, b.weight * plan_price_on(k, plan_index(v.plan[i]), q), kFixedMoney);
  }
};

/// §2.6(c) outcomes per provider and class: spend, tokens, allocation, rationing;
/// then per provider the demand at p_min (keys after the class block); then per
/// country D_c (§2.4, v4): its bidding firms' x_i(π) at the price they cleared at
/// on tier-1-homed providers, before the quota factor.
struct FirmMarketSum : Pass {
  enum { kSpend, kTokens, kAlloc, kRationed, kPerClass };
  OnExec<FirmTickConsts> kx;
  OnExec<FirmView> fx;
  OnExec<Table<ProviderClearing>> cleared_x;  ///< per provider
  double p_min;
  int n_providers, n_countries;
  CUTOFF_HD_INLINE static int key(int q, int cls, int j) { return (q * kClassCount + cls) * kPerClass + j; }
  CUTOFF_HD_INLINE int demand_key(int q) const { return n_providers * kClassCount * kPerClass + q; }
  CUTOFF_HD_INLINE int quota_key(int c) const { return demand_key(n_providers) + c; }
  CUTOFF_HD_INLINE int keys() const { return quota_key(n_countries); }
  CUTOFF_HD_TEMPLATE
  template <class Add> CUTOFF_HD_INLINE void operator()(std::uint64_t i, Add& add) const {
    const FirmTickConsts& k = open(kx);
    const FirmView& f = open(fx);
    const Table<ProviderClearing>& cleared = open(cleared_x);
    FirmBid bid;
    const int q = firm_bid(i, k, f, &bid);
    if (q < 0) return;
    const double x = f.alloc[i];
    const int cls = bid.home ? kClassHome : kClassTrusted + bid.cls;
    const double price = paid_price(bid, cleared[q]);
    add(key(q, cls, kSpend), bid.w * price * x, kFixedMoney);
    add(key(q, cls, kTokens), bid.w * x / k.gens.h[f.generation[i]], kFixedTokens);
    add(key(q, cls, kAlloc), bid.w * x, kFixedCompute);
    add(key(q, cls, kRationed), bid.w * bid_rationed(bid, cleared[q]), kFixedCompute);
    add(demand_key(q), bid.w * bid_demand(bid, p_min), kFixedCompute);
    if (k.quota_provider[q]) {
      const int c = f.country[i];
      add(quota_key(c), bid.w * bid_demand(bid, paid_price(bid, cleared[q])) / firm_zeta(k, c, q), kFixedCompute);
    }
  }
};

/// §2.6(e) outcomes per provider: tokens used, their compute, and compute short of the caps.
struct ConsumerUseSum : Pass {
  enum { kUse, kUseCompute, kUseShort, kPerProvider };
  OnExec<UserConsts> kx;
  OnExec<UserView> vx;
  CUTOFF_HD_TEMPLATE
  template <class Add> CUTOFF_HD_INLINE void operator()(std::uint64_t i, Add& add) const {
    const UserConsts& k = open(kx);
    const UserView& v = open(vx);
    UserBid b;
    const int q = user_bid(i, k, v, &b);
    if (q < 0) return;
    const double use = v.use[i];
    add(q * kPerProvider + kUse, b.weight * use, kFixedTokens);
    add(q * kPerProvider + kUseCompute, b.weight * use * b.cost, kFixedCompute);
    add(q * kPerProvider + kUseShort, b.weight * fp::max(b.cap - use, 0.0) * b.cost, kFixedCompute);
  }
};

/// §2.6(e) (v5) the firms' seats per provider: their demand at full caps, the compute
/// and tokens they used, and their plan revenue.
struct SeatSum : Pass {
  enum { kDemand, kUseCompute, kTokens, kRevenue, kPerProvider };
  OnExec<FirmTickConsts> kx;
  OnExec<FirmView> fx;
  CUTOFF_HD_TEMPLATE
  template <class Add> CUTOFF_HD_INLINE void operator()(std::uint64_t i, Add& add) const {
    const FirmView& f = open(fx);
    if (!(f.flags[i] & firm_flag::kSeats)) return;
    const FirmTickConsts& k = open(kx);
    const int q = f.provider[i];
    const double w = firm_weight(k.layout, f, i);
    const double seats = f.seats[i];
    const double h = k.gens.h[f.generation[i]];
    const double alloc = f.alloc[i];
    add(q * kPerProvider + kDemand, w * seats * k.seat_cap * firm_zeta(k, f.country[i], q) * h, kFixedCompute);
    add(q * kPerProvider + kUseCompute, w * alloc, kFixedCompute);
    add(q * kPerProvider + kTokens, w * alloc / h, kFixedTokens);
    add(q * kPerProvider + kRevenue, w * seats * k.seat_price[q], kFixedMoney);
  }
};

#define CUTOFF_KEYED_SUMS(X) \
  X(TauDemandSum)            \
  X(NeedUnitSum)             \
  X(ConsumerSum)             \
  X(FirmMarketSum)           \
  X(ConsumerUseSum)          \
  X(SeatSum)

// ---------------------------------------------------------------------------
// Segment sums (canonical order)
// ---------------------------------------------------------------------------

/// Σ w·employees (per country at §2.0, per (country, sector) for step 8's entrants).
struct EmployeesSum : Pass {
  static constexpr int kOut = 1;
  OnExec<LayoutView> L;
  OnExec<FirmView> f;
  CUTOFF_HD_INLINE void operator()(std::uint64_t i, double* o) const {
    o[0] = firm_weight(open(L), open(f), i) * static_cast<double>(open(f).employees[i]);
  }
};

/// Step 8 pass 1 per (country, sector): Y = Σ w·A·e, Z = Σ w·e·A^σ_c.
struct PoolSum : Pass {
  static constexpr int kOut = 2;
  OnExec<LayoutView> L;
  OnExec<FirmView> f;
  double sigma_c;
  CUTOFF_HD_INLINE void operator()(std::uint64_t i, double* o) const { pool_terms(open(L), open(f), sigma_c, i, o); }
};

/// Step 8 pass 1, price_taker (§2.8): Σ w·e·A^σ·pool_others per segment.
struct PoolOthersSum : Pass {
  static constexpr int kOut = 1;
  OnExec<PoolRule> r;
  OnExec<FirmView> f;
  CUTOFF_HD_INLINE void operator()(std::uint64_t i, double* o) const {
    const PoolRule& k = open(r);
    const double a_sigma = pool_power(open(f), k.sigma_c, i);
    o[0] = pool_units_at(k.layout, open(f), a_sigma, i) * pool_others_at(k, open(f), a_sigma, i);
  }
};

/// Adopter agents per country (§2.0's lagged adoption).
struct AdoptersSum : Pass {
  static constexpr int kOut = 1;
  OnExec<UserView> v;
  CUTOFF_HD_INLINE void operator()(std::uint64_t i, double* o) const {
    o[0] = (open(v).flags[i] & user_flag::kAdopter) ? 1.0 : 0.0;
  }
};

/// §2.10 firm aggregates per country.
struct CountryFirmSum : Pass {
  enum { kY, kEmp, kEmpK, kBuyEmpK, kBuyEmp, kEmpKelig, kEntered, kNegW, kOutCount };
  static constexpr int kOut = kOutCount;
  OnExec<FirmTickConsts> kx;
  OnExec<FirmView> fx;
  CUTOFF_HD_INLINE void operator()(std::uint64_t i, double* o) const {
    const FirmTickConsts& k = open(kx);
    const FirmView& f = open(fx);
    const double w = firm_weight(k.layout, f, i);
    const double we = w * static_cast<double>(f.employees[i]);
    const bool buying = f.flags[i] & firm_flag::kBuying;
    o[kY] = we * static_cast<double>(f.A[i]);
    o[kEmp] = we;
    o[kEmpK] = we * static_cast<double>(f.K[i]);
    o[kBuyEmpK] = buying ? we * static_cast<double>(f.K[i]) : 0.0;
    o[kBuyEmp] = buying ? we : 0.0;
    o[kEmpKelig] = we * static_cast<double>(f.K_elig[i]);
    o[kEntered] = (f.flags[i] & firm_flag::kEntered) ? w : 0.0;
    o[kNegW] = f.W[i] < 0.0 ? w : 0.0;
  }
};

/// §7 (v4) who is cut off, per country, for the firms of one size class: real firms
/// and employment by status, and employment-weighted K accessed (0 if nothing bought).
struct StatusSum : Pass {
  enum { kFirms = 0, kEmp = kStatusCount, kEmpK = 2 * kStatusCount, kOutCount };
  static constexpr int kOut = kOutCount;
  OnExec<LayoutView> L;
  OnExec<FirmView> fx;
  int size;  ///< the size class summed
  CUTOFF_HD_INLINE void operator()(std::uint64_t i, double* o) const {
    const FirmView& f = open(fx);
    for (int j = 0; j < kOut; ++j) o[j] = 0.0;
    if (size_class(f.employees[i]) != size) return;
    const double w = firm_weight(open(L), f, i);
    const double we = w * static_cast<double>(f.employees[i]);
    o[kFirms + f.status[i]] = w;
    o[kEmp + f.status[i]] = we;
    o[kEmpK] = we * static_cast<double>(f.K[i]);
  }
};

/// §2.10 user aggregates per country (per agent; the caller weighs by w_user).
struct CountryUserSum : Pass {
  enum { kAdopt, kUse, kCap, kCapped, kUserK, kQuota, kMarket, kPlan, kOutCount = kPlan + 3 };
  static constexpr int kOut = kOutCount;
  OnExec<UserConsts> kx;
  OnExec<UserView> vx;
  CUTOFF_HD_INLINE void operator()(std::uint64_t i, double* o) const {
    const UserConsts& k = open(kx);
    const UserView& v = open(vx);
    for (int j = 0; j < kOut; ++j) o[j] = 0.0;
    if (!(v.flags[i] & user_flag::kAdopter)) return;
    o[kAdopt] = 1.0;
    if (v.plan[i] > kPlanNone) o[kPlan + plan_index(v.plan[i])] = 1.0;
    const int gen = v.generation[i];
    if (gen == kNone) return;
    const double cap = user_cap(k, v, i);
    o[kUserK] = k.gens.K[gen];
    if (k.quota_provider[k.gens.provider[gen]]) o[kQuota] = cap / k.zeta[v.country[i]] * k.gens.h[gen];
    // Use, caps and compute-capping over the adopters that were in this tick's market
    // (an adopter of step 9 has used nothing yet: it would count as unserved).
    if (v.flags[i] & user_flag::kNew) return;
    o[kMarket] = 1.0;
    o[kUse] = v.use[i];
    o[kCap] = cap;
    o[kCapped] = (v.flags[i] & user_flag::kCapped) ? 1.0 : 0.0;
  }
};

#define CUTOFF_SEGMENT_SUMS(X) \
  X(EmployeesSum)              \
  X(PoolSum)                   \
  X(PoolOthersSum)             \
  X(AdoptersSum)               \
  X(CountryFirmSum)            \
  X(StatusSum)                 \
  X(CountryUserSum)

/// The most sums per segment of any segment-sum pass (F::kOut): the partials' width.
constexpr int max_segment_out() {
  int k = 1;
#define CUTOFF_MAX_OUT(F) k = F::kOut > k ? F::kOut : k;
  CUTOFF_SEGMENT_SUMS(CUTOFF_MAX_OUT)
#undef CUTOFF_MAX_OUT
  return k;
}

// ---------------------------------------------------------------------------
// Ranks, bids
// ---------------------------------------------------------------------------

/// §7: cumulative AI value of the real firms that have used AI, in size class
/// `min_class` or above (0: every firm; 3: 250+ employees, §8's population).
struct AiValueRank : Pass {
  OnExec<LayoutView> L;
  OnExec<FirmView> f;
  int min_class = 0;
  CUTOFF_HD_INLINE bool operator()(std::uint64_t i, double* w, double* x) const {
    if (!(open(f).flags[i] & firm_flag::kUsedAI) || size_class(open(f).employees[i]) < min_class) return false;
    *w = firm_weight(open(L), open(f), i);
    *x = open(f).ai_value[i];
    return true;
  }
};

/// §7: wealth, max(W, 0).
struct WealthRank : Pass {
  OnExec<LayoutView> L;
  OnExec<FirmView> f;
  CUTOFF_HD_INLINE bool operator()(std::uint64_t i, double* w, double* x) const {
    *w = firm_weight(open(L), open(f), i);
    *x = fp::max(open(f).W[i], 0.0);
    return true;
  }
};

#define CUTOFF_RANKS(X) \
  X(AiValueRank)        \
  X(WealthRank)

/// §2.6(c): firm i's bid on the provider it chose (−1: none).
struct FirmBids : Pass {
  OnExec<FirmTickConsts> k;
  OnExec<FirmView> f;
  CUTOFF_HD_INLINE int operator()(std::uint64_t i, FirmBid* bid) const { return firm_bid(i, open(k), open(f), bid); }
};

/// §2.6(e): the plan layer's elements and their bids (−1: none): users [0, n_users),
/// then (v5) the firms' seats, firm j as element n_users + j (the water-fill runs over
/// n_users + n_firms elements when the product layer is on, over n_users when it is off).
struct PlanBids : Pass {
  OnExec<UserConsts> k;
  OnExec<UserView> v;
  OnExec<FirmTickConsts> fk;  ///< (v5) read only for elements ≥ n_users
  OnExec<FirmView> f;
  std::uint64_t n_users;
  CUTOFF_HD_INLINE int operator()(std::uint64_t i, UserBid* bid) const {
    return i < n_users ? user_bid(i, open(k), open(v), bid) : firm_seat_bid(i - n_users, open(fk), open(f), bid);
  }
};

}  // namespace cutoff
