/// @file
/// Parameter schema and scenario loading: defaults, the to_toml round trip,
/// inheritance, --set, and one test per class of bad input, each checking that the
/// message names the origin (file or --set), the key and the value.

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "core/app/cli.hpp"
#include "core/model/params.hpp"
#include "core/model/scenario.hpp"

namespace fs = std::filesystem;
using cutoff::InputError;
using cutoff::load_scenario;
using cutoff::Params;

namespace {

/// A fresh directory under the system temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    dir_ =
        fs::temp_directory_path() / ("cutoff_test_params_" + std::to_string(stamp) + "_" + std::to_string(++counter));
    fs::create_directories(dir_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  /// Writes `text` to `name` (subdirectories created) and returns its path.
  std::string write(const std::string& name, const std::string& text) const {
    const fs::path p = dir_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
  const fs::path& path() const { return dir_; }

 private:
  fs::path dir_;
};

/// The InputError message of loading, or "" if it loaded.
std::string error_of(const std::string& path, const std::vector<std::string>& sets = {}) {
  try {
    load_scenario(path, sets, "--set");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

void expect_all(const std::string& msg, const std::vector<std::string>& parts) {
  ASSERT_FALSE(msg.empty()) << "expected an InputError";
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  for (const auto& part : parts) EXPECT_NE(msg.find(part), std::string::npos) << "'" << part << "' not in: " << msg;
}

std::string absolute_normal(const fs::path& p) { return fs::absolute(p).lexically_normal().string(); }

}  // namespace

TEST(Params, DefaultsAreModelSection9) {
  const Params p;
  EXPECT_EQ(p.horizon, 120);
  EXPECT_EQ(p.calib_tick, 14);
  EXPECT_EQ(p.n_firms, 100000);
  EXPECT_EQ(p.n_users, 1000000);
  EXPECT_EQ(p.capacity0, 4e6);
  EXPECT_EQ(p.bm, 1.0);
  EXPECT_EQ(p.delta, std::log(1.5) / 12);
  EXPECT_EQ(p.kappa, std::log(2.5));
  EXPECT_EQ(p.eta, std::log(6.0) / 12);
  EXPECT_EQ(p.tau_growth, std::log(3.0) / 12);
  EXPECT_EQ(p.K_trend, 1.0 / 12);
  EXPECT_TRUE(std::isinf(p.p_max));
  EXPECT_EQ(p.kyc_rate, (std::vector<double>{0.02, 0.008, 0}));
  EXPECT_EQ(p.sector_share.size(), 6u);
  EXPECT_EQ(p.sector_names.back(), "ict");
  EXPECT_EQ(p.r_gov_homes, std::vector<std::string>{"USA"});
  EXPECT_EQ(p.lever_country, "USA");
  EXPECT_FALSE(p.moratorium || p.first_resort || p.crackdown || p.open_weights || p.policy_build || p.policy_deal ||
               p.policy_kyc);
  ASSERT_EQ(p.provider.size(), 5u);
  EXPECT_EQ(p.provider[0].name, "US-A");
  EXPECT_EQ(p.provider[0].d_kyc, 4);
  EXPECT_TRUE(p.provider[3].follower);
  EXPECT_EQ(p.provider[3].home, "CHN");
  EXPECT_EQ(p.provider[3].align_country.at("USA"), -0.5);
  EXPECT_EQ(p.provider[4].align, (std::vector<double>{0.9, 0.4, -0.5}));
  EXPECT_NO_THROW(cutoff::validate(p));
  // Every default passes its own schema check.
  for (const auto& f : cutoff::params_schema()) {
    EXPECT_EQ(cutoff::check_value(f, f.def, p.sector_share.size()), "") << f.key;
  }
}

TEST(Params, EmptyFileLoadsDefaults) {
  TempDir tmp;
  const std::string path = tmp.write("sub/empty.toml", "");
  Params expected;
  expected.countries = absolute_normal(tmp.path() / "countries.csv");  // "../countries.csv" from sub/
  EXPECT_EQ(load_scenario(path), expected);
}

TEST(Params, RoundTripThroughToToml) {
  TempDir tmp;
  Params p;
  p.bm = 2.5;
  p.delta = std::log(5.0) / 12;
  p.description = "quotes \" and \\ and\nnewline";
  p.p_max = 1e5 / 3;
  p.n_firms = 1099511627776;
  p.sector_names = {"a", "b"};
  p.sector_share = {0.3, 0.7};
  p.mult_s = {0.1, 1.0 / 3};
  p.r_gov_homes = {};
  p.provider[1].cap_share = 0.3;
  p.provider[2].align_country = {{"DEU", 0.25}, {"GBR", -1}};
  p.countries = absolute_normal(tmp.path() / "c.csv");
  const std::string text = cutoff::to_toml(p);
  const std::string path = tmp.write("resolved.toml", text);
  const Params q = load_scenario(path);
  EXPECT_EQ(q, p);
  EXPECT_EQ(cutoff::to_toml(q), text);
  // Every key is written.
  for (const auto& f : cutoff::params_schema()) {
    EXPECT_NE(text.find("\n" + std::string(f.key) + " = "), std::string::npos) << f.key;
  }
  // The defaults survive the trip too (p_max = inf).
  Params d;
  d.countries = p.countries;
  EXPECT_EQ(load_scenario(tmp.write("defaults.toml", cutoff::to_toml(d))), d);
}

TEST(Params, InheritanceChildOverParentOverGrandparent) {
  TempDir tmp;
  tmp.write("grand.toml", "bm = 2\nhorizon = 60\nseed = 3\n");
  tmp.write("mid/parent.toml",
            "inherits = \"../grand.toml\"\nhorizon = 48\n"
            "[[provider]]\nname = \"A\"\nhome = \"USA\"\ncap_share = 0.6\n"
            "[[provider]]\nname = \"B\"\nhome = \"DEU\"\ncap_share = 0.3\nd_kyc = 5\n");
  const std::string child = tmp.write("mid/child.toml",
                                      "inherits = \"parent.toml\"\nseed = 7\n"
                                      "[provider.1]\ncap_share = 0.2\n");
  const Params p = load_scenario(child);
  EXPECT_EQ(p.bm, 2.0);                   // grandparent
  EXPECT_EQ(p.horizon, 48);               // parent over grandparent
  EXPECT_EQ(p.seed, 7);                   // child over grandparent
  EXPECT_EQ(p.x_max, 0.2);                // schema default beneath all
  ASSERT_EQ(p.provider.size(), 2u);       // the parent's list replaced the default one
  EXPECT_EQ(p.provider[0].d_gov, 2);      // US stages by home
  EXPECT_EQ(p.provider[1].d_trusted, 1);  // other homes: European stages
  EXPECT_EQ(p.provider[1].d_kyc, 5);
  EXPECT_EQ(p.provider[1].cap_share, 0.2);  // child's patch
  // No file set countries: relative to the base of the chain.
  EXPECT_EQ(p.countries, absolute_normal(tmp.path().parent_path() / "countries.csv"));

  // A child's [[provider]] list replaces the parent's.
  const std::string child2 = tmp.write("mid/child2.toml",
                                       "inherits = \"parent.toml\"\ncountries = \"data/c.csv\"\n"
                                       "[[provider]]\nname = \"Z\"\nhome = \"CHN\"\ncap_share = 1\noffset = -1\n");
  const Params q = load_scenario(child2);
  ASSERT_EQ(q.provider.size(), 1u);
  EXPECT_EQ(q.provider[0].name, "Z");
  EXPECT_EQ(q.provider[0].align_country.at("USA"), -0.5);
  EXPECT_EQ(q.countries, absolute_normal(tmp.path() / "mid/data/c.csv"));
}

TEST(Params, SetOverrides) {
  TempDir tmp;
  const std::string path = tmp.write("s.toml", "bm = 2\n");
  const Params p =
      load_scenario(path, {"bm=2.5", "kyc_rate=[0.01,0.004,0]", "lever_country=\"CHN\"", "provider.1.cap_share=0.3",
                           "first_resort = true", "description=plain words", "provider.0.home=FRA", "p_max=inf",
                           "n_users=1e7", "r_gov_homes=[\"USA\",\"FRA\"]"});
  EXPECT_EQ(p.bm, 2.5);
  EXPECT_EQ(p.kyc_rate, (std::vector<double>{0.01, 0.004, 0}));
  EXPECT_EQ(p.lever_country, "CHN");
  EXPECT_EQ(p.provider[1].cap_share, 0.3);
  EXPECT_TRUE(p.first_resort);
  EXPECT_EQ(p.description, "plain words");
  EXPECT_EQ(p.provider[0].home, "FRA");
  EXPECT_TRUE(std::isinf(p.p_max));
  EXPECT_EQ(p.n_users, 10000000);
  EXPECT_EQ(p.r_gov_homes.size(), 2u);
  EXPECT_EQ(load_scenario(path, {"lever_country=CHN"}).lever_country, "CHN");  // raw string
}

TEST(Params, UnknownKeySuggestsClosest) {
  TempDir tmp;
  const std::string path = tmp.write("x.toml", "bmm = 2.5\n");
  expect_all(error_of(path), {path + ": key 'bmm' = 2.5", "unknown key", "did you mean 'bm'?"});
  expect_all(error_of(tmp.write("y.toml", "zzzzzz = 1\n")), {"key 'zzzzzz' = 1: unknown key"});
  EXPECT_EQ(error_of(tmp.write("z.toml", "zzzzzz = 1\n")).find("did you mean"), std::string::npos);
  expect_all(error_of(path, {}), {"x.toml"});
}

TEST(Params, WrongType) {
  TempDir tmp;
  const std::string path = tmp.write("x.toml", "horizon = \"abc\"\n");
  expect_all(error_of(path), {path + ": key 'horizon' = \"abc\"", "expected an integer from 1 to 100000"});
  expect_all(error_of(tmp.write("a.toml", "horizon = 1.5\n")), {"key 'horizon' = 1.5: expected an integer"});
  expect_all(error_of(tmp.write("b.toml", "crackdown = 1\n")), {"key 'crackdown' = 1: expected true or false"});
  expect_all(error_of(tmp.write("c.toml", "bm = [1]\n")), {"key 'bm' = [1]: expected a real"});
  expect_all(error_of(tmp.write("d.toml", "kyc_rate = [\"a\", 0, 0]\n")),
             {"key 'kyc_rate' = [\"a\", 0, 0]: expected an array of 3 reals in [0, 1]"});
  expect_all(error_of(tmp.write("e.toml", "lever_country = \"usa\"\n")),
             {"key 'lever_country' = \"usa\": expected an ISO3 code"});
}

TEST(Params, OutOfRange) {
  TempDir tmp;
  const std::string path = tmp.write("x.toml", "bm = -1\n");
  EXPECT_EQ(error_of(path), path + ": key 'bm' = -1: out of range, allowed 0 to 100");
  expect_all(error_of(tmp.write("a.toml", "p_switch = nan\n")), {"key 'p_switch' = nan: out of range"});
  expect_all(error_of(tmp.write("b.toml", "bm = inf\n")), {"key 'bm' = inf: out of range"});
  expect_all(error_of(tmp.write("c.toml", "seed = 4294967296\n")), {"key 'seed' = 4294967296: out of range"});
  // Cross-key rules name the file that set the key.
  expect_all(error_of(tmp.write("s.toml", "sector_share = [0.25, 0.2, 0.2, 0.2, 0.1, 0.1]\n")),
             {"s.toml: key 'sector_share' = [0.25, 0.2, 0.2, 0.2, 0.1, 0.1]", "summing to 1"});
  expect_all(error_of(tmp.write("p.toml", "p_max = 1000\n")), {"p.toml: key 'p_max' = 1000", "p_min"});
  expect_all(error_of(tmp.write("q.toml", "r_cons = 0.99\n")), {"q.toml: key 'r_cons' = 0.99"});
}

TEST(Params, WrongArrayLength) {
  TempDir tmp;
  const std::string path = tmp.write("x.toml", "kyc_rate = [0.1, 2]\n");
  EXPECT_EQ(error_of(path), path + ": key 'kyc_rate' = [0.1, 2]: expected an array of 3 reals in [0, 1]");
  // Per-sector arrays must follow sector_share; the file that changed it is named.
  const std::string s = tmp.write("s.toml", "sector_share = [0.5, 0.5]\nsector_names = [\"a\", \"b\"]\n");
  expect_all(error_of(s), {s + ": key 'mult_s' = [0.1, 0.6, 0.8, 1.5, 4.0, 8.0]", "expected an array of 2 reals"});
  EXPECT_EQ(error_of(s, {"mult_s=[1, 2]"}), "");
}

TEST(Params, MalformedToml) {
  TempDir tmp;
  const std::string path = tmp.write("x.toml", "horizon = 12\nbm = = 2\n");
  expect_all(error_of(path), {path + ":2:", "malformed TOML"});
}

TEST(Params, MissingFile) {
  TempDir tmp;
  const std::string path = (tmp.path() / "nope.toml").string();
  expect_all(error_of(path), {path, "cannot read"});
  const std::string child = tmp.write("child.toml", "inherits = \"gone.toml\"\n");
  expect_all(error_of(child), {child + ": key 'inherits' = \"gone.toml\"", "gone.toml", "cannot read"});
}

TEST(Params, InheritsCycle) {
  TempDir tmp;
  tmp.write("b.toml", "inherits = \"a.toml\"\n");
  const std::string a = tmp.write("a.toml", "inherits = \"b.toml\"\n");
  expect_all(error_of(a), {"b.toml: key 'inherits' = \"a.toml\"", "cycle"});
  const std::string self = tmp.write("self.toml", "inherits = \"./self.toml\"\n");
  expect_all(error_of(self), {"self.toml: key 'inherits'", "cycle"});
}

TEST(Params, BadSet) {
  TempDir tmp;
  const std::string path = tmp.write("x.toml", "");
  EXPECT_EQ(error_of(path, {"foo"}), "--set 'foo': expected key=value");
  expect_all(error_of(path, {"=3"}), {"--set '=3': expected key=value"});
  EXPECT_EQ(error_of(path, {"bm=-1"}), "--set: key 'bm' = -1: out of range, allowed 0 to 100");
  expect_all(error_of(path, {"bmm=2"}), {"--set: key 'bmm' = 2: unknown key (did you mean 'bm'?)"});
  expect_all(error_of(path, {"bm=abc"}), {"--set: key 'bm' = abc: expected a real"});
  expect_all(error_of(path, {"kyc_rate=[0.1]"}), {"--set: key 'kyc_rate' = [0.1]: expected an array of 3"});
  expect_all(error_of(path, {"provider.9.cap_share=0.1"}), {"--set: key 'provider.9'", "0 to 4"});
  expect_all(error_of(path, {"provider.1.cap_share=0.9"}), {"--set: key 'provider.*.cap_share'", "at most 1"});
  expect_all(error_of(path, {"inherits=x.toml"}), {"--set: key 'inherits'"});
  // Found by the fuzzer: invalid UTF-8 in a string value is an InputError, not a parser exception.
  expect_all(error_of(path, {"description=\xff"}), {"--set: key 'description'"});
}

TEST(Params, UnknownProviderField) {
  TempDir tmp;
  const std::string path =
      tmp.write("x.toml", "[[provider]]\nname = \"X\"\nhome = \"USA\"\ncap_share = 0.5\nnmae = \"Y\"\n");
  expect_all(error_of(path),
             {path + ": key 'provider.0.nmae' = \"Y\"", "unknown provider field", "did you mean 'name'?"});
  expect_all(error_of(tmp.write("b.toml", ""), {"provider.0.folower=true"}),
             {"--set: key 'provider.0.folower' = true", "unknown provider field", "'follower'"});
  expect_all(error_of(tmp.write("c.toml", "[[provider]]\nname = \"X\"\nhome = \"USA\"\n")),
             {"c.toml: key 'provider.0'", "missing required field 'cap_share'"});
  expect_all(error_of(tmp.write("d.toml",
                                "[[provider]]\nname = \"X\"\nhome = \"USA\"\ncap_share = 1\n"
                                "follower = true\n")),
             {"d.toml: key 'provider.*.follower'", "follower = false"});
}

TEST(Params, DocsCoverEverySchemaKey) {
  const std::string md = cutoff::schema_markdown();
  for (const auto& f : cutoff::params_schema())
    EXPECT_NE(md.find("| `" + std::string(f.key) + "` |"), std::string::npos) << f.key;
  for (const auto& f : cutoff::provider_schema())
    EXPECT_NE(md.find("| `" + std::string(f.key) + "` |"), std::string::npos) << f.key;
  std::ostringstream doc;
  cutoff::write_parameters_doc(doc);
  EXPECT_EQ(doc.str().rfind("# Parameters\n", 0), 0u);
  EXPECT_NE(doc.str().find("cutoff validate --doc-params"), std::string::npos);
  EXPECT_NE(doc.str().find(md), std::string::npos);
}
