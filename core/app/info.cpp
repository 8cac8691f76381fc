#include "core/app/info.hpp"

#include <hdf5.h>

#include <algorithm>
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

herr_t list_dataset(hid_t group, const char* name, const H5L_info_t*, void* out) {
  auto& s = *static_cast<std::ostringstream*>(out);
  H5O_info_t info;
  if (H5Oget_info_by_name(group, name, &info, H5P_DEFAULT) < 0) return 0;
  if (info.type == H5O_TYPE_GROUP) {
    s << "  " << name << "/\n";
    Hid g(H5Gopen2(group, name, H5P_DEFAULT));
    std::ostringstream inner;
    H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, nullptr, list_dataset, &inner);
    std::istringstream lines(inner.str());
    for (std::string line; std::getline(lines, line);) s << "  " << line << '\n';
    return 0;
  }
  if (info.type != H5O_TYPE_DATASET) return 0;
  Hid d(H5Dopen2(group, name, H5P_DEFAULT));
  Hid sp(H5Dget_space(d));
  hsize_t dims[8] = {0};
  const int rank = H5Sget_simple_extent_dims(sp, dims, nullptr);
  s << "  " << name << '(';
  for (int k = 0; k < rank; ++k) s << (k ? ", " : "") << dims[k];
  s << ")  [" << h5::attr_text(d, "units") << "]  " << h5::attr_text(d, "long_name") << '\n';
  return 0;
}

}  // namespace

std::string describe_output(const std::string& path) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  if (H5Fis_hdf5(path.c_str()) <= 0)
    throw InputError(path + ": not an HDF5 file (or cannot be read); expected the output of cutoff run");
  Hid f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!f.valid()) throw InputError(path + ": cannot open as HDF5");
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
    Hid g(H5Gopen2(f, group, H5P_DEFAULT));
    H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, nullptr, list_dataset, &s);
  }
  return s.str();
}

}  // namespace cutoff
