// Providers' initial state (§2.0) and steps 1–3, against the formulas of docs/model.md.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/model/providers.hpp"
#include "support.hpp"

namespace cutoff {
namespace {

struct Fixture {
  Params p = test::small_params(8000, 20000, 48);
  std::vector<Country> cs = load_countries(p.countries);
};

TEST(Providers, InitialStateFollowsSection2_0) {
  Fixture f;
  const Labs m(f.p, f.cs);
  EXPECT_NEAR(m.p_min(), 1.3 * (600 + 30000.0 / 36), 1e-9);  // ≈ $1,863
  const double G = std::pow(f.p.g_cap, 1.0 / 12);
  const auto& pr = m.providers();
  double T_ref = 0;
  for (const auto& v : pr) {
    const double C0 = v.cap_share * f.p.capacity0;
    EXPECT_DOUBLE_EQ(v.capacity(), C0);
    double T = 0;
    for (int j = 1; j <= 24; ++j) T += f.p.train_share * C0 * std::pow(G, -j);
    EXPECT_NEAR(v.T, T, 1e-9 * T);
    EXPECT_NEAR(v.arrive_home[1], 0.0 + C0 * (G - 1), 1e-6 * C0);
    EXPECT_NEAR(v.arrive_home[3], C0 * G * G * (G - 1), 1e-6 * C0);
    EXPECT_NEAR(v.cash, 12 * (1 - f.p.train_share) * C0 * m.p_min(), 1e-3);
    if (!v.follower) T_ref = std::max(T_ref, T);
    ASSERT_EQ(v.gens.size(), 2u);
  }
  // The largest lab stands at K_lead0; others below by β·ln of their share.
  EXPECT_NEAR(pr[0].K, f.p.K_lead0, 1e-12);
  EXPECT_NEAR(pr[1].K, f.p.K_lead0 + f.p.beta * std::log(0.25 / 0.28), 1e-9);
  // The follower distils from the released frontier L ticks back (blocked: align < 0).
  const auto& cn = pr[3];
  ASSERT_TRUE(cn.follower);
  const int L = static_cast<int>(f.p.L0 + f.p.dL_api);
  const double Kl = f.p.K_lead0 - f.p.dK_release - L * f.p.K_trend;
  const double Kown = f.p.K_lead0 + f.p.beta * std::log(cn.T / T_ref) + cn.offset;
  EXPECT_NEAR(cn.K, Kl + f.p.chi * std::max(Kown - Kl, 0.0), 1e-9);
  // One generation at GENERAL since tick −6, one entering at tick 0 (at GOV for US stages).
  const GenTableView g = m.view();
  const auto& gens = m.generations();
  EXPECT_EQ(gens[pr[0].gens[0]].general, -6);
  EXPECT_EQ(g.stage[pr[0].gens[0]], kStageGeneral);
  EXPECT_EQ(g.stage[pr[0].gens[1]], kStageGov);
  EXPECT_NEAR(gens[pr[0].gens[0]].K, pr[0].K - f.p.dK_release, 1e-12);
}

TEST(Providers, ServingCostFormula) {
  Fixture f;
  Labs m(f.p, f.cs);
  m.step_serving_cost(f.p, 7);
  const auto& gen = m.generations()[1];
  const double expect = f.p.h0 * std::exp(-f.p.delta * 7) * std::exp(f.p.kappa * (gen.K - f.p.K_ref)) *
                        std::exp(-f.p.eta * (7 - gen.t_g));
  EXPECT_NEAR(m.view().h[1], expect, 1e-12 * expect);
}

TEST(Providers, StagesAdvanceAndReleasesHappen) {
  Fixture f;
  Labs m(f.p, f.cs);
  int releases = 0;
  for (int t = 0; t < 36; ++t) {
    m.step_capacity(f.p, t);
    releases += static_cast<int>(m.step_training(f.p, t).size());
    m.step_serving_cost(f.p, t);
    if (t == 2 + 3 + 4) {
      EXPECT_EQ(m.view().stage[m.providers()[0].gens[1]], kStageGeneral);
    }  // US stages 2, 3, 4
  }
  EXPECT_GT(releases, 0);
  for (const auto& g : m.generations())
    EXPECT_EQ(g.general - g.t_g, [&] {
      const auto& v = m.providers()[g.provider];
      return v.d_gov + v.d_trusted + v.d_kyc;
    }());
}

TEST(Providers, MoratoriumStopsHomeOrdersOnly) {
  // §2.1, §6: from lever_tick the providers homed in the flagged country place no home
  // orders; what is in their pipeline (home orders placed before the switch, and hosted
  // orders placed at any time) still arrives. Against the same market without the
  // moratorium and with the same hosted orders: the others are the same bits, and the
  // flagged ones' hosted capacity too, and their home capacity until lead ticks after
  // the switch; from then it is flat.
  Fixture f, g;
  f.p.moratorium = true;
  f.p.lever_tick = 3;
  g.p.lever_tick = 3;
  Labs m(f.p, f.cs), base(g.p, g.cs);
  const int lead = static_cast<int>(f.p.lead), flagged = find_country(f.cs, f.p.lever_country);
  int hosted_after = 0;
  std::vector<double> prev_home(m.providers().size(), 0.0);
  for (int t = 0; t < 36; ++t) {
    for (Labs* x : {&m, &base}) {
      if (t == 1 || t == 5)
        for (std::size_t q = 0; q < x->providers().size(); ++q) x->add_hosted_order(static_cast<int>(q), 700.0, t);
      x->step_capacity(x == &m ? f.p : g.p, t);
      x->step_training(x == &m ? f.p : g.p, t);
      // The same demand, growing 5% a tick, settles both: the base keeps ordering.
      for (std::size_t q = 0; q < x->providers().size(); ++q) {
        const double demand = (1 - f.p.train_share) * f.p.provider[q].cap_share * f.p.capacity0 * std::pow(1.05, t);
        x->settle(static_cast<int>(q), demand * x->p_min(), x->p_min(), x->p_min(), demand, f.p.F_smooth);
      }
    }
    for (std::size_t q = 0; q < m.providers().size(); ++q) {
      const Provider& v = m.providers()[q];
      const Provider& b = base.providers()[q];
      if (v.home != flagged) {
        EXPECT_EQ(v.capacity(), b.capacity()) << v.name << " tick " << t;
        continue;
      }
      if (t >= f.p.lever_tick) {
        EXPECT_EQ(v.order, 0.0) << v.name << " tick " << t;
      }
      EXPECT_EQ(v.C_hosted, b.C_hosted) << v.name << " tick " << t;
      hosted_after += t >= f.p.lever_tick && v.C_hosted > 0;
      if (t < f.p.lever_tick + lead) {
        EXPECT_EQ(v.C_home, b.C_home) << v.name << " tick " << t;
      } else {
        EXPECT_LT(v.C_home, b.C_home) << v.name << " tick " << t;
        EXPECT_EQ(v.C_home, prev_home[q]) << v.name << " tick " << t;
      }
      prev_home[q] = v.C_home;
    }
  }
  EXPECT_GT(hosted_after, 0);
}

TEST(Providers, CrackdownLengthensTheFollowersLag) {
  Fixture a, b;
  b.p.crackdown = true;
  Labs base(a.p, a.cs), crack(b.p, b.cs);
  double gap = 0;
  for (int t = 0; t < 36; ++t) {
    for (auto* mp : {&base, &crack}) {
      Params& p = mp == &base ? a.p : b.p;
      mp->step_capacity(p, t);
      mp->step_training(p, t);
    }
    gap += base.providers()[3].K - crack.providers()[3].K;
    EXPECT_GE(base.providers()[3].K, crack.providers()[3].K - 1e-12);
  }
  EXPECT_GT(gap, 0.0);
}

TEST(Providers, AlignmentMatrix) {
  Fixture f;
  const auto a = alignment_matrix(f.p, f.cs);
  const int P = static_cast<int>(f.p.provider.size());
  const int usa = find_country(f.cs, "USA"), chn = find_country(f.cs, "CHN"), ind = find_country(f.cs, "IND"),
            fra = find_country(f.cs, "FRA");
  EXPECT_EQ(a[usa * P + 0], 1.0);   // own home
  EXPECT_EQ(a[chn * P + 0], -1.0);  // tier 3 with a US lab
  EXPECT_EQ(a[ind * P + 0], 0.4);   // tier 2
  EXPECT_EQ(a[usa * P + 3], -0.5);  // the US with the China-homed follower (override)
  EXPECT_EQ(a[chn * P + 3], 1.0);
  EXPECT_EQ(a[fra * P + 4], 1.0);
  EXPECT_EQ(a[fra * P + 3], 0.05);  // tier 1 with the China-homed lab
}

}  // namespace
}  // namespace cutoff
