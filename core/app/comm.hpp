#pragma once
/// @file
/// The ranks an ensemble is spread over: MPI where the binary was built with it
/// (CUTOFF_WITH_MPI; `mpirun -n R cutoff ensemble ...`, or a singleton without mpirun),
/// else one rank. Only the thread that made the Comm calls into it.

namespace cutoff {

class Comm {
 public:
  /// Initialises MPI (when built with it and not yet initialised); finalised by the destructor.
  Comm(int* argc, char*** argv);
  ~Comm();
  Comm(const Comm&) = delete;
  Comm& operator=(const Comm&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  /// The largest of every rank's @p v (a barrier as well).
  int max_over_ranks(int v) const;
  /// "MPI (Open MPI ...)" or "no MPI": for messages.
  static const char* kind();

 private:
  int rank_ = 0, size_ = 1;
  bool owns_ = false;
};

}  // namespace cutoff
