#pragma once
/// @file
/// HDF5 output of a run: per-tick metrics in `/metrics` and per-agent snapshots in
/// `/snapshots/<population>`, laid out so that `xarray.open_dataset(path, group=...)`
/// shows named dimensions with both the h5netcdf and the netcdf4 engine.
///
/// Why it looks like this:
///  - Crash safety: everything goes to `OUT.h5.part`; `commit()` renames it to `OUT.h5`
///    (an atomic replace), so a file under the final name is always a finished run.
///    A writer destroyed without `commit()` removes the `.part`. `end_tick()` flushes, so
///    a killed run's `.part` still holds every finished tick for post-mortems.
///  - Reproducibility: object time stamps are off and chunk shapes depend only on the
///    shapes, so two runs with identical inputs write identical datasets and attributes.
///  - Speed: the tick loop never waits on disk. One background thread owns every HDF5
///    call after construction (HDF5 may be built without thread safety, and its high-level
///    dimension-scale API is never covered by HDF5's own lock); the public methods
///    copy their arguments and enqueue a task. Memory in flight is bounded: a call blocks
///    while more than `max_bytes_in_flight` bytes of copies are queued.
///  - Errors on the writer thread are kept and rethrown by the next public call (and by
///    `commit()`); HDF5's own error printing is switched off and failures become
///    `std::runtime_error`s naming the HDF5 call, the object and the file.
///
/// Layout (all variables carry `units` and `long_name`):
///   /                         root attributes set with attr()
///   /metrics/tick(tick)       int32, unlimited, units "month", 0 = January 2025
///   /metrics/date(tick)       int32 "days since 2025-01-01", calendar "standard":
///                             the first day of each tick's month
///   /metrics/<dim>(<dim>)     dimension coordinates from dim() (e.g. country, provider)
///   /metrics/<coord>(<dim>)   auxiliary coordinates from coord() (e.g. population)
///   /metrics/<metric>(tick, dims...)   from metric(); rows not written read NaN (floats) or 0
///   /snapshots/<pop>/snapshot(snapshot)          int32 0..k-1, unlimited
///   /snapshots/<pop>/<pop>(<pop>)                uint64 agent index 0..n-1
///   /snapshots/<pop>/snapshot_tick(snapshot)     int32 tick of each snapshot
///   /snapshots/<pop>/<field>(snapshot, <pop>)    typed as the field
/// (The tick's units are not "months since 2025-01": xarray cannot decode month-based
/// time units for the standard calendar and would refuse to open the group; `date` is
/// the decodable calendar coordinate.)

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

namespace cutoff {

/// Element types of metrics and snapshot fields (stored little-endian).
enum class DType { U8, U16, U32, I32, I64, F32, F64 };

/// Size in bytes of one element of @p t.
std::size_t dtype_size(DType t);

/// The process-wide lock for HDF5 calls. HDF5 may be built without thread safety, and the
/// high-level library (H5DS) is unsafe even where the core is thread-safe, so every HDF5
/// call in the process, by any code and any writer, must hold it.
/// Never call OutputWriter methods while holding it (they may wait for the writer thread).
std::mutex& hdf5_mutex();

/// Writes one run's HDF5 file; see the file comment. Not copyable; one caller thread.
class OutputWriter {
 public:
  /// Creates `final_path + ".part"` (removing a stale one; an existing @p final_path is
  /// not touched until commit()). @p gzip_level 0 stores chunks uncompressed, 1..9 deflates.
  explicit OutputWriter(const std::string& final_path, std::size_t max_bytes_in_flight = std::size_t{2} << 30,
                        int gzip_level = 0);
  /// Without a successful commit(): drops queued work, closes and removes the `.part`.
  ~OutputWriter();
  OutputWriter(const OutputWriter&) = delete;
  OutputWriter& operator=(const OutputWriter&) = delete;

  /// Root attributes (set again to overwrite).
  void attr(const std::string& name, const std::string& v);
  void attr(const std::string& name, const char* v) { attr(name, std::string(v)); }
  void attr(const std::string& name, double v);
  /// Any integer type is stored as int64 (one overload, so `attr("seed", 42)` is not ambiguous).
  template <class T, std::enable_if_t<std::is_integral_v<T>, int> = 0> void attr(const std::string& name, T v) {
    attr_int(name, static_cast<std::int64_t>(v));
  }

  /// A fixed dimension of /metrics with string labels (e.g. ISO3 country codes). The
  /// labels become the dimension coordinate, units "1".
  void dim(const std::string& name, const std::vector<std::string>& labels, const std::string& long_name);
  /// A fixed dimension with int32 coordinate values (e.g. an age band's lower bound).
  void dim(const std::string& name, const std::vector<std::int32_t>& values, const std::string& units,
           const std::string& long_name);

  /// A fixed dimension with float64 coordinate values (e.g. the values of a swept parameter).
  void dim(const std::string& name, const std::vector<double>& values, const std::string& units,
           const std::string& long_name);
  /// A fixed dimension with int64 coordinate values (e.g. an ensemble's design points).
  void dim(const std::string& name, const std::vector<std::int64_t>& values, const std::string& units,
           const std::string& long_name);

  /// Auxiliary coordinate variable `name(dim)` in /metrics, e.g. population(country).
  void coord(const std::string& name, const std::string& dim, const std::vector<double>& v, const std::string& units,
             const std::string& long_name);
  void coord(const std::string& name, const std::string& dim, const std::vector<std::int32_t>& v,
             const std::string& units, const std::string& long_name);
  void coord(const std::string& name, const std::string& dim, const std::vector<std::string>& v,
             const std::string& units, const std::string& long_name);

  /// Declares metric `name(tick, dims...)`; @p dims must have been declared with dim().
  /// May be called after ticks have been written (earlier rows stay NaN / 0).
  /// @return the id to pass to write().
  int metric(const std::string& name, const std::vector<std::string>& dims, const std::string& units,
             const std::string& long_name, DType type = DType::F64);
  /// Row @p tick of a metric: `values` holds the product of its dims' lengths, C order.
  /// @p tick must be the open tick (the number of end_tick() calls so far). Values are
  /// copied; HDF5 converts them to the metric's type (use the int64 overload for exact integers).
  void write(int metric, int tick, const double* values);
  void write(int metric, int tick, const std::int64_t* values);
  /// Closes tick @p tick (= 0, 1, 2 ...): extends `tick`, `date` and every metric, then
  /// flushes the file so a killed run keeps it.
  void end_tick(int tick);

  /// Declares a fixed-shape variable `name(dims...)` in /metrics, for files that are not one
  /// run (ensembles, summaries). Every dim must have been declared with dim(), or be `tick`
  /// (its length is then the number of end_tick() calls so far; close the ticks first).
  /// Floats never written read NaN. Written in blocks with write_block().
  /// @return the id to pass to write_block().
  int array(const std::string& name, const std::vector<std::string>& dims, const std::string& units,
            const std::string& long_name, DType type = DType::F64);
  /// One block of an array: the leading `lead.size()` indices fixed to @p lead, every
  /// element of the remaining dims (C order) from @p values, which is copied.
  void write_block(int array, const std::vector<std::uint64_t>& lead, const double* values);
  void write_block(int array, const std::vector<std::uint64_t>& lead, const std::int64_t* values);

  /// Declares population @p population (e.g. "firms") with @p n_agents > 0 agents.
  void snapshot_population(const std::string& population, std::uint64_t n_agents);
  /// Stores one field of one snapshot: row @p snapshot_index of
  /// `/snapshots/<population>/<field>`. Snapshot indices of a population run 0, 1, 2 ...
  /// (a new index must be the next one; fields of one snapshot share its @p tick).
  /// @p data (n_agents elements of @p type) is copied before return.
  void snapshot(const std::string& population, const std::string& field, DType type, const std::string& units,
                const std::string& long_name, int snapshot_index, int tick, const void* data, std::uint64_t n_agents);

  /// Waits until all queued work has been written; rethrows a writer-thread error.
  void drain();
  /// Finishes the file and renames the `.part` to the final path. Throws on any error
  /// (then the destructor removes the `.part`). No other call is allowed afterwards.
  void commit();

  const std::string& part_path() const;
  const std::string& final_path() const;

 private:
  void attr_int(const std::string& name, std::int64_t v);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cutoff
