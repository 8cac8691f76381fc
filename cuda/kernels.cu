/// @file
/// The __global__ wrappers: each launches one CUTOFF_HD function of agents/
/// per agent. Nothing of the model's arithmetic is written here.

#include "cuda/check.cuh"
#include "cuda/kernels.hpp"

namespace cutoff::cuda {
namespace {

constexpr int kBlock = 256;

unsigned grid_for(std::uint64_t n) { return static_cast<unsigned>((n + kBlock - 1) / kBlock); }

__device__ std::uint64_t global_index() {
  return static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}

__global__ void k_init_firms(std::uint64_t n, FirmInitConsts k, FirmView f) {
  const std::uint64_t i = global_index();
  if (i < n) init_firm(i, k, f);
}

__global__ void k_scale_firm_sizes(std::uint64_t n, const double* scale, FirmView f) {
  const std::uint64_t i = global_index();
  if (i < n) scale_firm_size(i, scale, f);
}

__global__ void k_init_firm_revenues(std::uint64_t n, double sigma_c, const double* rate, int n_sectors, FirmView f) {
  const std::uint64_t i = global_index();
  if (i < n) init_firm_revenue(i, sigma_c, rate, n_sectors, f);
}

__global__ void k_init_users(std::uint64_t n, UserConsts k, double income_sigma, double need_sigma, UserView v) {
  const std::uint64_t i = global_index();
  if (i < n) init_user(i, k, income_sigma, need_sigma, v);
}

__global__ void k_firm_choose(std::uint64_t n, FirmTickConsts k, FirmView f) {
  const std::uint64_t i = global_index();
  if (i < n) cutoff::firm_choose(i, k, f);
}

__global__ void k_firm_settle(std::uint64_t n, FirmTickConsts k, const ProviderClearing* result, FirmView f) {
  const std::uint64_t i = global_index();
  if (i < n) cutoff::firm_settle(i, k, result, f);
}

__global__ void k_firm_productivity(std::uint64_t n, FirmTickConsts k, const double* spill, double g0, double sigma_A,
                                    FirmView f) {
  const std::uint64_t i = global_index();
  if (i < n) cutoff::firm_productivity(i, k, spill, g0, sigma_A, f);
}

__global__ void k_firm_wealth(std::uint64_t n, FirmWealthConsts k, FirmView f) {
  const std::uint64_t i = global_index();
  if (i < n) cutoff::firm_wealth(i, k, f);
}

__global__ void k_user_choose(std::uint64_t n, UserConsts k, UserView v) {
  const std::uint64_t i = global_index();
  if (i < n) cutoff::user_choose(i, k, v);
}

__global__ void k_user_settle(std::uint64_t n, UserConsts k, const WaterLevel* levels, UserView v) {
  const std::uint64_t i = global_index();
  if (i < n) cutoff::user_settle(i, k, levels, v);
}

__global__ void k_user_adopt(std::uint64_t n, UserConsts k, UserView v) {
  const std::uint64_t i = global_index();
  if (i < n) cutoff::user_adopt(i, k, v);
}

/// Block-level twin of chunk_sum<2>: lane t adds elements t, t+kLanes, … in
/// order, then the lanes fold by the same tree as fold_lanes.
__global__ void k_pool_term_chunks(const std::uint64_t* begin, const std::uint64_t* len, LayoutView L, FirmView f,
                                   double sigma_c, Sums<2>* out) {
  __shared__ double lane[2][kLanes];
  const int t = threadIdx.x;
  const std::uint64_t b = begin[blockIdx.x], n = len[blockIdx.x];
  double acc[2] = {0.0, 0.0};
  for (int j = 0; j < kChunkPerLane; ++j) {
    const std::uint64_t idx = static_cast<std::uint64_t>(t) + static_cast<std::uint64_t>(j) * kLanes;
    if (idx >= n) break;
    double x[2];
    pool_terms(L, f, sigma_c, b + idx, x);
    acc[0] += x[0];
    acc[1] += x[1];
  }
  lane[0][t] = acc[0];
  lane[1][t] = acc[1];
  __syncthreads();
  for (int s = kLanes / 2; s > 0; s /= 2) {
    if (t < s) {
      lane[0][t] += lane[0][t + s];
      lane[1][t] += lane[1][t + s];
    }
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = Sums<2>{{lane[0][0], lane[1][0]}};
}

}  // namespace

void init_firms(std::uint64_t n, const FirmInitConsts& k, const FirmView& d_f) {
  if (n == 0) return;
  k_init_firms<<<grid_for(n), kBlock>>>(n, k, d_f);
  CUTOFF_CUDA_LAUNCHED("k_init_firms");
}

void scale_firm_sizes(std::uint64_t n, const double* d_scale, const FirmView& d_f) {
  if (n == 0) return;
  k_scale_firm_sizes<<<grid_for(n), kBlock>>>(n, d_scale, d_f);
  CUTOFF_CUDA_LAUNCHED("k_scale_firm_sizes");
}

void init_firm_revenues(std::uint64_t n, double sigma_c, const double* d_rate, int n_sectors, const FirmView& d_f) {
  if (n == 0) return;
  k_init_firm_revenues<<<grid_for(n), kBlock>>>(n, sigma_c, d_rate, n_sectors, d_f);
  CUTOFF_CUDA_LAUNCHED("k_init_firm_revenues");
}

void init_users(std::uint64_t n, const UserConsts& k, double income_sigma, double need_sigma, const UserView& d_v) {
  if (n == 0) return;
  k_init_users<<<grid_for(n), kBlock>>>(n, k, income_sigma, need_sigma, d_v);
  CUTOFF_CUDA_LAUNCHED("k_init_users");
}

void firm_choose(std::uint64_t n, const FirmTickConsts& k, const FirmView& d_f) {
  if (n == 0) return;
  k_firm_choose<<<grid_for(n), kBlock>>>(n, k, d_f);
  CUTOFF_CUDA_LAUNCHED("k_firm_choose");
}

void firm_settle(std::uint64_t n, const FirmTickConsts& k, const ProviderClearing* d_result, const FirmView& d_f) {
  if (n == 0) return;
  k_firm_settle<<<grid_for(n), kBlock>>>(n, k, d_result, d_f);
  CUTOFF_CUDA_LAUNCHED("k_firm_settle");
}

void firm_productivity(std::uint64_t n, const FirmTickConsts& k, const double* d_spill, double g0, double sigma_A,
                       const FirmView& d_f) {
  if (n == 0) return;
  k_firm_productivity<<<grid_for(n), kBlock>>>(n, k, d_spill, g0, sigma_A, d_f);
  CUTOFF_CUDA_LAUNCHED("k_firm_productivity");
}

void firm_wealth(std::uint64_t n, const FirmWealthConsts& k, const FirmView& d_f) {
  if (n == 0) return;
  k_firm_wealth<<<grid_for(n), kBlock>>>(n, k, d_f);
  CUTOFF_CUDA_LAUNCHED("k_firm_wealth");
}

void user_choose(std::uint64_t n, const UserConsts& k, const UserView& d_v) {
  if (n == 0) return;
  k_user_choose<<<grid_for(n), kBlock>>>(n, k, d_v);
  CUTOFF_CUDA_LAUNCHED("k_user_choose");
}

void user_settle(std::uint64_t n, const UserConsts& k, const WaterLevel* d_levels, const UserView& d_v) {
  if (n == 0) return;
  k_user_settle<<<grid_for(n), kBlock>>>(n, k, d_levels, d_v);
  CUTOFF_CUDA_LAUNCHED("k_user_settle");
}

void user_adopt(std::uint64_t n, const UserConsts& k, const UserView& d_v) {
  if (n == 0) return;
  k_user_adopt<<<grid_for(n), kBlock>>>(n, k, d_v);
  CUTOFF_CUDA_LAUNCHED("k_user_adopt");
}

void pool_term_chunks(int n_tasks, const std::uint64_t* d_begin, const std::uint64_t* d_len, const LayoutView& d_L,
                      const FirmView& d_f, double sigma_c, Sums<2>* d_out) {
  if (n_tasks == 0) return;
  k_pool_term_chunks<<<n_tasks, kLanes>>>(d_begin, d_len, d_L, d_f, sigma_c, d_out);
  CUTOFF_CUDA_LAUNCHED("k_pool_term_chunks");
}

void* device_alloc(std::size_t bytes) {
  void* p = nullptr;
  CUTOFF_CUDA(cudaMalloc(&p, bytes));
  return p;
}
void device_free(void* p) { cudaFree(p); }
void copy_to_device(void* d_dst, const void* src, std::size_t bytes) {
  CUTOFF_CUDA(cudaMemcpy(d_dst, src, bytes, cudaMemcpyHostToDevice));
}
void copy_to_host(void* dst, const void* d_src, std::size_t bytes) {
  CUTOFF_CUDA(cudaMemcpy(dst, d_src, bytes, cudaMemcpyDeviceToHost));
}

}  // namespace cutoff::cuda
