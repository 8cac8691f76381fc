/// @file
/// HDF5 output layer; see output.hpp for the layout and the threading model.
///
/// Threading: the constructor creates the file on the caller's thread, then starts the
/// writer thread, which from then on makes every HDF5 call of this writer (under the
/// process-wide hdf5_mutex(), so several writers can coexist). The public methods only
/// validate against caller-side bookkeeping (`Impl`'s "caller side" members), copy their
/// arguments and queue a task; the writer-side state (`H5State`) is touched by tasks only.

#include "core/io/output.hpp"

#include <fcntl.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>

#include "core/hd/error.hpp"
#include "core/io/hdf5.hpp"
#include "core/io/seal.hpp"

namespace cutoff {

namespace fs = std::filesystem;

std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::U8: return 1;
    case DType::U16: return 2;
    case DType::U32:
    case DType::I32:
    case DType::F32: return 4;
    case DType::I64:
    case DType::F64: return 8;
  }
  throw std::invalid_argument("cutoff::dtype_size: unknown DType");
}

std::mutex& hdf5_mutex() {
  static std::mutex m;
  return m;
}

namespace {

using h5::check;
using h5::Hid;
using h5::own;

constexpr hsize_t kTickChunk = 512;              ///< rows per chunk of 1-D unlimited coordinates
constexpr hsize_t kTargetChunkBytes = 64 << 10;  ///< aim of a metric chunk (many ticks per chunk)
constexpr hsize_t kMaxChunkBytes = 1 << 20;      ///< HDF5's default chunk cache: larger chunks thrash
constexpr hsize_t kMaxChunkRows = 256;
constexpr hsize_t kIndexBlock = 1 << 20;  ///< agent-index rows written per H5Dwrite

hid_t file_type(DType t) {
  switch (t) {
    case DType::U8: return H5T_STD_U8LE;
    case DType::U16: return H5T_STD_U16LE;
    case DType::U32: return H5T_STD_U32LE;
    case DType::I32: return H5T_STD_I32LE;
    case DType::I64: return H5T_STD_I64LE;
    case DType::F32: return H5T_IEEE_F32LE;
    case DType::F64: return H5T_IEEE_F64LE;
  }
  throw std::invalid_argument("cutoff::OutputWriter: unknown DType");
}

hid_t mem_type(DType t) {
  switch (t) {
    case DType::U8: return H5T_NATIVE_UINT8;
    case DType::U16: return H5T_NATIVE_UINT16;
    case DType::U32: return H5T_NATIVE_UINT32;
    case DType::I32: return H5T_NATIVE_INT32;
    case DType::I64: return H5T_NATIVE_INT64;
    case DType::F32: return H5T_NATIVE_FLOAT;
    case DType::F64: return H5T_NATIVE_DOUBLE;
  }
  throw std::invalid_argument("cutoff::OutputWriter: unknown DType");
}

/// Variable-length UTF-8 strings: both h5netcdf and netCDF-C read them as `str`.
Hid vlen_utf8() {
  Hid t = own(H5Tcopy(H5T_C_S1), "H5Tcopy", "string type");
  check(H5Tset_size(t, H5T_VARIABLE), "H5Tset_size", "string type");
  check(H5Tset_cset(t, H5T_CSET_UTF8), "H5Tset_cset", "string type");
  return t;
}

void put_attr(hid_t obj, const std::string& where, const std::string& name, hid_t ftype, hid_t mtype, const void* buf) {
  const std::string what = where + "@" + name;
  const htri_t exists = H5Aexists(obj, name.c_str());
  check(exists, "H5Aexists", what);
  if (exists > 0) check(H5Adelete(obj, name.c_str()), "H5Adelete", what);
  Hid space = own(H5Screate(H5S_SCALAR), "H5Screate", what);
  Hid a = own(H5Acreate2(obj, name.c_str(), ftype, space, H5P_DEFAULT, H5P_DEFAULT), "H5Acreate2", what);
  check(H5Awrite(a, mtype, buf), "H5Awrite", what);
}

/// A text attribute, as a variable-length UTF-8 string (h5py, h5netcdf and netCDF-C read it
/// as `str`). Its bytes sit in HDF5's global heap, which no checksum of HDF5's covers: the
/// file's seal does (seal.hpp).
void put_attr(hid_t obj, const std::string& where, const std::string& name, const std::string& v) {
  Hid t = vlen_utf8();
  const char* p = v.c_str();
  put_attr(obj, where, name, t, t, &p);
}

/// `units` and `long_name`, which every variable carries.
void describe(hid_t obj, const std::string& where, const std::string& units, const std::string& long_name) {
  put_attr(obj, where, "units", units);
  put_attr(obj, where, "long_name", long_name);
}

/// Up to this many attributes of an object, or links of a group, stay in its object
/// header, whose checksum covers them; past it HDF5 moves them to a fractal heap ("dense"
/// storage), whose blocks carry none (and HDF5 1.10 crashes on a damaged one).
constexpr unsigned kCompactEntries = 1000;

void keep_attrs_in_header(hid_t ocpl, const std::string& what) {
  check(H5Pset_attr_phase_change(ocpl, kCompactEntries, kCompactEntries - 1), "H5Pset_attr_phase_change", what);
}

void keep_links_in_header(hid_t gcpl, const std::string& what) {
  check(H5Pset_link_phase_change(gcpl, kCompactEntries, kCompactEntries - 1), "H5Pset_link_phase_change", what);
}

/// Variable-length strings live in the global heap, which carries no checksum and no
/// filter: their digest (h5::strings_digest) goes into an attribute, which the object
/// header's checksum covers, and readers compare the two (h5::verify_dataset).
void put_strings_digest(hid_t ds, const std::string& path, hid_t ftype, const void* buf, hsize_t n) {
  if (H5Tis_variable_str(ftype) <= 0) return;
  put_attr(ds, path, h5::kStringsDigest, h5::strings_digest(static_cast<const char* const*>(buf), n));
}

/// Group creation properties: no time stamps (reproducible files); links indexed by
/// creation order, so readers list variables in the order they were declared (tracked
/// and indexed together, as netCDF-C requires).
Hid group_props(const std::string& what) {
  Hid p = own(H5Pcreate(H5P_GROUP_CREATE), "H5Pcreate", what);
  check(H5Pset_obj_track_times(p, false), "H5Pset_obj_track_times", what);
  check(H5Pset_link_creation_order(p, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED), "H5Pset_link_creation_order",
        what);
  keep_attrs_in_header(p, what);
  keep_links_in_header(p, what);
  return p;
}

/// Dataset shape, layout and fill. Empty @p chunk means contiguous, or compact with
/// @p compact (fixed_layout() says when).
struct Layout {
  std::vector<hsize_t> dims, maxdims, chunk;
  int gzip = 0;
  bool nan_fill = false;  ///< float datasets: rows never written read as NaN
  bool compact = false;   ///< the data in the object header, under its checksum
};

/// HDF5's limit on a compact dataset's data (it must fit one object header message).
constexpr hsize_t kMaxCompactBytes = 60 << 10;

/// A fixed-size 1-D dataset of @p n elements of type @p ftype, under a checksum. Numbers
/// are chunked, for a Fletcher-32 filter like every other dataset, in chunks of at most
/// kMaxChunkBytes. Variable-length strings take no filter: their references to the global
/// heap are kept compact, in the checksummed object header (a damaged reference would send
/// HDF5 off to a wild address), and their text carries a digest (put_strings_digest()).
Layout fixed_layout(hsize_t n, hid_t ftype) {
  Layout l{{n}, {}, {}, 0, false};
  if (n == 0) return l;
  if (H5Tis_variable_str(ftype) > 0)
    l.compact = n * H5Tget_size(ftype) <= kMaxCompactBytes;
  else
    l.chunk = {std::clamp<hsize_t>(kMaxChunkBytes / H5Tget_size(ftype), 1, n)};
  return l;
}

Hid create_dataset(hid_t loc, const std::string& name, const std::string& path, hid_t ftype, const Layout& l) {
  Hid dcpl = own(H5Pcreate(H5P_DATASET_CREATE), "H5Pcreate", path);
  check(H5Pset_obj_track_times(dcpl, false), "H5Pset_obj_track_times", path);
  keep_attrs_in_header(dcpl, path);
  if (!l.chunk.empty()) {
    check(H5Pset_chunk(dcpl, static_cast<int>(l.chunk.size()), l.chunk.data()), "H5Pset_chunk", path);
    if (l.gzip > 0) check(H5Pset_deflate(dcpl, static_cast<unsigned>(l.gzip)), "H5Pset_deflate", path);
    // Last in the pipeline, over the stored bytes: a reader finds a damaged chunk instead
    // of reading it (issue 37: 16 variables of an overwritten file read NaN).
    check(H5Pset_fletcher32(dcpl), "H5Pset_fletcher32", path);
  }
  if (l.compact) check(H5Pset_layout(dcpl, H5D_COMPACT), "H5Pset_layout", path);
  if (l.nan_fill) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    check(H5Pset_fill_value(dcpl, H5T_NATIVE_DOUBLE, &nan), "H5Pset_fill_value", path);
  }
  Hid space = own(
      H5Screate_simple(static_cast<int>(l.dims.size()), l.dims.data(), l.maxdims.empty() ? nullptr : l.maxdims.data()),
      "H5Screate_simple", path);
  return own(H5Dcreate2(loc, name.c_str(), ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT), "H5Dcreate2", path);
}

/// Extent along the first (unlimited) axis.
hsize_t rows(hid_t ds, const std::string& path) {
  Hid space = own(H5Dget_space(ds), "H5Dget_space", path);
  hsize_t dims[H5S_MAX_RANK];
  check(H5Sget_simple_extent_dims(space, dims, nullptr), "H5Sget_simple_extent_dims", path);
  return dims[0];
}

/// Grows the first axis to at least @p n rows (never shrinks).
void grow(hid_t ds, hsize_t n, const std::string& path) {
  Hid space = own(H5Dget_space(ds), "H5Dget_space", path);
  hsize_t dims[H5S_MAX_RANK];
  const int rank = H5Sget_simple_extent_dims(space, dims, nullptr);
  check(rank, "H5Sget_simple_extent_dims", path);
  if (dims[0] >= n) return;
  dims[0] = n;
  check(H5Dset_extent(ds, dims), "H5Dset_extent", path);
}

/// Writes @p count rows starting at row @p row (all of the other axes).
void write_rows(hid_t ds, hsize_t row, hsize_t count, hid_t mtype, const void* buf, const std::string& path) {
  Hid fspace = own(H5Dget_space(ds), "H5Dget_space", path);
  hsize_t dims[H5S_MAX_RANK];
  const int rank = H5Sget_simple_extent_dims(fspace, dims, nullptr);
  check(rank, "H5Sget_simple_extent_dims", path);
  hsize_t start[H5S_MAX_RANK] = {row};
  dims[0] = count;
  hsize_t n = 1;
  for (int i = 0; i < rank; ++i) n *= dims[i];
  check(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, nullptr, dims, nullptr), "H5Sselect_hyperslab", path);
  Hid mspace = own(H5Screate_simple(1, &n, nullptr), "H5Screate_simple", path);
  check(H5Dwrite(ds, mtype, mspace, fspace, H5P_DEFAULT, buf), "H5Dwrite", path);
}

/// Makes @p ds the dimension scale of dimension @p name (scale name = dim name).
void set_scale(hid_t ds, const std::string& name, const std::string& path) {
  check(H5DSset_scale(ds, name.c_str()), "H5DSset_scale", path);
}

void attach(hid_t ds, hid_t scale, unsigned axis, const std::string& path) {
  check(H5DSattach_scale(ds, scale, axis), "H5DSattach_scale", path);
}

/// Days from 2025-01-01 to the first day of month @p tick (tick 0 = January 2025).
std::int32_t days_since_2025(int tick) {
  std::int32_t days = 0;
  for (int m = 0; m < tick; ++m) {
    const int year = 2025 + m / 12, month = m % 12;
    static constexpr int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    days += len[month] + (month == 1 && leap ? 1 : 0);
  }
  return days;
}

/// Chunk of a metric: all of the fixed dims (halving the largest while a row exceeds
/// the chunk cache), times as many ticks as fit the target size. Depends on shape only.
std::vector<hsize_t> metric_chunk(std::vector<hsize_t> fixed, std::size_t elem) {
  auto bytes = [&] {
    hsize_t b = elem;
    for (hsize_t d : fixed) b *= d;
    return b;
  };
  while (bytes() > kMaxChunkBytes) {
    hsize_t& big = *std::max_element(fixed.begin(), fixed.end());
    big = (big + 1) / 2;
  }
  fixed.insert(fixed.begin(), std::clamp<hsize_t>(kTargetChunkBytes / bytes(), 1, kMaxChunkRows));
  return fixed;
}

bool valid_name(const std::string& s) { return !s.empty() && s != "." && s.find('/') == std::string::npos; }

}  // namespace

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

/// Everything the writer thread owns: open HDF5 objects and what it needs to use them.
struct H5State {
  struct Metric {
    Hid ds;
    std::string path;
    std::vector<std::string> dims;
    hsize_t cells = 1;
  };
  struct Population {
    Hid group, snapshot, agent, snapshot_tick;
    std::string path;
    std::map<std::string, Hid> fields;
  };

  Hid file;  // declared first, so destroyed after the objects in it
  Hid metrics, snapshots, tick, date;
  std::map<std::string, Hid> scales;                        ///< /metrics dimension coordinates
  std::vector<std::pair<std::string, std::string>> coords;  ///< (aux coordinate, its dim), in order
  std::vector<Metric> metric;
  std::vector<Metric> arrays;  ///< array(): fixed-shape variables
  std::map<std::string, Population> pops;
  hsize_t ticks = 0;
  int gzip = 0;
};

namespace {
void check_coord_len(std::size_t n, hsize_t dim_len, const std::string& name) {
  if (n != dim_len)
    throw std::invalid_argument("cutoff::OutputWriter: coordinate '" + name + "' has " + std::to_string(n) +
                                " values, its dimension " + std::to_string(dim_len));
}
}  // namespace

struct OutputWriter::Impl {
  struct Task {
    std::function<void()> fn;
    std::size_t bytes = 0;
  };

  std::string final_path, part_path;
  std::size_t max_bytes = 0;
  int gzip = 0;

  // Caller side: validation bookkeeping, touched only by the caller's thread.
  struct PopInfo {
    std::uint64_t n = 0;
    std::vector<int> ticks;  ///< tick of each snapshot index
    std::map<std::string, DType> fields;
  };
  std::map<std::string, hsize_t> dims;
  std::set<std::string> names{"tick", "date"};  ///< variables in /metrics
  std::vector<hsize_t> metric_cells;
  std::vector<std::vector<hsize_t>> array_shapes;
  std::map<std::string, PopInfo> pops;
  int open_tick = 0;
  bool closed = false, committed = false;

  // Queue, shared under `mu`.
  std::mutex mu;
  std::condition_variable cv_work, cv_done;
  std::deque<Task> queue;
  std::size_t in_flight = 0;
  bool busy = false, stopping = false, aborting = false;
  std::exception_ptr error;
  std::thread worker;

  // Writer side.
  std::unique_ptr<H5State> h5;

  void create_file();
  void close_file();
  void run();
  void guarded(const std::function<void()>& fn);

  void ensure_open() const {
    if (closed) throw std::logic_error("cutoff::OutputWriter: used after commit() for " + final_path);
  }
  void rethrow() {
    std::lock_guard<std::mutex> lk(mu);
    if (error) std::rethrow_exception(error);
  }
  /// Accounts @p bytes as in flight, first waiting while that would exceed the bound
  /// (a single task larger than the bound still goes through once the queue is empty).
  void reserve(std::size_t bytes) {
    std::unique_lock<std::mutex> lk(mu);
    cv_done.wait(lk, [&] { return error || in_flight == 0 || in_flight + bytes <= max_bytes; });
    if (error) std::rethrow_exception(error);
    in_flight += bytes;
  }
  /// Reserves @p bytes, builds the task (the copy of the caller's data happens inside
  /// @p build, after the wait) and queues it.
  template <class Build> void enqueue(std::size_t bytes, Build&& build) {
    ensure_open();
    reserve(bytes);
    try {
      std::function<void()> fn = build();
      std::lock_guard<std::mutex> lk(mu);
      if (error) std::rethrow_exception(error);
      queue.push_back(Task{std::move(fn), bytes});
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu);
      in_flight -= bytes;
      throw;
    }
    cv_work.notify_one();
  }
  /// Stops the writer thread: after the queue if @p abort is false, else dropping it.
  void stop(bool abort) {
    {
      std::lock_guard<std::mutex> lk(mu);
      stopping = true;
      aborting = abort;
      if (abort) {
        for (const Task& t : queue) in_flight -= t.bytes;
        queue.clear();
      }
    }
    cv_work.notify_all();
    if (worker.joinable()) worker.join();
    closed = true;
  }
  void new_name(const std::string& name) {
    ensure_open();
    rethrow();
    if (!valid_name(name)) throw std::invalid_argument("cutoff::OutputWriter: bad variable name '" + name + "'");
    if (names.count(name)) throw std::invalid_argument("cutoff::OutputWriter: /metrics/" + name + " already exists");
  }
  hsize_t dim_len(const std::string& d) const {
    auto it = dims.find(d);
    if (it == dims.end()) throw std::invalid_argument("cutoff::OutputWriter: unknown dimension '" + d + "'");
    return it->second;
  }
  /// dim() of numeric values of type @p t (types mapped on the writer thread).
  template <class T>
  void numeric_dim(const std::string& name, const std::vector<T>& values, DType t, const std::string& units,
                   const std::string& long_name) {
    new_name(name);
    if (values.empty()) throw std::invalid_argument("cutoff::OutputWriter: dimension '" + name + "' is empty");
    enqueue(values.size() * sizeof(T), [&] {
      return [this, name, values, t, units, long_name] {
        do_dim(name, file_type(t), mem_type(t), values.data(), values.size(), units, long_name);
      };
    });
    dims[name] = values.size();
    names.insert(name);
  }
  /// coord() of numeric values of type @p t.
  template <class T>
  void numeric_coord(const std::string& name, const std::string& dim, const std::vector<T>& v, DType t,
                     const std::string& units, const std::string& long_name) {
    new_name(name);
    check_coord_len(v.size(), dim_len(dim), name);
    enqueue(v.size() * sizeof(T), [&] {
      return [this, name, dim, v, t, units, long_name] {
        do_coord(name, dim, file_type(t), mem_type(t), v.data(), v.size(), units, long_name);
      };
    });
    names.insert(name);
  }

  // Tasks (writer thread).
  void do_dim(const std::string& name, hid_t ftype, hid_t mtype, const void* buf, hsize_t n, const std::string& units,
              const std::string& long_name);
  void do_coord(const std::string& name, const std::string& dim, hid_t ftype, hid_t mtype, const void* buf, hsize_t n,
                const std::string& units, const std::string& long_name);
  void do_metric(const std::string& name, const std::vector<std::string>& dims, const std::string& units,
                 const std::string& long_name, DType type);
  void do_array(const std::string& name, const std::vector<std::string>& dims, const std::string& units,
                const std::string& long_name, DType type);
  void do_end_tick(int tick);
  void do_population(const std::string& pop, hsize_t n);
  void do_snapshot(const std::string& pop, const std::string& field, DType type, const std::string& units,
                   const std::string& long_name, hsize_t index, int tick, const void* data);
  void do_finish();

  /// write_block(): the block of array @p id at @p lead (validated here, copied).
  template <class T>
  void write_array_block(int id, const std::vector<std::uint64_t>& lead, const T* values, DType mtype) {
    ensure_open();
    rethrow();
    if (id < 0 || static_cast<std::size_t>(id) >= array_shapes.size())
      throw std::invalid_argument("cutoff::OutputWriter::write_block: unknown array id " + std::to_string(id));
    const std::vector<hsize_t>& shape = array_shapes[static_cast<std::size_t>(id)];
    if (lead.size() > shape.size())
      throw std::invalid_argument("cutoff::OutputWriter::write_block: more indices than dimensions");
    std::size_t n = 1;
    for (std::size_t i = 0; i < shape.size(); ++i) {
      if (i < lead.size() && lead[i] >= shape[i])
        throw std::invalid_argument("cutoff::OutputWriter::write_block: index " + std::to_string(lead[i]) +
                                    " beyond dimension " + std::to_string(i) + " of length " +
                                    std::to_string(shape[i]));
      if (i >= lead.size()) n *= static_cast<std::size_t>(shape[i]);
    }
    enqueue(n * sizeof(T), [&] {
      return [this, id, lead, mtype, v = std::vector<T>(values, values + n)] {
        const H5State::Metric& a = h5->arrays.at(static_cast<std::size_t>(id));
        Hid fspace = own(H5Dget_space(a.ds), "H5Dget_space", a.path);
        hsize_t dims[H5S_MAX_RANK];
        const int rank = H5Sget_simple_extent_dims(fspace, dims, nullptr);
        check(rank, "H5Sget_simple_extent_dims", a.path);
        hsize_t start[H5S_MAX_RANK] = {};
        for (std::size_t i = 0; i < lead.size(); ++i) {
          start[i] = lead[i];
          dims[i] = 1;
        }
        check(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, nullptr, dims, nullptr), "H5Sselect_hyperslab",
              a.path);
        const hsize_t count = v.size();
        Hid mspace = own(H5Screate_simple(1, &count, nullptr), "H5Screate_simple", a.path);
        check(H5Dwrite(a.ds, mem_type(mtype), mspace, fspace, H5P_DEFAULT, v.data()), "H5Dwrite", a.path);
      };
    });
  }

  /// write(): @p values (metric_cells[metric] of them) are copied; @p mtype names their
  /// C type. (HDF5 type ids are looked up on the writer thread only: even H5T_NATIVE_*
  /// touches library state.)
  template <class T> void write_metric(int metric, int tick, const T* values, DType mtype) {
    ensure_open();
    rethrow();
    if (metric < 0 || static_cast<std::size_t>(metric) >= metric_cells.size())
      throw std::invalid_argument("cutoff::OutputWriter::write: unknown metric id " + std::to_string(metric));
    if (tick != open_tick)
      throw std::invalid_argument("cutoff::OutputWriter::write: tick " + std::to_string(tick) +
                                  " is not the open tick " + std::to_string(open_tick));
    const std::size_t n = static_cast<std::size_t>(metric_cells[static_cast<std::size_t>(metric)]);
    enqueue(n * sizeof(T), [&] {
      return [this, metric, tick, mtype, v = std::vector<T>(values, values + n)] {
        const H5State::Metric& m = h5->metric.at(static_cast<std::size_t>(metric));
        grow(m.ds, static_cast<hsize_t>(tick) + 1, m.path);
        write_rows(m.ds, static_cast<hsize_t>(tick), 1, mem_type(mtype), v.data(), m.path);
      };
    });
  }
};

// ---------------------------------------------------------------------------
// File life cycle (writer thread, or the constructor before the thread exists)
// ---------------------------------------------------------------------------

void OutputWriter::Impl::create_file() {
  auto s = std::make_unique<H5State>();
  s->gzip = gzip;
  Hid fcpl = own(H5Pcreate(H5P_FILE_CREATE), "H5Pcreate", part_path);
  check(H5Pset_obj_track_times(fcpl, false), "H5Pset_obj_track_times", part_path);
  check(H5Pset_link_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED), "H5Pset_link_creation_order",
        part_path);
  keep_attrs_in_header(fcpl, part_path);  // the root group's: the run's identity
  keep_links_in_header(fcpl, part_path);
  check(H5Pset_userblock(fcpl, kSealBytes), "H5Pset_userblock", part_path);  // seal.hpp: commit() fills it
  Hid fapl = own(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate", part_path);
  // The HDF5 1.8 file format: its superblock and object headers (and so every attribute
  // and link kept in them) carry checksums, so a damaged header or attribute reads as
  // corrupt instead of absent (issue 37); what it leaves unchecked (the chunk index, the
  // global heap) the seal covers (seal.hpp). Not 1.10's: its superblock marks a file
  // open for writing, and a killed run's .part could then not be read without h5clear.
  check(H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18), "H5Pset_libver_bounds", part_path);
  // Closing the file closes whatever is still open in it: a clean close on every path.
  check(H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG), "H5Pset_fclose_degree", part_path);
  s->file = own(H5Fcreate(part_path.c_str(), H5F_ACC_TRUNC, fcpl, fapl), "H5Fcreate", part_path);

  Hid gcpl = group_props(part_path);
  s->metrics = own(H5Gcreate2(s->file, "metrics", H5P_DEFAULT, gcpl, H5P_DEFAULT), "H5Gcreate2", "/metrics");
  s->snapshots = own(H5Gcreate2(s->file, "snapshots", H5P_DEFAULT, gcpl, H5P_DEFAULT), "H5Gcreate2", "/snapshots");

  Layout l{{0}, {H5S_UNLIMITED}, {kTickChunk}, 0, false};
  s->tick = create_dataset(s->metrics, "tick", "/metrics/tick", H5T_STD_I32LE, l);
  describe(s->tick, "/metrics/tick", "month", "model month (tick 0 = January 2025)");
  set_scale(s->tick, "tick", "/metrics/tick");
  s->date = create_dataset(s->metrics, "date", "/metrics/date", H5T_STD_I32LE, l);
  describe(s->date, "/metrics/date", "days since 2025-01-01", "first day of the tick's month");
  put_attr(s->date, "/metrics/date", "calendar", "standard");
  attach(s->date, s->tick, 0, "/metrics/date");
  h5 = std::move(s);
}

void OutputWriter::Impl::close_file() {
  if (!h5) return;
  std::unique_ptr<H5State> s = std::move(h5);
  const hid_t f = s->file.release();
  s.reset();  // datasets and groups first
  if (f >= 0 && H5Fclose(f) < 0) {
    h5::note_failed_close();
    h5::fail("H5Fclose", part_path);
  }
}

/// Runs a task under the HDF5 lock, keeping the first error for the caller.
void OutputWriter::Impl::guarded(const std::function<void()>& fn) {
  std::exception_ptr e;
  try {
    std::lock_guard<std::mutex> g(hdf5_mutex());
    const h5::FileContext file(part_path);
    fn();
  } catch (const FileError&) {
    e = std::current_exception();  // names the file already
  } catch (const std::exception& x) {
    e = std::make_exception_ptr(std::runtime_error(std::string(x.what()) + " [" + part_path + "]"));
  } catch (...) {
    e = std::current_exception();
  }
  if (e) {
    std::lock_guard<std::mutex> lk(mu);
    if (!error) error = e;
  }
}

void OutputWriter::Impl::run() {
  {
    // Error printing is per thread where HDF5 is built thread-safe (Debian's is).
    std::lock_guard<std::mutex> g(hdf5_mutex());
    h5::set_error_printing();
  }
  for (;;) {
    Task t;
    bool skip = false;
    {
      std::unique_lock<std::mutex> lk(mu);
      cv_work.wait(lk, [&] { return !queue.empty() || stopping; });
      if (queue.empty()) break;
      t = std::move(queue.front());
      queue.pop_front();
      busy = true;
      skip = aborting || error;  // after an error the file is abandoned: don't add to it
    }
    if (!skip) guarded(t.fn);
    t.fn = nullptr;  // free the copy before it stops counting
    {
      std::lock_guard<std::mutex> lk(mu);
      in_flight -= t.bytes;
      busy = false;
    }
    cv_done.notify_all();
  }
  guarded([this] { close_file(); });
  cv_done.notify_all();
}

// ---------------------------------------------------------------------------
// Tasks
// ---------------------------------------------------------------------------

void OutputWriter::Impl::do_dim(const std::string& name, hid_t ftype, hid_t mtype, const void* buf, hsize_t n,
                                const std::string& units, const std::string& long_name) {
  const std::string path = "/metrics/" + name;
  Hid ds = create_dataset(h5->metrics, name, path, ftype, fixed_layout(n, ftype));
  check(H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), "H5Dwrite", path);
  describe(ds, path, units, long_name);
  put_strings_digest(ds, path, ftype, buf, n);
  set_scale(ds, name, path);
  h5->scales[name] = std::move(ds);
}

void OutputWriter::Impl::do_coord(const std::string& name, const std::string& dim, hid_t ftype, hid_t mtype,
                                  const void* buf, hsize_t n, const std::string& units, const std::string& long_name) {
  const std::string path = "/metrics/" + name;
  Hid ds = create_dataset(h5->metrics, name, path, ftype, fixed_layout(n, ftype));
  check(H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), "H5Dwrite", path);
  describe(ds, path, units, long_name);
  put_strings_digest(ds, path, ftype, buf, n);
  attach(ds, h5->scales.at(dim), 0, path);
  h5->coords.emplace_back(name, dim);
}

void OutputWriter::Impl::do_metric(const std::string& name, const std::vector<std::string>& dim_names,
                                   const std::string& units, const std::string& long_name, DType type) {
  H5State::Metric m;
  m.path = "/metrics/" + name;
  m.dims = dim_names;
  std::vector<hsize_t> fixed;
  for (const std::string& d : dim_names) fixed.push_back(rows(h5->scales.at(d), m.path));
  for (hsize_t d : fixed) m.cells *= d;
  Layout l;
  l.chunk = metric_chunk(fixed, dtype_size(type));
  l.dims = fixed;
  l.dims.insert(l.dims.begin(), h5->ticks);
  l.maxdims = l.dims;
  l.maxdims[0] = H5S_UNLIMITED;
  l.gzip = h5->gzip;
  l.nan_fill = type == DType::F32 || type == DType::F64;
  m.ds = create_dataset(h5->metrics, name, m.path, file_type(type), l);
  describe(m.ds, m.path, units, long_name);
  attach(m.ds, h5->tick, 0, m.path);
  for (std::size_t i = 0; i < dim_names.size(); ++i)
    attach(m.ds, h5->scales.at(dim_names[i]), static_cast<unsigned>(i + 1), m.path);
  h5->metric.push_back(std::move(m));
}

void OutputWriter::Impl::do_array(const std::string& name, const std::vector<std::string>& dim_names,
                                  const std::string& units, const std::string& long_name, DType type) {
  H5State::Metric a;
  a.path = "/metrics/" + name;
  a.dims = dim_names;
  Layout l;
  for (const std::string& d : dim_names) l.dims.push_back(d == "tick" ? h5->ticks : rows(h5->scales.at(d), a.path));
  // Chunks: whole trailing dims, leading dims cut to 1 until a chunk fits the target size.
  l.chunk = l.dims;
  auto bytes = [&] {
    hsize_t b = dtype_size(type);
    for (hsize_t c : l.chunk) b *= c;
    return b;
  };
  for (std::size_t i = 0; i + 1 < l.chunk.size() && bytes() > kTargetChunkBytes; ++i) l.chunk[i] = 1;
  while (bytes() > kMaxChunkBytes) {
    hsize_t& big = *std::max_element(l.chunk.begin(), l.chunk.end());
    big = (big + 1) / 2;
  }
  l.gzip = h5->gzip;
  l.nan_fill = type == DType::F32 || type == DType::F64;
  a.ds = create_dataset(h5->metrics, name, a.path, file_type(type), l);
  describe(a.ds, a.path, units, long_name);
  for (std::size_t i = 0; i < dim_names.size(); ++i)
    attach(a.ds, dim_names[i] == "tick" ? hid_t(h5->tick) : hid_t(h5->scales.at(dim_names[i])),
           static_cast<unsigned>(i), a.path);
  h5->arrays.push_back(std::move(a));
}

void OutputWriter::Impl::do_end_tick(int tick) {
  const hsize_t t = static_cast<hsize_t>(tick);
  const std::int32_t date = days_since_2025(tick), value = tick;
  grow(h5->tick, t + 1, "/metrics/tick");
  write_rows(h5->tick, t, 1, H5T_NATIVE_INT32, &value, "/metrics/tick");
  grow(h5->date, t + 1, "/metrics/date");
  write_rows(h5->date, t, 1, H5T_NATIVE_INT32, &date, "/metrics/date");
  for (H5State::Metric& m : h5->metric) grow(m.ds, t + 1, m.path);
  h5->ticks = t + 1;
  check(H5Fflush(h5->file, H5F_SCOPE_GLOBAL), "H5Fflush", part_path);
}

void OutputWriter::Impl::do_population(const std::string& pop, hsize_t n) {
  H5State::Population p;
  p.path = "/snapshots/" + pop;
  Hid gcpl = group_props(p.path);
  p.group = own(H5Gcreate2(h5->snapshots, pop.c_str(), H5P_DEFAULT, gcpl, H5P_DEFAULT), "H5Gcreate2", p.path);

  const Layout unlimited{{0}, {H5S_UNLIMITED}, {kTickChunk}, 0, false};
  p.snapshot = create_dataset(p.group, "snapshot", p.path + "/snapshot", H5T_STD_I32LE, unlimited);
  describe(p.snapshot, p.path + "/snapshot", "1", "snapshot index");
  set_scale(p.snapshot, "snapshot", p.path + "/snapshot");

  // Agent index 0..n-1, written in blocks so a large population needs little memory.
  const std::string agent_path = p.path + "/" + pop;
  p.agent = create_dataset(p.group, pop, agent_path, H5T_STD_U64LE, fixed_layout(n, H5T_STD_U64LE));
  std::vector<std::uint64_t> block(static_cast<std::size_t>(std::min(n, kIndexBlock)));
  for (hsize_t start = 0; start < n; start += block.size()) {
    const hsize_t count = std::min<hsize_t>(block.size(), n - start);
    for (hsize_t i = 0; i < count; ++i) block[i] = start + i;
    write_rows(p.agent, start, count, H5T_NATIVE_UINT64, block.data(), agent_path);
  }
  describe(p.agent, agent_path, "1", "index of the agent in population " + pop);
  set_scale(p.agent, pop, agent_path);

  p.snapshot_tick = create_dataset(p.group, "snapshot_tick", p.path + "/snapshot_tick", H5T_STD_I32LE, unlimited);
  describe(p.snapshot_tick, p.path + "/snapshot_tick", "month", "tick of the snapshot (tick 0 = January 2025)");
  attach(p.snapshot_tick, p.snapshot, 0, p.path + "/snapshot_tick");
  h5->pops.emplace(pop, std::move(p));
}

void OutputWriter::Impl::do_snapshot(const std::string& pop, const std::string& field, DType type,
                                     const std::string& units, const std::string& long_name, hsize_t index, int tick,
                                     const void* data) {
  H5State::Population& p = h5->pops.at(pop);
  const std::string path = p.path + "/" + field;
  auto it = p.fields.find(field);
  if (it == p.fields.end()) {
    const hsize_t n = rows(p.agent, p.path + "/" + pop);
    Layout l;
    l.dims = {0, n};
    l.maxdims = {H5S_UNLIMITED, n};
    l.chunk = {1, std::clamp<hsize_t>(kMaxChunkBytes / dtype_size(type), 1, n)};
    l.gzip = h5->gzip;
    Hid ds = create_dataset(p.group, field, path, file_type(type), l);
    describe(ds, path, units, long_name);
    put_attr(ds, path, "coordinates", "snapshot_tick");  // xarray: a coordinate, not data
    attach(ds, p.snapshot, 0, path);
    attach(ds, p.agent, 1, path);
    it = p.fields.emplace(field, std::move(ds)).first;
  }
  if (rows(p.snapshot, p.path + "/snapshot") <= index) {
    const std::int32_t idx = static_cast<std::int32_t>(index), t = tick;
    grow(p.snapshot, index + 1, p.path + "/snapshot");
    write_rows(p.snapshot, index, 1, H5T_NATIVE_INT32, &idx, p.path + "/snapshot");
    grow(p.snapshot_tick, index + 1, p.path + "/snapshot_tick");
    write_rows(p.snapshot_tick, index, 1, H5T_NATIVE_INT32, &t, p.path + "/snapshot_tick");
  }
  grow(it->second, index + 1, path);
  write_rows(it->second, index, 1, mem_type(type), data, path);
}

/// Before the final close: every field as long as its population's snapshot axis (readers
/// expect variables to span their unlimited dims), and a CF `coordinates` attribute so
/// xarray shows `date` and the auxiliary coordinates as coordinates of each metric.
void OutputWriter::Impl::do_finish() {
  for (auto& [name, p] : h5->pops) {
    const hsize_t n = rows(p.snapshot, p.path + "/snapshot");
    for (auto& [field, ds] : p.fields) grow(ds, n, p.path + "/" + field);
  }
  for (H5State::Metric& m : h5->metric) {
    std::string list = "date";
    for (const auto& [coord, dim] : h5->coords)
      if (std::find(m.dims.begin(), m.dims.end(), dim) != m.dims.end()) list += " " + coord;
    put_attr(m.ds, m.path, "coordinates", list);
  }
  for (H5State::Metric& a : h5->arrays) {
    std::string list;
    const bool ticked = std::find(a.dims.begin(), a.dims.end(), "tick") != a.dims.end();
    if (ticked && h5->ticks > 0) list = "date";
    for (const auto& [coord, dim] : h5->coords)
      if (std::find(a.dims.begin(), a.dims.end(), dim) != a.dims.end()) list += (list.empty() ? "" : " ") + coord;
    if (!list.empty()) put_attr(a.ds, a.path, "coordinates", list);
  }
}

// ---------------------------------------------------------------------------
// Public API (caller thread)
// ---------------------------------------------------------------------------

OutputWriter::OutputWriter(const std::string& final_path, std::size_t max_bytes_in_flight, int gzip_level)
    : impl_(std::make_unique<Impl>()) {
  if (final_path.empty()) throw std::invalid_argument("cutoff::OutputWriter: empty output path");
  if (gzip_level < 0 || gzip_level > 9) throw std::invalid_argument("cutoff::OutputWriter: gzip level must be 0..9");
  Impl& im = *impl_;
  im.final_path = final_path;
  im.part_path = final_path + ".part";
  im.max_bytes = max_bytes_in_flight;
  im.gzip = gzip_level;
  {
    std::lock_guard<std::mutex> g(hdf5_mutex());
    h5::set_error_printing();  // errors become exceptions, not stderr noise (docs: hdf5.hpp)
    const h5::FileContext file(im.part_path);
    if (gzip_level > 0 && H5Zfilter_avail(H5Z_FILTER_DEFLATE) <= 0)
      throw std::runtime_error("cutoff::OutputWriter: this HDF5 has no deflate filter");
    std::error_code ec;
    fs::remove(im.part_path, ec);  // a stale .part from a killed run
    try {
      im.create_file();
    } catch (...) {
      im.h5.reset();
      fs::remove(im.part_path, ec);
      throw;
    }
  }
  try {
    im.worker = std::thread([&im] { im.run(); });
  } catch (...) {
    std::lock_guard<std::mutex> g(hdf5_mutex());
    try {
      im.close_file();
    } catch (...) {
    }
    std::error_code ec;
    fs::remove(im.part_path, ec);
    throw;
  }
}

OutputWriter::~OutputWriter() {
  Impl& im = *impl_;
  if (im.worker.joinable()) im.stop(/*abort=*/!im.committed);
  if (!im.committed) {
    std::error_code ec;
    fs::remove(im.part_path, ec);
  }
}

void OutputWriter::attr(const std::string& name, const std::string& v) {
  Impl* im = impl_.get();
  im->enqueue(name.size() + v.size(), [&] { return [im, name, v] { put_attr(im->h5->file, "/", name, v); }; });
}

void OutputWriter::attr(const std::string& name, double v) {
  Impl* im = impl_.get();
  im->enqueue(
      0, [&] { return [im, name, v] { put_attr(im->h5->file, "/", name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v); }; });
}

void OutputWriter::attr_int(const std::string& name, std::int64_t v) {
  Impl* im = impl_.get();
  im->enqueue(
      0, [&] { return [im, name, v] { put_attr(im->h5->file, "/", name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v); }; });
}

void OutputWriter::dim(const std::string& name, const std::vector<std::string>& labels, const std::string& long_name) {
  Impl* im = impl_.get();
  im->new_name(name);
  if (labels.empty()) throw std::invalid_argument("cutoff::OutputWriter: dimension '" + name + "' is empty");
  std::size_t bytes = 0;
  for (const std::string& s : labels) bytes += s.size() + sizeof(std::string);
  im->enqueue(bytes, [&] {
    return [im, name, labels, long_name] {
      std::vector<const char*> p;
      for (const std::string& s : labels) p.push_back(s.c_str());
      Hid t = vlen_utf8();
      im->do_dim(name, t, t, p.data(), p.size(), "1", long_name);
    };
  });
  im->dims[name] = labels.size();
  im->names.insert(name);
}

void OutputWriter::dim(const std::string& name, const std::vector<std::int32_t>& values, const std::string& units,
                       const std::string& long_name) {
  impl_->numeric_dim(name, values, DType::I32, units, long_name);
}

void OutputWriter::dim(const std::string& name, const std::vector<double>& values, const std::string& units,
                       const std::string& long_name) {
  impl_->numeric_dim(name, values, DType::F64, units, long_name);
}

void OutputWriter::dim(const std::string& name, const std::vector<std::int64_t>& values, const std::string& units,
                       const std::string& long_name) {
  impl_->numeric_dim(name, values, DType::I64, units, long_name);
}

void OutputWriter::coord(const std::string& name, const std::string& dim, const std::vector<double>& v,
                         const std::string& units, const std::string& long_name) {
  impl_->numeric_coord(name, dim, v, DType::F64, units, long_name);
}

void OutputWriter::coord(const std::string& name, const std::string& dim, const std::vector<std::int32_t>& v,
                         const std::string& units, const std::string& long_name) {
  impl_->numeric_coord(name, dim, v, DType::I32, units, long_name);
}

void OutputWriter::coord(const std::string& name, const std::string& dim, const std::vector<std::string>& v,
                         const std::string& units, const std::string& long_name) {
  Impl* im = impl_.get();
  im->new_name(name);
  check_coord_len(v.size(), im->dim_len(dim), name);
  std::size_t bytes = 0;
  for (const std::string& s : v) bytes += s.size() + sizeof(std::string);
  im->enqueue(bytes, [&] {
    return [im, name, dim, v, units, long_name] {
      std::vector<const char*> p;
      for (const std::string& s : v) p.push_back(s.c_str());
      Hid t = vlen_utf8();
      im->do_coord(name, dim, t, t, p.data(), p.size(), units, long_name);
    };
  });
  im->names.insert(name);
}

int OutputWriter::metric(const std::string& name, const std::vector<std::string>& dims, const std::string& units,
                         const std::string& long_name, DType type) {
  Impl* im = impl_.get();
  im->new_name(name);
  if (type == DType::U8 || type == DType::U16 || type == DType::U32)
    throw std::invalid_argument("cutoff::OutputWriter: metric '" + name + "' must be F64, F32, I32 or I64");
  hsize_t cells = 1;
  for (std::size_t i = 0; i < dims.size(); ++i) {
    cells *= im->dim_len(dims[i]);
    if (std::find(dims.begin(), dims.begin() + i, dims[i]) != dims.begin() + i)
      throw std::invalid_argument("cutoff::OutputWriter: metric '" + name + "' repeats dimension " + dims[i]);
  }
  im->enqueue(0, [&] {
    return [im, name, dims, units, long_name, type] { im->do_metric(name, dims, units, long_name, type); };
  });
  im->names.insert(name);
  im->metric_cells.push_back(cells);
  return static_cast<int>(im->metric_cells.size() - 1);
}

int OutputWriter::array(const std::string& name, const std::vector<std::string>& dims, const std::string& units,
                        const std::string& long_name, DType type) {
  Impl* im = impl_.get();
  im->new_name(name);
  if (dims.empty()) throw std::invalid_argument("cutoff::OutputWriter: array '" + name + "' has no dimensions");
  std::vector<hsize_t> shape;
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (std::find(dims.begin(), dims.begin() + i, dims[i]) != dims.begin() + i)
      throw std::invalid_argument("cutoff::OutputWriter: array '" + name + "' repeats dimension " + dims[i]);
    if (dims[i] == "tick" && im->open_tick == 0)
      throw std::invalid_argument("cutoff::OutputWriter: array '" + name + "' spans tick before any end_tick()");
    shape.push_back(dims[i] == "tick" ? static_cast<hsize_t>(im->open_tick) : im->dim_len(dims[i]));
  }
  im->enqueue(0, [&] {
    return [im, name, dims, units, long_name, type] { im->do_array(name, dims, units, long_name, type); };
  });
  im->names.insert(name);
  im->array_shapes.push_back(shape);
  return static_cast<int>(im->array_shapes.size() - 1);
}

void OutputWriter::write_block(int array, const std::vector<std::uint64_t>& lead, const double* values) {
  impl_->write_array_block(array, lead, values, DType::F64);
}

void OutputWriter::write_block(int array, const std::vector<std::uint64_t>& lead, const std::int64_t* values) {
  impl_->write_array_block(array, lead, values, DType::I64);
}

void OutputWriter::write(int metric, int tick, const double* values) {
  impl_->write_metric(metric, tick, values, DType::F64);
}

void OutputWriter::write(int metric, int tick, const std::int64_t* values) {
  impl_->write_metric(metric, tick, values, DType::I64);
}

void OutputWriter::end_tick(int tick) {
  Impl* im = impl_.get();
  im->ensure_open();
  im->rethrow();
  if (tick != im->open_tick)
    throw std::invalid_argument("cutoff::OutputWriter::end_tick: tick " + std::to_string(tick) +
                                " is not the open tick " + std::to_string(im->open_tick));
  im->enqueue(0, [&] { return [im, tick] { im->do_end_tick(tick); }; });
  ++im->open_tick;
}

void OutputWriter::snapshot_population(const std::string& population, std::uint64_t n_agents) {
  Impl* im = impl_.get();
  im->ensure_open();
  im->rethrow();
  if (!valid_name(population) || population == "snapshot" || population == "snapshot_tick")
    throw std::invalid_argument("cutoff::OutputWriter: bad population name '" + population + "'");
  if (im->pops.count(population))
    throw std::invalid_argument("cutoff::OutputWriter: population '" + population + "' declared twice");
  if (n_agents == 0) throw std::invalid_argument("cutoff::OutputWriter: population '" + population + "' has no agents");
  im->enqueue(0, [&] { return [im, population, n_agents] { im->do_population(population, n_agents); }; });
  im->pops[population].n = n_agents;
}

void OutputWriter::snapshot(const std::string& population, const std::string& field, DType type,
                            const std::string& units, const std::string& long_name, int snapshot_index, int tick,
                            const void* data, std::uint64_t n_agents) {
  Impl* im = impl_.get();
  im->ensure_open();
  im->rethrow();
  auto pit = im->pops.find(population);
  if (pit == im->pops.end())
    throw std::invalid_argument("cutoff::OutputWriter::snapshot: undeclared population '" + population + "'");
  Impl::PopInfo& p = pit->second;
  const std::string what = "/snapshots/" + population + "/" + field;
  if (!valid_name(field) || field == population || field == "snapshot" || field == "snapshot_tick")
    throw std::invalid_argument("cutoff::OutputWriter::snapshot: bad field name " + what);
  if (n_agents != p.n)
    throw std::invalid_argument("cutoff::OutputWriter::snapshot: " + what + " has " + std::to_string(n_agents) +
                                " agents, the population " + std::to_string(p.n));
  auto fit = p.fields.find(field);
  if (fit != p.fields.end() && fit->second != type)
    throw std::invalid_argument("cutoff::OutputWriter::snapshot: " + what + " changed type");
  const std::size_t known = p.ticks.size();
  if (snapshot_index < 0 || static_cast<std::size_t>(snapshot_index) > known)
    throw std::invalid_argument("cutoff::OutputWriter::snapshot: " + what + " index " + std::to_string(snapshot_index) +
                                " (next is " + std::to_string(known) + ")");
  if (static_cast<std::size_t>(snapshot_index) < known && p.ticks[static_cast<std::size_t>(snapshot_index)] != tick)
    throw std::invalid_argument("cutoff::OutputWriter::snapshot: " + what + " snapshot " +
                                std::to_string(snapshot_index) + " was taken at another tick");
  const std::size_t bytes = static_cast<std::size_t>(n_agents) * dtype_size(type);
  im->enqueue(bytes, [&] {
    std::vector<std::byte> buf(bytes);
    if (bytes) std::memcpy(buf.data(), data, bytes);
    return [im, population, field, type, units, long_name, snapshot_index, tick, buf = std::move(buf)] {
      im->do_snapshot(population, field, type, units, long_name, static_cast<hsize_t>(snapshot_index), tick,
                      buf.data());
    };
  });
  p.fields.emplace(field, type);
  if (static_cast<std::size_t>(snapshot_index) == known) p.ticks.push_back(tick);
}

void OutputWriter::drain() {
  Impl& im = *impl_;
  std::unique_lock<std::mutex> lk(im.mu);
  im.cv_done.wait(lk, [&] { return im.queue.empty() && !im.busy; });
  if (im.error) std::rethrow_exception(im.error);
}

void OutputWriter::commit() {
  Impl* im = impl_.get();
  im->ensure_open();
  im->rethrow();
  im->enqueue(0, [&] { return [im] { im->do_finish(); }; });
  im->stop(/*abort=*/false);  // runs the queue, closes the file, joins
  im->rethrow();
  seal(im->part_path);  // the whole file's checksum, in its user block (seal.hpp)
  // Make the bytes durable before the name says the run is complete.
  const int fd = ::open(im->part_path.c_str(), O_RDONLY);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    throw FileError(
        file_problem_of_errno(err), im->part_path,
        file_message(file_problem_of_errno(err), im->part_path, std::string("fsync: ") + std::strerror(err)));
  }
  ::close(fd);
  std::error_code ec;
  fs::rename(im->part_path, im->final_path, ec);  // rename(2): atomically replaces an old file
  if (ec)
    throw FileError(file_problem_of_errno(ec.value()), im->final_path,
                    file_message(file_problem_of_errno(ec.value()), im->final_path,
                                 "renaming " + im->part_path + ": " + ec.message()));
  im->committed = true;
}

const std::string& OutputWriter::part_path() const { return impl_->part_path; }
const std::string& OutputWriter::final_path() const { return impl_->final_path; }

}  // namespace cutoff
