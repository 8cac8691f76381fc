#include "core/io/hdf5.hpp"

#include <hdf5_hl.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "core/hd/error.hpp"
#include "core/io/sha256.hpp"

namespace cutoff::h5 {

namespace {

std::atomic<bool> g_verbose{false};
std::atomic<bool> g_failed_close{false};
thread_local std::string t_file;  // FileContext's file on this thread

/// What one walk of the error stack found.
struct Stack {
  std::vector<std::string> words;  ///< each entry's description, outermost first, one line each
  int err = 0;                     ///< the last errno the file driver reported, 0 if none
  std::string file;                ///< the file the driver named, "" if none
  bool corrupt = false;            ///< a checksum, signature or truncation
};

/// The text after @p key in @p s up to one of @p stops.
std::string after(const std::string& s, const std::string& key, const char* stops) {
  const auto k = s.find(key);
  if (k == std::string::npos) return "";
  const auto b = k + key.size();
  return s.substr(b, s.find_first_of(stops, b) - b);
}

Stack walk_stack() {
  Stack st;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* e, void* p) -> herr_t {
        auto& st = *static_cast<Stack*>(p);
        if (!e->desc || !*e->desc) return 0;
        std::string d = e->desc;
        std::replace(d.begin(), d.end(), '\n', ' ');  // the file driver's messages span lines
        // HDF5's POSIX drivers write "errno = N, error message = '...'" and "name = '...'"
        // or "filename = '...'" into the description: the one place the cause survives.
        const std::string n = after(d, "errno = ", ",");
        if (!n.empty()) st.err = std::atoi(n.c_str());
        std::string f = after(d, "filename = '", "'");
        if (f.empty()) f = after(d, "name = '", "'");
        if (!f.empty()) st.file = f;
        std::string lower = d;
        std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
        for (const char* w : {"checksum", "fletcher32", "signature", "truncated file", "bad object header", "corrupt",
                              "filter returned failure during read", "inflate() failed"})
          if (lower.find(w) != std::string::npos) st.corrupt = true;
        st.words.push_back(std::move(d));
        return 0;
      },
      &st);
  H5Eclear2(H5E_DEFAULT);
  return st;
}

std::string join(const Stack& st) {
  std::string out;
  const std::size_t n = st.words.size();
  for (std::size_t k = 0; k < n; ++k) {
    if (!g_verbose && k != 0 && k + 1 != n) continue;  // first and last words unless --verbose
    out += (out.empty() ? "" : "; ") + st.words[k];
  }
  return out;
}

}  // namespace

void start_library(bool verbose) {
  g_verbose = verbose;
  H5dont_atexit();  // before the library starts: stop_library() decides whether it closes
  H5open();
  set_error_printing();
}

bool verbose() { return g_verbose; }

void set_error_printing() {
  if (g_verbose)
    H5Eset_auto2(H5E_DEFAULT, reinterpret_cast<H5E_auto2_t>(H5Eprint2), stderr);
  else
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

void stop_library() {
  if (!g_failed_close) H5close();
}

void note_failed_close() { g_failed_close = true; }

void Hid::reset() noexcept {
  if (id_ >= 0 && H5Idec_ref(id_) < 0) {
    note_failed_close();
    H5Eclear2(H5E_DEFAULT);
  }
  id_ = H5I_INVALID_HID;
}

FileContext::FileContext(const std::string& file) : previous_(std::exchange(t_file, file)) {}
FileContext::~FileContext() { t_file = std::move(previous_); }

std::string error_text() { return join(walk_stack()); }

void fail(const char* call, const std::string& object) {
  const Stack st = walk_stack();
  const std::string file = !t_file.empty() ? t_file : !st.file.empty() ? st.file : object;
  const std::string at = object == file ? "" : ", at " + object;
  FileProblem problem = st.corrupt ? FileProblem::Corrupt : file_problem_of_errno(st.err);
  if (problem != FileProblem::Other) {
    std::string detail = problem == FileProblem::Corrupt ? "a checksum or its structure fails" : std::strerror(st.err);
    detail += at;
    if (g_verbose) detail += "; HDF5 " + std::string(call) + ": " + join(st);
    throw FileError(problem, file, file_message(problem, file, detail));
  }
  std::string msg = std::string("HDF5 ") + call + " failed for '" + object + "'";
  if (file != object) msg += " in '" + file + "'";
  const std::string detail = join(st);
  if (!detail.empty()) msg += ": " + detail;
  throw std::runtime_error(msg);
}

void corrupt(const std::string& object, const std::string& why) {
  const std::string file = !t_file.empty() ? t_file : object;
  const std::string at = object == file ? "" : ", at " + object;
  throw FileError(FileProblem::Corrupt, file, file_message(FileProblem::Corrupt, file, why + at));
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
  const std::string what = std::string("attribute ") + name;
  const htri_t exists = H5Aexists(obj, name);
  check(exists, "H5Aexists", what);
  if (exists == 0) return "";
  Hid a = own(H5Aopen(obj, name, H5P_DEFAULT), "H5Aopen", what);
  Hid type = own(H5Aget_type(a), "H5Aget_type", what);
  std::ostringstream s;
  switch (H5Tget_class(type)) {
    case H5T_STRING:
      if (H5Tis_variable_str(type) > 0) {
        char* v = nullptr;
        Hid mem = own(H5Tcopy(H5T_C_S1), "H5Tcopy", what);
        check(H5Tset_size(mem, H5T_VARIABLE), "H5Tset_size", what);
        check(H5Tset_cset(mem, H5Tget_cset(type)), "H5Tset_cset", what);
        check(H5Aread(a, mem, &v), "H5Aread", what);
        if (v) s << v;
        H5free_memory(v);
      } else {
        std::vector<char> buf(H5Tget_size(type) + 1, '\0');
        Hid mem = own(H5Tcopy(type), "H5Tcopy", what);
        check(H5Aread(a, mem, buf.data()), "H5Aread", what);
        s << buf.data();
      }
      break;
    case H5T_INTEGER: {
      long long v = 0;
      check(H5Aread(a, H5T_NATIVE_LLONG, &v), "H5Aread", what);
      s << v;
      break;
    }
    case H5T_FLOAT: {
      double v = 0;
      check(H5Aread(a, H5T_NATIVE_DOUBLE, &v), "H5Aread", what);
      s << v;
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

std::string strings_digest(const char* const* strings, std::size_t n) {
  Sha256 h;
  for (std::size_t k = 0; k < n; ++k) h.update(strings[k], std::strlen(strings[k]) + 1);
  return h.hex();
}

void verify_dataset(hid_t ds, const std::string& what) {
  Hid type = own(H5Dget_type(ds), "H5Dget_type", what);
  if (H5Tis_variable_str(type) > 0) {
    const std::string want = attr_text(ds, kStringsDigest);
    if (want.empty()) return;  // strings of a file written before the digest
    const std::vector<std::string> got = read_strings(ds, what);
    std::vector<const char*> p;
    for (const std::string& s : got) p.push_back(s.c_str());
    if (strings_digest(p.data(), p.size()) != want) corrupt(what, "its strings do not match their checksum");
    return;
  }
  Hid dcpl = own(H5Dget_create_plist(ds), "H5Dget_create_plist", what);
  if (H5Pget_layout(dcpl) != H5D_CHUNKED || H5Tget_class(type) == H5T_VLEN) return;
  const int rank = H5Pget_chunk(dcpl, H5S_MAX_RANK, nullptr);
  check(rank, "H5Pget_chunk", what);
  std::vector<hsize_t> chunk(static_cast<std::size_t>(rank));
  check(H5Pget_chunk(dcpl, rank, chunk.data()), "H5Pget_chunk", what);
  const std::vector<hsize_t> dims = shape(ds);
  Hid fspace = own(H5Dget_space(ds), "H5Dget_space", what);
  hsize_t n = 0;
  check(H5Dget_num_chunks(ds, fspace, &n), "H5Dget_num_chunks", what);
  hsize_t cells = 1;
  for (hsize_t c : chunk) cells *= c;
  std::vector<unsigned char> buf(static_cast<std::size_t>(cells * H5Tget_size(type)));
  std::vector<hsize_t> offset(chunk.size()), count(chunk.size());
  for (hsize_t k = 0; k < n; ++k) {
    check(H5Dget_chunk_info(ds, fspace, k, offset.data(), nullptr, nullptr, nullptr), "H5Dget_chunk_info", what);
    hsize_t m = 1;
    for (std::size_t a = 0; a < chunk.size(); ++a) {
      // A chunk past the extent (the dataset shrank) holds nothing to read.
      count[a] = offset[a] < dims[a] ? std::min(chunk[a], dims[a] - offset[a]) : 0;
      m *= count[a];
    }
    if (m == 0) continue;
    check(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, offset.data(), nullptr, count.data(), nullptr),
          "H5Sselect_hyperslab", what);
    Hid mspace = own(H5Screate_simple(1, &m, nullptr), "H5Screate_simple", what);
    check(H5Dread(ds, type, mspace, fspace, H5P_DEFAULT, buf.data()), "H5Dread", what);
  }
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
