#include "core/app/comm.hpp"

#include <cstdlib>

#if defined(CUTOFF_WITH_MPI)
// The C API only: keep Open MPI's and MPICH's deprecated C++ bindings out.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace cutoff {

const char* mpi_launcher_variable(char* (*get)(const char*)) {
  // mpirun/mpiexec (Open MPI), PMIx servers (Open MPI 5, srun --mpi=pmix), Hydra
  // (MPICH, Intel MPI, srun --mpi=pmi2) and MVAPICH each set one of these in every rank.
  static const char* const kVariables[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE",
                                           "MV2_COMM_WORLD_SIZE"};
  for (const char* v : kVariables)
    if (const char* value = get(v); value && *value) return v;
  return nullptr;
}

#if defined(CUTOFF_WITH_MPI)

Comm::Comm(int* argc, char*** argv) {
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised && !mpi_launcher_variable(std::getenv)) return;  // one process: MPI untouched
  if (!initialised) {
    int provided = 0;
    // Only the main thread calls MPI; members run on other threads.
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    owns_ = true;
  }
  mpi_ = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

Comm::~Comm() {
  int finalised = 0;
  MPI_Finalized(&finalised);
  if (owns_ && !finalised) MPI_Finalize();
}

int Comm::max_over_ranks(int v) const {
  if (!mpi_) return v;
  int out = v;
  MPI_Allreduce(&v, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return out;
}

const char* Comm::kind() const { return mpi_ ? "MPI" : "no MPI launcher"; }

#else

Comm::Comm(int*, char***) {}
Comm::~Comm() = default;
int Comm::max_over_ranks(int v) const { return v; }
const char* Comm::kind() const { return "no MPI (built without it)"; }

#endif

}  // namespace cutoff
