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

  OnExec<FirmView> firms() override { return on_exec(firms_.view()); }
  OnExec<UserView> users() override { return on_exec(users_.view()); }
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
    return cutoff::rank_stats(n, f, kTopFraction, solver_options().ranks);
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

ExecShape exec_shape(const Layout& layout, int n_providers) {
  ExecShape s;
  s.n_firms = layout.n_firms;
  s.n_users = layout.n_users;
  s.n_providers = n_providers;
  for (const std::vector<std::uint64_t>* b : {&layout.firm_begin, &layout.user_begin, &layout.seg_begin})
    if (!b->empty() && b->size() - 1 > s.n_segments) s.n_segments = b->size() - 1;
  s.n_large = layout.n_large;
  return s;
}

namespace {

/// A device buffer of n items of T as the CUDA backend reserves it (16 bytes of slack).
template <class T> constexpr std::uint64_t buf(std::uint64_t n) { return n * sizeof(T) + 16; }

}  // namespace

DeviceBytes device_bytes_needed(const ExecShape& shape) {
  using clearing_detail::KeyEvent;
  using clearing_detail::MarketSums;
  const std::uint64_t P = shape.n_providers > 0 ? static_cast<std::uint64_t>(shape.n_providers) : 1;
  const std::uint64_t S = shape.n_segments > 0 ? shape.n_segments : 1;
  const ClearingOptions clearing;
  const WaterfillOptions water;
  const RankOptions ranks;
  DeviceBytes d;
  d.agents = shape.n_firms * bytes_per_agent<Firms>() + shape.n_users * bytes_per_agent<Users>();

  // The clearing (core/market/clearing.hpp): 2P markets (home and rest), each with a
  // histogram of at most 2^16 + 1 bins (a refinement; the coarse pass has 4,097).
  const std::uint64_t markets = 2 * P;
  const std::uint64_t bins = markets * ((1ull << kClearFineLog2) + 1);
  d.clearing =
      2 * buf<u128>(bins) + buf<std::uint64_t>(bins) + buf<MarketSums>(markets) + buf<std::uint64_t>(1) + buf<int>(1);
  // The water-fill (core/market/waterfill.hpp): level 0's exponent bins per provider and
  // class, then at most three fills per provider (the floor's, the joint one and the
  // rest's), each refined into at most 2^refine_bits bins.
  const std::uint64_t fills = 3 * P;
  d.water = buf<FixedBin>(P * 2 * kExponentBins) + buf<FixedBin>(fills * ((1ull << water.refine_bits) + 1)) +
            buf<std::uint64_t>(P) + buf<int>(P) + buf<std::uint64_t>(1);
  // The ranks (core/market/ranks.hpp): one histogram, the widest of its kinds, and the zero bin.
  std::uint64_t rank_bins = static_cast<std::uint64_t>(ranks.fine_bins);
  if (rank_bins < static_cast<std::uint64_t>(kExponentBins)) rank_bins = kExponentBins;
  if (rank_bins < (1ull << ranks.refine_bits) + 1) rank_bins = (1ull << ranks.refine_bits) + 1;
  d.ranks = buf<FixedBin>(rank_bins + 1) + buf<std::uint64_t>(1) + buf<int>(1);
  // Gathered items: one buffer for the three solvers, as large as the largest pass needs
  // (every list gathering at once at its limit), and the lists' counts.
  std::uint64_t items = markets * clearing.gather_limit * sizeof(KeyEvent);
  if (fills * water.gather_limit * sizeof(WaterItem) > items) items = fills * water.gather_limit * sizeof(WaterItem);
  if (ranks.gather_limit * sizeof(RankItem) > items) items = ranks.gather_limit * sizeof(RankItem);
  d.lists = items + 16 + buf<std::uint64_t>(markets > fills ? markets : fills);

  // Segment sums (core/hd/reduce.hpp): level 0 has at most n/kChunk + S chunks (one
  // partial chunk per segment), each later level at most 1/kChunk of that plus S.
  const std::uint64_t n = shape.n_firms > shape.n_users ? shape.n_firms : shape.n_users;
  std::uint64_t levels = 1;
  for (std::uint64_t reach = kChunk; reach < n; reach *= kChunk) ++levels;
  const std::uint64_t partials = n / (kChunk - 1) + 1 + levels * S;
  constexpr std::uint64_t K = max_segment_out();
  // The partials and totals (one buffer each, reused), and each of the layout's three
  // segmentations' plans: every level's task ranges (begin, len) and the segments' results.
  d.segments = buf<double>(partials * K) + buf<double>(S * K) +
               3 * (2 * buf<std::uint64_t>(partials) + levels * 32 + buf<std::int64_t>(S));
  // The large-firm stratum: one buffer per field.
  d.large = shape.n_large * bytes_per_agent<Firms>() + 16 * Firms::kFieldCount;
  // The tick's tables (per country, sector, provider; staged in chunks that double), the
  // solvers' device tables, the keyed sums and the stratum's indices: 64 MiB, plus what
  // grows with the segments and the stratum.
  d.tables = (64ull << 20) + 2 * 256 * S + 2 * 8 * shape.n_large;
  return d;
}

Backend cpu_backend() {
  return {"cpu", [](const ExecShape& shape) -> std::unique_ptr<Exec> {
            return std::make_unique<CpuExec>(shape.n_firms, shape.n_users);
          }};
}

}  // namespace cutoff
