// Compiled by the tests (tests/CMakeLists.txt), never built: host code may hold
// and pass an OnExec view (core/hd/tables.hpp) but not read it. Without a
// CUTOFF_HOST_READ this compiles; with each variant it must fail ("private").
#include "core/sim/passes.hpp"

int main() {
  const cutoff::OnExec<cutoff::FirmTickConsts> k;
  const cutoff::OnExec<cutoff::FirmView> f;
  const cutoff::FirmChooseLoop loop{{}, k, f};  // what host code does: hand the views to a pass
  (void)loop;
#if CUTOFF_HOST_READ == 1
  return (*k).first_resort[0];  // issue 19, finding 1: a device table read on the host
#elif CUTOFF_HOST_READ == 2
  return k->tier[0];
#elif CUTOFF_HOST_READ == 3
  return f->flags[0];  // agent arrays too
#else
  return 0;
#endif
}
