#include "core/app/info.hpp"

#include <hdf5.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <vector>

#include "core/io/hdf5.hpp"
#include "core/io/output.hpp"
#include "core/model/params.hpp"
#include "cutoff_version.hpp"

namespace cutoff {
namespace {

using h5::Hid;

herr_t list_attr(hid_t obj, const char* name, const H5A_info_t*, void* out) {
  auto& s = *static_cast<std::ostringstream*>(out);
  std::string v = h5::attr_text(obj, name);
  const auto nl = v.find('\n');
  if (nl != std::string::npos)
    v = v.substr(0, nl) + " … (" + std::to_string(std::count(v.begin(), v.end(), '\n')) + " lines)";
  s << "  " << name << " = " << v << '\n';
  return 0;
}

/// What list_dataset() writes to, and the first error it met (HDF5 calls it from C: no
/// exception may cross it).
struct Listing {
  std::ostringstream s;
  std::string path;  ///< the group's path with a trailing '/'
  std::exception_ptr error;
};

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
      h5::check(H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, nullptr, list_dataset, &inner), "H5Literate", what);
      if (inner.error) std::rethrow_exception(inner.error);
      std::istringstream lines(inner.s.str());
      for (std::string line; std::getline(lines, line);) l.s << "  " << line << '\n';
      return 0;
    }
    if (info.type != H5O_TYPE_DATASET) return 0;
    Hid d = h5::own(H5Dopen2(group, name, H5P_DEFAULT), "H5Dopen2", what);
    h5::verify_chunks(d, what);  // a damaged chunk names its dataset (issue 37)
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

std::string describe_open(const std::string& path) {
  Hid f = h5::own(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), "H5Fopen", path);
  Hid root(H5Gopen2(f, "/", H5P_DEFAULT));
  const std::string version = h5::attr_text(root, "schema_version");
  if (version.empty()) throw InputError(path + ": not a cutoff output (no schema_version attribute)");
  if (version != std::to_string(kSchemaVersion))
    throw InputError(path + ": schema_version " + version + " is not the one this program knows (" +
                     std::to_string(kSchemaVersion) + ")");
  std::ostringstream s;
  s << path << "\nattributes:\n";
  hsize_t idx = 0;
  H5Aiterate2(root, H5_INDEX_NAME, H5_ITER_INC, &idx, list_attr, &s);
  for (const char* group : {"metrics", "snapshots"}) {
    if (H5Lexists(f, group, H5P_DEFAULT) <= 0) continue;
    s << group << ":\n";
    Hid g = h5::own(H5Gopen2(f, group, H5P_DEFAULT), "H5Gopen2", std::string("/") + group);
    Listing l;
    l.path = std::string("/") + group + "/";
    const herr_t r = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, nullptr, list_dataset, &l);
    if (l.error) std::rethrow_exception(l.error);
    h5::check(r, "H5Literate", l.path);
    s << l.s.str();
  }
  return s.str();
}

}  // namespace

std::string describe_output(const std::string& path) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  h5::set_error_printing();
  const h5::FileContext file(path);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    throw InputError(file_message(FileProblem::NotFound, path, "expected the output of cutoff run"));
  if (H5Fis_hdf5(path.c_str()) <= 0)
    throw InputError(path + ": not an HDF5 file (or cannot be read); expected the output of cutoff run");
  // A damaged file is bad input (exit 2), named by the one translator (hdf5.hpp).
  try {
    return describe_open(path);
  } catch (const FileError& e) {
    throw InputError(e.what());
  }
}

}  // namespace cutoff
