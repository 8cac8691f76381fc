#pragma once
/// @file
/// The device side of the solvers' protocol (core/market/solver.hpp), private to
/// cuda/exec.cu: how a device sink adds its terms (DeviceOps: warp-aggregated atomics
/// into one device copy of a pass's partials), the three visits as k_loop functors,
/// and DevicePasses, the device twin of each host pass of core/market (`clear_pass`,
/// `water_pass`, `rank_pass`): the same visit of every element, the same partials
/// back, fed to the same host solver. The drivers that loop `next(&pass)` / `feed`
/// are CudaExec's clear_firms, water_fill and run_ranks, as the host's are.

#include <cuda_runtime.h>

#include <cstdint>

#include "core/market/clearing.hpp"
#include "core/market/ranks.hpp"
#include "core/market/solver.hpp"
#include "core/market/waterfill.hpp"
#include "core/sim/passes.hpp"
#include "cuda/atomics.cuh"

namespace cutoff::cuda {
namespace {

// ---------------------------------------------------------------------------
// The device side of the solvers' protocol (core/market/solver.hpp)
// ---------------------------------------------------------------------------

/// How a device sink adds its terms: warp-aggregated atomics into the parts' device twins.
struct DeviceOps {
  template <class T> struct Lists {
    T* items;           ///< cap items per gathering list, list k's from slot[k]·cap
    ull* count;         ///< per list
    std::uint64_t cap;  ///< items per gathering list
    const int* slot;    ///< per list: its slot in items, −1 when it does not gather this pass
    __device__ void push(int k, const T& item) const {
      const ull j = agg_slot(count + k);
      const int s = slot[k];
      if (s >= 0 && j < cap) items[static_cast<std::size_t>(s) * cap + j] = item;
    }
  };
  using BinAdd = AtomicBinAdd;
  __device__ static void add(u128& a, u128 x) {
    if (x) agg_add_u128(reinterpret_cast<ull*>(&a), x);  // modular, as the host's adds
  }
  __device__ static void count(std::uint64_t& c) { agg_count(reinterpret_cast<ull*>(&c)); }
  __device__ static void lower(std::uint64_t& a, std::uint64_t v) {
    atomicMin(reinterpret_cast<ull*>(&a), static_cast<ull>(v));
  }
  __device__ static void raise(std::uint64_t& a, std::uint64_t v) {
    agg_max(reinterpret_cast<ull*>(&a), static_cast<ull>(v));
  }
  __device__ static void flag(int& f) { f = 1; }
};

/// The visits of the three solvers, as k_loop functors over their device sinks.
struct ClearVisit {
  clearing_detail::PassView v;
  FirmBids bids;
  clearing_detail::ClearSink<DeviceOps> sink;
  __device__ void operator()(std::uint64_t i) const {
    FirmBid b;
    const int p = bids(i, &b);
    clearing_detail::clearing_visit(v, i, p, b, sink);
  }
};
struct WaterVisit {
  WaterPassView v;
  PlanBids bids;
  WaterSink<DeviceOps> sink;
  __device__ void operator()(std::uint64_t u) const { water_visit(v, u, bids, sink); }
};
template <class Get> struct RankVisit {
  RankPass pass;
  Get get;
  RankSink<DeviceOps> sink;
  __device__ void operator()(std::uint64_t i) const { rank_visit(pass, i, get, sink); }
};

// ---------------------------------------------------------------------------
// The device twins of the host passes
// ---------------------------------------------------------------------------

/// One pass of each solver on the device, over a backend `dev` (CudaExec, which befriends
/// this struct) that uploads the pass's tables (device_table), runs the visit into the
/// device twin of the fresh partials (solver_pass) and launches loops (run_loop).
struct DevicePasses {
  /// The device twin of clearing_detail::clear_pass (core/market/clearing.hpp).
  template <class Dev>
  static clearing_detail::ClearPassData clear_pass(Dev& dev, std::uint64_t n, const FirmBids& bids,
                                                   const clearing_detail::ClearPass& pass, std::uint64_t gather_limit) {
    using namespace clearing_detail;
    PassView v = pass.view();
    v.supply = dev.device_table(pass.supply);
    v.task = dev.device_table(pass.task);
    v.res = dev.device_table(pass.res);
    const std::uint64_t* hist_off = dev.device_table(pass.hist_off);
    ClearPassData data = clear_pass_fresh(pass);
    dev.solver_pass(data, gather_limit, "clearing", [&](const ClearParts<Ptr>& p, const auto& ev) {
      dev.run_loop(n, ClearVisit{v, bids, ClearSink<DeviceOps>{p, hist_off, ev}});
    });
    return data;
  }

  /// The device twin of water_pass (core/market/waterfill.hpp).
  template <class Dev>
  static WaterPassData water_pass(Dev& dev, std::uint64_t n, int n_providers, const PlanBids& bids,
                                  const WaterPass& pass, std::uint64_t gather_limit) {
    WaterPassView v = pass.view(n_providers);
    v.scale = dev.device_table(pass.scale);
    v.jobs = dev.device_table(pass.jobs);
    v.job_begin = dev.device_table(pass.job_begin);
    const std::uint64_t* hist_off = dev.device_table(pass.hist_off);
    WaterPassData data = water_pass_fresh(pass, n_providers);
    dev.solver_pass(data, gather_limit, "water-fill", [&](const WaterParts<Ptr>& p, const auto& items) {
      dev.run_loop(n, WaterVisit{v, bids, WaterSink<DeviceOps>{p, hist_off, items}});
    });
    return data;
  }

  /// The device twin of rank_pass (core/market/ranks.hpp).
  template <class Dev, class Get>
  static RankPassData rank_pass(Dev& dev, std::uint64_t n, const Get& get, const RankPass& pass,
                                std::uint64_t gather_limit) {
    RankPassData data = rank_pass_fresh(pass);
    const int nb = pass.hist.nbins > 0 ? pass.hist.nbins : 0;
    dev.solver_pass(data, gather_limit, "rank pass", [&](const RankParts<Ptr>& p, const auto& items) {
      dev.run_loop(n, RankVisit<Get>{pass, get, RankSink<DeviceOps>{p, nb, items}});
    });
    return data;
  }
};

}  // namespace
}  // namespace cutoff::cuda
