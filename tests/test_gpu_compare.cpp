// GPU against CPU (HOOMD-blue's *_compare pattern): each per-agent kernel and the
// canonical block reduction give the same bits as the host on the same inputs.
// Skips, saying why, where no GPU is usable.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "agents/firm_kern.hpp"
#include "agents/user_kern.hpp"
#include "core/backend.hpp"
#include "core/simulation.hpp"
#include "cuda/kernels.hpp"
#include "support.hpp"

namespace cutoff {
namespace {

/// A device copy of a small host vector.
template <class T>
struct DeviceVector {
  explicit DeviceVector(const std::vector<T>& h) : n(h.size()), d(static_cast<T*>(cuda::device_alloc(h.size() * sizeof(T) + 8))) {
    cuda::copy_to_device(d, h.data(), h.size() * sizeof(T));
  }
  ~DeviceVector() { cuda::device_free(d); }
  std::vector<T> host() const {
    std::vector<T> h(n);
    cuda::copy_to_host(h.data(), d, n * sizeof(T));
    return h;
  }
  std::size_t n;
  T* d;
};

template <class Pop>
void expect_same_bits(const typename Pop::View& a, const typename Pop::View& b, std::uint64_t n) {
  typename Pop::View x = a, y = b;
  std::vector<const void*> ys;
  Pop::for_each(y, [&](const FieldInfo&, auto*& p) { ys.push_back(p); });
  int k = 0;
  Pop::for_each(x, [&](const FieldInfo& f, auto*& p) {
    EXPECT_EQ(std::memcmp(p, ys[k++], n * f.bytes), 0) << Pop::kName << "." << f.name << " differs";
  });
}

class GpuCompare : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!gpu_usable(&why)) GTEST_SKIP() << "no usable GPU: " << why;
  }
};

TEST_F(GpuCompare, InitialStateKernels) {
  const Params p = test::small_params(20000, 60000);
  const Simulation sim(p, load_countries(p.countries), RunOptions{});
  const Layout& L = sim.layout();
  const int C = L.n_countries, S = L.n_sectors;

  DeviceVector<std::uint64_t> seg_begin(L.seg_begin), user_begin(L.user_begin);
  DeviceVector<std::uint32_t> seg_large(L.seg_large);
  DeviceVector<double> x_L(L.x_L), w_small(L.w_small), w_user(L.w_user);
  LayoutView dL{C, S, seg_begin.d, seg_large.d, user_begin.d, x_L.d, w_small.d, w_user.d};

  // Firms: raw draws on both, from the same constants.
  std::vector<double> A_c(C, 0.0);
  std::vector<std::uint8_t> tier(C);
  for (int c = 0; c < C; ++c) {
    A_c[c] = 0.5 + 0.01 * c;
    tier[c] = static_cast<std::uint8_t>(sim.countries()[c].tier);
  }
  DeviceVector<double> dA(A_c);
  DeviceVector<std::uint8_t> dtier(tier);
  FirmInitConsts hk{7, 3, L.view(), A_c.data(), tier.data(), p.pareto_alpha, p.size_cap, p.A_sigma0, p.budget_sigma,
                    p.p_defender, 5};
  FirmInitConsts dk = hk;
  dk.layout = dL;
  dk.A_c = dA.d;
  dk.tier = dtier.d;
  HostArrays<Firms> host(L.n_firms), back(L.n_firms);
  for (std::uint64_t i = 0; i < L.n_firms; ++i) init_firm(i, hk, host.view());
  cuda::DeviceArrays<Firms> dev(L.n_firms);
  cuda::init_firms(L.n_firms, dk, dev.view());
  dev.to_host(back.view());
  expect_same_bits<Firms>(host.view(), back.view(), L.n_firms);

  // The canonical block reduction of the pool terms, chunk by chunk.
  std::vector<std::uint64_t> begin, len;
  for (int s = 0; s < C * S; ++s)
    for (std::uint64_t b = L.seg_begin[s]; b < L.seg_begin[s + 1]; b += kChunk) {
      begin.push_back(b);
      len.push_back(std::min<std::uint64_t>(kChunk, L.seg_begin[s + 1] - b));
    }
  DeviceVector<std::uint64_t> dbegin(begin), dlen(len);
  DeviceVector<Sums<2>> dout(std::vector<Sums<2>>(begin.size()));
  cuda::pool_term_chunks(static_cast<int>(begin.size()), dbegin.d, dlen.d, dL, dev.view(), p.sigma_c, dout.d);
  const auto got = dout.host();
  const LayoutView hL = L.view();
  const FirmView hf = host.view();
  for (std::size_t k = 0; k < begin.size(); ++k) {
    const Sums<2> want = chunk_sum<2>([&](std::uint64_t i, double* o) { pool_terms(hL, hf, p.sigma_c, i, o); },
                                      begin[k], len[k]);
    EXPECT_EQ(got[k][0], want[0]) << "chunk " << k;
    EXPECT_EQ(got[k][1], want[1]) << "chunk " << k;
  }

  // Size scaling and revenue from the same per-country and per-segment numbers.
  std::vector<double> scale(C), rate(C * S);
  for (int c = 0; c < C; ++c) scale[c] = 1.0 + 0.001 * c;
  for (int k = 0; k < C * S; ++k) rate[k] = 100.0 + k;
  DeviceVector<double> dscale(scale), drate(rate);
  for (std::uint64_t i = 0; i < L.n_firms; ++i) {
    scale_firm_size(i, scale.data(), host.view());
    init_firm_revenue(i, p.sigma_c, rate.data(), S, host.view());
  }
  cuda::scale_firm_sizes(L.n_firms, dscale.d, dev.view());
  cuda::init_firm_revenues(L.n_firms, p.sigma_c, drate.d, S, dev.view());
  dev.to_host(back.view());
  expect_same_bits<Firms>(host.view(), back.view(), L.n_firms);
}

TEST_F(GpuCompare, UserInitAndChoice) {
  const Params p = test::small_params(20000, 60000);
  const Simulation sim(p, load_countries(p.countries), RunOptions{});
  const Layout& L = sim.layout();
  const int C = L.n_countries;
  const GenTableView g = sim.market().view();
  std::vector<double> wage(C), rate(C);
  for (int c = 0; c < C; ++c) {
    wage[c] = 50.0 + 40.0 * c;
    rate[c] = 0.9;  // most adopt, so the choice runs often
  }
  UserConsts hk{};
  hk.seed = 11;
  hk.replicate = 2;
  hk.tick = -1;  // the initial state
  hk.n_countries = C;
  hk.user_begin = L.user_begin.data();
  hk.wage = wage.data();
  hk.adopt_rate = rate.data();
  hk.omega_inc = p.omega_inc;
  hk.omega_plan = p.omega_plan;
  hk.f_free = p.f_free;
  for (int j = 0; j < 3; ++j) hk.plan_price[j] = p.plan_price[j];
  hk.phi = p.phi;
  hk.switch_noise = p.switch_noise;
  hk.gens = g;
  DeviceVector<std::uint64_t> ub(L.user_begin);
  DeviceVector<double> dwage(wage), drate(rate), dK(std::vector<double>(g.K, g.K + g.n_gens)),
      dh(std::vector<double>(g.h, g.h + g.n_gens)),
      dalign(std::vector<double>(g.align, g.align + static_cast<std::size_t>(C) * g.n_providers));
  DeviceVector<std::uint8_t> dprov(std::vector<std::uint8_t>(g.provider, g.provider + g.n_gens)),
      dstage(std::vector<std::uint8_t>(g.stage, g.stage + g.n_gens));
  UserConsts dk = hk;
  dk.user_begin = ub.d;
  dk.wage = dwage.d;
  dk.adopt_rate = drate.d;
  dk.gens = GenTableView{g.n_gens, g.n_providers, dprov.d, dK.d, dstage.d, dh.d, dalign.d};
  HostArrays<Users> host(L.n_users), back(L.n_users);
  for (std::uint64_t i = 0; i < L.n_users; ++i) init_user(i, hk, p.income_sigma, p.need_sigma, host.view());
  cuda::DeviceArrays<Users> dev(L.n_users);
  cuda::init_users(L.n_users, dk, p.income_sigma, p.need_sigma, dev.view());
  dev.to_host(back.view());
  expect_same_bits<Users>(host.view(), back.view(), L.n_users);
}

}  // namespace
}  // namespace cutoff
