#pragma once
/// @file
/// Where a run's agents live and how passes over them execute: the seam between
/// the model (core/sim/simulation.cpp, written once) and a backend. The CPU backend
/// (core/sim/exec_cpu.cpp) keeps the agents in host arrays and runs each pass with
/// OpenMP; the CUDA backend (cuda/exec.cu) keeps them in device arrays and runs
/// the same functors of core/sim/passes.hpp from kernels. Only provider- and
/// country-level results come back (docs/backends.md lists what crosses).
///
/// Every pass is deterministic and backend-independent by construction: loops
/// write one agent each; keyed sums are 128-bit integer sums; segment sums use
/// the canonical order of core/hd/reduce.hpp; the clearing, water-fill and ranks
/// merge integer histograms and feed the same host solver.

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "agents/choice.hpp"
#include "agents/fields.hpp"
#include "core/hd/keyed_sum.hpp"
#include "core/hd/reduce.hpp"
#include "core/hd/registry.hpp"
#include "core/hd/tables.hpp"
#include "core/market/ranks.hpp"
#include "core/market/waterfill.hpp"
#include "core/model/params.hpp"
#include "core/model/population.hpp"
#include "core/sim/passes.hpp"

namespace cutoff {

/// Options of the clearing, the water-fill and the ranks (the defaults are the model's).
struct SolverOptions {
  ClearingOptions clearing;
  WaterfillOptions water;
  RankOptions ranks;
};

class Exec : protected OnExecSource {
 public:
  virtual ~Exec() = default;

  /// The agent arrays as the passes read them (device memory on CUDA).
  virtual OnExec<FirmView> firms() = 0;
  virtual OnExec<UserView> users() = 0;

  /// The per-tick table registry (core/hd/tables.hpp): every table K lists in its
  /// `tables()` where the passes read it, valid until the next begin_tick().
  /// The CPU reads the host data in place; CUDA stages the tables of one put in
  /// pinned memory and uploads them with one copy, in stream order. Tables that
  /// are constants of the run (put_constant) are not uploaded again.
  template <class K> OnExec<K> put(K k) { return on_exec(moved(k, false)); }
  /// As put(), for tables that stay the same for the whole run (the layout):
  /// uploaded once, valid for the Exec's life, and reused by later puts that list them.
  template <class K> OnExec<K> put_constant(K k) { return on_exec(moved(k, true)); }
  /// Marks the start of a tick: tables of earlier ticks may be reused.
  virtual void begin_tick() {}
  /// Fills every agent array with `byte` (tests: initialisation writes every field).
  virtual void fill(std::uint8_t byte) = 0;

#define CUTOFF_EXEC_LOOP(F) virtual void loop(std::uint64_t n, const F& f) = 0;
  CUTOFF_LOOPS(CUTOFF_EXEC_LOOP)
#undef CUTOFF_EXEC_LOOP
  /// Keyed fixed-point sums over agents [0, n), added into `out` (F's keys < out.keys()).
#define CUTOFF_EXEC_KEYED(F) virtual void sum(std::uint64_t n, const F& f, KeyedFixed& out) = 0;
  CUTOFF_KEYED_SUMS(CUTOFF_EXEC_KEYED)
#undef CUTOFF_EXEC_KEYED
  /// Canonical sums over segments [begin[s], begin[s+1]) (begin: host, length n_seg + 1, the
  /// same array each call for a given segmentation); out: F::kOut doubles per segment.
#define CUTOFF_EXEC_SEGMENTS(F) \
  virtual void segment_sums(const std::vector<std::uint64_t>& begin, const F& f, std::vector<double>& out) = 0;
  CUTOFF_SEGMENT_SUMS(CUTOFF_EXEC_SEGMENTS)
#undef CUTOFF_EXEC_SEGMENTS
#define CUTOFF_EXEC_RANK(F) virtual RankStats rank_stats(std::uint64_t n, const F& f) = 0;
  CUTOFF_RANKS(CUTOFF_EXEC_RANK)
#undef CUTOFF_EXEC_RANK
  /// §2.6(c): clears every provider's firm market (core/market/clearing.hpp); results on the host.
  virtual std::vector<ProviderClearing> clear_firms(std::uint64_t n, const std::vector<ProviderSupply>& supply,
                                                    const FirmBids& bids) = 0;
  /// §2.6(e): the consumer water levels (core/market/waterfill.hpp); results on the host.
  virtual WaterFill water_fill(std::uint64_t n, int n_providers, const PlanBids& bids, const double* capacity,
                               const double* floor) = 0;

  /// Copies firms `idx` (ascending) into `out` (sized idx.size()), and back.
  virtual void gather_firms(const std::vector<std::uint64_t>& idx, HostArrays<Firms>& out) = 0;
  virtual void scatter_firms(const std::vector<std::uint64_t>& idx, const HostArrays<Firms>& in) = 0;

  /// Host copies of the agent arrays, current after the last pass (the arrays
  /// themselves on the CPU; on CUDA a synchronous device→host copy).
  virtual const HostArrays<Firms>& host_firms() = 0;
  virtual const HostArrays<Users>& host_users() = 0;

  /// Replaces every agent's fields with `from` (same size): checkpoints, tests.
  virtual void load_firms(const HostArrays<Firms>& from) = 0;
  virtual void load_users(const HostArrays<Users>& from) = 0;

  /// Snapshots: snapshot_begin() starts copying the State fields to host buffers
  /// (on CUDA: pinned buffers, on their own stream, ordered before the next pass
  /// that writes them); snapshot_firms()/snapshot_users() wait for the copy and
  /// return them. On the CPU both return the live arrays (take them before the next step).
  virtual void snapshot_begin() {}
  virtual const HostArrays<Firms>& snapshot_firms() { return host_firms(); }
  virtual const HostArrays<Users>& snapshot_users() { return host_users(); }
  /// True when snapshot buffers stay valid while later ticks run.
  virtual bool snapshots_detached() const { return false; }
  /// Times the host has waited for the device so far (0 on the CPU): round trips.
  virtual std::uint64_t host_waits() const { return 0; }

  /// The histogram solvers' options (tests force their refinement passes at small sizes).
  void set_solver_options(const SolverOptions& o) { solver_options_ = o; }
  const SolverOptions& solver_options() const { return solver_options_; }

 protected:
  /// One table of a put: its host data and bytes; the backend sets `device`.
  struct Upload {
    const void* host;
    std::size_t bytes;
    const void* device;
  };
  virtual void upload(Upload* tables, std::size_t n, bool constant) = 0;

 private:
  template <class K> K moved(K k, bool constant) {
    std::vector<Upload> u;
    visit_tables(k, [&](auto& t) { u.push_back(Upload{t.ptr, t.bytes(), nullptr}); });
    upload(u.data(), u.size(), constant);
    std::size_t j = 0;
    visit_tables(k, [&](auto& t) {
      using T = typename std::decay_t<decltype(t)>::value_type;
      t.ptr = static_cast<const T*>(u[j++].device);
    });
    return k;
  }
  SolverOptions solver_options_{};
};

/// A backend: its name, written to outputs ("cpu" or "cuda"), and how it allocates
/// the agents of a run. core/app/backend.hpp is the one place that chooses one; the
/// simulation only calls `make`.
/// What a backend allocates for: the agents, and what the CUDA backend's pass
/// buffers grow with (device_bytes_needed).
struct ExecShape {
  std::uint64_t n_firms = 0, n_users = 0;
  int n_providers = kMaxProviders;
  std::uint64_t n_segments = 1;  ///< the most segments of one segmentation the passes sum over (countries × sectors)
  std::uint64_t n_large = 0;     ///< the large-firm stratum (gather_firms and scatter_firms move it)
};
/// The shape of a run of `layout` with `n_providers` providers.
ExecShape exec_shape(const Layout& layout, int n_providers);

struct Backend {
  using Make = std::unique_ptr<Exec> (*)(const ExecShape& shape);
  std::string name;
  Make make;
};

/// The CPU backend: OpenMP over host arrays.
Backend cpu_backend();

/// Device bytes the CUDA backend allocates for a run of `shape`, before any snapshot
/// buffer: the agents' registry arrays, and every buffer that grows during a tick to
/// its largest size under the solvers' default options (docs/memory.md):
struct DeviceBytes {
  std::uint64_t agents = 0;    ///< the registries' arrays
  std::uint64_t clearing = 0;  ///< the clearing's parts: 2P markets' histograms (65,537 bins of 40 B) and sums
  std::uint64_t water = 0;     ///< the water-fill's parts: level 0 (P × 2 × 2,047 bins) and 3P fills' refinements
  std::uint64_t ranks = 0;     ///< the ranks' parts: one histogram
  std::uint64_t lists = 0;  ///< gathered items (shared by the three solvers): the clearing's 2P × 2^18 × 80 B at most
  std::uint64_t segments = 0;  ///< segment sums: every level's partials, the totals and the plans
  std::uint64_t large = 0;     ///< the large-firm stratum's gather and scatter buffers
  std::uint64_t tables = 0;    ///< the tick's tables, keyed sums and the results' mailbox (a fixed allowance)
  /// Everything but the agents: what a tick may still allocate (the snapshot staging leaves it free).
  std::uint64_t passes() const { return clearing + water + ranks + lists + segments + large + tables; }
  std::uint64_t total() const { return agents + passes(); }
};
DeviceBytes device_bytes_needed(const ExecShape& shape);

/// Inside a backend (a class derived from Exec): the overrides of every registered pass,
/// each forwarding to the backend's member templates run_loop(n, f), run_sum(n, f, out),
/// run_segments(begin, f, out) and run_ranks(n, f). One list for both backends, so neither
/// can miss a pass the registries of core/sim/passes.hpp name.
#define CUTOFF_EXEC_FORWARD_LOOP(F) \
  void loop(std::uint64_t n, const F& f) override { run_loop(n, f); }
#define CUTOFF_EXEC_FORWARD_SUM(F) \
  void sum(std::uint64_t n, const F& f, KeyedFixed& out) override { run_sum(n, f, out); }
#define CUTOFF_EXEC_FORWARD_SEGMENTS(F)                                                                       \
  void segment_sums(const std::vector<std::uint64_t>& begin, const F& f, std::vector<double>& out) override { \
    run_segments(begin, f, out);                                                                              \
  }
#define CUTOFF_EXEC_FORWARD_RANKS(F) \
  RankStats rank_stats(std::uint64_t n, const F& f) override { return run_ranks(n, f); }
#define CUTOFF_EXEC_OVERRIDES                \
  CUTOFF_LOOPS(CUTOFF_EXEC_FORWARD_LOOP)     \
  CUTOFF_KEYED_SUMS(CUTOFF_EXEC_FORWARD_SUM) \
  CUTOFF_SEGMENT_SUMS(CUTOFF_EXEC_FORWARD_SEGMENTS) CUTOFF_RANKS(CUTOFF_EXEC_FORWARD_RANKS)

}  // namespace cutoff
