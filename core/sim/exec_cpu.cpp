/// @file
/// The CPU backend: agents in host arrays, each pass an OpenMP loop over the
/// functors of core/sim/passes.hpp (the same bits at any thread count).

#include <omp.h>

#include <cstring>
#include <sstream>
#include <stdexcept>

#include "core/market/clearing.hpp"
#include "core/model/params.hpp"
#include "core/sim/exec.hpp"

namespace cutoff {
namespace {

/// Rows idx of `all` to rows 0, 1, … of `small`, or back (views: raw pointers).
template <class Pop>
void move_rows(typename Pop::View all, typename Pop::View small, const std::vector<std::uint64_t>& idx, bool back) {
  std::vector<char*> dst;
  Pop::for_each(small, [&](const FieldInfo&, auto*& p) { dst.push_back(reinterpret_cast<char*>(p)); });
  int k = 0;
  Pop::for_each(all, [&](const FieldInfo&, auto*& p) {
    using T = std::remove_reference_t<decltype(*p)>;
    T* rows = reinterpret_cast<T*>(dst[k++]);
    for (std::size_t j = 0; j < idx.size(); ++j) {
      if (back)
        p[idx[j]] = rows[j];
      else
        rows[j] = p[idx[j]];
    }
  });
}

template <class Pop> void fill_arrays(HostArrays<Pop>& a, std::uint8_t byte) {
  typename Pop::View v = a.view();
  Pop::for_each(v, [&](const FieldInfo& f, auto*& p) { std::memset(p, byte, a.size() * f.bytes); });
}

template <class Pop> void copy_arrays(const HostArrays<Pop>& from, HostArrays<Pop>& to) {
  if (from.size() != to.size()) throw std::invalid_argument(std::string("load: wrong number of ") + Pop::kName);
  typename Pop::View a = from.view(), b = to.view();
  std::vector<void*> dst;
  Pop::for_each(b, [&](const FieldInfo&, auto*& p) { dst.push_back(p); });
  int k = 0;
  Pop::for_each(a, [&](const FieldInfo& f, auto*& p) { std::memcpy(dst[k++], p, from.size() * f.bytes); });
}

class CpuExec final : public Exec {
 public:
  CpuExec(std::uint64_t n_firms, std::uint64_t n_users) : firms_(n_firms), users_(n_users) {}

  OnExec<FirmView> firms() override { return wrap(firms_.view()); }
  OnExec<UserView> users() override { return wrap(users_.view()); }
  void fill(std::uint8_t byte) override {
    fill_arrays(firms_, byte);
    fill_arrays(users_, byte);
  }

  CUTOFF_EXEC_OVERRIDES

  std::vector<ProviderClearing> clear_firms(std::uint64_t n, const std::vector<ProviderSupply>& supply,
                                            const FirmBids& bids) override {
    return cutoff::clear_firms(n, supply, bids, solver_options().clearing);
  }
  WaterFill water_fill(std::uint64_t n, int n_providers, const PlanBids& bids, const double* capacity,
                       const double* floor) override {
    return cutoff::water_fill(n, n_providers, bids, capacity, floor, solver_options().water);
  }
  void gather_firms(const std::vector<std::uint64_t>& idx, HostArrays<Firms>& out) override {
    move_rows<Firms>(firms_.view(), out.view(), idx, false);
  }
  void scatter_firms(const std::vector<std::uint64_t>& idx, const HostArrays<Firms>& in) override {
    move_rows<Firms>(firms_.view(), in.view(), idx, true);
  }
  void load_firms(const HostArrays<Firms>& from) override { copy_arrays(from, firms_); }
  void load_users(const HostArrays<Users>& from) override { copy_arrays(from, users_); }
  const HostArrays<Firms>& host_firms() override { return firms_; }
  const HostArrays<Users>& host_users() override { return users_; }

 protected:
  /// The host data is what the passes read.
  void upload(Upload* tables, std::size_t n, bool) override {
    for (std::size_t j = 0; j < n; ++j) tables[j].device = tables[j].host;
  }

 private:
  template <class F> static void run_loop(std::uint64_t n, const F& f) {
    const auto m = static_cast<std::int64_t>(n);
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < m; ++i) f(static_cast<std::uint64_t>(i));
  }
  template <class F> static void run_sum(std::uint64_t n, const F& f, KeyedFixed& out) { out.accumulate(n, f); }
  template <class F> RankStats run_ranks(std::uint64_t n, const F& f) {
    return cutoff::rank_stats(n, f, 0.2, solver_options().ranks);
  }
  template <class F>
  static void run_segments(const std::vector<std::uint64_t>& begin, const F& f, std::vector<double>& out) {
    constexpr int K = F::kOut;
    const int n_seg = static_cast<int>(begin.size()) - 1;
    std::vector<Sums<K>> s(n_seg);
    segmented_sum<K>(begin.data(), n_seg, f, s.data());
    out.resize(static_cast<std::size_t>(n_seg) * K);
    for (int j = 0; j < n_seg; ++j)
      for (int k = 0; k < K; ++k) out[static_cast<std::size_t>(j) * K + k] = s[j][k];
  }

  HostArrays<Firms> firms_;
  HostArrays<Users> users_;
};

}  // namespace

std::uint64_t device_bytes_needed(std::uint64_t n_firms, std::uint64_t n_users) {
  // The registries' arrays plus the pass buffers: histograms (≤ 2 × 16 markets ×
  // 65,537 bins × 40 B), gathered keys, keyed sums, segment partials, tables.
  constexpr std::uint64_t kPassBuffers = 256ull << 20;
  return n_firms * bytes_per_agent<Firms>() + n_users * bytes_per_agent<Users>() + kPassBuffers;
}

Backend cpu_backend() {
  return {"cpu", [](std::uint64_t n_firms, std::uint64_t n_users) -> std::unique_ptr<Exec> {
            return std::make_unique<CpuExec>(n_firms, n_users);
          }};
}

}  // namespace cutoff
