// The memory estimate comes from the registries, and a run that does not fit
// is refused before anything is allocated or written.
#include <gtest/gtest.h>

#include <filesystem>

#include "agents/fields.hpp"
#include "core/app/memory.hpp"
#include "support.hpp"

namespace cutoff {
namespace {

TEST(Memory, EstimateFromRegistry) {
  const MemoryEstimate m = estimate_memory(1000, 5000, 0);
  EXPECT_EQ(m.firms, 1000 * bytes_per_agent<Firms>());
  EXPECT_EQ(m.users, 5000 * bytes_per_agent<Users>());
  EXPECT_EQ(m.snapshot, 0u);
  EXPECT_LE(bytes_per_agent<Firms>(), 64u);
  EXPECT_LE(bytes_per_agent<Users>(), 24u);
  EXPECT_GT(estimate_memory(1000, 5000, 1 << 20).snapshot, 0u);
}

TEST(Memory, ParseBytes) {
  EXPECT_EQ(parse_bytes("123", "--max-memory"), 123u);
  EXPECT_EQ(parse_bytes("4G", "--max-memory"), 4ull << 30);
  EXPECT_EQ(parse_bytes("512MiB", "--max-memory"), 512ull << 20);
  EXPECT_EQ(parse_bytes("1.5KB", "--max-memory"), 1536u);
  EXPECT_THROW(parse_bytes("lots", "--max-memory"), InputError);
  EXPECT_THROW(parse_bytes("4X", "--max-memory"), InputError);
  EXPECT_THROW(parse_bytes("-1", "--max-memory"), InputError);
}

TEST(Memory, AvailableRespectsTheCap) {
  std::string which;
  EXPECT_EQ(available_memory(12345, &which), 12345u);
  EXPECT_EQ(which, "--max-memory");
  EXPECT_GT(available_memory(0), 1u << 20);
}

TEST(Memory, RunRefusesWhatDoesNotFit) {
  test::TempDir tmp;
  const std::string out = tmp / "out.h5";
  const auto r =
      test::run_cli("run " + test::baseline_path() + " -o " + out + " " + test::small_flags() + " --max-memory 10M");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("not enough memory for n_firms = 8000 and n_users = 20000"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("needs"), std::string::npos);
  EXPECT_NE(r.err.find("available 10485760 bytes"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--max-memory"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(out));
  EXPECT_FALSE(std::filesystem::exists(out + ".part"));
  // The same run fits with room.
  EXPECT_EQ(
      test::run_cli("run " + test::baseline_path() + " -o " + out + " " + test::small_flags() + " --max-memory 4G")
          .code,
      0);
}

}  // namespace
}  // namespace cutoff
