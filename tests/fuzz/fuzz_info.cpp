/// @file
/// libFuzzer target for `cutoff info` (core/app/info.cpp) on arbitrary file contents:
/// the seal check (core/io/seal.cpp), and HDF5 parsing the file in a child process when
/// it is not sealed or its seal differs, so that HDF5 meeting damage cannot take the
/// program down. What must hold: it ends with a listing or an InputError, never a crash
/// or another exception. (HDF5's own parser is not instrumented here; that HDF5 1.10
/// crashes on some damaged global heaps is why it runs in a child: docs/conventions.md 12.)

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

#include "core/app/info.hpp"
#include "core/hd/error.hpp"
#include "core/io/hdf5.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = [] {
    cutoff::h5::start_library(false);
    const char* dir = std::getenv("TMPDIR");
    return std::string(dir ? dir : "/tmp") + "/cutoff-fuzz-info-" + std::to_string(::getpid()) + ".h5";
  }();
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  try {
    (void)cutoff::describe_output(path);
  } catch (const cutoff::InputError&) {
  }
  return 0;
}
