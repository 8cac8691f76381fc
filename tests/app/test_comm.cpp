// MPI is initialised only under an MPI launcher (core/app/comm.hpp, issue 41): a
// single-process ensemble of an MPI build runs with Open MPI's plugins hidden, and
// the same command named a rank by a launcher's variable does reach MPI_Init.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include "core/app/comm.hpp"
#include "support.hpp"

namespace cutoff {
namespace {

std::map<std::string, std::string> g_env;
char* fake_getenv(const char* name) {
  const auto it = g_env.find(name);
  return it == g_env.end() ? nullptr : it->second.data();
}

TEST(Comm, LauncherVariables) {
  g_env = {{"PATH", "/usr/bin"}, {"SLURM_PROCID", "0"}, {"OMPI_MCA_btl", "self"}};
  EXPECT_EQ(mpi_launcher_variable(fake_getenv), nullptr);
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"}) {
    g_env[v] = "";
    EXPECT_EQ(mpi_launcher_variable(fake_getenv), nullptr) << v << " set but empty";
    g_env[v] = "2";
    ASSERT_NE(mpi_launcher_variable(fake_getenv), nullptr) << v;
    EXPECT_EQ(std::string(mpi_launcher_variable(fake_getenv)), v);
    g_env.erase(v);
  }
}

TEST(Comm, OneProcessIsOneRank) {
  g_env.clear();
  int argc = 0;
  char** argv = nullptr;
  if (mpi_launcher_variable(std::getenv)) GTEST_SKIP() << "this test process runs under an MPI launcher";
  const Comm comm(&argc, &argv);
  EXPECT_EQ(comm.rank(), 0);
  EXPECT_EQ(comm.size(), 1);
  EXPECT_EQ(comm.max_over_ranks(7), 7);
  EXPECT_NE(std::string(comm.kind()), "MPI");
}

/// `cutoff ensemble` (2 members) with Open MPI's plugins hidden and `env` before it.
int ensemble_without_mpi_plugins(const test::TempDir& tmp, const std::string& env) {
  const std::string empty = tmp / "no-plugins";
  std::filesystem::create_directories(empty);
  const std::string cmd =
      "env -u OMPI_COMM_WORLD_SIZE -u PMIX_RANK -u PMI_RANK -u PMI_SIZE -u MV2_COMM_WORLD_SIZE "
      "OMPI_MCA_mca_base_component_path=" +
      empty + " PMIX_MCA_mca_base_component_path=" + empty + " " + env + " timeout 120 " + CUTOFF_BINARY +
      " ensemble " + test::baseline_path() + " -o " + (tmp / "ens") + " --replicates 2 --jobs 2 " +
      test::small_flags(2) + " --backend cpu >" + (tmp / "log") + " 2>&1 </dev/null";
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(Comm, OneProcessEnsembleNeedsNoMpiPlugins) {
  test::TempDir tmp;
  EXPECT_EQ(ensemble_without_mpi_plugins(tmp, ""), 0) << test::read_file(tmp / "log");
  EXPECT_TRUE(std::filesystem::exists(tmp.path() / "ens" / "ensemble.h5"));
}

#if defined(CUTOFF_WITH_MPI)
TEST(Comm, ALauncherVariableReachesMpiInit) {
  // The check above can fail: named a rank, the same command initialises MPI, which
  // cannot load its plugins.
  test::TempDir tmp;
  EXPECT_NE(ensemble_without_mpi_plugins(tmp, "OMPI_COMM_WORLD_SIZE=1 OMPI_COMM_WORLD_RANK=0"), 0)
      << test::read_file(tmp / "log");
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "ens" / "ensemble.h5"));
}
#endif

}  // namespace
}  // namespace cutoff
