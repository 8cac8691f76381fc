#include "core/io/hdf5.hpp"

#include <hdf5_hl.h>

#include <algorithm>
#include <sstream>
#include <stdexcept>

namespace cutoff::h5 {

std::string error_text() {
  std::string out;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* e, void* p) -> herr_t {
        auto& s = *static_cast<std::string*>(p);
        if (e->desc && *e->desc) s += (s.empty() ? "" : "; ") + std::string(e->desc);
        return 0;
      },
      &out);
  H5Eclear2(H5E_DEFAULT);
  return out;
}

void fail(const char* call, const std::string& object) {
  std::string msg = std::string("HDF5 ") + call + " failed for '" + object + "'";
  const std::string detail = error_text();
  if (!detail.empty()) msg += ": " + detail;
  throw std::runtime_error(msg);
}

void check(herr_t r, const char* call, const std::string& object) {
  if (r < 0) fail(call, object);
}

Hid own(hid_t id, const char* call, const std::string& object) {
  if (id < 0) fail(call, object);
  return Hid(id);
}

std::vector<hsize_t> shape(hid_t ds) {
  Hid space(H5Dget_space(ds));
  const int rank = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> dims(static_cast<std::size_t>(std::max(rank, 0)));
  if (rank > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  return dims;
}

std::string attr_text(hid_t obj, const char* name) {
  if (H5Aexists(obj, name) <= 0) return "";
  Hid a(H5Aopen(obj, name, H5P_DEFAULT));
  Hid type(H5Aget_type(a));
  std::ostringstream s;
  switch (H5Tget_class(type)) {
    case H5T_STRING:
      if (H5Tis_variable_str(type) > 0) {
        char* v = nullptr;
        Hid mem(H5Tcopy(H5T_C_S1));
        H5Tset_size(mem, H5T_VARIABLE);
        H5Tset_cset(mem, H5Tget_cset(type));
        if (H5Aread(a, mem, &v) >= 0 && v) {
          s << v;
          H5free_memory(v);
        }
      } else {
        std::vector<char> buf(H5Tget_size(type) + 1, '\0');
        Hid mem(H5Tcopy(type));
        if (H5Aread(a, mem, buf.data()) >= 0) s << buf.data();
      }
      break;
    case H5T_INTEGER: {
      long long v = 0;
      if (H5Aread(a, H5T_NATIVE_LLONG, &v) >= 0) s << v;
      break;
    }
    case H5T_FLOAT: {
      double v = 0;
      if (H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0) s << v;
      break;
    }
    default: break;
  }
  return s.str();
}

std::string scale_name(hid_t ds, unsigned axis) {
  std::string name;
  H5DSiterate_scales(
      ds, axis, nullptr,
      [](hid_t, unsigned, hid_t scale, void* out) -> herr_t {
        char buf[256] = {};
        if (H5DSget_scale_name(scale, buf, sizeof buf) > 0) *static_cast<std::string*>(out) = buf;
        return 1;
      },
      &name);
  return name;
}

std::vector<std::string> read_strings(hid_t ds, const std::string& what) {
  Hid type(H5Dget_type(ds));
  Hid space(H5Dget_space(ds));
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  std::vector<char*> p(static_cast<std::size_t>(std::max<hssize_t>(n, 0)), nullptr);
  if (H5Tis_variable_str(type) <= 0 || H5Dread(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, p.data()) < 0)
    fail("H5Dread (variable-length strings)", what);
  std::vector<std::string> out;
  out.reserve(p.size());
  for (char* c : p) out.emplace_back(c ? c : "");
  H5Dvlen_reclaim(type, space, H5P_DEFAULT, p.data());
  return out;
}

}  // namespace cutoff::h5
