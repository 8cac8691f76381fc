#pragma once
/// @file
/// The ranks an ensemble is spread over: MPI where the binary was built with it
/// (CUTOFF_WITH_MPI) and an MPI launcher started the process (`mpirun -n R cutoff
/// ensemble ...`, `srun`), else one rank. Without a launcher MPI is never
/// initialised, so a single-process ensemble needs none of the MPI library's
/// plugins, helper programs or daemons (a packed bundle carries none: issue 41).
/// Only the thread that made the Comm calls into it.

namespace cutoff {

/// The environment variable, set by an MPI launcher for each process it starts
/// (Open MPI's, PMIx's, Hydra's, MVAPICH's), that names this process a rank; null
/// when none is set. `get` reads a variable (std::getenv; tests pass their own).
const char* mpi_launcher_variable(char* (*get)(const char*));

class Comm {
 public:
  /// Initialises MPI when built with it, started by an MPI launcher
  /// (mpi_launcher_variable) and not yet initialised; finalised by the destructor.
  Comm(int* argc, char*** argv);
  ~Comm();
  Comm(const Comm&) = delete;
  Comm& operator=(const Comm&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  /// The largest of every rank's @p v (a barrier as well).
  int max_over_ranks(int v) const;
  /// "MPI", "no MPI launcher" or "no MPI (built without it)": for messages.
  const char* kind() const;

 private:
  int rank_ = 0, size_ = 1;
  bool owns_ = false;
  bool mpi_ = false;  ///< MPI is initialised and this Comm uses it
};

}  // namespace cutoff
