// §2.4 eligibility and class over every combination of stage, KYC flag,
// partnership, deal host and alignment (the tier's, via align(c, p)), against
// tables written from docs/model.md, not from the code.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "agents/firm_kern.hpp"
#include "agents/user_kern.hpp"

namespace cutoff {
namespace {

// One country (c = 0), one provider (p = 0), one generation whose stage varies.
struct World {
  std::uint8_t provider[1] = {0};
  double K[1] = {3.0};
  std::uint8_t stage[1] = {kStageGov};
  double h[1] = {1e-3};
  double align[1] = {0.0};
  std::uint16_t deal[1] = {0};
  std::uint8_t zero8[1] = {0};
  double one[1] = {1.0};
  FirmTickConsts k{};
  World() {
    k.firm_p_repick = 1.0;  // (v5) every firm re-chooses its generation, as before the switch
    k.gens = GenTableView{1, 1, table_of(provider), table_of(K), table_of(stage), table_of(h), table_of(align)};
    k.deal_mask = table_of(deal);
    k.quota_provider = table_of(zero8);
    k.first_resort = table_of(zero8);
    k.zeta = table_of(one);
    k.a_kyc = 0.3;
  }
};

// Columns: (kyc, partner, deal) = 000 001 010 011 100 101 110 111; rows: align −1, 0.2, 0.9
// (below 0: blocked; at least 0 but below a_kyc = 0.3: KYC clearance does not count; above a_kyc).
const char* kFirmTable[5][3] = {
    /* GOV     */ {"00000000", "00000000", "00000000"},
    /* TRUSTED */ {"00000000", "00110011", "00110011"},
    /* KYC     */ {"00000000", "01110111", "01111111"},
    /* GENERAL */ {"00000000", "11111111", "11111111"},
    /* OPEN    */ {"11111111", "11111111", "11111111"},
};
// Class with the provider: t trusted (partner), k kyc (cleared: KYC with align ≥ a_kyc, or deal host), g general.
const char* kClassTable[3] = {"gkttgktt", "gkttgktt", "gkttkktt"};
const char* kUserTable[5] = {"000", "000", "000", "011", "111"};  // per stage, align −1, 0.2, 0.9
const double kAlign[3] = {-1.0, 0.2, 0.9};

TEST(Eligibility, FirmsEveryCombination) {
  World w;
  std::uint8_t flags[1];
  std::uint16_t partners[1];
  for (int st = 0; st < 5; ++st)
    for (int a = 0; a < 3; ++a)
      for (int col = 0; col < 8; ++col) {
        const bool kyc = col & 4, partner = col & 2, deal = col & 1;
        w.stage[0] = static_cast<std::uint8_t>(st);
        w.align[0] = kAlign[a];
        w.deal[0] = deal ? 1 : 0;
        flags[0] = kyc ? firm_flag::kKyc : 0;
        partners[0] = partner ? 1 : 0;
        const FirmAccess acc{flags[0], partners[0]};
        const bool expect = kFirmTable[st][a][col] == '1';
        EXPECT_EQ(firm_eligible(w.k, acc, 0, 0), expect)
            << "stage " << st << " align " << kAlign[a] << " kyc " << kyc << " partner " << partner << " deal " << deal;
        const char cls = "tkg"[firm_class(w.k, acc, 0, 0)];
        EXPECT_EQ(cls, kClassTable[a][col]) << "align " << kAlign[a] << " column " << col;
      }
}

TEST(Eligibility, UsersEveryCombination) {
  World w;
  for (int st = 0; st < 5; ++st)
    for (int a = 0; a < 3; ++a) {
      w.stage[0] = static_cast<std::uint8_t>(st);
      w.align[0] = kAlign[a];
      EXPECT_EQ(user_eligible(w.k.gens, 0, 0), kUserTable[st][a] == '1') << "stage " << st << " align " << kAlign[a];
    }
}

TEST(Eligibility, KycRaisePolicyRaisesTheDrawRate) {
  // §6 KYC raise multiplies the clearance probability: over many firms the
  // cleared share follows kyc_rate (× kyc_raise), a draw per firm per tick.
  World w;
  w.stage[0] = kStageKyc;
  w.align[0] = 0.9;
  double rate[1] = {0.02};
  std::uint8_t tier[1] = {1};
  double tau[1] = {1.0};
  double price[1] = {2000.0};
  w.k.kyc_rate = table_of(rate);
  w.k.tier = table_of(tier);
  w.k.tau = table_of(tau);
  w.k.price = table_of(price);
  w.k.price_home = table_of(price);
  w.k.seed = 5;
  w.k.q_min = 10;
  w.k.phi = 1;
  w.k.psi = 0.5;
  const int n = 200000;
  std::vector<std::uint16_t> country(n, 0), partners(n, 0);
  std::vector<std::uint8_t> sector(n, 0), prov(n, kNone), gen(n, kNone), flags(n, 0);
  std::vector<float> emp(n, 10.0f), b(n, 1.0f), rev(n, 1e5f), Kel(n, 0);
  std::vector<double> W(n, 1e6);
  FirmView f{};
  f.country = country.data();
  f.sector = sector.data();
  f.provider = prov.data();
  f.generation = gen.data();
  f.flags = flags.data();
  f.partners = partners.data();
  f.employees = emp.data();
  f.b = b.data();
  f.revenue = rev.data();
  f.W = W.data();
  f.K_elig = Kel.data();
  for (double r : {0.02, 0.04}) {
    rate[0] = r;
    int cleared = 0;
    for (int i = 0; i < n; ++i) cleared += (firm_pick(i, w.k, f).flags & firm_flag::kKyc) != 0;
    EXPECT_NEAR(static_cast<double>(cleared) / n, r, 4 * std::sqrt(r / n));
  }
}

}  // namespace
}  // namespace cutoff
