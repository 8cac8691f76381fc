#pragma once
/// @file
/// The one owner of HDF5 identifiers, the one place HDF5 errors become messages, the
/// library's start and stop, and the few readers that the output writer (output.cpp), the
/// ensemble gather (core/app/ensemble.cpp) and `cutoff info` share. Every HDF5 call must
/// hold hdf5_mutex() (output.hpp).
///
/// Errors: HDF5's own printing of its error stack is off (on under `--verbose`:
/// start_library()); a failed call becomes one line from fail(): a FileError
/// (core/hd/error.hpp) when the stack says why (the errno of HDF5's file driver: disk
/// full, read-only, not found; a checksum, signature or truncation: corrupt), else a
/// std::runtime_error naming the call, the object, the file and the stack's first and
/// last words (every word under `--verbose`).

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
  void reset() noexcept;
  hid_t release() noexcept { return std::exchange(id_, H5I_INVALID_HID); }
  bool valid() const { return id_ >= 0; }
  operator hid_t() const { return id_; }

 private:
  hid_t id_ = H5I_INVALID_HID;
};

/// Starts HDF5 for a command: no exit-time handler (stop_library() closes it), error
/// printing off unless @p verbose. Call before any other HDF5 call of the process.
void start_library(bool verbose);
/// Whether start_library() was asked for HDF5's own error output.
bool verbose();
/// This thread's error printing as start_library() chose it (a thread-safe HDF5 keeps
/// it per thread; every thread that calls HDF5 sets it first).
void set_error_printing();
/// Closes the library (H5close), unless an object failed to close: HDF5 1.10 frees a
/// dataset whose close fails (a flush on a full disk) but keeps its identifier, so its
/// termination would close freed memory (the exit-139 crash of issue 37); the process
/// then exits without it, which the operating system cleans up after.
void stop_library();
/// Records that an HDF5 close failed (stop_library() then leaves the library alone).
void note_failed_close();

/// Names @p file in the errors fail() raises on this thread while it lives.
class FileContext {
 public:
  explicit FileContext(const std::string& file);
  ~FileContext();
  FileContext(const FileContext&) = delete;
  FileContext& operator=(const FileContext&) = delete;

 private:
  std::string previous_;
};

/// The HDF5 error stack as one line (outermost first; all of it under `--verbose`,
/// else its first and last words), then cleared.
std::string error_text();
/// Throws the one-line error for a failed HDF5 @p call on @p object (see the file
/// comment); the file is the innermost FileContext's, else the one HDF5 names.
[[noreturn]] void fail(const char* call, const std::string& object);
/// Throws FileError(Corrupt) for @p object of the innermost FileContext's file, saying @p why.
[[noreturn]] void corrupt(const std::string& object, const std::string& why);
/// fail() when @p r is negative.
void check(herr_t r, const char* call, const std::string& object);
/// @p id owned, or fail() when it is invalid.
Hid own(hid_t id, const char* call, const std::string& object);

/// The extent of dataset @p ds, one entry per dimension.
std::vector<hsize_t> shape(hid_t ds);
/// Attribute @p name of @p obj as text: a string as is, an integer or real printed; "" when
/// it is absent or of another class. One that cannot be read raises fail().
std::string attr_text(hid_t obj, const char* name);
/// The name of the dimension scale attached to axis @p axis of @p ds ("" when none).
std::string scale_name(hid_t ds, unsigned axis);
/// The attribute of a variable-length string dataset holding strings_digest() of its strings.
inline constexpr const char* kStringsDigest = "sha256";
/// SHA-256 (hex) of @p n strings, each with its terminating NUL, in order: python's
/// `hashlib.sha256(b"".join(s.encode() + b"\0" for s in strings))`.
std::string strings_digest(const char* const* strings, std::size_t n);
/// Reads dataset @p ds (named @p what in errors) back as its checksums see it, so that a
/// damaged one names the dataset: fail() raises FileError(Corrupt). Every stored chunk
/// goes through the filter pipeline (output.cpp sets Fletcher-32 on every dataset), and a
/// variable-length string dataset's strings are compared with their digest attribute
/// (kStringsDigest). Memory: one chunk, or the strings.
void verify_dataset(hid_t ds, const std::string& what);
/// Every element of a variable-length string dataset (@p what names it in errors).
std::vector<std::string> read_strings(hid_t ds, const std::string& what);

}  // namespace cutoff::h5
