#include "core/app/comm.hpp"

#if defined(CUTOFF_WITH_MPI)
// The C API only: keep Open MPI's and MPICH's deprecated C++ bindings out.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace cutoff {

#if defined(CUTOFF_WITH_MPI)

Comm::Comm(int* argc, char*** argv) {
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) {
    int provided = 0;
    // Only the main thread calls MPI; members run on other threads.
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    owns_ = true;
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

Comm::~Comm() {
  int finalised = 0;
  MPI_Finalized(&finalised);
  if (owns_ && !finalised) MPI_Finalize();
}

int Comm::max_over_ranks(int v) const {
  int out = v;
  MPI_Allreduce(&v, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return out;
}

const char* Comm::kind() { return "MPI"; }

#else

Comm::Comm(int*, char***) {}
Comm::~Comm() = default;
int Comm::max_over_ranks(int v) const { return v; }
const char* Comm::kind() { return "no MPI (built without it)"; }

#endif

}  // namespace cutoff
