// The country table: the committed file loads, and each malformed input is an
// InputError naming the file, line, column and value.
#include <gtest/gtest.h>

#include "core/model/countries.hpp"
#include "support.hpp"

namespace cutoff {
namespace {

const std::string kHeader =
    "iso3,name,region,subregion,income_group,population,population_year,gdp_usd,gdp_year,gdp_imputed,tier\n";

TEST(Countries, CommittedTableLoads) {
  const auto cs = load_countries(test::source_dir() + "/data/countries.csv");
  EXPECT_GE(cs.size(), 200u);
  EXPECT_LE(cs.size(), 220u);
  const int usa = find_country(cs, "USA"), chn = find_country(cs, "CHN"), twn = find_country(cs, "TWN");
  ASSERT_GE(usa, 0);
  ASSERT_GE(chn, 0);
  ASSERT_GE(twn, 0);
  EXPECT_EQ(cs[usa].tier, 1);
  EXPECT_EQ(cs[chn].tier, 3);
  EXPECT_EQ(cs[twn].tier, 1);
  int tier1 = 0, tier3 = 0;
  for (const auto& c : cs) {
    tier1 += c.tier == 1;
    tier3 += c.tier == 3;
  }
  EXPECT_EQ(tier1, 19);  // the US and 18 partners
  EXPECT_EQ(tier3, 24);
}

TEST(Countries, QuotedFieldsAndBlankLines) {
  const auto cs = parse_countries(kHeader + "AAA,\"Name, with comma\",R,S,high,10,2024,1000,2023,0,1\n\n", "t.csv");
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].name, "Name, with comma");
}

void expect_error(const std::string& text, const std::string& needle) {
  try {
    parse_countries(text, "bad.csv");
    FAIL() << "accepted: " << text;
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("bad.csv"), std::string::npos) << m;
    EXPECT_NE(m.find(needle), std::string::npos) << m;
  }
}

TEST(Countries, BadInputNamesTheProblem) {
  expect_error("iso3,name\nAAA,x\n", "missing column 'region'");
  expect_error(kHeader + "AAA,A,R,S,high,ten,2024,1000,2023,0,1\n", "column 'population' = 'ten'");
  expect_error(kHeader + "AAA,A,R,S,high,10,2024,1000,2023,0,4\n", "column 'tier' = '4'");
  expect_error(kHeader + "AAA,A,R,S,rich,10,2024,1000,2023,0,1\n", "column 'income_group' = 'rich'");
  expect_error(kHeader + "aaa,A,R,S,high,10,2024,1000,2023,0,1\n", "column 'iso3' = 'aaa'");
  expect_error(kHeader + "AAA,A,R,S,high,10,2024,1000,2023,0,1\nAAA,A,R,S,high,10,2024,1000,2023,0,1\n", "duplicate");
  expect_error(kHeader + "AAA,A,R,S,high,-1,2024,1000,2023,0,1\n", "must be > 0");
  expect_error(kHeader + "AAA,A,R,S,high,10,2024\n", "fields, expected 11");
  expect_error(kHeader + "AAA,\"A,R,S,high,10,2024,1000,2023,0,1\n", "unterminated");
  expect_error(kHeader, "no country rows");
  expect_error(
      "iso3,name,region,subregion,income_group,population,population_year,gdp_usd,gdp_year,gdp_imputed,tier,tier\n"
      "AAA,A,R,S,high,10,2024,1000,2023,0,1,1\n",
      "duplicate column 'tier'");  // found by the fuzzer: a repeated name once read past the row
  EXPECT_THROW(load_countries("/nonexistent/countries.csv"), InputError);
}

}  // namespace
}  // namespace cutoff
