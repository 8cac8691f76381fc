// The memory estimate comes from the registries, and a run that does not fit
// is refused before anything is allocated or written.
#include <gtest/gtest.h>

#include <filesystem>
#include <limits>
#include <vector>

#include "agents/fields.hpp"
#include "core/app/memory.hpp"
#include "core/market/clearing.hpp"
#include "core/model/countries.hpp"
#include "core/model/population.hpp"
#include "core/sim/exec.hpp"
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

// ---------------------------------------------------------------------------
// The CUDA backend's device estimate (device_bytes_needed, issue 41), against the
// sizes the solvers and the segment plans give for the same run: each is what the
// CUDA backend then allocates (cuda/exec.cu: solver_pass mirrors a pass's partials
// part by part, run_segments allocates the plan's partials). Runs without a GPU.
// ---------------------------------------------------------------------------

/// Device bytes of one solver pass as CudaExec::solver_pass reserves them: each part,
/// `cap` items for every list that gathers, and the lists' counts (16 bytes of slack each).
template <template <template <class> class> class Parts, class Item>
std::uint64_t solver_pass_bytes(Partials<Parts, Item>& d, std::uint64_t cap) {
  std::uint64_t bytes = 0;
  zip_parts(d.parts.tie(), d.parts.tie(), [&](auto& part, auto&) {
    bytes += part.size() * sizeof(typename std::decay_t<decltype(part)>::value_type) + 16;
  });
  std::uint64_t slots = 0;
  for (char g : d.gathers) slots += g ? 1 : 0;
  return bytes + slots * cap * sizeof(Item) + 16 + d.lists.size() * 8 + 16;
}

TEST(Memory, DeviceEstimateCoversEveryBufferATickGrows) {
  const std::vector<Country> countries = load_countries(test::source_dir() + "/data/countries.csv");
  const std::pair<std::uint64_t, std::uint64_t> sizes[] = {
      {8000, 20000}, {1000000, 10000000}, {10000000, 100000000}, {100000000, 1000000000}};
  for (const int P : {1, 4, 16}) {
    for (const auto& [firms, users] : sizes) {
      SCOPED_TRACE("P = " + std::to_string(P) + ", " + std::to_string(firms) + " firms, " + std::to_string(users) +
                   " users");
      const Params params = test::small_params(static_cast<std::int64_t>(firms), static_cast<std::int64_t>(users));
      const Layout layout = make_layout(countries, params);
      const ExecShape shape = exec_shape(layout, P);
      EXPECT_EQ(shape.n_firms, firms);
      EXPECT_EQ(shape.n_users, users);
      EXPECT_EQ(shape.n_providers, P);
      EXPECT_EQ(shape.n_segments, layout.seg_begin.size() - 1);  // countries × sectors: the finest segmentation
      EXPECT_EQ(shape.n_large, layout.n_large);
      const DeviceBytes d = device_bytes_needed(shape);
      EXPECT_EQ(d.agents, firms * bytes_per_agent<Firms>() + users * bytes_per_agent<Users>());
      EXPECT_EQ(d.total(), d.agents + d.passes());

      // The clearing: the first pass's partials as its solver plans them, and any
      // pass's at most: 2P markets of 65,537 bins of 40 B.
      std::vector<ProviderSupply> supply(P, ProviderSupply{1e6, 1.0, std::numeric_limits<double>::infinity(), false});
      for (int p = 0; p < P; p += 2) supply[p].first_resort = true;
      clearing_detail::ClearingSolver solver(firms, supply, ClearingOptions{});
      clearing_detail::ClearPass pass;
      ASSERT_TRUE(solver.next(&pass));
      clearing_detail::ClearPassData first = clearing_detail::clear_pass_fresh(pass);
      EXPECT_GE(d.clearing, solver_pass_bytes(first, 0));
      EXPECT_GE(d.clearing, 2ull * P * 65537 * 40);
      // Its gathered key events, every market at its limit: 168 MB at 4 providers, 671 MB at 16.
      EXPECT_GE(d.lists, 2ull * P * ClearingOptions{}.gather_limit * sizeof(clearing_detail::KeyEvent));
      if (P == 4) {
        EXPECT_GE(d.lists, 167000000u);
      }
      if (P == 16) {
        EXPECT_GE(d.lists, 671000000u);
      }

      // The water-fill's level-0 pass and the ranks' first pass, as their solvers make them.
      std::vector<double> capacity(P, 1e6), floor(P, 1e5);
      WaterSolver water(P, capacity.data(), floor.data(), WaterfillOptions{});
      WaterPass wp;
      ASSERT_TRUE(water.next(&wp));
      WaterPassData wd = water_pass_fresh(wp, P);
      EXPECT_GE(d.water + d.lists, solver_pass_bytes(wd, WaterfillOptions{}.gather_limit));
      // Its refinements: up to three fills per provider (WaterSolver's add_fill: the floor's,
      // the joint one, the rest's), each with at most 2^refine_bits bins, or a gather.
      const std::uint64_t fills = 3ull * P;
      EXPECT_GE(d.water, fills * (1ull << WaterfillOptions{}.refine_bits) * sizeof(FixedBin));
      EXPECT_GE(d.lists, fills * WaterfillOptions{}.gather_limit * sizeof(WaterItem));
      RankSolver ranks(0.2, RankOptions{});
      RankPass rp;
      ASSERT_TRUE(ranks.next(&rp));
      RankPassData rd = rank_pass_fresh(rp);
      EXPECT_GE(d.ranks + d.lists, solver_pass_bytes(rd, RankOptions{}.gather_limit));

      // Segment sums: the largest plan's partials (one buffer, the widest pass's kOut
      // doubles each) and every plan's task ranges, from the layout's own segmentations.
      std::uint64_t partials = 0, plans = 0;
      for (const std::vector<std::uint64_t>* b : {&layout.firm_begin, &layout.user_begin, &layout.seg_begin}) {
        const SumPlan plan = sum_plan(b->data(), static_cast<int>(b->size()) - 1);
        partials = std::max(partials, plan.n_partials);
        for (const SumPlan::Level& level : plan.levels) plans += 16 * level.begin.size() + 32;
        plans += 8 * plan.result.size() + 16;
      }
      EXPECT_GE(d.segments, partials * max_segment_out() * sizeof(double) + plans);
      // The large-firm stratum's gather buffers.
      EXPECT_GE(d.large, layout.n_large * bytes_per_agent<Firms>());

      // Everything a tick grows, together: at 16 providers more than twice the fixed 256 MiB of old.
      EXPECT_GE(d.passes(), solver_pass_bytes(first, 0) + solver_pass_bytes(wd, 0) + solver_pass_bytes(rd, 0) +
                                2ull * P * ClearingOptions{}.gather_limit * sizeof(clearing_detail::KeyEvent) +
                                partials * max_segment_out() * sizeof(double));
      if (P == 16) {
        EXPECT_GT(d.passes(), 2 * (256ull << 20));
      }
      // It grows with every argument.
      ExecShape more = shape;
      more.n_providers += 1;
      EXPECT_GT(device_bytes_needed(more).passes(), d.passes());
      more = shape;
      more.n_users *= 2;
      EXPECT_GT(device_bytes_needed(more).total(), d.total());
      more = shape;
      more.n_segments *= 2;
      EXPECT_GT(device_bytes_needed(more).passes(), d.passes());
    }
  }
}

}  // namespace
}  // namespace cutoff
