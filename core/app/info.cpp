#include "core/app/info.hpp"

#include <hdf5.h>

#include <algorithm>
#include <mutex>
#include <sstream>
#include <vector>

#include "core/io/output.hpp"
#include "core/model/params.hpp"
#include "cutoff_version.hpp"

namespace cutoff {
namespace {

/// Closes an HDF5 id on scope exit.
struct Id {
  hid_t id;
  herr_t (*close)(hid_t);
  ~Id() {
    if (id >= 0) close(id);
  }
};

std::string attr_text(hid_t obj, const char* name) {
  if (H5Aexists(obj, name) <= 0) return "";
  Id a{H5Aopen(obj, name, H5P_DEFAULT), H5Aclose};
  Id type{H5Aget_type(a.id), H5Tclose};
  std::ostringstream s;
  if (H5Tget_class(type.id) == H5T_STRING) {
    if (H5Tis_variable_str(type.id) > 0) {
      char* v = nullptr;
      Id mem{H5Tcopy(H5T_C_S1), H5Tclose};
      H5Tset_size(mem.id, H5T_VARIABLE);
      H5Tset_cset(mem.id, H5Tget_cset(type.id));
      if (H5Aread(a.id, mem.id, &v) >= 0 && v) {
        s << v;
        H5free_memory(v);
      }
    } else {
      std::vector<char> buf(H5Tget_size(type.id) + 1, '\0');
      Id mem{H5Tcopy(type.id), H5Tclose};
      H5Aread(a.id, mem.id, buf.data());
      s << buf.data();
    }
  } else if (H5Tget_class(type.id) == H5T_INTEGER) {
    long long v = 0;
    H5Aread(a.id, H5T_NATIVE_LLONG, &v);
    s << v;
  } else if (H5Tget_class(type.id) == H5T_FLOAT) {
    double v = 0;
    H5Aread(a.id, H5T_NATIVE_DOUBLE, &v);
    s << v;
  }
  return s.str();
}

herr_t list_attr(hid_t obj, const char* name, const H5A_info_t*, void* out) {
  auto& s = *static_cast<std::ostringstream*>(out);
  std::string v = attr_text(obj, name);
  const auto nl = v.find('\n');
  if (nl != std::string::npos) v = v.substr(0, nl) + " … (" + std::to_string(std::count(v.begin(), v.end(), '\n')) + " lines)";
  s << "  " << name << " = " << v << '\n';
  return 0;
}

herr_t list_dataset(hid_t group, const char* name, const H5L_info_t*, void* out) {
  auto& s = *static_cast<std::ostringstream*>(out);
  H5O_info_t info;
  if (H5Oget_info_by_name(group, name, &info, H5P_DEFAULT) < 0) return 0;
  if (info.type == H5O_TYPE_GROUP) {
    s << "  " << name << "/\n";
    Id g{H5Gopen2(group, name, H5P_DEFAULT), H5Gclose};
    std::ostringstream inner;
    H5Literate(g.id, H5_INDEX_NAME, H5_ITER_INC, nullptr, list_dataset, &inner);
    std::istringstream lines(inner.str());
    for (std::string line; std::getline(lines, line);) s << "  " << line << '\n';
    return 0;
  }
  if (info.type != H5O_TYPE_DATASET) return 0;
  Id d{H5Dopen2(group, name, H5P_DEFAULT), H5Dclose};
  Id sp{H5Dget_space(d.id), H5Sclose};
  hsize_t dims[8] = {0};
  const int rank = H5Sget_simple_extent_dims(sp.id, dims, nullptr);
  s << "  " << name << '(';
  for (int k = 0; k < rank; ++k) s << (k ? ", " : "") << dims[k];
  s << ")  [" << attr_text(d.id, "units") << "]  " << attr_text(d.id, "long_name") << '\n';
  return 0;
}

}  // namespace

std::string describe_output(const std::string& path) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  if (H5Fis_hdf5(path.c_str()) <= 0)
    throw InputError(path + ": not an HDF5 file (or cannot be read); expected the output of cutoff run");
  Id f{H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose};
  if (f.id < 0) throw InputError(path + ": cannot open as HDF5");
  Id root{H5Gopen2(f.id, "/", H5P_DEFAULT), H5Gclose};
  const std::string version = attr_text(root.id, "schema_version");
  if (version.empty()) throw InputError(path + ": not a cutoff output (no schema_version attribute)");
  if (version != std::to_string(kSchemaVersion))
    throw InputError(path + ": schema_version " + version + " is not the one this program knows (" +
                     std::to_string(kSchemaVersion) + ")");
  std::ostringstream s;
  s << path << "\nattributes:\n";
  hsize_t idx = 0;
  H5Aiterate2(root.id, H5_INDEX_NAME, H5_ITER_INC, &idx, list_attr, &s);
  for (const char* group : {"metrics", "snapshots"}) {
    if (H5Lexists(f.id, group, H5P_DEFAULT) <= 0) continue;
    s << group << ":\n";
    Id g{H5Gopen2(f.id, group, H5P_DEFAULT), H5Gclose};
    H5Literate(g.id, H5_INDEX_NAME, H5_ITER_INC, nullptr, list_dataset, &s);
  }
  return s.str();
}

}  // namespace cutoff
