// The consumer water-fill: the host-side state machine of water_fill (core/market/waterfill.hpp).
#include "core/market/waterfill.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace cutoff {

namespace {

double value_of(std::uint64_t key) { return fp::from_bits(key); }

/// a − b as a double (either sign).
double diff(const Fix128& a, const Fix128& b) {
  return fix_less(a, b) ? -fix_to_double(fix_sub(b, a)) : fix_to_double(fix_sub(a, b));
}

bool is_zero(const Fix128& a) { return a.lo == 0 && a.hi == 0; }

int bit_length(std::uint64_t x) {
  int n = 0;
  while (x) {
    ++n;
    x >>= 1;
  }
  return n;
}

}  // namespace

WaterPassData water_pass_fresh(const WaterPass& pass, int n_providers) {
  WaterParts<Vec> parts;
  parts.level0.assign(pass.level0 ? static_cast<std::size_t>(n_providers) * 2 * kExponentBins : 0, fixed_bin_empty());
  parts.hist.assign(pass.hist_off.empty() ? 0 : pass.hist_off.back(), fixed_bin_empty());
  parts.max_whc_key.assign(n_providers, 0);
  parts.over.assign(n_providers, 0);
  parts.first_bad.assign(1, ~std::uint64_t{0});
  WaterPassData d{std::move(parts), {}, {}};
  d.lists.resize(pass.jobs.size());
  for (const WaterJob& job : pass.jobs) d.gathers.push_back(job.hist.nbins > 0 ? 0 : 1);
  return d;
}

void water_merge(const WaterPass& pass, WaterPassData& into, const WaterPassData& from) {
  WaterParts<Vec>& a = into.parts;
  const WaterParts<Vec>& b = from.parts;
  for (std::size_t i = 0; i < a.level0.size(); ++i)
    if (fixed_bin_merge(a.level0[i], b.level0[i])) a.over[i / (2 * kExponentBins)] = 1;
  for (std::size_t k = 0; k < pass.jobs.size(); ++k)
    for (std::uint64_t i = pass.hist_off[k]; i < pass.hist_off[k + 1]; ++i)
      if (fixed_bin_merge(a.hist[i], b.hist[i])) a.over[pass.jobs[k].provider] = 1;
  for (std::size_t p = 0; p < a.max_whc_key.size(); ++p) {
    a.max_whc_key[p] = std::max(a.max_whc_key[p], b.max_whc_key[p]);
    if (b.over[p]) a.over[p] = 1;
  }
  a.first_bad[0] = std::min(a.first_bad[0], b.first_bad[0]);
  into.append_lists(from);
}

WaterSolver::WaterSolver(int n_providers, const double* capacity, const double* floor, const WaterfillOptions& options)
    : P_(n_providers), opt_(options) {
  if (P_ < 0 || (P_ > 0 && capacity == nullptr)) throw std::invalid_argument("water_fill: no capacities");
  if (opt_.refine_bits < 1 || opt_.refine_bits > 20)
    throw std::invalid_argument("water_fill: refine_bits must lie in [1, 20]");
  C_.assign(capacity, capacity + P_);
  F_.assign(P_, 0.0);
  if (floor) F_.assign(floor, floor + P_);
  s_.assign(P_, 64);
  for (int p = 0; p < P_; ++p) {
    if (!(C_[p] >= 0.0) || !(F_[p] >= 0.0))
      throw std::invalid_argument("water_fill: provider " + std::to_string(p) +
                                  ": capacity and floor must be ≥ 0 (not NaN)");
    F_[p] = std::min(F_[p], C_[p]);
    if (C_[p] > 0.0 && C_[p] < fp::kInf) s_[p] = 63 - std::ilogb(C_[p]);
  }
  retried_.assign(P_, 0);
  levels_.assign(P_, WaterLevel{0, 0, 0, 0});
  pass_.level0 = true;
  pass_.scale = s_;
  pass_.job_begin.assign(P_ + 1, 0);
  if (P_ == 0) done_ = true;
}

bool WaterSolver::next(WaterPass* pass) {
  if (done_) return false;
  pass_.hist_off.assign(1, 0);
  for (const WaterJob& job : pass_.jobs)
    pass_.hist_off.push_back(pass_.hist_off.back() +
                             static_cast<std::uint64_t>(job.hist.nbins > 0 ? job.hist.nbins : 0));
  *pass = pass_;
  return true;
}

void WaterSolver::locate(Fill& f, const FixedBin* bins, const HistSpec& spec, bool level0) {
  const int nb = spec.nbins;
  auto exponent = [&](int j) { return level0 ? water_bin_exponent(j) : f.E; };
  std::vector<CompensatedSum> suf(static_cast<std::size_t>(nb) + 1);
  suf[nb] = f.B;
  for (int j = nb - 1; j >= 0; --j) {
    suf[j] = suf[j + 1];
    if (bins[j].count) suf[j].add(std::ldexp(fix_to_double(bins[j].b), -exponent(j)));
  }
  auto finish_fill = [&](double lambda) {
    if (!(lambda >= f.lam_lo)) lambda = f.lam_lo;  // also NaN
    if (lambda > f.lam_hi) lambda = f.lam_hi;
    f.lambda = lambda;
    f.done = true;
  };
  Fix128 A = f.A;
  for (int j = 0; j < nb; ++j) {
    const FixedBin& b = bins[j];
    Fix128 A_next = A;
    fix_add(A_next, b.a);
    const std::uint64_t hi_key = spec.edge(j + 1);
    const double hi = hi_key >= fp::kInfBits ? fp::kInf : value_of(hi_key);
    const double Bup = suf[j + 1].value();
    bool cross = fix_less(f.cap, A_next);
    if (!cross && Bup > 0) cross = hi * Bup > diff(f.cap, A_next);
    if (!cross) {
      A = A_next;
      continue;
    }
    // S crosses C in bin j: S(lam_lo) ≤ C < S(hi).
    if (j > 0 || level0) f.lam_lo = std::max(f.lam_lo, value_of(spec.edge(j)));
    f.lam_hi = std::min(f.lam_hi, hi);
    f.A = A;
    f.B = suf[j + 1];
    if (b.count == 0) {  // no breakpoint in the bin: S is linear there
      finish_fill(diff(f.cap, A) / Bup);
      return;
    }
    const int E = exponent(j);
    if (b.kmin == b.kmax) {  // one breakpoint value v: rising below v, saturated above
      const double v = value_of(b.kmin);
      CompensatedSum Bt = f.B;
      Bt.add(std::ldexp(fix_to_double(b.b), -E));
      const double R = diff(f.cap, A);
      if (v * Bt.value() > R) {
        finish_fill(std::min(R / Bt.value(), v));
      } else {
        f.lam_lo = std::max(f.lam_lo, v);
        finish_fill(Bup > 0 ? diff(f.cap, A_next) / Bup : v);
      }
      return;
    }
    f.klo = b.kmin;
    f.khi = b.kmax;
    f.count = b.count;
    f.E = E;
    return;
  }
  // No crossing inside (a refinement whose crossing lies above its last breakpoint).
  f.A = A;
  const double Bv = f.B.value();
  finish_fill(Bv > 0 ? diff(f.cap, A) / Bv : f.lam_hi);
}

void WaterSolver::resolve_items(Fill& f, std::vector<WaterItem>& items) {
  const int s = s_[f.provider];
  std::sort(items.begin(), items.end(), [](const WaterItem& a, const WaterItem& b) { return a.key < b.key; });
  bool o = false;
  std::vector<Fix128> c(items.size()), p(items.size());
  Fix128 rem{0, 0};
  for (std::size_t i = 0; i < items.size(); ++i) {
    c[i] = to_fixed(items[i].whc, s, &o);
    p[i] = to_fixed(items[i].whp, s + f.E, &o);
    fix_add(rem, p[i]);
  }
  Fix128 A = f.A;
  double prev = f.lam_lo, lambda = -1;
  for (std::size_t i = 0; i < items.size();) {
    const std::uint64_t key = items[i].key;
    const double v = value_of(key);
    CompensatedSum Bt = f.B;
    Bt.add(std::ldexp(fix_to_double(rem), -f.E));
    const double R = diff(f.cap, A);
    if (v * Bt.value() > R) {
      lambda = std::min(std::max(R / Bt.value(), prev), v);
      break;
    }
    for (; i < items.size() && items[i].key == key; ++i) {
      fix_add(A, c[i]);
      rem = fix_sub(rem, p[i]);
    }
    prev = std::max(prev, v);
  }
  if (lambda < 0) {  // above the last breakpoint of the bin
    const double Bv = f.B.value();
    lambda = Bv > 0 ? std::max(diff(f.cap, A) / Bv, prev) : prev;
  }
  lambda = std::max(lambda, f.lam_lo);
  if (!(lambda <= f.lam_hi)) lambda = f.lam_hi;
  f.lambda = lambda;
  f.done = true;
}

void WaterSolver::start_fills() {
  fill_J_.assign(P_, -1);
  fill_F_.assign(P_, -1);
  fill_U_.assign(P_, -1);
  stage1_.assign(P_, 0);
  for (int p = 0; p < P_; ++p) {
    const FixedBin* h[2] = {&level0_[(static_cast<std::size_t>(p) * 2) * kExponentBins],
                            &level0_[(static_cast<std::size_t>(p) * 2 + 1) * kExponentBins]};
    Fix128 D[2] = {{0, 0}, {0, 0}};
    for (int k = 0; k < 2; ++k)
      for (int j = 0; j < kExponentBins; ++j) fix_add(D[k], h[k][j].a);
    Fix128 Dall = D[0];
    if (fix_add(Dall, D[1])) throw std::overflow_error("water_fill: demand overflow");
    const int s = s_[p];
    levels_[p].demand = std::ldexp(fix_to_double(Dall), -s);
    levels_[p].demand_floor = std::ldexp(fix_to_double(D[1]), -s);
    if (C_[p] == fp::kInf) continue;
    bool o = false;
    const Fix128 Cfix = to_fixed(C_[p], s, &o), Ffix = to_fixed(F_[p], s, &o);
    auto add_fill = [&](unsigned mask, const Fix128& cap) {
      Fill f;
      f.provider = p;
      f.mask = mask;
      f.cap = cap;
      std::vector<FixedBin> bins(kExponentBins, fixed_bin_empty());
      for (int k = 0; k < 2; ++k)
        if ((mask >> k) & 1u)
          for (int j = 0; j < kExponentBins; ++j) fixed_bin_merge(bins[j], h[k][j]);
      locate(f, bins.data(), kExponentSpec, true);
      fills_.push_back(f);
      return static_cast<int>(fills_.size()) - 1;
    };
    const bool stage1 = !is_zero(Ffix) && !is_zero(D[1]);
    stage1_[p] = stage1;
    Fix128 used1{0, 0};
    if (stage1) {
      if (fix_less(Ffix, D[1])) {
        fill_F_[p] = add_fill(2u, Ffix);
        used1 = Ffix;
      } else {
        used1 = D[1];  // every host user fits the floor: lambda_floor = +inf
      }
    }
    if (fix_less(Cfix, Dall)) {
      fill_J_[p] = add_fill(3u, Cfix);
      if (stage1) {
        const Fix128 cap2 = fix_sub(Cfix, used1);
        if (fix_less(cap2, D[0])) fill_U_[p] = add_fill(1u, cap2);
      }
    }
  }
}

void WaterSolver::finish() {
  for (int p = 0; p < P_; ++p) {
    WaterLevel& l = levels_[p];
    if (C_[p] == fp::kInf) {
      l.lambda = fp::kInf;
      l.lambda_floor = 0;
      continue;
    }
    auto lam = [&](int f) { return f >= 0 ? fills_[f].lambda : fp::kInf; };
    const double lJ = lam(fill_J_[p]);
    if (!stage1_[p]) {
      l.lambda = lJ;
      l.lambda_floor = 0;
      continue;
    }
    const double l1 = lam(fill_F_[p]);
    l.lambda_floor = l1;
    l.lambda = lJ >= l1 ? lJ : std::min(lam(fill_U_[p]), l1);
  }
  done_ = true;
}

void WaterSolver::feed(WaterPassData&& data) {
  ++passes_;
  WaterParts<Vec>& d = data.parts;
  if (d.first_bad[0] != ~std::uint64_t{0})
    throw std::invalid_argument("water_fill: user " + std::to_string(d.first_bad[0]) +
                                " has a provider index out of range or an invalid bid (a negative or non-finite "
                                "field, or a positive cap with plan weight ≤ 0)");
  if (!level0_done_) {
    bool again = false;
    for (int p = 0; p < P_; ++p) {
      if (!d.over[p]) continue;
      if (retried_[p])
        throw std::overflow_error("water_fill: provider " + std::to_string(p) +
                                  ": a 128-bit fixed-point sum overflowed twice");
      std::uint64_t count = 0;
      for (int k = 0; k < 2 * kExponentBins; ++k)
        count += d.level0[static_cast<std::size_t>(p) * 2 * kExponentBins + k].count;
      // Σ terms ≤ count·2^(E_max+1); keep it below 2^126.
      s_[p] = 125 - (field_exponent(d.max_whc_key[p]) + 1) - bit_length(count);
      retried_[p] = 1;
      again = true;
    }
    if (again) {
      pass_.scale = s_;
      return;
    }
    level0_ = std::move(d.level0);
    level0_done_ = true;
    start_fills();
  } else {
    for (std::size_t k = 0; k < pass_.jobs.size(); ++k) {
      const WaterJob& job = pass_.jobs[k];
      if (d.over[job.provider]) throw std::overflow_error("water_fill: a refinement sum overflowed");
      Fill& f = fills_[job_fill_[k]];
      if (job.hist.nbins > 0)
        locate(f, d.hist.data() + pass_.hist_off[k], job.hist, false);
      else
        resolve_items(f, data.lists[k]);
    }
  }
  // The next pass: one job per unresolved fill (fills are in provider order).
  pass_.level0 = false;
  pass_.scale = s_;
  pass_.jobs.clear();
  job_fill_.clear();
  pass_.job_begin.assign(P_ + 1, 0);
  for (std::size_t i = 0; i < fills_.size(); ++i) {
    const Fill& f = fills_[i];
    if (f.done) continue;
    WaterJob job;
    job.provider = f.provider;
    job.mask = f.mask;
    job.s_c = s_[f.provider];
    job.s_p = s_[f.provider] + f.E;
    job.glo = f.klo;
    job.ghi = f.khi;
    if (f.count <= opt_.gather_limit) {
      job.hist = HistSpec{0, 0, 0, 0};
    } else {
      const int sh = shift_for(f.khi - f.klo, 1 << opt_.refine_bits);
      job.hist = HistSpec{f.klo, sh, static_cast<int>((f.khi - f.klo) >> sh) + 1, f.khi};
    }
    pass_.jobs.push_back(job);
    job_fill_.push_back(static_cast<int>(i));
    pass_.job_begin[f.provider + 1] += 1;
  }
  for (int p = 0; p < P_; ++p) pass_.job_begin[p + 1] += pass_.job_begin[p];
  if (pass_.jobs.empty()) finish();
}

}  // namespace cutoff
