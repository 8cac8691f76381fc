/// @file
/// Tests of the HDF5 output layer (core/io/output.hpp): layout and values read back with the
/// plain HDF5 C API, reproducibility, the .part/commit life cycle, error propagation from
/// the writer thread, the memory bound, and that xarray (h5netcdf and netcdf4 engines)
/// sees the named dimensions and the decoded calendar.

#include "core/hd/error.hpp"
#include "core/io/hdf5.hpp"
#include "core/io/output.hpp"
#include "core/io/seal.hpp"
#include "damage.hpp"

#include <gtest/gtest.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using cutoff::DType;
using cutoff::FileError;
using cutoff::FileProblem;
using cutoff::hdf5_mutex;
using cutoff::OutputWriter;
namespace h5 = cutoff::h5;

/// A fresh directory, removed with its contents at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "cutoff_output_XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// ---------------------------------------------------------------------------
// The sample run: 3 ticks, tick×country, tick×provider×class and tick-only metrics,
// two snapshot populations. Values are simple formulas the checks (and the Python
// script) recompute.
// ---------------------------------------------------------------------------

const std::vector<std::string> kCountries{"USA", "FRA", "IND"};
const std::vector<std::string> kProviders{"starlink", "oneweb"};
const std::vector<std::string> kClasses{"retail", "business", "public"};
constexpr int kTicks = 3;
constexpr std::uint64_t kFirms = 5, kUsers = 7;

double gdp(int t, int c) { return 1000.0 * t + c + 0.25; }
double subs(int t, int p, int k) { return 100.0 * t + 10.0 * p + k; }
double capital(int s, int i) { return (10.0 * s + i) * 1.5; }

void write_sample(OutputWriter& w) {
  w.attr("scenario", "baseline\nwith a second line");
  w.attr("seed", 42);
  w.attr("replicate", std::int64_t{3});
  w.attr("share", 0.125);
  w.dim("country", kCountries, "country (ISO 3166-1 alpha-3)");
  w.dim("provider", kProviders, "satellite internet provider");
  w.dim("class", kClasses, "user class");
  w.coord("population", "country", std::vector<double>{3.3e8, 6.8e7, 1.4e9}, "1", "population");
  w.coord("tier", "country", std::vector<std::int32_t>{1, 1, 2}, "1", "cutoff tier");
  w.coord("income_group", "country", std::vector<std::string>{"H", "H", "LM"}, "1", "World Bank income group");
  const int m_gdp = w.metric("gdp_loss", {"country"}, "USD", "GDP loss");
  const int m_subs = w.metric("subscribers", {"provider", "class"}, "1", "subscribers");
  const int m_firms = w.metric("n_firms", {}, "1", "firms alive", DType::I64);
  w.snapshot_population("firms", kFirms);
  w.snapshot_population("users", kUsers);
  int snap = 0;
  for (int t = 0; t < kTicks; ++t) {
    std::vector<double> g, s;
    for (int c = 0; c < 3; ++c) g.push_back(gdp(t, c));
    for (int p = 0; p < 2; ++p)
      for (int k = 0; k < 3; ++k) s.push_back(subs(t, p, k));
    const std::int64_t n = 100 + t;
    w.write(m_gdp, t, g.data());
    w.write(m_subs, t, s.data());
    w.write(m_firms, t, &n);
    if (t == 0 || t == 2) {
      std::vector<std::uint8_t> alive;
      std::vector<double> cap;
      std::vector<std::uint16_t> prov;
      for (int i = 0; i < static_cast<int>(kFirms); ++i) {
        alive.push_back(static_cast<std::uint8_t>((i + snap) % 2));
        cap.push_back(capital(snap, i));
      }
      for (int i = 0; i < static_cast<int>(kUsers); ++i) prov.push_back(static_cast<std::uint16_t>(i * 3 + snap));
      w.snapshot("firms", "alive", DType::U8, "1", "firm is alive", snap, t, alive.data(), kFirms);
      w.snapshot("firms", "capital", DType::F64, "USD", "firm capital", snap, t, cap.data(), kFirms);
      w.snapshot("users", "provider", DType::U16, "1", "provider index", snap, t, prov.data(), kUsers);
      ++snap;
    }
    w.end_tick(t);
  }
}

void write_sample_file(const fs::path& out) {
  OutputWriter w(out.string());
  write_sample(w);
  w.commit();
}

// ---------------------------------------------------------------------------
// Plain HDF5 C API readers (called when no writer thread is alive, or under the lock)
// ---------------------------------------------------------------------------

/// An HDF5 id the tests require to be valid (core/io's one owner, h5::Hid, underneath;
/// the readers below are the tests' own, written apart from the code under test).
struct Id {
  explicit Id(hid_t i) : owner(i) {
    if (i < 0) throw std::runtime_error("HDF5 call failed");
  }
  operator hid_t() const { return owner; }
  h5::Hid owner;
};

Id open_file(const fs::path& p) { return Id(H5Fopen(p.string().c_str(), H5F_ACC_RDONLY, H5P_DEFAULT)); }

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_bytes(const fs::path& p, const std::string& bytes) { std::ofstream(p, std::ios::binary) << bytes; }

std::vector<hsize_t> shape(hid_t ds) {
  Id space(H5Dget_space(ds));
  std::vector<hsize_t> d(static_cast<std::size_t>(H5Sget_simple_extent_ndims(space)));
  H5Sget_simple_extent_dims(space, d.data(), nullptr);
  return d;
}

std::vector<double> read_f64(hid_t file, const std::string& path) {
  Id ds(H5Dopen2(file, path.c_str(), H5P_DEFAULT));
  hsize_t n = 1;
  for (hsize_t d : shape(ds)) n *= d;
  std::vector<double> v(n);
  if (H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0) throw std::runtime_error(path);
  return v;
}

std::vector<std::string> read_strings(hid_t file, const std::string& path) {
  Id ds(H5Dopen2(file, path.c_str(), H5P_DEFAULT));
  Id type(H5Dget_type(ds));
  EXPECT_TRUE(H5Tis_variable_str(type) > 0) << path;
  Id space(H5Dget_space(ds));
  const hsize_t n = shape(ds).at(0);
  std::vector<char*> p(n);
  if (H5Dread(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, p.data()) < 0) throw std::runtime_error(path);
  std::vector<std::string> out(p.begin(), p.end());
  H5Dvlen_reclaim(type, space, H5P_DEFAULT, p.data());
  return out;
}

std::string string_attr(hid_t obj, const std::string& name) {
  Id a(H5Aopen(obj, name.c_str(), H5P_DEFAULT));
  Id type(H5Aget_type(a));
  if (H5Tget_class(type) != H5T_STRING) throw std::runtime_error(name + " is not a string");
  if (H5Tis_variable_str(type) > 0) {
    char* p = nullptr;
    H5Aread(a, type, &p);
    std::string s = p ? p : "";
    H5free_memory(p);
    return s;
  }
  std::string s(H5Tget_size(type), '\0');
  H5Aread(a, type, s.data());
  return s.substr(0, s.find('\0'));
}

template <class T> T scalar_attr(hid_t obj, const std::string& name, hid_t mtype) {
  Id a(H5Aopen(obj, name.c_str(), H5P_DEFAULT));
  T v{};
  H5Aread(a, mtype, &v);
  return v;
}

/// Every object path below the root (groups and datasets), in name order.
std::vector<std::string> all_objects(hid_t file) {
  std::vector<std::string> out;
  H5Lvisit(
      file, H5_INDEX_NAME, H5_ITER_INC,
      [](hid_t, const char* name, const H5L_info_t*, void* d) -> herr_t {
        static_cast<std::vector<std::string>*>(d)->push_back(std::string("/") + name);
        return 0;
      },
      &out);
  return out;
}

bool is_dataset(hid_t file, const std::string& path) {
  Id o(H5Oopen(file, path.c_str(), H5P_DEFAULT));
  return H5Iget_type(o) == H5I_DATASET;
}

/// Creation/modification times of an object (0 when time tracking is off).
std::pair<time_t, time_t> times(hid_t obj) {
#if H5_VERSION_GE(1, 12, 0)
  H5O_info2_t info;
  H5Oget_info3(obj, &info, H5O_INFO_TIME);
#else
  H5O_info_t info;
  H5Oget_info2(obj, &info, H5O_INFO_TIME);
#endif
  return {info.ctime, info.mtime};
}

bool attached(hid_t file, const std::string& var, const std::string& scale, unsigned axis) {
  Id v(H5Dopen2(file, var.c_str(), H5P_DEFAULT));
  Id s(H5Dopen2(file, scale.c_str(), H5P_DEFAULT));
  return H5DSis_attached(v, s, axis) > 0;
}

std::string scale_name(hid_t file, const std::string& path) {
  Id s(H5Dopen2(file, path.c_str(), H5P_DEFAULT));
  char buf[256] = {};
  H5DSget_scale_name(s, buf, sizeof buf);
  return buf;
}

// ---------------------------------------------------------------------------
// (1) Layout and values
// ---------------------------------------------------------------------------

TEST(Output, LayoutValuesAttributesAndScales) {
  TempDir dir;
  const fs::path out = dir.path / "run.h5";
  write_sample_file(out);
  ASSERT_TRUE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out.string() + ".part"));

  Id f = open_file(out);
  Id root(H5Gopen2(f, "/", H5P_DEFAULT));
  EXPECT_EQ(string_attr(root, "scenario"), "baseline\nwith a second line");
  EXPECT_EQ(scalar_attr<std::int64_t>(root, "seed", H5T_NATIVE_INT64), 42);
  EXPECT_EQ(scalar_attr<std::int64_t>(root, "replicate", H5T_NATIVE_INT64), 3);
  EXPECT_EQ(scalar_attr<double>(root, "share", H5T_NATIVE_DOUBLE), 0.125);

  EXPECT_EQ(read_f64(f, "/metrics/tick"), (std::vector<double>{0, 1, 2}));
  EXPECT_EQ(read_f64(f, "/metrics/date"), (std::vector<double>{0, 31, 59}));
  EXPECT_EQ(read_strings(f, "/metrics/country"), kCountries);
  EXPECT_EQ(read_strings(f, "/metrics/provider"), kProviders);
  EXPECT_EQ(read_strings(f, "/metrics/class"), kClasses);
  EXPECT_EQ(read_strings(f, "/metrics/income_group"), (std::vector<std::string>{"H", "H", "LM"}));
  EXPECT_EQ(read_f64(f, "/metrics/population"), (std::vector<double>{3.3e8, 6.8e7, 1.4e9}));
  EXPECT_EQ(read_f64(f, "/metrics/tier"), (std::vector<double>{1, 1, 2}));

  std::vector<double> g, s;
  for (int t = 0; t < kTicks; ++t) {
    for (int c = 0; c < 3; ++c) g.push_back(gdp(t, c));
    for (int p = 0; p < 2; ++p)
      for (int k = 0; k < 3; ++k) s.push_back(subs(t, p, k));
  }
  EXPECT_EQ(read_f64(f, "/metrics/gdp_loss"), g);
  EXPECT_EQ(read_f64(f, "/metrics/subscribers"), s);
  EXPECT_EQ(read_f64(f, "/metrics/n_firms"), (std::vector<double>{100, 101, 102}));
  {
    Id ds(H5Dopen2(f, "/metrics/subscribers", H5P_DEFAULT));
    EXPECT_EQ(shape(ds), (std::vector<hsize_t>{3, 2, 3}));
    Id type(H5Dget_type(ds));
    EXPECT_TRUE(H5Tequal(type, H5T_IEEE_F64LE) > 0);
    Id n(H5Dopen2(f, "/metrics/n_firms", H5P_DEFAULT));
    Id ntype(H5Dget_type(n));
    EXPECT_TRUE(H5Tequal(ntype, H5T_STD_I64LE) > 0);
    EXPECT_EQ(string_attr(ds, "units"), "1");
    EXPECT_EQ(string_attr(ds, "long_name"), "subscribers");
    EXPECT_EQ(string_attr(ds, "coordinates"), "date");
    Id gl(H5Dopen2(f, "/metrics/gdp_loss", H5P_DEFAULT));
    EXPECT_EQ(string_attr(gl, "coordinates"), "date population tier income_group");
    Id date(H5Dopen2(f, "/metrics/date", H5P_DEFAULT));
    EXPECT_EQ(string_attr(date, "units"), "days since 2025-01-01");
    EXPECT_EQ(string_attr(date, "calendar"), "standard");
  }

  // Snapshots.
  EXPECT_EQ(read_f64(f, "/snapshots/firms/snapshot_tick"), (std::vector<double>{0, 2}));
  EXPECT_EQ(read_f64(f, "/snapshots/firms/snapshot"), (std::vector<double>{0, 1}));
  EXPECT_EQ(read_f64(f, "/snapshots/users/snapshot_tick"), (std::vector<double>{0, 2}));
  EXPECT_EQ(read_f64(f, "/snapshots/firms/firms"), (std::vector<double>{0, 1, 2, 3, 4}));
  EXPECT_EQ(read_f64(f, "/snapshots/firms/alive"), (std::vector<double>{0, 1, 0, 1, 0, 1, 0, 1, 0, 1}));
  std::vector<double> cap, prov;
  for (int sn = 0; sn < 2; ++sn) {
    for (int i = 0; i < 5; ++i) cap.push_back(capital(sn, i));
    for (int i = 0; i < 7; ++i) prov.push_back(i * 3 + sn);
  }
  EXPECT_EQ(read_f64(f, "/snapshots/firms/capital"), cap);
  EXPECT_EQ(read_f64(f, "/snapshots/users/provider"), prov);
  {
    Id a(H5Dopen2(f, "/snapshots/firms/alive", H5P_DEFAULT));
    Id at(H5Dget_type(a));
    EXPECT_TRUE(H5Tequal(at, H5T_STD_U8LE) > 0);
    Id u(H5Dopen2(f, "/snapshots/users/provider", H5P_DEFAULT));
    Id ut(H5Dget_type(u));
    EXPECT_TRUE(H5Tequal(ut, H5T_STD_U16LE) > 0);
  }

  // units and long_name on every variable; no time stamps on any object.
  int n_datasets = 0;
  EXPECT_EQ(times(root), (std::pair<time_t, time_t>{0, 0}));
  for (const std::string& p : all_objects(f)) {
    Id o(H5Oopen(f, p.c_str(), H5P_DEFAULT));
    EXPECT_EQ(times(o), (std::pair<time_t, time_t>{0, 0})) << p;
    if (!is_dataset(f, p)) continue;
    ++n_datasets;
    EXPECT_GT(H5Aexists(o, "units"), 0) << p;
    EXPECT_GT(H5Aexists(o, "long_name"), 0) << p;
  }
  EXPECT_EQ(n_datasets, 11 + 5 + 4);

  // Dimension scales, named like their dimension, attached on every axis.
  for (const char* d : {"tick", "country", "provider", "class"})
    EXPECT_EQ(scale_name(f, std::string("/metrics/") + d), d);
  EXPECT_EQ(scale_name(f, "/snapshots/firms/snapshot"), "snapshot");
  EXPECT_EQ(scale_name(f, "/snapshots/firms/firms"), "firms");
  EXPECT_EQ(scale_name(f, "/snapshots/users/users"), "users");
  EXPECT_TRUE(attached(f, "/metrics/date", "/metrics/tick", 0));
  EXPECT_TRUE(attached(f, "/metrics/gdp_loss", "/metrics/tick", 0));
  EXPECT_TRUE(attached(f, "/metrics/gdp_loss", "/metrics/country", 1));
  EXPECT_TRUE(attached(f, "/metrics/subscribers", "/metrics/tick", 0));
  EXPECT_TRUE(attached(f, "/metrics/subscribers", "/metrics/provider", 1));
  EXPECT_TRUE(attached(f, "/metrics/subscribers", "/metrics/class", 2));
  EXPECT_TRUE(attached(f, "/metrics/n_firms", "/metrics/tick", 0));
  for (const char* c : {"population", "tier", "income_group"})
    EXPECT_TRUE(attached(f, std::string("/metrics/") + c, "/metrics/country", 0)) << c;
  EXPECT_TRUE(attached(f, "/snapshots/firms/capital", "/snapshots/firms/snapshot", 0));
  EXPECT_TRUE(attached(f, "/snapshots/firms/capital", "/snapshots/firms/firms", 1));
  EXPECT_TRUE(attached(f, "/snapshots/firms/snapshot_tick", "/snapshots/firms/snapshot", 0));
  EXPECT_TRUE(attached(f, "/snapshots/users/provider", "/snapshots/users/users", 1));
  {
    Id tick(H5Dopen2(f, "/metrics/tick", H5P_DEFAULT));
    Id space(H5Dget_space(tick));
    hsize_t dims = 0, maxdims = 0;
    H5Sget_simple_extent_dims(space, &dims, &maxdims);
    EXPECT_EQ(maxdims, H5S_UNLIMITED);
  }
}

TEST(Output, DateIsFirstDayOfEachMonthAcrossLeapYears) {
  TempDir dir;
  const fs::path out = dir.path / "dates.h5";
  {
    OutputWriter w(out.string());
    for (int t = 0; t < 50; ++t) w.end_tick(t);
    w.commit();
  }
  Id f = open_file(out);
  const std::vector<double> days = read_f64(f, "/metrics/date");
  ASSERT_EQ(days.size(), 50u);
  EXPECT_EQ(days[12], 365);                // 2026-01-01
  EXPECT_EQ(days[38], 365 * 3 + 31 + 29);  // 2028-03-01: 2028 is a leap year
  EXPECT_EQ(days[38] - days[37], 29);
  EXPECT_EQ(days[49] - days[48], 31);  // 2029-01
}

// ---------------------------------------------------------------------------
// (2) Reproducibility: identical inputs give identical datasets and attributes
// ---------------------------------------------------------------------------

/// Raw contents of an attribute or dataset as comparable bytes (strings as text).
std::string contents(hid_t obj, bool is_attr) {
  Id type(is_attr ? H5Aget_type(obj) : H5Dget_type(obj));
  Id space(is_attr ? H5Aget_space(obj) : H5Dget_space(obj));
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  const H5T_class_t cls = H5Tget_class(type);
  std::string out = std::to_string(cls) + ":" + std::to_string(n) + ":";
  if (cls == H5T_STRING && H5Tis_variable_str(type) > 0) {
    std::vector<char*> p(static_cast<std::size_t>(n));
    if (is_attr)
      H5Aread(obj, type, p.data());
    else
      H5Dread(obj, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, p.data());
    for (char* c : p) out += std::string(c ? c : "") + '\0';
    H5Dvlen_reclaim(type, space, H5P_DEFAULT, p.data());
  } else if (cls == H5T_INTEGER || cls == H5T_FLOAT || cls == H5T_STRING) {
    std::string buf(static_cast<std::size_t>(n) * H5Tget_size(type), '\0');
    if (is_attr)
      H5Aread(obj, type, buf.data());
    else
      H5Dread(obj, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data());
    out += buf;
  }
  // Other classes are the dimension-scale bookkeeping (object references): compared by
  // class and count here; test (1) checks the attachments themselves.
  return out;
}

std::string describe_file(const fs::path& p) {
  Id f = open_file(p);
  std::string out;
  std::vector<std::string> objects = all_objects(f);
  objects.insert(objects.begin(), "/");
  for (const std::string& path : objects) {
    Id o(H5Oopen(f, path.c_str(), H5P_DEFAULT));
    out += "#" + path + "\n";
    if (H5Iget_type(o) == H5I_DATASET) out += contents(o, false) + "\n";
    std::vector<std::string> names;
    H5Aiterate2(
        o, H5_INDEX_NAME, H5_ITER_INC, nullptr,
        [](hid_t, const char* name, const H5A_info_t*, void* d) -> herr_t {
          static_cast<std::vector<std::string>*>(d)->push_back(name);
          return 0;
        },
        &names);
    for (const std::string& a : names) {
      Id attr(H5Aopen(o, a.c_str(), H5P_DEFAULT));
      out += "@" + a + "=" + contents(attr, true) + "\n";
    }
  }
  return out;
}

TEST(Output, IdenticalInputsGiveIdenticalContents) {
  TempDir dir;
  const fs::path a = dir.path / "a.h5", b = dir.path / "b.h5";
  // Two writers at once (each with its own caller thread): exercises the process-wide
  // HDF5 lock as well.
  std::exception_ptr err;
  std::thread other([&] {
    try {
      write_sample_file(b);
    } catch (...) {
      err = std::current_exception();
    }
  });
  write_sample_file(a);
  other.join();
  if (err) std::rethrow_exception(err);

  const std::string da = describe_file(a), db = describe_file(b);
  EXPECT_GT(da.size(), 1000u);
  EXPECT_EQ(da, db);
  if (std::system("command -v h5diff > /dev/null 2>&1") == 0) {
    const std::string cmd = "h5diff '" + a.string() + "' '" + b.string() + "' > /dev/null 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
}

// ---------------------------------------------------------------------------
// (3) Life cycle: .part, commit, abort
// ---------------------------------------------------------------------------

TEST(Output, AbandonedWriterLeavesNothingAndKeepsOldOutput) {
  TempDir dir;
  const fs::path out = dir.path / "OUT.h5", part = dir.path / "OUT.h5.part";
  std::ofstream(out) << "previous run";
  std::ofstream(part) << "stale part";
  {
    OutputWriter w(out.string());
    EXPECT_EQ(w.part_path(), part.string());
    EXPECT_NE(slurp(part), "stale part");  // replaced by the new file
    write_sample(w);
    w.drain();
    EXPECT_TRUE(fs::exists(part));
  }  // destroyed without commit
  EXPECT_FALSE(fs::exists(part));
  EXPECT_EQ(slurp(out), "previous run");

  // An exception unwinding through the run does the same.
  EXPECT_THROW(
      {
        OutputWriter w(out.string());
        w.dim("country", kCountries, "country");
        throw std::runtime_error("the run failed");
      },
      std::runtime_error);
  EXPECT_FALSE(fs::exists(part));
  EXPECT_EQ(slurp(out), "previous run");

  // Commit replaces the old output.
  write_sample_file(out);
  EXPECT_FALSE(fs::exists(part));
  EXPECT_GT(H5Fis_hdf5(out.string().c_str()), 0);
}

TEST(Output, KilledRunPartHoldsFinishedTicks) {
  TempDir dir;
  const fs::path out = dir.path / "OUT.h5";
  OutputWriter w(out.string());
  w.dim("country", kCountries, "country");
  const int m = w.metric("gdp_loss", {"country"}, "USD", "GDP loss");
  for (int t = 0; t < 2; ++t) {
    const double v[3] = {gdp(t, 0), gdp(t, 1), gdp(t, 2)};
    w.write(m, t, v);
    w.end_tick(t);
  }
  w.drain();  // everything up to the flush of tick 1 is on disk
  // What a post-mortem finds on disk: a copy of the still-open .part, read under the lock
  // (the writer thread is idle but alive).
  const fs::path copy = dir.path / "post_mortem.h5";
  fs::copy_file(w.part_path(), copy);
  std::lock_guard<std::mutex> g(cutoff::hdf5_mutex());
  Id f = open_file(copy);
  EXPECT_EQ(read_f64(f, "/metrics/tick"), (std::vector<double>{0, 1}));
  EXPECT_EQ(read_f64(f, "/metrics/gdp_loss"), (std::vector<double>{0.25, 1.25, 2.25, 1000.25, 1001.25, 1002.25}));
}

TEST(Output, CommitFailureRemovesPart) {
  TempDir dir;
  const fs::path out = dir.path / "OUT.h5";
  fs::create_directories(out / "occupied");  // rename onto a non-empty directory fails
  {
    OutputWriter w(out.string());
    write_sample(w);
    EXPECT_THROW(w.commit(), std::runtime_error);
    EXPECT_THROW(w.end_tick(kTicks), std::logic_error);
  }
  EXPECT_FALSE(fs::exists(out.string() + ".part"));
  EXPECT_TRUE(fs::is_directory(out / "occupied"));
}

TEST(Output, ErrorsBecomeExceptions) {
  TempDir dir;
  try {
    OutputWriter w((dir.path / "no" / "such" / "dir.h5").string());
    ADD_FAILURE() << "created a file in a missing directory";
  } catch (const FileError& e) {
    // The one translator (hdf5.hpp): the cause from HDF5's file driver, the file, one line.
    EXPECT_EQ(e.problem(), FileProblem::NotFound) << e.what();
    EXPECT_EQ(e.file(), (dir.path / "no" / "such" / "dir.h5.part").string());
    EXPECT_NE(std::string(e.what()).find("not found"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
  }

  const fs::path out = dir.path / "OUT.h5";
  {
    OutputWriter w(out.string());
    w.dim("country", kCountries, "country");
    const int m = w.metric("gdp_loss", {"country"}, "USD", "GDP loss");
    const double v[3] = {};
    EXPECT_THROW(w.metric("x", {"nope"}, "1", "x"), std::invalid_argument);
    EXPECT_THROW(w.dim("country", kCountries, "again"), std::invalid_argument);
    EXPECT_THROW(w.write(m + 1, 0, v), std::invalid_argument);
    EXPECT_THROW(w.write(m, 1, v), std::invalid_argument);
    EXPECT_THROW(w.end_tick(1), std::invalid_argument);
    EXPECT_THROW(w.coord("pop", "country", std::vector<double>{1, 2}, "1", "pop"), std::invalid_argument);
    w.snapshot_population("firms", 2);
    const double cap[2] = {};
    EXPECT_THROW(w.snapshot("firms", "cap", DType::F64, "1", "c", 1, 0, cap, 2), std::invalid_argument);
    EXPECT_THROW(w.snapshot("firms", "cap", DType::F64, "1", "c", 0, 0, cap, 3), std::invalid_argument);
    EXPECT_THROW(w.snapshot("users", "cap", DType::F64, "1", "c", 0, 0, cap, 2), std::invalid_argument);

    // An HDF5 failure on the writer thread (an empty attribute name is rejected by
    // H5Acreate) surfaces on the caller's next call, naming the HDF5 call and object.
    w.attr("", "x");
    try {
      w.drain();
      ADD_FAILURE() << "no error from the writer thread";
    } catch (const std::runtime_error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("HDF5 H5A"), std::string::npos) << what;
      EXPECT_NE(what.find(out.string() + ".part"), std::string::npos) << what;
    }
    EXPECT_THROW(w.write(m, 0, v), std::runtime_error);
    EXPECT_THROW(w.commit(), std::runtime_error);
  }
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out.string() + ".part"));
}

TEST(Output, ChunksCarryChecksumsAndADamagedOneIsNamed) {
  TempDir dir;
  const std::string out = (dir.path / "OUT.h5").string();
  {
    OutputWriter w(out);
    write_sample(w);
    w.commit();
  }
  {
    std::lock_guard<std::mutex> g(hdf5_mutex());
    Id f = open_file(out);
    h5::Hid ds(H5Dopen2(f, "/metrics/gdp_loss", H5P_DEFAULT));
    h5::Hid dcpl(H5Dget_create_plist(ds));
    bool fletcher = false;
    for (int k = 0; k < H5Pget_nfilters(dcpl); ++k)
      fletcher |= H5Pget_filter2(dcpl, static_cast<unsigned>(k), nullptr, nullptr, nullptr, 0, nullptr, nullptr) ==
                  H5Z_FILTER_FLETCHER32;
    EXPECT_TRUE(fletcher) << "no Fletcher-32 filter on a chunked dataset";
    EXPECT_NO_THROW(h5::verify_dataset(ds, "/metrics/gdp_loss"));
  }
  cutoff::test::damage_first_chunk(out, "/metrics/gdp_loss");
  std::lock_guard<std::mutex> g(hdf5_mutex());
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  Id f = open_file(out);
  h5::Hid ds(H5Dopen2(f, "/metrics/gdp_loss", H5P_DEFAULT));
  const h5::FileContext context(out);
  try {
    h5::verify_dataset(ds, "/metrics/gdp_loss");
    ADD_FAILURE() << "a damaged chunk read back";
  } catch (const FileError& e) {
    EXPECT_EQ(e.problem(), FileProblem::Corrupt) << e.what();
    EXPECT_NE(std::string(e.what()).find("/metrics/gdp_loss"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(out), std::string::npos) << e.what();
  }
  // Not NaN: reading it fails.
  std::vector<double> v(64);
  EXPECT_LT(H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), 0);
  H5Eclear2(H5E_DEFAULT);
  h5::Hid other(H5Dopen2(f, "/metrics/tick", H5P_DEFAULT));
  EXPECT_NO_THROW(h5::verify_dataset(other, "/metrics/tick"));
}

/// Every dataset of @p group (recursively) under a checksum: a numeric one chunked with
/// Fletcher-32, a variable-length string one compact (its heap references in the
/// checksummed object header) with the digest of its strings; each counted in @p n.
void expect_checksummed(hid_t group, const std::string& path, int* n) {
  std::pair<std::string, int*> ctx{path, n};
  H5Literate(
      group, H5_INDEX_NAME, H5_ITER_INC, nullptr,
      [](hid_t g, const char* name, const H5L_info_t*, void* p) -> herr_t {
        auto& [where, count] = *static_cast<std::pair<std::string, int*>*>(p);
        const std::string what = where + "/" + name;
        H5O_info_t info;
        H5Oget_info_by_name(g, name, &info, H5P_DEFAULT);
        if (info.type == H5O_TYPE_GROUP) {
          Id sub(H5Gopen2(g, name, H5P_DEFAULT));
          expect_checksummed(sub, what, count);
          return 0;
        }
        Id ds(H5Dopen2(g, name, H5P_DEFAULT));
        Id dcpl(H5Dget_create_plist(ds));
        Id type(H5Dget_type(ds));
        ++*count;
        if (H5Tis_variable_str(type) > 0) {
          EXPECT_EQ(H5Pget_layout(dcpl), H5D_COMPACT) << what;
          const std::vector<std::string> v = h5::read_strings(ds, what);
          std::vector<const char*> c;
          for (const std::string& x : v) c.push_back(x.c_str());
          EXPECT_EQ(h5::attr_text(ds, h5::kStringsDigest), h5::strings_digest(c.data(), c.size())) << what;
          return 0;
        }
        bool fletcher = false;
        for (int k = 0; k < H5Pget_nfilters(dcpl); ++k)
          fletcher |= H5Pget_filter2(dcpl, static_cast<unsigned>(k), nullptr, nullptr, nullptr, 0, nullptr, nullptr) ==
                      H5Z_FILTER_FLETCHER32;
        EXPECT_EQ(H5Pget_layout(dcpl), H5D_CHUNKED) << what;
        EXPECT_TRUE(fletcher) << what << " has no Fletcher-32 filter";
        return 0;
      },
      &ctx);
}

TEST(Output, EveryDatasetIsUnderAChecksumAndTheFileUnderASeal) {
  TempDir dir;
  const fs::path out = dir.path / "OUT.h5";
  write_sample_file(out);
  {
    std::lock_guard<std::mutex> g(hdf5_mutex());
    Id f = open_file(out);
    int n = 0;
    expect_checksummed(f, "", &n);
    EXPECT_GE(n, 16) << "datasets visited";  // coordinates, metrics, snapshots, agent indexes
  }
  EXPECT_EQ(cutoff::check_seal(out.string()), cutoff::Seal::Matches);
  // Any byte after the user block changes the seal's digest; a cut changes its count.
  const std::string bytes = read_bytes(out);
  for (std::size_t at : {std::size_t{cutoff::kSealBytes}, bytes.size() / 2, bytes.size() - 1}) {
    std::string flipped = bytes;
    flipped[at] = static_cast<char>(flipped[at] ^ 0x01);
    write_bytes(out, flipped);
    std::string why;
    EXPECT_EQ(cutoff::check_seal(out.string(), &why), cutoff::Seal::Differs) << "byte " << at;
    EXPECT_NE(why.find("SHA-256"), std::string::npos) << why;
  }
  write_bytes(out, bytes.substr(0, bytes.size() - 100));
  std::string why;
  EXPECT_EQ(cutoff::check_seal(out.string(), &why), cutoff::Seal::Differs);
  EXPECT_NE(why.find("bytes after the user block"), std::string::npos) << why;
  write_bytes(out, "an HDF5 file of another program");
  EXPECT_EQ(cutoff::check_seal(out.string()), cutoff::Seal::Unsealed);
}

TEST(Output, BoundedMemoryInFlight) {
  TempDir dir;
  const fs::path out = dir.path / "OUT.h5";
  constexpr std::uint64_t n = 512;  // 4 KiB per snapshot, 1 KiB allowed in flight
  constexpr int snaps = 64;
  {
    OutputWriter w(out.string(), 1024);
    w.snapshot_population("users", n);
    std::vector<double> v(n);
    for (int s = 0; s < snaps; ++s) {
      for (std::uint64_t i = 0; i < n; ++i) v[i] = s * 1000.0 + static_cast<double>(i);
      w.snapshot("users", "wealth", DType::F64, "USD", "wealth", s, s, v.data(), n);
      w.end_tick(s);
    }
    w.commit();
  }
  Id f = open_file(out);
  const std::vector<double> got = read_f64(f, "/snapshots/users/wealth");
  ASSERT_EQ(got.size(), n * snaps);
  for (int s = 0; s < snaps; ++s) EXPECT_EQ(got[s * n + 17], s * 1000.0 + 17) << s;
}

TEST(Output, OptionalGzip) {
  TempDir dir;
  const fs::path out = dir.path / "OUT.h5";
  {
    OutputWriter w(out.string(), std::size_t{1} << 20, 4);
    write_sample(w);
    w.commit();
  }
  Id f = open_file(out);
  Id ds(H5Dopen2(f, "/metrics/subscribers", H5P_DEFAULT));
  Id dcpl(H5Dget_create_plist(ds));
  ASSERT_EQ(H5Pget_nfilters(dcpl), 2);  // deflate, then the checksum over the stored bytes
  unsigned flags = 0, level = 0;
  std::size_t nvalues = 1;
  EXPECT_EQ(H5Pget_filter2(dcpl, 0, &flags, &nvalues, &level, 0, nullptr, nullptr), H5Z_FILTER_DEFLATE);
  EXPECT_EQ(level, 4u);
  EXPECT_EQ(H5Pget_filter2(dcpl, 1, nullptr, nullptr, nullptr, 0, nullptr, nullptr), H5Z_FILTER_FLETCHER32);
  EXPECT_EQ(read_f64(f, "/metrics/n_firms"), (std::vector<double>{100, 101, 102}));
  EXPECT_THROW(OutputWriter((dir.path / "bad.h5").string(), 1024, 10), std::invalid_argument);
}

// ---------------------------------------------------------------------------
// (4) xarray, both engines
// ---------------------------------------------------------------------------

constexpr const char* kXarrayCheck = R"PY(
import sys
import numpy as np
import xarray as xr

path = sys.argv[1]
countries = ["USA", "FRA", "IND"]
gdp = np.array([[1000.0 * t + c + 0.25 for c in range(3)] for t in range(3)])
subs = np.array([[[100.0 * t + 10.0 * p + k for k in range(3)] for p in range(2)] for t in range(3)])
for engine in ("h5netcdf", "netcdf4"):
    with xr.open_dataset(path, group="metrics", engine=engine) as ds:
        assert ds["gdp_loss"].dims == ("tick", "country"), (engine, ds["gdp_loss"].dims)
        assert ds["subscribers"].dims == ("tick", "provider", "class"), (engine, ds["subscribers"].dims)
        assert ds["n_firms"].dims == ("tick",), (engine, ds["n_firms"].dims)
        assert dict(ds.sizes) == {"tick": 3, "country": 3, "provider": 2, "class": 3}, (engine, dict(ds.sizes))
        date = ds["date"]
        assert date.dtype.kind == "M", (engine, date.dtype)
        assert date.values[0] == np.datetime64("2025-01-01"), (engine, date.values)
        assert date.values[1] == np.datetime64("2025-02-01"), (engine, date.values)
        assert date.values[2] == np.datetime64("2025-03-01"), (engine, date.values)
        assert [str(c) for c in ds["country"].values] == countries, (engine, ds["country"].values)
        assert all(isinstance(c, str) for c in ds["country"].values.tolist()), (engine, ds["country"].values)
        assert list(ds["provider"].values) == ["starlink", "oneweb"], (engine, ds["provider"].values)
        assert list(ds["income_group"].values) == ["H", "H", "LM"], (engine, ds["income_group"].values)
        assert list(ds["tick"].values) == [0, 1, 2], (engine, ds["tick"].values)
        for c in ("date", "population", "tier", "income_group"):
            assert c in ds["gdp_loss"].coords, (engine, c, list(ds["gdp_loss"].coords))
        np.testing.assert_array_equal(ds["gdp_loss"].values, gdp)
        np.testing.assert_array_equal(ds["subscribers"].values, subs)
        np.testing.assert_array_equal(ds["n_firms"].values, [100, 101, 102])
        assert ds["gdp_loss"].attrs["units"] == "USD", (engine, ds["gdp_loss"].attrs)
        assert ds["gdp_loss"].attrs["long_name"] == "GDP loss", (engine, ds["gdp_loss"].attrs)
        for name, var in ds.variables.items():
            units = var.attrs.get("units", var.encoding.get("units"))
            assert units is not None and "long_name" in var.attrs, (engine, name, var.attrs)
    with xr.open_dataset(path, group="snapshots/firms", engine=engine) as ds:
        assert ds["capital"].dims == ("snapshot", "firms"), (engine, ds["capital"].dims)
        assert ds["alive"].dtype == np.uint8, (engine, ds["alive"].dtype)
        assert list(ds["snapshot_tick"].values) == [0, 2], (engine, ds["snapshot_tick"].values)
        assert "snapshot_tick" in ds["capital"].coords, (engine, list(ds["capital"].coords))
        np.testing.assert_array_equal(ds["capital"].values[1], [(10.0 + i) * 1.5 for i in range(5)])
    with xr.open_dataset(path, group="snapshots/users", engine=engine) as ds:
        assert ds["provider"].dims == ("snapshot", "users"), (engine, ds["provider"].dims)
        assert ds["provider"].dtype == np.uint16, (engine, ds["provider"].dtype)
    print("xarray ok with engine", engine)
)PY";

int run_status(const std::string& cmd) {
  const int st = std::system(cmd.c_str());
  return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::string quoted(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

TEST(Output, XarrayReadsNamedDimensionsWithBothEngines) {
  const char* env = std::getenv("CUTOFF_PYTHON");
  const std::string python = env && *env ? env : "python3";
  if (run_status(quoted(python) + " -c 'import xarray, h5netcdf, netCDF4' > /dev/null 2>&1") != 0) {
    std::printf("skipping: %s cannot import xarray, h5netcdf, netCDF4 (set CUTOFF_PYTHON)\n", python.c_str());
    GTEST_SKIP() << python << " cannot import xarray, h5netcdf, netCDF4 (set CUTOFF_PYTHON)";
  }
  TempDir dir;
  const fs::path out = dir.path / "run.h5", script = dir.path / "check.py", log = dir.path / "check.log";
  write_sample_file(out);
  std::ofstream(script) << kXarrayCheck;
  const int rc = run_status(quoted(python) + " " + quoted(script.string()) + " " + quoted(out.string()) + " > " +
                            quoted(log.string()) + " 2>&1");
  EXPECT_EQ(rc, 0) << slurp(log);
  const std::string text = slurp(log);
  EXPECT_NE(text.find("engine h5netcdf"), std::string::npos) << text;
  EXPECT_NE(text.find("engine netcdf4"), std::string::npos) << text;
}

}  // namespace
