#pragma once
/// @file
/// Launchers of the per-agent kernels: plain C++ declarations, so core/ and the
/// tests call them without CUDA headers. Every pointer (d_ prefix, and every
/// pointer inside the views and constants structs) is device memory. Each
/// kernel calls the same CUTOFF_HD function of agents/ as the OpenMP loop.

#include <cstdint>

#include "agents/fields.hpp"
#include "agents/firm_kern.hpp"
#include "agents/user_kern.hpp"
#include "core/reduce.hpp"

namespace cutoff::cuda {

void init_firms(std::uint64_t n, const FirmInitConsts& k, const FirmView& d_f);
void scale_firm_sizes(std::uint64_t n, const double* d_scale, const FirmView& d_f);
void init_firm_revenues(std::uint64_t n, double sigma_c, const double* d_rate, int n_sectors, const FirmView& d_f);
void init_users(std::uint64_t n, const UserConsts& k, double income_sigma, double need_sigma, const UserView& d_v);

/// Steps 4–9 per agent (the tick's constants point into device memory).
void firm_choose(std::uint64_t n, const FirmTickConsts& k, const FirmView& d_f);
void firm_settle(std::uint64_t n, const FirmTickConsts& k, const ProviderClearing* d_result, const FirmView& d_f);
void firm_productivity(std::uint64_t n, const FirmTickConsts& k, const double* d_spill, double g0, double sigma_A,
                       const FirmView& d_f);
void firm_wealth(std::uint64_t n, const FirmWealthConsts& k, const FirmView& d_f);
void user_choose(std::uint64_t n, const UserConsts& k, const UserView& d_v);
void user_settle(std::uint64_t n, const UserConsts& k, const WaterLevel* d_levels, const UserView& d_v);
void user_adopt(std::uint64_t n, const UserConsts& k, const UserView& d_v);

/// Canonical chunk sums of step 8's pool terms {w·A·e, w·e·A^σ} (core/reduce.hpp):
/// one block of kLanes threads per task; task k sums firms [d_begin[k], d_begin[k] + d_len[k]).
void pool_term_chunks(int n_tasks, const std::uint64_t* d_begin, const std::uint64_t* d_len, const LayoutView& d_L,
                      const FirmView& d_f, double sigma_c, Sums<2>* d_out);

/// Device memory helpers (throw with the call, file and line on error).
void* device_alloc(std::size_t bytes);
void device_free(void* p);
void copy_to_device(void* d_dst, const void* src, std::size_t bytes);
void copy_to_host(void* dst, const void* d_src, std::size_t bytes);

/// One device array per registry field (the device twin of HostArrays).
template <class Pop>
class DeviceArrays {
 public:
  using View = typename Pop::View;
  explicit DeviceArrays(std::uint64_t n) : n_(n) {
    Pop::for_each(view_, [&](const FieldInfo& f, auto*& ptr) {
      using T = std::remove_reference_t<decltype(*ptr)>;
      ptr = static_cast<T*>(device_alloc(n * f.bytes + 64));
    });
  }
  ~DeviceArrays() {
    Pop::for_each(view_, [&](const FieldInfo&, auto*& ptr) { device_free(ptr); });
  }
  DeviceArrays(const DeviceArrays&) = delete;
  DeviceArrays& operator=(const DeviceArrays&) = delete;

  const View& view() const { return view_; }
  /// Copies every field to host arrays of the same size.
  void to_host(const View& host) const {
    View d = view_, h = host;
    int k = 0;
    void* dst[Pop::kFieldCount];
    Pop::for_each(h, [&](const FieldInfo&, auto*& ptr) { dst[k++] = ptr; });
    k = 0;
    Pop::for_each(d, [&](const FieldInfo& f, auto*& ptr) { copy_to_host(dst[k++], ptr, n_ * f.bytes); });
  }

 private:
  std::uint64_t n_;
  View view_{};
};

}  // namespace cutoff::cuda
