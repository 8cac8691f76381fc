// Ranks without sorting: the host-side state machine of rank_stats (core/market/ranks.hpp).
#include "core/market/ranks.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace cutoff {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double value_of(std::uint64_t key) { return fp::from_bits(key); }

/// A weight sum (2^−64 units) in weight units.
double weight_of(const Fix128& a) { return std::ldexp(fix_to_double(a), -64); }

/// The ranks' refinement bins are at most 2^52 keys wide (shift_for's cap): a bin never
/// spans more than one binary exponent's width of keys (so it meets at most two
/// exponents, and x·2^−E ≥ 1/2 for its values: full relative resolution).
constexpr int kMaxShift = 52;

}  // namespace

RankPassData rank_pass_fresh(const RankPass& pass) {
  const int nb = pass.hist.nbins > 0 ? pass.hist.nbins : 0;
  RankPassData d;
  d.parts.bins.assign(static_cast<std::size_t>(nb) + 1, fixed_bin_empty());
  d.parts.first_bad.assign(1, ~std::uint64_t{0});
  d.parts.over.assign(1, 0);
  d.lists.resize(1);
  d.gathers.assign(1, pass.gather ? 1 : 0);
  return d;
}

void rank_merge(RankPassData& into, const RankPassData& from) {
  RankParts<Vec>& a = into.parts;
  const RankParts<Vec>& b = from.parts;
  for (std::size_t j = 0; j < a.bins.size(); ++j)
    if (fixed_bin_merge(a.bins[j], b.bins[j])) a.over[0] = 1;
  if (b.over[0]) a.over[0] = 1;
  a.first_bad[0] = std::min(a.first_bad[0], b.first_bad[0]);
  into.append_lists(from);
}

RankSolver::RankSolver(double top_fraction, const RankOptions& options) : f_(top_fraction), opt_(options) {
  if (!(top_fraction >= 0.0 && top_fraction <= 1.0))
    throw std::invalid_argument("rank_stats: top_fraction must lie in [0, 1]");
  if (opt_.fine_bins < 2 || opt_.refine_bits < 1 || opt_.refine_bits > 20)
    throw std::invalid_argument("rank_stats: fine_bins must be ≥ 2 and refine_bits in [1, 20]");
  pass_ = RankPass{kExponentSpec, false, 0, 0};
}

bool RankSolver::next(RankPass* pass) {
  if (stage_ == Stage::kDone) return false;
  *pass = pass_;
  return true;
}

void RankSolver::plan_cut_pass() {
  if (cut_count_ <= opt_.gather_limit) {
    pass_ = RankPass{HistSpec{0, 0, 0, 0}, true, cut_lo_, cut_hi_};
  } else {
    const int s = shift_for(cut_hi_ - cut_lo_, 1 << opt_.refine_bits, kMaxShift);
    pass_ = RankPass{HistSpec{cut_lo_, s, static_cast<int>((cut_hi_ - cut_lo_) >> s) + 1, cut_hi_}, false, 0, 0};
  }
  stage_ = Stage::kCut;
}

void RankSolver::locate_cut(const std::vector<FixedBin>& bins, const HistSpec& spec, const FixedBin* zero,
                            Fix128 w_above, CompensatedSum x_above) {
  for (int j = spec.nbins - 1; j >= 0; --j) {
    const FixedBin& b = bins[j];
    if (b.count == 0) continue;
    Fix128 w_next = w_above;
    fix_add(w_next, b.a);
    if (!fix_less(w_next, T_fix_)) {  // the cut lies in bin j
      if (b.kmin == b.kmax) {
        x_above.add(weight_of(fix_sub(T_fix_, w_above)) * value_of(b.kmin));
        top_ = x_above.value();
        cut_done_ = true;
      } else {
        cut_lo_ = b.kmin;
        cut_hi_ = b.kmax;
        cut_count_ = b.count;
        w_above_ = w_above;
        x_above_ = x_above;
      }
      return;
    }
    w_above = w_next;
    x_above.add(std::ldexp(fix_to_double(b.b), spec.top_exponent(j) - 64));
  }
  // The cut lies in the zero bin (or below everything by rounding): the top holds all the value.
  (void)zero;
  top_ = x_above.value();
  cut_done_ = true;
}

void RankSolver::resolve_gathered(std::vector<RankItem>& items) {
  std::sort(items.begin(), items.end(), [](const RankItem& a, const RankItem& b) { return a.key > b.key; });
  Fix128 w_above = w_above_;
  CompensatedSum x_above = x_above_;
  for (std::size_t i = 0; i < items.size();) {
    const std::uint64_t key = items[i].key;
    Fix128 wg{0, 0};
    bool o = false;
    for (; i < items.size() && items[i].key == key; ++i) fix_add(wg, to_fixed(items[i].w, 64, &o));
    Fix128 w_next = w_above;
    fix_add(w_next, wg);
    if (!fix_less(w_next, T_fix_)) {
      x_above.add(weight_of(fix_sub(T_fix_, w_above)) * value_of(key));
      top_ = x_above.value();
      cut_done_ = true;
      return;
    }
    w_above = w_next;
    x_above.add(weight_of(wg) * value_of(key));
  }
  top_ = x_above.value();
  cut_done_ = true;
}

void RankSolver::gini_from(const std::vector<FixedBin>& bins, const HistSpec& spec, const FixedBin& zero) {
  // Ascending: the zero bin adds weight but no area (its S and x are 0).
  CompensatedSum S, acc, Wt, Xt, err;
  Wt.add(weight_of(zero.a));
  for (int j = 0; j < spec.nbins; ++j) {
    const FixedBin& b = bins[j];
    if (b.count == 0) continue;
    const double Wb = weight_of(b.a);
    const double Xb = std::ldexp(fix_to_double(b.b), spec.top_exponent(j) - 64);
    double I = Wb * Xb, hw = 0;
    if (b.kmin != b.kmax) {
      const double lo = value_of(b.kmin), hi = value_of(b.kmax);
      const double t = std::clamp((hi * Wb - Xb) / ((hi - lo) * Wb), 0.0, 1.0);
      const double d = Wb * Wb * (hi - lo) * t * (1.0 - t);  // chord minus the two-point term
      I -= 0.5 * d;
      hw = 0.5 * d;
    }
    acc.add(2.0 * Wb * S.value());
    acc.add(I);
    S.add(Xb);
    Xt.add(Xb);
    Wt.add(Wb);
    err.add(hw);
  }
  const double WX = Wt.value() * Xt.value();
  if (!(WX > 0)) {
    gini_ = 0;
    gini_err_ = 0;
  } else {
    gini_ = std::max(0.0, 1.0 - acc.value() / WX);
    gini_err_ = err.value() / WX;
  }
  gini_done_ = true;
}

void RankSolver::feed_first(const std::vector<FixedBin>& bins, const FixedBin& zero) {
  W_fix_ = zero.a;
  CompensatedSum X;
  kmin_pos_ = ~std::uint64_t{0};
  kmax_ = 0;
  bool all_single = true;
  for (int j = 0; j < kExponentSpec.nbins; ++j) {
    const FixedBin& b = bins[j];
    if (b.count == 0) continue;
    if (fix_add(W_fix_, b.a)) throw std::overflow_error("rank_stats: total weight ≥ 2^64");
    X.add(std::ldexp(fix_to_double(b.b), kExponentSpec.top_exponent(j) - 64));
    kmin_pos_ = std::min(kmin_pos_, b.kmin);
    kmax_ = std::max(kmax_, b.kmax);
    all_single = all_single && b.kmin == b.kmax;
  }
  W_ = weight_of(W_fix_);
  X_ = X.value();
  if (W_fix_.lo == 0 && W_fix_.hi == 0) {  // no element
    top_ = gini_ = kNaN;
    stage_ = Stage::kDone;
    return;
  }
  if (!(X_ > 0)) {  // every value is 0
    top_ = kNaN;
    gini_ = 0;
    stage_ = Stage::kDone;
    return;
  }
  bool o = false;
  T_fix_ = f_ >= 1.0 ? W_fix_ : to_fixed(f_ * W_, 64, &o);
  if (fix_less(W_fix_, T_fix_)) T_fix_ = W_fix_;
  if (T_fix_.lo == 0 && T_fix_.hi == 0) {
    top_ = 0;
    cut_done_ = true;
  } else {
    locate_cut(bins, kExponentSpec, &zero, Fix128{0, 0}, CompensatedSum{});
  }
  if (all_single) gini_from(bins, kExponentSpec, zero);
  if (!gini_done_) {
    const std::uint64_t range = kmax_ - kmin_pos_;
    const int s = shift_for(range, opt_.fine_bins, kMaxShift);
    pass_.hist = HistSpec{kmin_pos_, s, static_cast<int>(range >> s) + 1, kmax_};
    pass_.gather = !cut_done_ && cut_count_ <= opt_.gather_limit;
    pass_.glo = cut_lo_;
    pass_.ghi = cut_hi_;
    stage_ = Stage::kFine;
  } else if (!cut_done_) {
    plan_cut_pass();
  } else {
    stage_ = Stage::kDone;
  }
}

void RankSolver::feed(RankPassData&& data) {
  ++passes_;
  if (data.parts.first_bad[0] != ~std::uint64_t{0})
    throw std::invalid_argument("rank_stats: element " + std::to_string(data.parts.first_bad[0]) +
                                " has a negative or non-finite weight or value");
  std::vector<FixedBin>& bins = data.parts.bins;
  const FixedBin zero = bins.back();
  bins.pop_back();
  std::vector<RankItem>& items = data.lists[0];
  if (data.parts.over[0])
    throw std::overflow_error(
        "rank_stats: a weighted value w·x overflowed a double, or a 128-bit fixed-point histogram sum overflowed "
        "(total weight ≥ 2^64)");
  switch (stage_) {
    case Stage::kFirst: feed_first(bins, zero); return;
    case Stage::kFine:
      gini_from(bins, pass_.hist, zero);
      if (!cut_done_) {
        if (pass_.gather)
          resolve_gathered(items);
        else
          locate_cut(bins, pass_.hist, &zero, Fix128{0, 0}, CompensatedSum{});
      }
      break;
    case Stage::kCut:
      if (pass_.gather)
        resolve_gathered(items);
      else
        locate_cut(bins, pass_.hist, nullptr, w_above_, x_above_);
      break;
    case Stage::kDone: return;
  }
  if (!cut_done_)
    plan_cut_pass();
  else
    stage_ = Stage::kDone;
}

RankStats RankSolver::result() const {
  RankStats r;
  r.total_weight = W_;
  r.total_value = X_;
  r.passes = passes_;
  r.gini = gini_;
  r.gini_error = gini_err_;
  if (std::isnan(top_) || !(X_ > 0))
    r.top_share = kNaN;
  else
    r.top_share = std::clamp(top_ / X_, f_, 1.0);
  return r;
}

}  // namespace cutoff
