#include "core/app/info.hpp"

#include <hdf5.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <vector>

#include "core/app/run.hpp"
#include "core/io/hdf5.hpp"
#include "core/io/output.hpp"
#include "core/io/seal.hpp"
#include "core/model/params.hpp"
#include "cutoff_version.hpp"

namespace cutoff {
namespace {

using h5::Hid;

/// What list_attr() and list_dataset() write to, and the first error they met (HDF5 calls
/// them from C: no exception may cross it).
struct Listing {
  std::ostringstream s;
  std::string path;    ///< the group's path with a trailing '/'
  bool verify = true;  ///< read every dataset back through its checksums (h5::verify_dataset)
  std::exception_ptr error;
};

herr_t list_attr(hid_t obj, const char* name, const H5A_info_t*, void* out) {
  auto& l = *static_cast<Listing*>(out);
  try {
    std::string v = h5::attr_text(obj, name);
    const auto nl = v.find('\n');
    if (nl != std::string::npos)
      v = v.substr(0, nl) + " … (" + std::to_string(std::count(v.begin(), v.end(), '\n')) + " lines)";
    l.s << "  " << name << " = " << v << '\n';
    return 0;
  } catch (...) {
    l.error = std::current_exception();
    return -1;
  }
}

herr_t list_dataset(hid_t group, const char* name, const H5L_info_t*, void* out) {
  auto& l = *static_cast<Listing*>(out);
  try {
    const std::string what = l.path + name;
    H5O_info_t info;
    h5::check(H5Oget_info_by_name(group, name, &info, H5P_DEFAULT), "H5Oget_info_by_name", what);
    if (info.type == H5O_TYPE_GROUP) {
      l.s << "  " << name << "/\n";
      Hid g = h5::own(H5Gopen2(group, name, H5P_DEFAULT), "H5Gopen2", what);
      Listing inner;
      inner.path = what + "/";
      inner.verify = l.verify;
      h5::check(H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, nullptr, list_dataset, &inner), "H5Literate", what);
      if (inner.error) std::rethrow_exception(inner.error);
      std::istringstream lines(inner.s.str());
      for (std::string line; std::getline(lines, line);) l.s << "  " << line << '\n';
      return 0;
    }
    if (info.type != H5O_TYPE_DATASET) return 0;
    Hid d = h5::own(H5Dopen2(group, name, H5P_DEFAULT), "H5Dopen2", what);
    if (l.verify) h5::verify_dataset(d, what);  // a damaged dataset is named (issue 37)
    const std::vector<hsize_t> dims = h5::shape(d);
    l.s << "  " << name << '(';
    for (std::size_t k = 0; k < dims.size(); ++k) l.s << (k ? ", " : "") << dims[k];
    l.s << ")  [" << h5::attr_text(d, "units") << "]  " << h5::attr_text(d, "long_name") << '\n';
    return 0;
  } catch (...) {
    l.error = std::current_exception();
    return -1;
  }
}

/// @p verify: read every dataset back through its checksums, which a file whose seal
/// matches needs not (the seal already covers every byte).
std::string describe_open(const std::string& path, bool verify) {
  Hid f = h5::own(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), "H5Fopen", path);
  Hid root = h5::own(H5Gopen2(f, "/", H5P_DEFAULT), "H5Gopen2", "/");
  const std::string version = h5::attr_text(root, "schema_version");
  if (version.empty()) throw InputError(path + ": not a cutoff output (no schema_version attribute)");
  if (version != std::to_string(kSchemaVersion))
    throw InputError(path + ": schema_version " + version + " is not the one this program knows (" +
                     std::to_string(kSchemaVersion) + ")");
  std::ostringstream s;
  s << path << "\nattributes:\n";
  hsize_t idx = 0;
  Listing attrs;
  const herr_t ra = H5Aiterate2(root, H5_INDEX_NAME, H5_ITER_INC, &idx, list_attr, &attrs);
  if (attrs.error) std::rethrow_exception(attrs.error);
  h5::check(ra, "H5Aiterate2", "/");
  s << attrs.s.str();
  for (const char* group : {"metrics", "snapshots"}) {
    if (H5Lexists(f, group, H5P_DEFAULT) <= 0) continue;
    s << group << ":\n";
    Hid g = h5::own(H5Gopen2(f, group, H5P_DEFAULT), "H5Gopen2", std::string("/") + group);
    Listing l;
    l.verify = verify;
    l.path = std::string("/") + group + "/";
    const herr_t r = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, nullptr, list_dataset, &l);
    if (l.error) std::rethrow_exception(l.error);
    h5::check(r, "H5Literate", l.path);
    s << l.s.str();
  }
  return s.str();
}

/// What describe_open() gave in a child process.
struct ChildOutcome {
  bool finished = false;    ///< it ended normally (else HDF5 crashed on the file, or it could not start)
  bool ok = false;          ///< the listing, else the one-line error
  bool file_error = false;  ///< the error is a FileError: the file named with its problem (corrupt, ...)
  std::string text;
};

/// describe_open() of @p path (after H5Fis_hdf5) in a child process, so that HDF5
/// parsing a damaged or foreign file cannot take this process down: HDF5 1.10 checks no
/// checksum in its global heap and can crash on a damaged one.
ChildOutcome describe_in_child(const std::string& path, const std::atomic<int>* stop_signal) {
  // HDF5 can also loop forever on a damaged file (tests/app/data/hdf5-loops.h5): the
  // child gets a CPU-time limit, ample for reading every chunk of a sound file this size.
  std::error_code ec;
  const std::uintmax_t bytes = std::filesystem::file_size(path, ec);
  const rlim_t cpu_seconds = 5 + static_cast<rlim_t>((ec ? 0 : bytes) / (20u << 20));
  int fds[2];
  if (::pipe(fds) != 0) return {};
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return {};
  }
  if (pid == 0) {
    ::close(fds[0]);
    // If HDF5 crashes here, this process ends quietly (no sanitizer or fuzzer report, no
    // core file): the parent reports the file.
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGXCPU, SIGINT, SIGTERM}) std::signal(sig, SIG_DFL);
    const rlimit no_core{0, 0}, cpu{cpu_seconds, cpu_seconds};
    ::setrlimit(RLIMIT_CORE, &no_core);
    ::setrlimit(RLIMIT_CPU, &cpu);
    std::string out = "E";
    try {
      if (H5Fis_hdf5(path.c_str()) <= 0)
        out += path + ": not an HDF5 file (or cannot be read); expected the output of cutoff run";
      else
        out = "O" + describe_open(path, /*verify=*/true);
    } catch (const FileError& e) {
      out = std::string("F") + e.what();
    } catch (const std::exception& e) {
      out = std::string("E") + e.what();
    }
    for (std::size_t done = 0; done < out.size();) {
      const ssize_t w = ::write(fds[1], out.data() + done, out.size() - done);
      if (w <= 0) break;
      done += static_cast<std::size_t>(w);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string got;
  char buf[4096];
  bool interrupted = false;
  for (;;) {
    // Wake every 100 ms to look at the stop flag (SIGINT/SIGTERM): the child stops too.
    pollfd p{fds[0], POLLIN, 0};
    const int ready = ::poll(&p, 1, 100);
    if (stop_signal && stop_signal->load() != 0) {
      interrupted = true;
      ::kill(pid, SIGKILL);
      break;
    }
    if (ready <= 0) {
      if (ready < 0 && errno != EINTR) break;
      continue;
    }
    const ssize_t r = ::read(fds[0], buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got.append(buf, static_cast<std::size_t>(r));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (interrupted) throw Interrupted("interrupted while reading " + path);
  ChildOutcome o;
  o.finished = WIFEXITED(status) && WEXITSTATUS(status) == 0 && !got.empty();
  if (o.finished) {
    o.ok = got[0] == 'O';
    o.file_error = got[0] == 'F';
    o.text = got.substr(1);
  }
  return o;
}

}  // namespace

std::string describe_output(const std::string& path, const std::atomic<int>* stop_signal) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  h5::set_error_printing();
  const h5::FileContext file(path);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    throw InputError(file_message(FileProblem::NotFound, path, "expected the output of cutoff run"));
  // A damaged file is bad input (exit 2), named by the one translator (hdf5.hpp).
  std::string why;
  Seal seal = Seal::Unsealed;
  try {
    seal = check_seal(path, &why);
    // The bytes cutoff wrote: HDF5 parses them here, and the seal stands for every checksum.
    if (seal == Seal::Matches) return describe_open(path, /*verify=*/false);
  } catch (const FileError& e) {
    throw InputError(e.what());
  }
  // Damaged, written before seals, or not cutoff's: parsed in a child process, which
  // names the damaged dataset where a checksum finds it.
  const ChildOutcome o = describe_in_child(path, stop_signal);
  if (o.file_error || (o.finished && !o.ok && seal == Seal::Unsealed)) throw InputError(o.text);
  if (seal == Seal::Differs) throw InputError(file_message(FileProblem::Corrupt, path, why));
  if (!o.finished)
    throw InputError(file_message(FileProblem::Corrupt, path, "HDF5 could not parse it") +
                     "; or it is not the output of cutoff run");
  return o.text;
}

}  // namespace cutoff
