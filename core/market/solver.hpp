#pragma once
/// @file
/// The protocol the three multi-pass solvers share (the clearing, the water-fill and
/// the ranks), written once for both backends.
///
/// A solver plans a pass (`next`). Every element is visited once by the solver's
/// `CUTOFF_HD` visit (`clearing_visit`, `water_visit`, `rank_visit`) into the
/// solver's sink; the pass's partial results come back as one `Partials` that the
/// solver reads (`feed`) to plan the next pass or stop.
///
/// * **Parts.** A solver's partial results are flat arrays, declared once as a
///   template over their holder: `Parts<Vec>` holds them on the host, `Parts<Ptr>`
///   points at them (host memory, or their device twins). `tie()` lists them, so
///   code that moves parts (to the device and back) is written once for all solvers.
///   Every part of a fresh `Partials` holds one value throughout, its identity (0,
///   an empty bin, "no bad element yet"), so a device twin is filled from it
///   (tests/market/solver_check.hpp checks it for every pass of every solver).
/// * **Lists.** Gathered items, one list per market or job, in any order: the
///   solvers sort what they gather.
/// * **Sinks.** One per solver, a template over an Ops policy that says how a term
///   is added: `HostOps` (here: one thread's private partials, plain adds) or the
///   CUDA backend's `DeviceOps` (cuda/solvers.cuh: warp-aggregated atomics).
///   Partials are integer (fixed-point) sums, counts, minima and maxima, so any
///   merge order gives the same bits: a thread's partials merged here and a GPU's
///   atomics give the same answer. Gathered lists come back in any order too.

#include <cstddef>
#include <cstdint>
#include <tuple>
#include <utility>
#include <vector>

#include "core/hd/fixed.hpp"
#include "core/hd/hd.hpp"

namespace cutoff {

// ---------------------------------------------------------------------------
// The refinement's bin width (all three solvers)
// ---------------------------------------------------------------------------

/// The smallest shift s ≤ max_shift with (width >> s) < max_bins: the bins of 2^s keys
/// that cover `width` keys in fewer than max_bins bins, when a solver refines a range of
/// key bit patterns. At most max_shift (the ranks keep a bin within one exponent's width).
inline int shift_for(std::uint64_t width, int max_bins, int max_shift = 63) {
  int s = 0;
  while (s < max_shift && (width >> s) >= static_cast<std::uint64_t>(max_bins)) ++s;
  return s;
}

// ---------------------------------------------------------------------------
// The histogram bin of the water-fill and the ranks
// ---------------------------------------------------------------------------

/// One histogram bin: a count, two fixed-point sums and the exact key range.
struct FixedBin {
  std::uint64_t count;
  Fix128 a, b;
  std::uint64_t kmin, kmax;  ///< kmin > kmax when empty
};

CUTOFF_HD_INLINE FixedBin fixed_bin_empty() { return FixedBin{0, {0, 0}, {0, 0}, ~std::uint64_t{0}, 0}; }

/// Adds one element; returns true on overflow.
CUTOFF_HD_INLINE bool fixed_bin_add(FixedBin& bin, std::uint64_t key, const Fix128& a, const Fix128& b) {
  bin.count += 1;
  const bool o = fix_add(bin.a, a) | fix_add(bin.b, b);
  if (key < bin.kmin) bin.kmin = key;
  if (key > bin.kmax) bin.kmax = key;
  return o;
}

/// Merges bin `from` into `into`; returns true on overflow.
CUTOFF_HD_INLINE bool fixed_bin_merge(FixedBin& into, const FixedBin& from) {
  into.count += from.count;
  const bool o = fix_add(into.a, from.a) | fix_add(into.b, from.b);
  if (from.kmin < into.kmin) into.kmin = from.kmin;
  if (from.kmax > into.kmax) into.kmax = from.kmax;
  return o;
}

/// Adds one element to a bin (host); the CUDA backend has an atomic twin.
struct BinAdd {
  CUTOFF_HD_INLINE bool operator()(FixedBin& bin, std::uint64_t key, const Fix128& a, const Fix128& b) const {
    return fixed_bin_add(bin, key, a, b);
  }
};

// ---------------------------------------------------------------------------
// Parts, partials and the host ops
// ---------------------------------------------------------------------------

template <class T> using Vec = std::vector<T>;
template <class T> using Ptr = T*;

namespace solver_detail {
template <class A, class B, class F, std::size_t... I>
void zip(A&& a, B&& b, F& f, std::index_sequence<I...> /*unused*/) {
  (f(std::get<I>(a), std::get<I>(b)), ...);
}
}  // namespace solver_detail

/// Calls f(a_k, b_k) for each pair of parts of two holders (their tie()s, in order).
template <class A, class B, class F> void zip_parts(A&& a, B&& b, F f) {
  solver_detail::zip(a, b, f, std::make_index_sequence<std::tuple_size_v<std::decay_t<A>>>{});
}

/// A pass's partial results: one thread's, the merge of every thread's, or the device's.
template <template <template <class> class> class Parts, class Item> struct Partials {
  Parts<Vec> parts;                      ///< each part starts uniform: its identity
  std::vector<std::vector<Item>> lists;  ///< gathered items per list, any order
  std::vector<char> gathers;             ///< per list: whether this pass may gather into it

  /// Pointers to the parts (what a host sink writes).
  Parts<Ptr> ptrs() {
    Parts<Ptr> p{};
    zip_parts(parts.tie(), p.tie(), [](auto& vec, auto& ptr) { ptr = vec.data(); });
    return p;
  }
  /// Appends another partials' gathered lists to these.
  void append_lists(const Partials& from) {
    for (std::size_t k = 0; k < lists.size(); ++k)
      lists[k].insert(lists[k].end(), from.lists[k].begin(), from.lists[k].end());
  }
};

/// How a host sink adds its terms: plainly, into one thread's private partials.
struct HostOps {
  template <class T> struct Lists {
    std::vector<T>* list;
    void push(int k, const T& item) const { list[k].push_back(item); }
  };
  template <class P> static Lists<typename P::value_type::value_type> lists(P& lists) { return {lists.data()}; }
  using BinAdd = cutoff::BinAdd;
  static void add(u128& a, u128 x) { a += x; }
  static void count(std::uint64_t& c) { ++c; }
  static void lower(std::uint64_t& a, std::uint64_t v) {
    if (v < a) a = v;
  }
  static void raise(std::uint64_t& a, std::uint64_t v) {
    if (v > a) a = v;
  }
  static void flag(int& f) { f = 1; }
};

/// One host pass over elements [0, n): each OpenMP thread starts from a copy of
/// @p fresh, builds its sink once (`make_sink(local)`, which points into the
/// thread's partials), calls visit(i, sink) for its share of the elements, then
/// merge(out, local) once, under one lock, into the result (which also starts as
/// @p fresh). Without @p parallel, one thread does it all (the same bits: a small
/// pass is not worth a team).
template <class Data, class MakeSink, class Visit, class Merge>
Data host_pass(std::uint64_t n, bool parallel, const Data& fresh, const MakeSink& make_sink, const Visit& visit,
               const Merge& merge) {
  Data out = fresh;
#pragma omp parallel if (parallel)
  {
    Data local = fresh;
    const auto sink = make_sink(local);
#pragma omp for schedule(static) nowait
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(n); ++i) visit(static_cast<std::uint64_t>(i), sink);
#pragma omp critical(cutoff_solver_merge)
    merge(out, local);
  }
  return out;
}

}  // namespace cutoff
