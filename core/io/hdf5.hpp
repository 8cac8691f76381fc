#pragma once
/// @file
/// The one owner of HDF5 identifiers, HDF5 errors as exceptions, and the few readers that
/// the output writer (output.cpp), the ensemble gather (core/app/ensemble.cpp) and
/// `cutoff info` share. Every HDF5 call must hold hdf5_mutex() (output.hpp).

#include <hdf5.h>

#include <string>
#include <utility>
#include <vector>

namespace cutoff::h5 {

/// Owns one HDF5 identifier of any kind (H5Idec_ref closes files, groups, datasets,
/// dataspaces, types, attributes and property lists alike). Move-only.
class Hid {
 public:
  Hid() = default;
  explicit Hid(hid_t id) : id_(id) {}
  Hid(Hid&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)) {}
  Hid& operator=(Hid&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
    }
    return *this;
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  ~Hid() { reset(); }
  void reset() noexcept {
    if (id_ >= 0) H5Idec_ref(id_);
    id_ = H5I_INVALID_HID;
  }
  hid_t release() noexcept { return std::exchange(id_, H5I_INVALID_HID); }
  bool valid() const { return id_ >= 0; }
  operator hid_t() const { return id_; }

 private:
  hid_t id_ = H5I_INVALID_HID;
};

/// The HDF5 error stack as one line (outermost first), then cleared.
std::string error_text();
/// Throws std::runtime_error "HDF5 <call> failed for '<object>': <error stack>".
[[noreturn]] void fail(const char* call, const std::string& object);
/// fail() when @p r is negative.
void check(herr_t r, const char* call, const std::string& object);
/// @p id owned, or fail() when it is invalid.
Hid own(hid_t id, const char* call, const std::string& object);

/// The extent of dataset @p ds, one entry per dimension.
std::vector<hsize_t> shape(hid_t ds);
/// Attribute @p name of @p obj as text: a string as is, an integer or real printed; "" when
/// it is absent or of another class.
std::string attr_text(hid_t obj, const char* name);
/// The name of the dimension scale attached to axis @p axis of @p ds ("" when none).
std::string scale_name(hid_t ds, unsigned axis);
/// Every element of a variable-length string dataset (@p what names it in errors).
std::vector<std::string> read_strings(hid_t ds, const std::string& what);

}  // namespace cutoff::h5
