/// @file
/// The CUDA backend (core/exec.hpp): the agents in device arrays, every pass a
/// kernel over the functors of core/passes.hpp, each reduction built so that it
/// gives the host's bits (docs/backends.md, docs/determinism.md):
///  - loops: one thread per agent;
///  - keyed sums: 128-bit integer sums, per block in shared memory, then global
///    atomics (integer addition: any order gives the same bits);
///  - segment sums: one block of kLanes threads per chunk reproduces chunk_sum's
///    lanes and tree, and the chunk totals are folded level by level the same way;
///  - clearing, water-fill, ranks: the per-element work of core/ (clearing_visit,
///    water_visit, rank_visit) adds into device histograms with atomic integer
///    adds and atomic min/max; the merged histograms go to the same host solver.
/// Only results the host solvers need come back inside a tick (the list is in
/// docs/backends.md). All work of one Exec is ordered on its own stream, so
/// several runs (ensemble members) can share a device.

#include <cuda_runtime.h>

#include <memory>
#include <sstream>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "core/clearing.hpp"
#include "core/params.hpp"
#include "cuda/check.cuh"
#include "cuda/device.hpp"
#include "cuda/exec.hpp"
#include "cuda/arrays.hpp"

namespace cutoff::cuda {
namespace {

using ull = unsigned long long;
using u128 = unsigned __int128;
constexpr int kBlock = 256;
constexpr unsigned kKeyedBlocks = 4096;
static_assert(kBlock == kLanes, "a segment-sum block is one canonical chunk's lanes");

unsigned grid_for(std::uint64_t n) {
  const std::uint64_t g = (n + kBlock - 1) / kBlock;
  return static_cast<unsigned>(g < (1u << 30) ? (g > 0 ? g : 1) : (1u << 30));
}

// ---------------------------------------------------------------------------
// Device buffers
// ---------------------------------------------------------------------------

/// A growable device allocation.
class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() {
    if (p_) cudaFree(p_);
  }
  void* reserve(std::size_t bytes) {
    if (bytes > bytes_) {
      if (p_) CUTOFF_CUDA(cudaFree(p_));
      p_ = nullptr;
      CUTOFF_CUDA(cudaMalloc(&p_, bytes));
      bytes_ = bytes;
    }
    return p_;
  }
  template <class T>
  T* as(std::size_t n) {
    return static_cast<T*>(reserve(n * sizeof(T) + 16));
  }
  void* data() const { return p_; }
  std::size_t bytes() const { return bytes_; }

 private:
  void* p_ = nullptr;
  std::size_t bytes_ = 0;
};

// ---------------------------------------------------------------------------
// Atomic integer sums (the same totals as the host's in any order)
// ---------------------------------------------------------------------------

/// (lo, hi) += x modulo 2^128; returns true when the high word wrapped (the
/// total reached 2^128: only possible for sums of non-negative terms that overflow).
__device__ bool atomic_add_u128(ull* lo, ull* hi, std::uint64_t xlo, std::uint64_t xhi) {
  const ull old = atomicAdd(lo, static_cast<ull>(xlo));
  const ull carry = old + xlo < old ? 1 : 0;
  if (xhi == 0 && carry == 0) return false;
  const ull add = xhi + carry;
  const ull old_hi = atomicAdd(hi, add);
  return (xhi == ~0ULL && carry) || old_hi + add < old_hi;
}

__device__ void atomic_add_u128(ull* lohi, u128 x) {
  atomic_add_u128(lohi, lohi + 1, static_cast<std::uint64_t>(x), static_cast<std::uint64_t>(x >> 64));
}

/// The atomic twin of BinAdd (core/ranks.hpp).
struct AtomicBinAdd {
  __device__ bool operator()(FixedBin& bin, std::uint64_t key, const U128& a, const U128& b) const {
    atomicAdd(reinterpret_cast<ull*>(&bin.count), 1ULL);
    bool o = false;
    if (a.lo | a.hi) o |= atomic_add_u128(reinterpret_cast<ull*>(&bin.a.lo), reinterpret_cast<ull*>(&bin.a.hi), a.lo, a.hi);
    if (b.lo | b.hi) o |= atomic_add_u128(reinterpret_cast<ull*>(&bin.b.lo), reinterpret_cast<ull*>(&bin.b.hi), b.lo, b.hi);
    atomicMin(reinterpret_cast<ull*>(&bin.kmin), static_cast<ull>(key));
    atomicMax(reinterpret_cast<ull*>(&bin.kmax), static_cast<ull>(key));
    return o;
  }
};

__global__ void k_fill_bins(FixedBin* bins, std::uint64_t n) {
  for (std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::uint64_t>(gridDim.x) * blockDim.x)
    bins[i] = fixed_bin_empty();
}

// ---------------------------------------------------------------------------
// Kernels
// ---------------------------------------------------------------------------

template <class F>
__global__ void k_loop(std::uint64_t n, F f) {
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
    const Fix128 x = clearing_to_fixed(value, bits, &o);
    if (o) *overflow = 1;
    if (x.lo | x.hi) atomic_add_u128(sums + 2 * key, sums + 2 * key + 1, x.lo, x.hi);
  }
};

template <class F>
__global__ void k_keyed(std::uint64_t n, F f, int n_keys, ull* out, int* overflow) {
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

/// A level above the first of a segment sum: element i is partial sum i.
template <int K>
struct PartialGet {
  const double* partials;
  __device__ void operator()(std::uint64_t i, double* o) const {
    for (int k = 0; k < K; ++k) o[k] = partials[i * K + k];
  }
};

/// chunk_sum of core/reduce.hpp, one block per task: lane t adds elements
/// t, t + kLanes, … in order, then the lanes fold by fold_lanes's tree.
template <int K, class Get>
__global__ void k_chunks(const std::uint64_t* begin, const std::uint64_t* len, Get get, double* out) {
  __shared__ double lane[K][kLanes];
  const int t = threadIdx.x;
  const std::uint64_t b = begin[blockIdx.x], n = len[blockIdx.x];
  double acc[K];
  for (int k = 0; k < K; ++k) acc[k] = 0.0;
  for (int j = 0; j < kChunkPerLane; ++j) {
    const std::uint64_t idx = static_cast<std::uint64_t>(t) + static_cast<std::uint64_t>(j) * kLanes;
    if (idx >= n) break;
    double x[K];
    get(b + idx, x);
    for (int k = 0; k < K; ++k) acc[k] += x[k];
  }
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
template <int K>
__global__ void k_pick(const double* partials, const std::int64_t* result, int n_seg, double* out) {
  const int s = blockIdx.x * blockDim.x + threadIdx.x;
  if (s >= n_seg) return;
  for (int k = 0; k < K; ++k) out[s * K + k] = result[s] >= 0 ? partials[result[s] * K + k] : 0.0;
}

template <class T>
__global__ void k_gather(const T* src, const std::uint64_t* idx, std::uint64_t n, T* dst, bool back) {
  const std::uint64_t j = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x;
  if (j >= n) return;
  if (back) dst[idx[j]] = src[j];
  else dst[j] = src[idx[j]];
}

// ---------------------------------------------------------------------------
// Device sinks of the clearing, water-fill and rank passes
// ---------------------------------------------------------------------------

/// Per market of a clearing pass: u128 scalars (2 words each) and counters.
enum ClearScalar { kClsA = 0, kClsM = 3, kDem = 6, kSold = 9, kKeyA = 12, kKeyDM, kKeyMA, kKeyMM, kUnsold, kWRat, kWZero,
                   kClearScalars };
enum ClearCount { kNBid, kNRat, kNZero, kClearCounts };

struct ClearSink {
  ull* A;                     ///< hist bins (2 words each), market m from hist_off[m]
  ull* M;
  ull* cnt;
  const std::uint64_t* hist_off;
  ull* scalars;               ///< kClearScalars × 2 words per market
  ull* counts;                ///< kClearCounts per market
  clearing_detail::KeyEvent* ev;  ///< ev_cap per gathering market
  const int* ev_slot;             ///< per market: its slot in ev, −1 when it does not gather
  ull* ev_count;
  std::uint64_t ev_cap;
  ull* first_bad;
  int* over;

  __device__ void bad(std::uint64_t i) { atomicMin(first_bad, static_cast<ull>(i)); }
  __device__ void overflow() { *over = 1; }
  __device__ void hist(int m, std::int64_t bin, u128 dA, u128 dM) {
    const std::uint64_t j = hist_off[m] + static_cast<std::uint64_t>(bin);
    if (dA) atomic_add_u128(A + 2 * j, dA);
    if (dM) atomic_add_u128(M + 2 * j, dM);
    atomicAdd(cnt + j, 1ULL);
  }
  __device__ ull* scalar(int m, int s) { return scalars + 2 * (static_cast<std::size_t>(m) * kClearScalars + s); }
  __device__ void cls(int m, int c, u128 dA, u128 dM) {
    if (dA) atomic_add_u128(scalar(m, kClsA + c), dA);
    if (dM) atomic_add_u128(scalar(m, kClsM + c), dM);
  }
  __device__ void gather(int m, const clearing_detail::KeyEvent& e) {
    const ull j = atomicAdd(ev_count + m, 1ULL);
    if (j < ev_cap) ev[static_cast<std::size_t>(ev_slot[m]) * ev_cap + j] = e;
  }
  __device__ void key(int m, u128 dA, u128 dM, u128 mA, u128 mM) {
    if (dA) atomic_add_u128(scalar(m, kKeyA), dA);
    if (dM) atomic_add_u128(scalar(m, kKeyDM), dM);
    if (mA) atomic_add_u128(scalar(m, kKeyMA), mA);
    if (mM) atomic_add_u128(scalar(m, kKeyMM), mM);
  }
  __device__ void stats(int m, int c, u128 dem, u128 sold, u128 unsold, bool bid, bool rationed, bool zeroed, u128 w) {
    if (dem) atomic_add_u128(scalar(m, kDem + c), dem);
    if (sold) atomic_add_u128(scalar(m, kSold + c), sold);
    if (unsold) atomic_add_u128(scalar(m, kUnsold), unsold);
    ull* n = counts + static_cast<std::size_t>(m) * kClearCounts;
    if (bid) atomicAdd(n + kNBid, 1ULL);
    if (rationed) {
      atomicAdd(n + kNRat, 1ULL);
      if (w) atomic_add_u128(scalar(m, kWRat), w);
    }
    if (zeroed) {
      atomicAdd(n + kNZero, 1ULL);
      if (w) atomic_add_u128(scalar(m, kWZero), w);
    }
  }
};

__global__ void k_clear(std::uint64_t n, clearing_detail::PassView v, FirmBids bids, ClearSink sink) {
  for (std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::uint64_t>(gridDim.x) * blockDim.x) {
    FirmBid b;
    const int p = bids(i, &b);
    clearing_detail::clearing_visit(v, i, p, b, sink);
  }
}

struct WaterSink {
  FixedBin* level0_bins;
  FixedBin* hist_bins;
  const std::uint64_t* hist_off;  ///< per job
  WaterItem* items;
  ull* item_count;                ///< per job
  std::uint64_t item_cap;
  ull* max_whc_key;               ///< per provider
  int* over;                      ///< per provider
  ull* first_bad;

  __device__ FixedBin* level0(int p, int cls) { return level0_bins + (static_cast<std::size_t>(p) * 2 + cls) * kExponentBins; }
  __device__ FixedBin* hist(int job) { return hist_bins + hist_off[job]; }
  __device__ AtomicBinAdd adder() const { return AtomicBinAdd{}; }
  __device__ void bad(std::uint64_t u) { atomicMin(first_bad, static_cast<ull>(u)); }
  __device__ void overflow(int p) { over[p] = 1; }
  __device__ void max_key(int p, std::uint64_t key) { atomicMax(max_whc_key + p, static_cast<ull>(key)); }
  __device__ void gather(int job, const WaterItem& item) {
    const ull j = atomicAdd(item_count + job, 1ULL);
    if (j < item_cap) items[static_cast<std::size_t>(job) * item_cap + j] = item;
  }
};

__global__ void k_water(std::uint64_t n, WaterPassView v, UserBids bids, WaterSink sink) {
  for (std::uint64_t u = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; u < n;
       u += static_cast<std::uint64_t>(gridDim.x) * blockDim.x)
    water_visit(v, u, bids, sink);
}

struct RankSink {
  FixedBin* bin_array;
  FixedBin* zero_bin;
  RankItem* items;
  ull* item_count;
  std::uint64_t item_cap;
  ull* first_bad;
  int* over;
  __device__ FixedBin* bins() { return bin_array; }
  __device__ FixedBin& zero() { return *zero_bin; }
  __device__ AtomicBinAdd adder() const { return AtomicBinAdd{}; }
  __device__ void bad(std::uint64_t i) { atomicMin(first_bad, static_cast<ull>(i)); }
  __device__ void overflow() { *over = 1; }
  __device__ void gather(const RankItem& r) {
    const ull j = atomicAdd(item_count, 1ULL);
    if (j < item_cap) items[j] = r;
  }
};

template <class Get>
__global__ void k_rank(std::uint64_t n, RankPass pass, Get get, RankSink sink) {
  for (std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::uint64_t>(gridDim.x) * blockDim.x)
    rank_visit(pass, i, get, sink);
}

// ---------------------------------------------------------------------------
// The backend
// ---------------------------------------------------------------------------

/// The level-by-level plan of a segment sum (core/reduce.hpp's segmented_sum and
/// fold_partials): tasks are (begin, length) ranges, level 0 over agents, later
/// levels over the partials array; `result[s]` is segment s's partial (−1: empty).
struct SegmentPlan {
  struct Level {
    std::uint64_t first;  ///< index of the level's first output in the partials
    std::uint64_t n;
    Buffer begin, len;
  };
  std::vector<std::unique_ptr<Level>> levels;
  std::uint64_t n_partials = 0;
  std::vector<std::int64_t> result;
  Buffer d_result;  ///< result on the device
};

class CudaExec final : public Exec {
 public:
  CudaExec(std::uint64_t n_firms, std::uint64_t n_users, std::string device)
      : n_firms_(n_firms), n_users_(n_users), device_(std::move(device)), firms_(n_firms), users_(n_users) {
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

  FirmView firms() override { return firms_.view(); }
  UserView users() override { return users_.view(); }

  const void* table(const void* host, std::size_t bytes) override {
    // Bump allocation in the tick's arena; a full chunk is followed by a bigger one.
    const std::size_t size = (bytes + 255) / 256 * 256 + 256;
    if (arena_.empty() || arena_used_ + size > arena_.back()->bytes()) {
      arena_.push_back(std::make_unique<Buffer>());
      const std::size_t want = arena_.size() > 1 ? 2 * arena_[arena_.size() - 2]->bytes() : (4u << 20);
      arena_.back()->reserve(want > size ? want : size);
      arena_used_ = 0;
    }
    char* d = static_cast<char*>(arena_.back()->data()) + arena_used_;
    arena_used_ += size;
    if (bytes) CUTOFF_CUDA(cudaMemcpyAsync(d, host, bytes, cudaMemcpyHostToDevice, stream_));
    return d;
  }

  const void* constant(const void* host, std::size_t bytes) override {
    constants_.push_back(std::make_unique<Buffer>());
    void* d = constants_.back()->reserve(bytes + 16);
    if (bytes) CUTOFF_CUDA(cudaMemcpy(d, host, bytes, cudaMemcpyHostToDevice));
    return d;
  }

  void begin_tick() override {
    // Every pass of the last tick has finished reading its tables: each tick ends
    // with the host reading a pass's result (the stream is synchronised).
    if (arena_.size() > 1) {  // keep one chunk as big as the last tick needed
      std::size_t total = 0;
      for (const auto& b : arena_) total += b->bytes();
      arena_.clear();
      arena_.push_back(std::make_unique<Buffer>());
      arena_.back()->reserve(total);
    }
    arena_used_ = 0;
  }

#define CUTOFF_CUDA_LOOP(F) \
  void loop(std::uint64_t n, const F& f) override { launch_loop(n, f); }
  CUTOFF_LOOPS(CUTOFF_CUDA_LOOP)
#undef CUTOFF_CUDA_LOOP
#define CUTOFF_CUDA_KEYED(F) \
  void sum(std::uint64_t n, const F& f, KeyedFixed& out) override { keyed(n, f, out); }
  CUTOFF_KEYED_SUMS(CUTOFF_CUDA_KEYED)
#undef CUTOFF_CUDA_KEYED
#define CUTOFF_CUDA_SEGMENTS(F)                                                                              \
  void segment_sums(const std::vector<std::uint64_t>& begin, const F& f, std::vector<double>& out) override { \
    segments(begin, f, out);                                                                                 \
  }
  CUTOFF_SEGMENT_SUMS(CUTOFF_CUDA_SEGMENTS)
#undef CUTOFF_CUDA_SEGMENTS
#define CUTOFF_CUDA_RANK(F) \
  RankStats rank_stats(std::uint64_t n, const F& f) override { return ranks(n, f); }
  CUTOFF_RANKS(CUTOFF_CUDA_RANK)
#undef CUTOFF_CUDA_RANK

  std::vector<ProviderClearing> clear_firms(std::uint64_t n, const std::vector<ProviderSupply>& supply,
                                            const FirmBids& bids) override;
  WaterFill water_fill(std::uint64_t n, int n_providers, const UserBids& bids, const double* capacity,
                       const double* floor) override;

  void gather_firms(const std::vector<std::uint64_t>& idx, HostArrays<Firms>& out) override {
    move_firms(idx, out.view(), false);
  }
  void scatter_firms(const std::vector<std::uint64_t>& idx, const HostArrays<Firms>& in) override {
    move_firms(idx, in.view(), true);
  }

  void load_firms(const HostArrays<Firms>& from) override { load(from, firms_, n_firms_); }
  void load_users(const HostArrays<Users>& from) override { load(from, users_, n_users_); }

  const HostArrays<Firms>& host_firms() override {
    copy_all(firms_, host_firms_, stream_, false);
    sync();
    return *host_firms_;
  }
  const HostArrays<Users>& host_users() override {
    copy_all(users_, host_users_, stream_, false);
    sync();
    return *host_users_;
  }

  void snapshot_begin() override {
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

 private:
  void sync() { CUTOFF_CUDA(cudaStreamSynchronize(stream_)); }
  template <class T>
  void to_host(T* dst, const void* src, std::size_t n) {
    if (n) CUTOFF_CUDA(cudaMemcpyAsync(dst, src, n * sizeof(T), cudaMemcpyDeviceToHost, stream_));
  }
  template <class T>
  T* zeroed(Buffer& b, std::size_t n) {
    T* p = b.as<T>(n);
    CUTOFF_CUDA(cudaMemsetAsync(p, 0, n * sizeof(T) + 16, stream_));
    return p;
  }
  /// The lowest invalid agent of a pass (atomicMin), starting at "none" (all ones).
  ull* no_bad_yet() {
    ull* p = bad_buf_.as<ull>(1);
    CUTOFF_CUDA(cudaMemsetAsync(p, 0xff, sizeof(ull), stream_));
    return p;
  }
  FixedBin* empty_bins(Buffer& b, std::size_t n) {
    FixedBin* p = b.as<FixedBin>(n);
    if (n) {
      k_fill_bins<<<grid_for(n), kBlock, 0, stream_>>>(p, n);
      CUTOFF_CUDA_LAUNCHED("k_fill_bins");
    }
    return p;
  }

  template <class F>
  void launch_loop(std::uint64_t n, const F& f) {
    if (n == 0) return;
    k_loop<<<grid_for(n), kBlock, 0, stream_>>>(n, f);
    CUTOFF_CUDA_LAUNCHED("k_loop");
  }

  template <class F>
  void keyed(std::uint64_t n, const F& f, KeyedFixed& out) {
    const int K = out.keys();
    ull* d = zeroed<ull>(keyed_buf_, 2 * static_cast<std::size_t>(K));
    int* over = zeroed<int>(flag_buf_, 1);
    if (n) {
      // A bounded grid: each block adds its shared sums to the K global keys once.
      const unsigned grid = grid_for(n) < kKeyedBlocks ? grid_for(n) : kKeyedBlocks;
      k_keyed<<<grid, kBlock, 2 * K * sizeof(ull), stream_>>>(n, f, K, d, over);
      CUTOFF_CUDA_LAUNCHED("k_keyed");
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
    if (slot && slot->result.size() + 1 == begin.size()) return *slot;
    slot = std::make_unique<SegmentPlan>();
    SegmentPlan& plan = *slot;
    const int n_seg = static_cast<int>(begin.size()) - 1;
    // Each segment's current partials: [first, first + count), absolute indices.
    std::vector<std::uint64_t> first(n_seg), count(n_seg), tb, tl;
    for (int s = 0; s < n_seg; ++s) {
      first[s] = tb.size();
      for (std::uint64_t b = begin[s]; b < begin[s + 1]; b += kChunk) {
        tb.push_back(b);
        tl.push_back(begin[s + 1] - b < kChunk ? begin[s + 1] - b : kChunk);
      }
      count[s] = tb.size() - first[s];
    }
    while (!tb.empty()) {
      auto level = std::make_unique<SegmentPlan::Level>();
      level->first = plan.n_partials;
      level->n = tb.size();
      CUTOFF_CUDA(cudaMemcpy(level->begin.as<std::uint64_t>(tb.size()), tb.data(), tb.size() * 8, cudaMemcpyHostToDevice));
      CUTOFF_CUDA(cudaMemcpy(level->len.as<std::uint64_t>(tl.size()), tl.data(), tl.size() * 8, cudaMemcpyHostToDevice));
      plan.n_partials += level->n;
      plan.levels.push_back(std::move(level));
      // fold_partials: a segment with several partials folds kChunk of them a task.
      tb.clear();
      tl.clear();
      for (int s = 0; s < n_seg; ++s) {
        if (count[s] <= 1) continue;
        const std::uint64_t f0 = first[s], c0 = count[s];
        first[s] = plan.n_partials + tb.size();
        for (std::uint64_t b = 0; b < c0; b += kChunk) {
          tb.push_back(f0 + b);
          tl.push_back(c0 - b < kChunk ? c0 - b : kChunk);
        }
        count[s] = plan.n_partials + tb.size() - first[s];
      }
    }
    plan.result.assign(n_seg, -1);
    for (int s = 0; s < n_seg; ++s)
      if (count[s] == 1) plan.result[s] = static_cast<std::int64_t>(first[s]);
    CUTOFF_CUDA(cudaMemcpy(plan.d_result.as<std::int64_t>(n_seg), plan.result.data(), n_seg * sizeof(std::int64_t),
                           cudaMemcpyHostToDevice));
    return plan;
  }

  template <class F>
  void segments(const std::vector<std::uint64_t>& begin, const F& f, std::vector<double>& out);

  template <class F>
  RankStats ranks(std::uint64_t n, const F& f);

  void move_firms(const std::vector<std::uint64_t>& idx, FirmView h, bool back) {
    const std::size_t m = idx.size();
    if (m == 0) return;
    const std::uint64_t* d_idx = static_cast<const std::uint64_t*>(table(idx.data(), m * 8));
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
        k_gather<T><<<grid_for(m), kBlock, 0, stream_>>>(small, d_idx, m, p, true);
      } else {
        k_gather<T><<<grid_for(m), kBlock, 0, stream_>>>(p, d_idx, m, small, false);
        CUTOFF_CUDA(cudaMemcpyAsync(hs, small, m * sizeof(T), cudaMemcpyDeviceToHost, stream_));
      }
      CUTOFF_CUDA_LAUNCHED("k_gather");
      ++k;
    });
    sync();
  }

  template <class Pop>
  void load(const HostArrays<Pop>& from, DeviceArrays<Pop>& dev, std::uint64_t n) {
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

  /// Device arrays for a staging copy, or null when the device lacks the memory.
  template <class Pop>
  std::unique_ptr<DeviceArrays<Pop>> try_staging(std::uint64_t n) {
    std::size_t free = 0, total = 0;
    CUTOFF_CUDA(cudaMemGetInfo(&free, &total));
    if (n * bytes_per_agent<Pop>() + (256u << 20) > free) return nullptr;
    return std::make_unique<DeviceArrays<Pop>>(n);
  }

  /// Device-to-device copy of the State fields, in stream order.
  template <class Pop>
  void stage(const DeviceArrays<Pop>& from, DeviceArrays<Pop>& to, std::uint64_t n) {
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
        if (n == 0) return;
        CUTOFF_CUDA(cudaHostRegister(p, n * f.bytes, cudaHostRegisterDefault));
        pinned_.push_back(p);
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

  std::uint64_t n_firms_, n_users_;
  std::string device_;
  DeviceArrays<Firms> firms_;
  DeviceArrays<Users> users_;
  cudaStream_t stream_ = nullptr, copy_stream_ = nullptr;
  cudaEvent_t ready_ = nullptr, copied_ = nullptr;
  std::vector<std::unique_ptr<Buffer>> arena_;  ///< this tick's tables (table())
  std::vector<std::unique_ptr<Buffer>> constants_;  ///< the run's constant tables (constant())
  std::size_t arena_used_ = 0;
  std::unordered_map<const void*, std::unique_ptr<SegmentPlan>> plans_;
  Buffer keyed_buf_, flag_buf_, partial_buf_, result_buf_;
  Buffer hist_a_, hist_m_, hist_cnt_, hist_off_, scalars_, counts_, events_, event_count_, bad_buf_;
  Buffer level0_buf_, bins_buf_, items_buf_, item_count_, max_key_buf_, over_buf_;
  Buffer small_buf_[Firms::kFieldCount];
  std::unique_ptr<HostArrays<Firms>> host_firms_, snap_firms_;
  bool staging_tried_ = false;
  std::unique_ptr<DeviceArrays<Firms>> staging_firms_;
  std::unique_ptr<DeviceArrays<Users>> staging_users_;
  std::unique_ptr<HostArrays<Users>> host_users_, snap_users_;
  std::vector<void*> pinned_;
};


template <class F>
void CudaExec::segments(const std::vector<std::uint64_t>& begin, const F& f, std::vector<double>& out) {
  constexpr int K = F::kOut;
  SegmentPlan& plan = plan_for(begin);
  double* partials = partial_buf_.as<double>(plan.n_partials * K);
  for (std::size_t L = 0; L < plan.levels.size(); ++L) {
    const SegmentPlan::Level& level = *plan.levels[L];
    const auto* b = static_cast<const std::uint64_t*>(level.begin.data());
    const auto* n = static_cast<const std::uint64_t*>(level.len.data());
    double* dst = partials + level.first * K;
    if (L == 0) k_chunks<K><<<static_cast<unsigned>(level.n), kLanes, 0, stream_>>>(b, n, f, dst);
    else k_chunks<K><<<static_cast<unsigned>(level.n), kLanes, 0, stream_>>>(b, n, PartialGet<K>{partials}, dst);
    CUTOFF_CUDA_LAUNCHED("k_chunks");
  }
  const int n_seg = static_cast<int>(plan.result.size());
  double* totals = result_buf_.as<double>(static_cast<std::size_t>(n_seg) * K);
  if (n_seg) {
    k_pick<K><<<grid_for(n_seg), kBlock, 0, stream_>>>(partials, static_cast<const std::int64_t*>(plan.d_result.data()),
                                                        n_seg, totals);
    CUTOFF_CUDA_LAUNCHED("k_pick");
  }
  out.assign(static_cast<std::size_t>(n_seg) * K, 0.0);
  to_host(out.data(), totals, out.size());
  sync();
}

template <class F>
RankStats CudaExec::ranks(std::uint64_t n, const F& f) {
  const RankOptions options;
  RankSolver solver(0.2, options);
  RankPass pass;
  while (solver.next(&pass)) {
    const int nb = pass.hist.nbins > 0 ? pass.hist.nbins : 0;
    RankSink sink{};
    sink.bin_array = empty_bins(bins_buf_, static_cast<std::size_t>(nb) + 1);
    sink.zero_bin = sink.bin_array + nb;
    sink.item_cap = pass.gather ? options.gather_limit : 0;
    sink.items = items_buf_.as<RankItem>(sink.item_cap);
    sink.item_count = zeroed<ull>(item_count_, 1);
    sink.first_bad = no_bad_yet();
    sink.over = zeroed<int>(over_buf_, 1);
    if (n) {
      k_rank<<<grid_for(n), kBlock, 0, stream_>>>(n, pass, f, sink);
      CUTOFF_CUDA_LAUNCHED("k_rank");
    }
    RankPassData data;
    data.bins.resize(nb);
    ull n_items = 0, bad = 0;
    int over = 0;
    to_host(data.bins.data(), sink.bin_array, nb);
    to_host(&data.zero, sink.zero_bin, 1);
    to_host(&n_items, sink.item_count, 1);
    to_host(&bad, sink.first_bad, 1);
    to_host(&over, sink.over, 1);
    sync();
    if (bad != ~0ULL) rank_throw_invalid(bad);
    if (n_items > sink.item_cap) throw std::logic_error("rank pass: more gathered elements than the gather limit");
    data.items.resize(n_items);
    to_host(data.items.data(), sink.items, n_items);
    sync();
    data.overflow = over != 0;
    solver.feed(std::move(data));
  }
  return solver.result();
}

std::vector<ProviderClearing> CudaExec::clear_firms(std::uint64_t n, const std::vector<ProviderSupply>& supply,
                                                    const FirmBids& bids) {
  using namespace clearing_detail;
  Engine eng(n, supply, ClearingOptions{});
  const std::uint64_t ev_cap = eng.options().gather_max;
  while (eng.next_pass()) {
    const std::vector<Task>& tasks = eng.tasks();
    const int M = static_cast<int>(tasks.size());
    const PassView host = eng.view();
    PassView v = host;
    v.supply = static_cast<const ProviderSupply*>(table(host.supply, supply.size() * sizeof(ProviderSupply)));
    v.task = static_cast<const Task*>(table(host.task, tasks.size() * sizeof(Task)));
    v.res = static_cast<const ProviderClearing*>(table(host.res, supply.size() * sizeof(ProviderClearing)));
    std::vector<std::uint64_t> off(M + 1, 0);
    std::vector<int> slot(M, -1);
    int gathering = 0;
    for (int m = 0; m < M; ++m) {
      off[m + 1] = off[m] + (tasks[m].kind == kTaskHist ? tasks[m].n_bins + 1 : 0);
      if (tasks[m].kind == kTaskGather) slot[m] = gathering++;
    }
    ClearSink sink{};
    sink.A = zeroed<ull>(hist_a_, 2 * off[M]);
    sink.M = zeroed<ull>(hist_m_, 2 * off[M]);
    sink.cnt = zeroed<ull>(hist_cnt_, off[M]);
    sink.hist_off = static_cast<const std::uint64_t*>(table(off.data(), off.size() * 8));
    sink.scalars = zeroed<ull>(scalars_, 2 * static_cast<std::size_t>(M) * kClearScalars);
    sink.counts = zeroed<ull>(counts_, static_cast<std::size_t>(M) * kClearCounts);
    sink.ev_cap = gathering ? ev_cap : 0;
    sink.ev = events_.as<KeyEvent>(static_cast<std::size_t>(gathering) * sink.ev_cap);
    sink.ev_slot = static_cast<const int*>(table(slot.data(), slot.size() * sizeof(int)));
    sink.ev_count = zeroed<ull>(event_count_, M);
    sink.first_bad = no_bad_yet();
    sink.over = zeroed<int>(over_buf_, 1);
    if (n) {
      k_clear<<<grid_for(n), kBlock, 0, stream_>>>(n, v, bids, sink);
      CUTOFF_CUDA_LAUNCHED("k_clear");
    }
    std::vector<ull> A(2 * off[M]), Mv(2 * off[M]), cnt(off[M]), sc(2 * static_cast<std::size_t>(M) * kClearScalars),
        counts(static_cast<std::size_t>(M) * kClearCounts), ev_count(M);
    ull bad = 0;
    int over = 0;
    to_host(A.data(), sink.A, A.size());
    to_host(Mv.data(), sink.M, Mv.size());
    to_host(cnt.data(), sink.cnt, cnt.size());
    to_host(sc.data(), sink.scalars, sc.size());
    to_host(counts.data(), sink.counts, counts.size());
    to_host(ev_count.data(), sink.ev_count, ev_count.size());
    to_host(&bad, sink.first_bad, 1);
    to_host(&over, sink.over, 1);
    sync();
    // The pass's merged results as one thread's partial results of the host engine.
    Local local;
    eng.init_local(local);
    if (bad != ~0ULL) local.bad = bad;
    local.overflow = over != 0;
    auto word = [](const std::vector<ull>& w, std::size_t j) { return (static_cast<u128>(w[2 * j + 1]) << 64) | w[2 * j]; };
    for (int m = 0; m < M; ++m) {
      LocalMarket& lm = local.m[m];
      for (std::uint64_t j = off[m]; j < off[m + 1]; ++j) {
        lm.A[j - off[m]] = word(A, j);
        lm.M[j - off[m]] = word(Mv, j);
        lm.cnt[j - off[m]] = cnt[j];
      }
      const std::size_t b = static_cast<std::size_t>(m) * kClearScalars;
      for (int c = 0; c < kClearClasses; ++c) {
        lm.clsA[c] = word(sc, b + kClsA + c);
        lm.clsM[c] = word(sc, b + kClsM + c);
        lm.dem[c] = word(sc, b + kDem + c);
        lm.sold[c] = word(sc, b + kSold + c);
      }
      lm.key.dA = word(sc, b + kKeyA);
      lm.key.dM = word(sc, b + kKeyDM);
      lm.key.mA = word(sc, b + kKeyMA);
      lm.key.mM = word(sc, b + kKeyMM);
      lm.unsold = word(sc, b + kUnsold);
      lm.w_rat = word(sc, b + kWRat);
      lm.w_zero = word(sc, b + kWZero);
      lm.n_bid = counts[static_cast<std::size_t>(m) * kClearCounts + kNBid];
      lm.n_rat = counts[static_cast<std::size_t>(m) * kClearCounts + kNRat];
      lm.n_zero = counts[static_cast<std::size_t>(m) * kClearCounts + kNZero];
      if (ev_count[m] > sink.ev_cap && tasks[m].kind == kTaskGather)
        throw std::logic_error("clearing: more gathered keys than gather_max");
      if (tasks[m].kind == kTaskGather && ev_count[m]) {
        lm.ev.resize(ev_count[m]);
        to_host(lm.ev.data(), sink.ev + static_cast<std::size_t>(slot[m]) * sink.ev_cap, ev_count[m]);
      }
    }
    sync();
    eng.merge(local);
    eng.end_pass();
  }
  return eng.results();
}

WaterFill CudaExec::water_fill(std::uint64_t n, int n_providers, const UserBids& bids, const double* capacity,
                               const double* floor) {
  const WaterfillOptions options;
  WaterSolver solver(n_providers, capacity, floor, options);
  WaterPass pass;
  const int P = n_providers;
  while (solver.next(&pass)) {
    WaterPassData data = water_pass_empty(pass, P);
    const std::size_t J = pass.jobs.size();
    WaterPassView v = pass.view(P);
    v.scale = static_cast<const int*>(table(pass.scale.data(), pass.scale.size() * sizeof(int)));
    v.jobs = static_cast<const WaterJob*>(table(pass.jobs.data(), J * sizeof(WaterJob)));
    v.job_begin = static_cast<const int*>(table(pass.job_begin.data(), pass.job_begin.size() * sizeof(int)));
    std::vector<std::uint64_t> off(J + 1, 0);
    for (std::size_t k = 0; k < J; ++k) off[k + 1] = off[k] + data.hist[k].size();
    WaterSink sink{};
    sink.level0_bins = empty_bins(level0_buf_, data.level0.size());
    sink.hist_bins = empty_bins(bins_buf_, off[J]);
    sink.hist_off = static_cast<const std::uint64_t*>(table(off.data(), off.size() * 8));
    sink.item_cap = options.gather_limit;
    sink.items = items_buf_.as<WaterItem>(J * sink.item_cap);
    sink.item_count = zeroed<ull>(item_count_, J);
    sink.max_whc_key = zeroed<ull>(max_key_buf_, P);
    sink.over = zeroed<int>(over_buf_, P);
    sink.first_bad = no_bad_yet();
    if (n) {
      k_water<<<grid_for(n), kBlock, 0, stream_>>>(n, v, bids, sink);
      CUTOFF_CUDA_LAUNCHED("k_water");
    }
    std::vector<ull> count(J), max_key(P);
    std::vector<int> over(P);
    ull bad = 0;
    to_host(data.level0.data(), sink.level0_bins, data.level0.size());
    for (std::size_t k = 0; k < J; ++k) to_host(data.hist[k].data(), sink.hist_bins + off[k], data.hist[k].size());
    to_host(count.data(), sink.item_count, J);
    to_host(max_key.data(), sink.max_whc_key, P);
    to_host(over.data(), sink.over, P);
    to_host(&bad, sink.first_bad, 1);
    sync();
    if (bad != ~0ULL) water_throw_invalid(bad);
    for (std::size_t k = 0; k < J; ++k) {
      if (count[k] > sink.item_cap) throw std::logic_error("water-fill: more gathered users than gather_limit");
      data.items[k].resize(count[k]);
      to_host(data.items[k].data(), sink.items + k * sink.item_cap, count[k]);
    }
    // Bins that overflowed in their 128-bit sums flag their provider (as the host merge does).
    for (int p = 0; p < P; ++p) {
      data.max_whc_key[p] = max_key[p];
      data.overflow[p] = over[p] ? 1 : 0;
    }
    sync();
    solver.feed(std::move(data));
  }
  return WaterFill{solver.levels(), solver.passes()};
}

}  // namespace

std::unique_ptr<Exec> make_exec(std::uint64_t n_firms, std::uint64_t n_users) {
  std::string why;
  if (!cuda_probe(&why)) throw InputError("--backend 'cuda': no usable GPU (" + why + "); use --backend cpu or auto");
  std::size_t free = 0, total = 0;
  CUTOFF_CUDA(cudaMemGetInfo(&free, &total));
  const std::uint64_t need = device_bytes_needed(n_firms, n_users);
  if (need > free) {
    std::ostringstream s;
    s << "not enough GPU memory for n_firms = " << n_firms << " and n_users = " << n_users << ": needs " << need
      << " bytes (" << bytes_per_agent<Firms>() << " per firm, " << bytes_per_agent<Users>()
      << " per user, plus pass buffers), free " << free << " of " << total << " bytes on " << why
      << "; use fewer agents or --backend cpu";
    throw InputError(s.str());
  }
  return std::make_unique<CudaExec>(n_firms, n_users, why);
}

}  // namespace cutoff::cuda
