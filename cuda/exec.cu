/// @file
/// The CUDA backend (core/sim/exec.hpp): the agents in device arrays, every pass a
/// kernel over the functors of core/sim/passes.hpp, each reduction built so that it
/// gives the host's bits (docs/backends.md, docs/determinism.md):
///  - loops: one thread per agent;
///  - keyed sums: 128-bit integer sums, per block in shared memory, then global
///    atomics (integer addition: any order gives the same bits);
///  - segment sums: one block of kLanes threads per chunk reproduces chunk_sum's
///    lanes and tree, and the chunk totals are folded level by level the same way;
///  - clearing, water-fill, ranks: one solver_pass for all three (the protocol of
///    core/market/solver.hpp): each solver's device pass (cuda/solvers.cuh, the twin of
///    its host pass) runs the per-element visit of core/market (clearing_visit,
///    water_visit, rank_visit) into one device copy of the solver's partials through
///    DeviceOps (atomic integer adds, atomic min/max), and the partials go back to the
///    same host solver;
///  - Thrust where the order cannot matter: filling the partials, gathering and
///    scattering the large-firm stratum (docs/backends.md says which kernels stay
///    hand-written and why).
/// Every atomic is warp-aggregated first: the lanes that add into one address
/// (a provider's scalars, a crowded histogram bin) combine their terms and one
/// lane adds the total, so a hot address takes one atomic per warp, not per agent.
/// Only results the host solvers need come back inside a tick (the list is in
/// docs/backends.md). All work of one Exec is ordered on its own stream, so
/// several runs (ensemble members) can share a device.

#include <cooperative_groups.h>
#include <cooperative_groups/reduce.h>
#include <cuda_runtime.h>
#include <thrust/execution_policy.h>
#include <thrust/fill.h>
#include <thrust/gather.h>
#include <thrust/scatter.h>

#include <cxxabi.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <unordered_map>
#include <vector>

#include "core/market/clearing.hpp"
#include "core/model/params.hpp"
#include "cuda/arrays.hpp"
#include "cuda/atomics.cuh"
#include "cuda/check.cuh"
#include "cuda/device.hpp"
#include "cuda/exec.hpp"
#include "cuda/mailbox.hpp"
#include "cuda/solvers.cuh"

namespace cutoff::cuda {
namespace {

constexpr int kBlock = 256;
constexpr unsigned kKeyedBlocks = 4096;
static_assert(kBlock == kLanes, "a segment-sum block is one canonical chunk's lanes");

/// T's name as written in the source (the pass a kernel runs, for CUTOFF_CUDA_SYNC's messages).
template <class T> std::string type_name() {
  int status = 0;
  char* name = abi::__cxa_demangle(typeid(T).name(), nullptr, nullptr, &status);
  const std::string out = status == 0 && name ? name : typeid(T).name();
  std::free(name);
  return out;
}

unsigned grid_for(std::uint64_t n) {
  const std::uint64_t g = (n + kBlock - 1) / kBlock;
  return static_cast<unsigned>(g < (1u << 30) ? (g > 0 ? g : 1) : (1u << 30));
}

// ---------------------------------------------------------------------------
// Device buffers
// ---------------------------------------------------------------------------

/// Device memory (cudaMalloc) and pinned host memory (cudaMallocHost).
struct DeviceMemory {
  static void allocate(void** p, std::size_t bytes) { CUTOFF_CUDA(cudaMalloc(p, bytes)); }
  static void release(void* p) { cudaFree(p); }
};
struct PinnedMemory {
  static void allocate(void** p, std::size_t bytes) { CUTOFF_CUDA(cudaMallocHost(p, bytes)); }
  static void release(void* p) { cudaFreeHost(p); }
};

using Buffer = Growable<DeviceMemory>;
using Pinned = Growable<PinnedMemory>;

/// A tick's tables: bump-allocated ranges of paired pinned-host and device
/// chunks (a full chunk is followed by one twice its size). Reset at
/// begin_tick(), after the stream is synchronised; the chunks are then merged.
class Arena {
 public:
  struct Range {
    char* host;
    char* device;
  };
  Range take(std::size_t bytes) {
    if (chunks_.empty() || used_ + bytes > chunks_.back()->host.bytes()) {
      const std::size_t last = chunks_.empty() ? 0 : chunks_.back()->host.bytes();
      std::size_t want = last ? 2 * last : (1u << 20);
      if (want < bytes) want = bytes;
      chunks_.push_back(std::make_unique<Chunk>());
      chunks_.back()->host.reserve(want);
      chunks_.back()->device.reserve(want);
      used_ = 0;
    }
    Chunk& c = *chunks_.back();
    const Range r{c.host.chars() + used_, c.device.chars() + used_};
    used_ += bytes;
    return r;
  }
  void reset() {
    if (chunks_.size() > 1) {  // one chunk as big as the last tick needed
      std::size_t total = 0;
      for (const auto& c : chunks_) total += c->host.bytes();
      chunks_.clear();
      chunks_.push_back(std::make_unique<Chunk>());
      chunks_.back()->host.reserve(total);
      chunks_.back()->device.reserve(total);
    }
    used_ = 0;
  }

 private:
  struct Chunk {
    Pinned host;
    Buffer device;
  };
  std::vector<std::unique_ptr<Chunk>> chunks_;
  std::size_t used_ = 0;
};

// ---------------------------------------------------------------------------
// Kernels
// ---------------------------------------------------------------------------

template <class F> __global__ void k_loop(std::uint64_t n, F f) {
  for (std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::uint64_t>(gridDim.x) * blockDim.x)
    f(i);
}

/// Block-local keyed sums in shared memory (2 words a key), then one global add per key.
struct SharedAdd {
  ull* sums;
  int* overflow;
  __device__ void operator()(int key, double value, int bits) const {
    bool o = false;
    const Fix128 x = to_fixed(value, bits, &o, kKeyedTermBits);
    if (o) *overflow = 1;
    // As the host's KeyedFixed: only a term out of range is an overflow, not the sum's wrap.
    if (x.lo | x.hi) agg_add_u128(sums + 2 * key, (static_cast<u128>(x.hi) << 64) | x.lo);
  }
};

template <class F> __global__ void k_keyed(std::uint64_t n, F f, int n_keys, ull* out, int* overflow) {
  extern __shared__ ull shared_sums[];
  for (int k = threadIdx.x; k < 2 * n_keys; k += blockDim.x) shared_sums[k] = 0;
  __syncthreads();
  SharedAdd add{shared_sums, overflow};
  for (std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::uint64_t>(gridDim.x) * blockDim.x)
    f(i, add);
  __syncthreads();
  for (int k = threadIdx.x; k < n_keys; k += blockDim.x)
    if (shared_sums[2 * k] | shared_sums[2 * k + 1])
      atomic_add_u128(out + 2 * k, out + 2 * k + 1, shared_sums[2 * k], shared_sums[2 * k + 1]);
}

/// chunk_sum of core/hd/reduce.hpp, one block per task of a SumPlan level: thread t is
/// lane t (lane_sum), then the block folds the lanes by fold_lanes's tree.
template <int K, class Get>
__global__ void k_chunks(const std::uint64_t* begin, const std::uint64_t* len, Get get, double* out) {
  __shared__ double lane[K][kLanes];
  const int t = threadIdx.x;
  double acc[K];
  lane_sum<K>(get, begin[blockIdx.x], len[blockIdx.x], t, acc);
  for (int k = 0; k < K; ++k) lane[k][t] = acc[k];
  __syncthreads();
  for (int s = kLanes / 2; s > 0; s /= 2) {
    if (t < s)
      for (int k = 0; k < K; ++k) lane[k][t] += lane[k][t + s];
    __syncthreads();
  }
  if (t == 0)
    for (int k = 0; k < K; ++k) out[static_cast<std::uint64_t>(blockIdx.x) * K + k] = lane[k][0];
}

/// Each segment's total (its last partial; 0 for an empty segment).
template <int K> __global__ void k_pick(const double* partials, const std::int64_t* result, int n_seg, double* out) {
  const int s = blockIdx.x * blockDim.x + threadIdx.x;
  if (s >= n_seg) return;
  for (int k = 0; k < K; ++k) out[s * K + k] = result[s] >= 0 ? partials[result[s] * K + k] : 0.0;
}

// ---------------------------------------------------------------------------
// The backend
// ---------------------------------------------------------------------------

/// A SumPlan (core/hd/reduce.hpp) with its task ranges and results on the device.
struct SegmentPlan {
  SumPlan plan;
  std::vector<std::unique_ptr<Buffer>> begin, len;  ///< per level
  Buffer result;
};

class CudaExec final : public Exec {
  friend struct DevicePasses;  ///< the solvers' device passes (cuda/solvers.cuh)

 public:
  CudaExec(const ExecShape& shape, std::string device)
      : shape_(shape),
        n_firms_(shape.n_firms),
        n_users_(shape.n_users),
        device_(std::move(device)),
        firms_(shape.n_firms),
        users_(shape.n_users) {
    // CUTOFF_CUDA_NO_HOST_REGISTER=1 refuses every registration, as a sandboxed
    // container runtime may (the fallback's test).
    const char* refuse = std::getenv("CUTOFF_CUDA_NO_HOST_REGISTER");
    refuse_register_ = refuse && *refuse && std::string(refuse) != "0";
    CUTOFF_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    CUTOFF_CUDA(cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking));
    CUTOFF_CUDA(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming));
    CUTOFF_CUDA(cudaEventCreateWithFlags(&copied_, cudaEventDisableTiming));
  }
  ~CudaExec() override {
    cudaStreamSynchronize(stream_);
    cudaStreamSynchronize(copy_stream_);
    for (void* p : pinned_) cudaHostUnregister(p);
    cudaEventDestroy(ready_);
    cudaEventDestroy(copied_);
    cudaStreamDestroy(stream_);
    cudaStreamDestroy(copy_stream_);
  }

  OnExec<FirmView> firms() override { return on_exec(firms_.view()); }
  OnExec<UserView> users() override { return on_exec(users_.view()); }

  void begin_tick() override {
    // The last tick's copies and passes are done before its staging is reused.
    sync();
    arena_.reset();
  }

  void fill(std::uint8_t byte) override {
    const Guard guard(Abandon{this});
    fill_arrays(firms_, n_firms_, byte);
    fill_arrays(users_, n_users_, byte);
    sync();
  }

 protected:
  void upload(Upload* t, std::size_t n, bool constant) override {
    if (constant) {
      // Once per run: a buffer of its own, copied in stream order, then kept for reuse by later puts.
      for (std::size_t j = 0; j < n; ++j) {
        if (t[j].bytes == 0) continue;
        constants_.push_back(std::make_unique<Buffer>());
        void* d = constants_.back()->reserve(t[j].bytes);
        CUTOFF_CUDA(cudaMemcpyAsync(d, t[j].host, t[j].bytes, cudaMemcpyHostToDevice, stream_));
        constant_of_[t[j].host] = {t[j].bytes, d};
        t[j].device = d;
      }
      sync();
      return;
    }
    // One pinned staging range and one copy for every table not already a constant.
    std::size_t total = 0;
    for (std::size_t j = 0; j < n; ++j)
      if (!as_constant(t[j]) && t[j].bytes) total += round_up_256(t[j].bytes);
    if (total == 0) return;
    Arena::Range r = arena_.take(total);
    std::size_t off = 0;
    for (std::size_t j = 0; j < n; ++j) {
      if (t[j].device || !t[j].bytes) continue;
      std::memcpy(r.host + off, t[j].host, t[j].bytes);
      t[j].device = r.device + off;
      off += round_up_256(t[j].bytes);
    }
    CUTOFF_CUDA(cudaMemcpyAsync(r.device, r.host, total, cudaMemcpyHostToDevice, stream_));
  }

 public:
  CUTOFF_EXEC_OVERRIDES

  std::vector<ProviderClearing> clear_firms(std::uint64_t n, const std::vector<ProviderSupply>& supply,
                                            const FirmBids& bids) override;
  WaterFill water_fill(std::uint64_t n, int n_providers, const PlanBids& bids, const double* capacity,
                       const double* floor) override;

  void gather_firms(const std::vector<std::uint64_t>& idx, HostArrays<Firms>& out) override {
    const Guard guard(Abandon{this});
    move_firms(idx, out.view(), false);
  }
  void scatter_firms(const std::vector<std::uint64_t>& idx, const HostArrays<Firms>& in) override {
    const Guard guard(Abandon{this});
    move_firms(idx, in.view(), true);
  }

  void load_firms(const HostArrays<Firms>& from) override {
    const Guard guard(Abandon{this});
    load(from, firms_, n_firms_);
  }
  void load_users(const HostArrays<Users>& from) override {
    const Guard guard(Abandon{this});
    load(from, users_, n_users_);
  }

  const HostArrays<Firms>& host_firms() override {
    const Guard guard(Abandon{this});
    copy_all(firms_, host_firms_, stream_, false);
    sync();
    return *host_firms_;
  }
  const HostArrays<Users>& host_users() override {
    const Guard guard(Abandon{this});
    copy_all(users_, host_users_, stream_, false);
    sync();
    return *host_users_;
  }

  void snapshot_begin() override {
    const Guard guard(Abandon{this});
    // With room for a device copy of the State fields: copy them device to device in
    // stream order (~1 ms at 1e9 users), then to pinned host buffers on the copy
    // stream while the next ticks run. Without: the copy stream reads the agent
    // arrays themselves and the next passes wait for it.
    if (!staging_tried_) {
      staging_tried_ = true;
      staging_firms_ = try_staging<Firms>(n_firms_);
      staging_users_ = staging_firms_ ? try_staging<Users>(n_users_) : nullptr;
      if (!staging_users_) staging_firms_.reset();
    }
    CUTOFF_CUDA(cudaStreamWaitEvent(stream_, copied_, 0));  // the last snapshot has left the staging
    if (staging_firms_) {
      stage(firms_, *staging_firms_, n_firms_);
      stage(users_, *staging_users_, n_users_);
    }
    CUTOFF_CUDA(cudaEventRecord(ready_, stream_));
    CUTOFF_CUDA(cudaStreamWaitEvent(copy_stream_, ready_, 0));
    if (staging_firms_) {
      copy_all(*staging_firms_, snap_firms_, copy_stream_, true);
      copy_all(*staging_users_, snap_users_, copy_stream_, true);
    } else {
      copy_all(firms_, snap_firms_, copy_stream_, true);
      copy_all(users_, snap_users_, copy_stream_, true);
    }
    CUTOFF_CUDA(cudaEventRecord(copied_, copy_stream_));
    if (!staging_firms_) CUTOFF_CUDA(cudaStreamWaitEvent(stream_, copied_, 0));
  }
  const HostArrays<Firms>& snapshot_firms() override {
    CUTOFF_CUDA(cudaEventSynchronize(copied_));
    return *snap_firms_;
  }
  const HostArrays<Users>& snapshot_users() override {
    CUTOFF_CUDA(cudaEventSynchronize(copied_));
    return *snap_users_;
  }
  bool snapshots_detached() const override { return true; }
  std::uint64_t host_waits() const override { return syncs_; }

 private:
  /// After a failure inside a backend method: waits for both streams, so that no copy
  /// is still running into memory the unwinding frees, and drops the results not yet
  /// delivered, whose destinations (the method's locals, the caller's vectors) are gone.
  void abandon() noexcept {
    cudaStreamSynchronize(stream_);
    cudaStreamSynchronize(copy_stream_);
    mailbox_.drop();
    stage_ = nullptr;
  }
  /// The guard of a backend method that queues copies: abandon() if it throws.
  struct Abandon {
    CudaExec* exec;
    void operator()() const noexcept { exec->abandon(); }
  };
  using Guard = OnFailure<Abandon>;
  /// The pass a kernel of functor F runs, for CUTOFF_CUDA_SYNC's messages: F, and the
  /// solver pass when inside one.
  template <class F> auto pass_of() const {
    return [this] {
      return type_name<F>() + (stage_ ? std::string(" in ") + stage_ + " pass " + std::to_string(stage_pass_) : "");
    };
  }
  /// cudaHostRegister was refused (`err`, not a sticky error): the host copies of the
  /// agents stay pageable, and their copies are plain ones (correct, slower, not
  /// overlapped with the next ticks). Said once, in the log.
  void fall_back_to_pageable(cudaError_t err) {
    cudaGetLastError();  // clear it, so that no later check reports it
    pin_host_ = false;
    std::cerr << "cutoff: note: cudaHostRegister refused (" << cudaGetErrorString(err)
              << "): the host copies of the agents use plain copies from pageable memory\n";
  }
  /// A solver's passes begin (solver_pass counts them).
  void begin_stage(const char* what) {
    stage_ = what;
    stage_pass_ = 0;
  }
  /// The host waits for the stream; results requested by to_host() are then in place.
  void sync() {
    CUTOFF_CUDA(cudaStreamSynchronize(stream_));
    ++syncs_;
    mailbox_.deliver();
  }
  /// Copies n elements at device address src to host dst, delivered at the next sync().
  template <class T> void to_host(T* dst, const void* src, std::size_t n) {
    if (n == 0) return;
    if (!mailbox_.fits(n * sizeof(T))) sync();  // deliver what is pending before the box grows
    CUTOFF_CUDA(
        cudaMemcpyAsync(mailbox_.slot(dst, n * sizeof(T)), src, n * sizeof(T), cudaMemcpyDeviceToHost, stream_));
  }
  /// A table for this backend's own kernels (in stream order, valid until the next begin_tick()).
  template <class T> const T* device_table(const T* host, std::size_t n) {
    Upload u{host, n * sizeof(T), nullptr};
    upload(&u, 1, false);
    return static_cast<const T*>(u.device);
  }
  template <class T> const T* device_table(const std::vector<T>& v) { return device_table(v.data(), v.size()); }
  /// A table already on the device as a run constant (the layout): its device copy.
  bool as_constant(Upload& u) const {
    const auto it = constant_of_.find(u.host);
    if (it == constant_of_.end() || it->second.first != u.bytes) return false;
    u.device = it->second.second;
    return true;
  }
  template <class Pop> void fill_arrays(const DeviceArrays<Pop>& dev, std::uint64_t n, std::uint8_t byte) {
    typename Pop::View d = dev.view();
    Pop::for_each(d, [&](const FieldInfo& f, auto*& p) {
      if (n) CUTOFF_CUDA(cudaMemsetAsync(p, byte, n * f.bytes, stream_));
    });
  }
  template <class T> T* zeroed(Buffer& b, std::size_t n) {
    T* p = b.as<T>(n);
    CUTOFF_CUDA(cudaMemsetAsync(p, 0, n * sizeof(T) + 16, stream_));
    return p;
  }
  /// Thrust's policy for this Exec's stream; no sync after each algorithm (the stream orders them).
  auto on_stream() const { return thrust::cuda::par_nosync.on(stream_); }
  /// One solver pass on the device (core/market/solver.hpp). `data` comes as the
  /// solver's fresh partials: each part's device twin is filled with its identity
  /// (Thrust), launch(parts, lists) runs the visit into them, and the parts and the
  /// gathered lists come back into `data`, as the host's threads' merge gives them.
  template <template <template <class> class> class Parts, class Item, class Launch>
  void solver_pass(Partials<Parts, Item>& data, std::uint64_t cap, const char* what, const Launch& launch) {
    const Guard guard(Abandon{this});
    ++stage_pass_;
    Parts<Ptr> dev{};
    std::size_t k = 0;
    zip_parts(data.parts.tie(), dev.tie(), [&](auto& host, auto& ptr) {
      using T = typename std::decay_t<decltype(host)>::value_type;
      if (part_bufs_.size() <= k) part_bufs_.push_back(std::make_unique<Buffer>());
      ptr = part_bufs_[k++]->as<T>(host.size());
      if (!host.empty()) thrust::fill_n(on_stream(), ptr, host.size(), host.front());
    });
    const std::size_t L = data.lists.size();
    std::vector<int> slot(L, -1);
    std::size_t slots = 0;
    for (std::size_t l = 0; l < L; ++l)
      if (data.gathers[l]) slot[l] = static_cast<int>(slots++);
    const DeviceOps::Lists<Item> lists{items_buf_.as<Item>(slots * cap), zeroed<ull>(item_count_, L), cap,
                                       device_table(slot)};
    launch(dev, lists);
    zip_parts(data.parts.tie(), dev.tie(), [&](auto& host, auto& ptr) { to_host(host.data(), ptr, host.size()); });
    std::vector<ull> count(L);
    to_host(count.data(), lists.count, L);
    sync();
    for (std::size_t l = 0; l < L; ++l) {
      if (count[l] > (slot[l] >= 0 ? cap : 0))
        throw std::logic_error(std::string(what) + ": more gathered items than its gather limit");
      data.lists[l].resize(count[l]);
      if (count[l]) to_host(data.lists[l].data(), lists.items + static_cast<std::size_t>(slot[l]) * cap, count[l]);
    }
    sync();
  }

  template <class F> void run_loop(std::uint64_t n, const F& f) {
    if (n == 0) return;
    k_loop<<<grid_for(n), kBlock, 0, stream_>>>(n, f);
    CUTOFF_CUDA_LAUNCHED("k_loop", pass_of<F>());
  }

  template <class F> void run_sum(std::uint64_t n, const F& f, KeyedFixed& out) {
    const Guard guard(Abandon{this});
    const int K = out.keys();
    ull* d = zeroed<ull>(keyed_buf_, 2 * static_cast<std::size_t>(K));
    int* over = zeroed<int>(flag_buf_, 1);
    if (n) {
      // A bounded grid: each block adds its shared sums to the K global keys once.
      const unsigned grid = grid_for(n) < kKeyedBlocks ? grid_for(n) : kKeyedBlocks;
      k_keyed<<<grid, kBlock, 2 * K * sizeof(ull), stream_>>>(n, f, K, d, over);
      CUTOFF_CUDA_LAUNCHED("k_keyed", pass_of<F>());
    }
    std::vector<ull> h(2 * static_cast<std::size_t>(K));
    int o = 0;
    to_host(h.data(), d, h.size());
    to_host(&o, over, 1);
    sync();
    if (o) KeyedFixed::throw_overflow();
    for (int k = 0; k < K; ++k) out.add_raw(k, h[2 * k], h[2 * k + 1]);
  }

  /// The plan of a segmentation, built once per `begin` array (the layout's are fixed for a run).
  SegmentPlan& plan_for(const std::vector<std::uint64_t>& begin) {
    std::unique_ptr<SegmentPlan>& slot = plans_[begin.data()];
    if (slot && slot->plan.result.size() + 1 == begin.size()) return *slot;
    slot = std::make_unique<SegmentPlan>();
    SegmentPlan& sp = *slot;
    sp.plan = sum_plan(begin.data(), static_cast<int>(begin.size()) - 1);
    // Stream-ordered (a pageable source is staged before the call returns).
    auto upload = [&](Buffer& dst, const auto& v) {
      using T = typename std::decay_t<decltype(v)>::value_type;
      CUTOFF_CUDA(
          cudaMemcpyAsync(dst.as<T>(v.size()), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice, stream_));
    };
    for (const SumPlan::Level& level : sp.plan.levels) {
      sp.begin.push_back(std::make_unique<Buffer>());
      sp.len.push_back(std::make_unique<Buffer>());
      upload(*sp.begin.back(), level.begin);
      upload(*sp.len.back(), level.len);
    }
    upload(sp.result, sp.plan.result);
    return sp;
  }

  template <class F> void run_segments(const std::vector<std::uint64_t>& begin, const F& f, std::vector<double>& out);

  template <class F> RankStats run_ranks(std::uint64_t n, const F& f);

  void move_firms(const std::vector<std::uint64_t>& idx, FirmView h, bool back) {
    const std::size_t m = idx.size();
    if (m == 0) return;
    const std::uint64_t* d_idx = device_table(idx);
    FirmView d = firms_.view();
    std::vector<char*> hp;
    Firms::for_each(h, [&](const FieldInfo&, auto*& p) { hp.push_back(reinterpret_cast<char*>(p)); });
    int k = 0;
    Firms::for_each(d, [&](const FieldInfo&, auto*& p) {
      using T = std::remove_reference_t<decltype(*p)>;
      T* small = small_buf_[k].as<T>(m);
      T* hs = reinterpret_cast<T*>(hp[k]);
      if (back) {
        CUTOFF_CUDA(cudaMemcpyAsync(small, hs, m * sizeof(T), cudaMemcpyHostToDevice, stream_));
        thrust::scatter(on_stream(), small, small + m, d_idx, p);
      } else {
        thrust::gather(on_stream(), d_idx, d_idx + m, p, small);
        CUTOFF_CUDA(cudaMemcpyAsync(hs, small, m * sizeof(T), cudaMemcpyDeviceToHost, stream_));
      }
      ++k;
    });
    sync();
  }

  template <class Pop> void load(const HostArrays<Pop>& from, DeviceArrays<Pop>& dev, std::uint64_t n) {
    if (from.size() != n) throw std::invalid_argument(std::string("load: wrong number of ") + Pop::kName);
    typename Pop::View h = from.view(), d = dev.view();
    std::vector<void*> dp;
    Pop::for_each(d, [&](const FieldInfo&, auto*& p) { dp.push_back(p); });
    int k = 0;
    Pop::for_each(h, [&](const FieldInfo& f, auto*& p) {
      if (n) CUTOFF_CUDA(cudaMemcpyAsync(dp[k], p, n * f.bytes, cudaMemcpyHostToDevice, stream_));
      ++k;
    });
    sync();
  }

  /// Device arrays for a staging copy, or null when the device lacks the memory. The
  /// staging leaves free what the tick's buffers may still grow to (device_bytes_needed).
  template <class Pop> std::unique_ptr<DeviceArrays<Pop>> try_staging(std::uint64_t n) {
    std::size_t free = 0, total = 0;
    CUTOFF_CUDA(cudaMemGetInfo(&free, &total));
    if (n * bytes_per_agent<Pop>() + device_bytes_needed(shape_).passes() > free) return nullptr;
    return std::make_unique<DeviceArrays<Pop>>(n);
  }

  /// Device-to-device copy of the State fields, in stream order.
  template <class Pop> void stage(const DeviceArrays<Pop>& from, DeviceArrays<Pop>& to, std::uint64_t n) {
    typename Pop::View a = from.view(), b = to.view();
    std::vector<void*> dst;
    Pop::for_each(b, [&](const FieldInfo&, auto*& p) { dst.push_back(p); });
    int k = 0;
    Pop::for_each(a, [&](const FieldInfo& f, auto*& p) {
      void* d = dst[k++];
      if (n && f.role == FieldRole::State)
        CUTOFF_CUDA(cudaMemcpyAsync(d, p, n * f.bytes, cudaMemcpyDeviceToDevice, stream_));
    });
  }

  /// Copies every field (State only when `state_only`) to host arrays, allocated and pinned on first use.
  template <class Pop>
  void copy_all(const DeviceArrays<Pop>& dev, std::unique_ptr<HostArrays<Pop>>& host, cudaStream_t s, bool state_only) {
    const std::uint64_t n = std::is_same_v<Pop, Firms> ? n_firms_ : n_users_;
    if (!host) {
      host = std::make_unique<HostArrays<Pop>>(n);
      typename Pop::View hv = host->view();
      Pop::for_each(hv, [&](const FieldInfo& f, auto*& p) {
        if (n == 0 || !pin_host_) return;
        const cudaError_t err =
            refuse_register_ ? cudaErrorNotSupported : cudaHostRegister(p, n * f.bytes, cudaHostRegisterDefault);
        if (err == cudaSuccess) {
          pinned_.push_back(p);
          return;
        }
        fall_back_to_pageable(err);
      });
    }
    typename Pop::View d = dev.view(), h = host->view();
    std::vector<void*> hp;
    Pop::for_each(h, [&](const FieldInfo&, auto*& p) { hp.push_back(p); });
    int k = 0;
    Pop::for_each(d, [&](const FieldInfo& f, auto*& p) {
      void* dst = hp[k++];
      if (n == 0 || (state_only && f.role != FieldRole::State)) return;
      CUTOFF_CUDA(cudaMemcpyAsync(dst, p, n * f.bytes, cudaMemcpyDeviceToHost, s));
    });
  }

  ExecShape shape_;
  std::uint64_t n_firms_, n_users_;
  std::string device_;
  DeviceArrays<Firms> firms_;
  DeviceArrays<Users> users_;
  cudaStream_t stream_ = nullptr, copy_stream_ = nullptr;
  cudaEvent_t ready_ = nullptr, copied_ = nullptr;
  Arena arena_;                                     ///< this tick's tables (put())
  std::vector<std::unique_ptr<Buffer>> constants_;  ///< the run's constant tables (put_constant())
  std::unordered_map<const void*, std::pair<std::size_t, const void*>> constant_of_;  ///< host → (bytes, device)
  Mailbox<PinnedMemory> mailbox_;  ///< results on their way to the host
  std::uint64_t syncs_ = 0;
  std::unordered_map<const void*, std::unique_ptr<SegmentPlan>> plans_;
  Buffer keyed_buf_, flag_buf_, partial_buf_, result_buf_;
  std::vector<std::unique_ptr<Buffer>> part_bufs_;  ///< a solver pass's parts (solver_pass)
  Buffer items_buf_, item_count_;                   ///< its gathered lists
  Buffer small_buf_[Firms::kFieldCount];
  std::unique_ptr<HostArrays<Firms>> host_firms_, snap_firms_;
  bool staging_tried_ = false;
  std::unique_ptr<DeviceArrays<Firms>> staging_firms_;
  std::unique_ptr<DeviceArrays<Users>> staging_users_;
  std::unique_ptr<HostArrays<Users>> host_users_, snap_users_;
  std::vector<void*> pinned_;
  bool pin_host_ = true;          ///< false once cudaHostRegister was refused: plain copies
  bool refuse_register_ = false;  ///< CUTOFF_CUDA_NO_HOST_REGISTER: act as if it were refused
  const char* stage_ = nullptr;   ///< the solver whose pass is running ("clearing", ...), for messages
  int stage_pass_ = 0;            ///< and its pass
};

template <class F>
void CudaExec::run_segments(const std::vector<std::uint64_t>& begin, const F& f, std::vector<double>& out) {
  constexpr int K = F::kOut;
  const Guard guard(Abandon{this});
  SegmentPlan& sp = plan_for(begin);
  const SumPlan& plan = sp.plan;
  double* partials = partial_buf_.as<double>(plan.n_partials * K);
  for (std::size_t L = 0; L < plan.levels.size(); ++L) {
    const auto n_tasks = static_cast<unsigned>(plan.levels[L].begin.size());
    const auto* b = static_cast<const std::uint64_t*>(sp.begin[L]->data());
    const auto* n = static_cast<const std::uint64_t*>(sp.len[L]->data());
    double* dst = partials + plan.levels[L].first * K;
    if (L == 0)
      k_chunks<K><<<n_tasks, kLanes, 0, stream_>>>(b, n, f, dst);
    else
      k_chunks<K><<<n_tasks, kLanes, 0, stream_>>>(b, n, PartialGet<K>{partials}, dst);
    CUTOFF_CUDA_LAUNCHED("k_chunks", pass_of<F>());
  }
  const int n_seg = static_cast<int>(plan.result.size());
  double* totals = result_buf_.as<double>(static_cast<std::size_t>(n_seg) * K);
  if (n_seg) {
    k_pick<K><<<grid_for(n_seg), kBlock, 0, stream_>>>(partials, static_cast<const std::int64_t*>(sp.result.data()),
                                                       n_seg, totals);
    CUTOFF_CUDA_LAUNCHED("k_pick", pass_of<F>());
  }
  out.assign(static_cast<std::size_t>(n_seg) * K, 0.0);
  to_host(out.data(), totals, out.size());
  sync();
}

template <class F> RankStats CudaExec::run_ranks(std::uint64_t n, const F& f) {
  const Guard guard(Abandon{this});
  begin_stage("rank pass");
  const RankOptions& options = solver_options().ranks;
  RankSolver solver(kTopFraction, options);
  RankPass pass;
  while (solver.next(&pass)) solver.feed(DevicePasses::rank_pass(*this, n, f, pass, options.gather_limit));
  stage_ = nullptr;
  return solver.result();
}

std::vector<ProviderClearing> CudaExec::clear_firms(std::uint64_t n, const std::vector<ProviderSupply>& supply,
                                                    const FirmBids& bids) {
  const Guard guard(Abandon{this});
  begin_stage("clearing");
  const ClearingOptions& options = solver_options().clearing;
  clearing_detail::ClearingSolver solver(n, supply, options);
  clearing_detail::ClearPass pass;
  while (solver.next(&pass)) solver.feed(DevicePasses::clear_pass(*this, n, bids, pass, options.gather_limit));
  stage_ = nullptr;
  return solver.results();
}

WaterFill CudaExec::water_fill(std::uint64_t n, int n_providers, const PlanBids& bids, const double* capacity,
                               const double* floor) {
  const Guard guard(Abandon{this});
  begin_stage("water-fill");
  const WaterfillOptions& options = solver_options().water;
  WaterSolver solver(n_providers, capacity, floor, options);
  WaterPass pass;
  while (solver.next(&pass))
    solver.feed(DevicePasses::water_pass(*this, n, n_providers, bids, pass, options.gather_limit));
  stage_ = nullptr;
  return WaterFill{solver.levels(), solver.passes()};
}

}  // namespace

std::unique_ptr<Exec> make_exec(const ExecShape& shape) {
  const std::uint64_t n_firms = shape.n_firms, n_users = shape.n_users;
  std::string why;
  if (!cuda_probe(&why)) throw InputError("CUDA backend: no usable GPU (" + why + ")");
  std::size_t free = 0, total = 0;
  CUTOFF_CUDA(cudaMemGetInfo(&free, &total));
  const DeviceBytes bytes = device_bytes_needed(shape);
  const std::uint64_t need = bytes.total();
  if (need > free) {
    std::ostringstream s;
    s << "not enough GPU memory for n_firms = " << n_firms << " and n_users = " << n_users << ": needs " << need
      << " bytes (" << bytes_per_agent<Firms>() << " per firm, " << bytes_per_agent<Users>() << " per user, plus "
      << bytes.passes() << " of pass buffers for " << shape.n_providers << " providers), free " << free << " of "
      << total << " bytes on " << why << "; use fewer agents or the CPU backend";
    throw InputError(s.str());
  }
  return std::make_unique<CudaExec>(shape, why);
}

}  // namespace cutoff::cuda
