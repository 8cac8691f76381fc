/// @file
/// The Python module `cutoff._cutoff` (issue 39): the model in-process, through the same
/// functions as `cutoff run` (core/app/run.hpp: start_run, write_run), its agent fields as
/// read-only NumPy views of the host arrays. python/api/src/cutoff/__init__.py builds the
/// public API on it (Simulation.metrics()); docs/python-api.md describes both.

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/app/backend.hpp"
#include "core/app/comm.hpp"
#include "core/app/ensemble.hpp"
#include "core/app/memory.hpp"
#include "core/app/run.hpp"
#include "core/hd/error.hpp"
#include "core/io/hdf5.hpp"
#include "core/model/scenario.hpp"
#include "core/sim/simulation.hpp"
#include "cutoff_version.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace cutoff {
namespace {

/// What errors in the Python API's overrides name as their origin (load_scenario's
/// @p origin): the argument that carried them.
constexpr const char* kSetOrigin = "set";

/// A value of `set={key: value}` as the TOML text of an override (`key=value`): a string
/// as itself (load_scenario takes raw text for a string key, TOML for the rest), a bool as
/// true/false, a number as Python writes it, a list or tuple as a TOML array.
std::string toml_text(nb::handle v, bool top) {
  if (nb::isinstance<nb::bool_>(v)) return nb::cast<bool>(v) ? "true" : "false";
  if (nb::isinstance<nb::str>(v)) {
    const std::string s = nb::cast<std::string>(v);
    return top ? s : std::string(nb::repr(v).c_str());  // inside an array: a quoted TOML string
  }
  if (nb::isinstance<nb::int_>(v) || nb::isinstance<nb::float_>(v)) return nb::str(v).c_str();
  if (nb::isinstance<nb::list>(v) || nb::isinstance<nb::tuple>(v)) {
    std::string out = "[";
    bool first = true;
    for (nb::handle item : v) {
      out += (first ? "" : ",") + toml_text(item, false);
      first = false;
    }
    return out + "]";
  }
  throw InputError(std::string(kSetOrigin) + ": value " + nb::repr(v).c_str() + " of type " +
                   nb::type_name(v.type()).c_str() + "; allowed: str, bool, int, float or a list of them");
}

/// The overrides of `set=`: a dict {key: value} in its order, or a list of "key=value" strings.
std::vector<std::string> sets_of(const nb::object& set) {
  std::vector<std::string> out;
  if (set.is_none()) return out;
  if (nb::isinstance<nb::dict>(set)) {
    for (auto [k, v] : nb::borrow<nb::dict>(set))
      out.push_back(nb::cast<std::string>(nb::str(k)) + "=" + toml_text(v, true));
    return out;
  }
  for (nb::handle item : set) {
    if (!nb::isinstance<nb::str>(item))
      throw InputError(std::string(kSetOrigin) + ": entry " + nb::repr(item).c_str() +
                       "; allowed: a dict {key: value} or a list of 'key=value' strings");
    out.push_back(nb::cast<std::string>(item));
  }
  return out;
}

/// A scenario file and its overrides, loaded and checked as `cutoff validate` loads them.
struct Scenario {
  std::string path;
  std::vector<std::string> sets;   ///< "key=value", in order
  std::vector<std::string> files;  ///< path and the files it inherits
  Params params;

  static Scenario load(const std::string& path, const std::vector<std::string>& sets) {
    std::vector<std::string> files;
    Params p = load_scenario(path, sets, kSetOrigin, &files);
    return Scenario{path, sets, std::move(files), std::move(p)};
  }
};

/// A Python Simulation: the run `cutoff run` would make (start_run) stepped from Python,
/// with the metric rows of the ticks run so far, so that write_run writes its output.
class Session {
 public:
  Session(const Scenario& sc, std::optional<std::int64_t> firms, std::optional<std::int64_t> users,
          std::optional<std::int64_t> seed, std::optional<std::int64_t> ticks, std::uint32_t replicate,
          const std::string& backend, int threads, const std::string& max_memory) {
    RunCounts counts;
    counts.firms = firms.value_or(-1);
    counts.users = users.value_or(-1);
    counts.seed = seed.value_or(-1);
    counts.ticks = ticks.value_or(-1);
    std::vector<std::string> sets = sc.sets;
    for (std::string& s : count_sets(counts)) sets.push_back(std::move(s));
    // Given counts are overrides like any other (a negative one is refused by the schema).
    for (const auto& [given, key] : {std::pair{firms, "n_firms"}, std::pair{users, "n_users"}, std::pair{seed, "seed"},
                                     std::pair{ticks, "horizon"}})
      if (given && *given < 0) sets.push_back(std::string(key) + "=" + std::to_string(*given));
    req_.params = load_scenario(sc.path, sets, kSetOrigin, &req_.inputs);
    req_.scenario_file = sc.path;
    req_.options.replicate = replicate;
    req_.options.threads = threads;
    req_.options.backend = choose_backend(backend, true);
    req_.max_memory = max_memory.empty() ? 0 : parse_bytes(max_memory, "max_memory");
    req_.command_line = "cutoff.Simulation(" + sc.path;
    for (const std::string& s : sets) req_.command_line += ", " + s;
    req_.command_line += ", replicate=" + std::to_string(replicate) + ", backend=" + req_.options.backend.name + ")";
    req_.out_origin = "save(path)";
    req_.keep_rows = true;  // metrics() after save() reads every tick's rows again
    // What `cutoff run` prints as "cutoff: warning: ..." are Python warnings here.
    req_.log = [this](const std::string& line) {
      const std::string prefix = "warning: ";
      warnings_.push_back(line.compare(0, prefix.size(), prefix) == 0 ? line.substr(prefix.size()) : line);
    };
    sim_ = start_run(req_, 0);
    rows_.resize(sim_->metrics().specs().size());
    for (const std::string& w : warnings_)
      if (PyErr_WarnEx(PyExc_UserWarning, w.c_str(), 1) != 0) throw nb::python_error();
  }

  /// Runs @p n ticks without the GIL, giving Python a chance to raise KeyboardInterrupt between ticks.
  void step(std::int64_t n) {
    const std::int64_t horizon = req_.params.horizon, at = sim_->tick();
    if (n < 0 || at + n > horizon)
      throw InputError("step(" + std::to_string(n) + "): the simulation is at tick " + std::to_string(at) + " of " +
                       std::to_string(horizon) + " (horizon); allowed: 0 to " + std::to_string(horizon - at));
    for (std::int64_t k = 0; k < n; ++k) {
      {
        nb::gil_scoped_release unlocked;
        const double start = now();
        sim_->step();
        append_rows(rows_, sim_->metrics());
        span_ = {k == 0 ? start : span_.first, now()};
      }
      if (PyErr_CheckSignals() != 0) throw nb::python_error();
    }
  }

  /// Seconds on the clock of Python's time.monotonic() (CLOCK_MONOTONIC on Linux).
  static double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }
  /// When the last step() began and ended its ticks, the GIL released.
  std::pair<double, double> last_step_span() const { return span_; }

  /// Writes @p path as `cutoff run` does (write_run): the ticks run so far, then the rest
  /// to the horizon unless @p as_is (then the file ends at the current tick).
  void write(const std::string& path, bool as_is) {
    RunRequest r = req_;
    r.out = path;
    r.log = nullptr;
    nb::gil_scoped_release unlocked;
    write_run(r, *sim_, rows_, as_is ? sim_->tick() : -1);
  }

  /// The fields of @p pop as read-only NumPy arrays over the host arrays (no copy), each
  /// keeping @p owner (this Session's Python object) alive.
  template <class Pop> nb::dict fields(const HostArrays<Pop>& arrays, nb::handle owner) const {
    nb::dict out;
    typename Pop::View v = arrays.view();
    const std::size_t n = arrays.size();
    Pop::for_each(v, [&](const FieldInfo& f, auto*& ptr) {
      using T = std::remove_reference_t<decltype(*ptr)>;
      nb::ndarray<nb::numpy, const T, nb::ndim<1>> a(ptr, {n}, owner);
      out[f.name] = nb::cast(a, nb::rv_policy::reference);
    });
    return out;
  }

  const Simulation& sim() const { return *sim_; }
  const RunRequest& request() const { return req_; }
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  RunRequest req_;
  std::unique_ptr<Simulation> sim_;
  MetricRows rows_;
  std::vector<std::string> warnings_;
  std::pair<double, double> span_{0, 0};
};

/// `cutoff ensemble` from Python: the same request (core/app/ensemble.hpp: run_ensemble) with
/// the API's arguments; one process (MPI only under an MPI launcher, as the program).
/// @param sweep  {key: [values] or "lo:hi:n"}, in order, as `--sweep key=...` each
void run_ensemble_from_python(const Scenario& sc, const std::string& out, std::int64_t replicates,
                              const nb::object& sweep, int jobs, int threads, std::optional<std::int64_t> firms,
                              std::optional<std::int64_t> users, std::optional<std::int64_t> seed,
                              std::optional<std::int64_t> ticks, const std::string& backend,
                              const std::string& max_memory) {
  EnsembleRequest req;
  req.scenario = sc.path;
  req.outdir = out;
  req.sets = sc.sets;
  RunCounts counts;
  counts.firms = firms.value_or(-1);
  counts.users = users.value_or(-1);
  counts.seed = seed.value_or(-1);
  counts.ticks = ticks.value_or(-1);
  for (std::string& s : count_sets(counts)) req.sets.push_back(std::move(s));
  if (!sweep.is_none())
    for (auto [k, v] : nb::cast<nb::dict>(sweep)) {
      const std::string values = nb::isinstance<nb::str>(v) ? nb::cast<std::string>(v) : toml_text(v, true);
      // A list's TOML text is "[a,b]": --sweep takes "a,b".
      const bool listed = values.size() >= 2 && values.front() == '[' && values.back() == ']';
      req.sweeps.push_back(parse_sweep(nb::cast<std::string>(nb::str(k)) + "=" +
                                       (listed ? values.substr(1, values.size() - 2) : values)));
    }
  req.replicates = replicates;
  req.jobs = jobs;
  req.threads = threads;
  req.backend = choose_backend(backend, true).name;
  req.max_memory = max_memory.empty() ? 0 : parse_bytes(max_memory, "max_memory");
  req.command_line = "cutoff.ensemble(" + sc.path + ", " + out + ")";
  std::vector<std::string> warnings;
  std::string failure;
  req.log = [&warnings](const std::string& line) {
    if (line.rfind("warning: ", 0) == 0) warnings.push_back(line.substr(9));
  };
  req.error = [&failure](const std::string& line) { failure = line.rfind("failed: ", 0) == 0 ? line.substr(8) : line; };
  int status = 0;
  {
    nb::gil_scoped_release unlocked;
    const Comm comm(nullptr, nullptr);
    status = run_ensemble(req, comm);
  }
  for (const std::string& w : warnings)
    if (PyErr_WarnEx(PyExc_UserWarning, w.c_str(), 1) != 0) throw nb::python_error();
  if (status != 0)
    throw std::runtime_error((failure.empty() ? std::string("a member failed") : failure) +
                             "; the same call resumes (finished members are kept)");
}

template <class Pop> nb::list field_table() {
  nb::list out;
  for (const FieldInfo& f : Pop::kFields) {
    nb::dict d;
    d["name"] = f.name;
    d["unit"] = f.unit;
    d["description"] = f.description;
    d["state"] = f.role == FieldRole::State;
    out.append(d);
  }
  return out;
}

}  // namespace
}  // namespace cutoff

NB_MODULE(_cutoff, m) {
  using namespace cutoff;
  m.doc() = "The cutoff model in-process (issue 39); import it as `cutoff` (python/api/src/cutoff).";
  m.attr("__version__") = kVersion;
  m.attr("git_commit") = kGitCommit;
  h5::start_library(false);  // HDF5's error stack becomes FileError's words, not stderr (hdf5.hpp)

  // The translators stay registered (and the types in the module) after these handles go.
  const nb::exception<InputError> input_error(m, "InputError", PyExc_ValueError);
  const nb::exception<FileError> file_error(m, "FileError", PyExc_OSError);

  nb::class_<Scenario>(m, "Scenario",
                       "A scenario file with its overrides, loaded and checked as `cutoff validate` does.")
      .def_static(
          "load", [](const std::string& path, const nb::object& set) { return Scenario::load(path, sets_of(set)); },
          "path"_a, "set"_a = nb::none(),
          nb::sig(
              "def load(path: str, set: collections.abc.Mapping[str, object] | collections.abc.Sequence[str] | None "
              "= None) -> Scenario"),
          "Loads a scenario TOML file and applies `set` ({key: value} or ['key=value', ...]) after it.\n\n"
          "Raises InputError (a ValueError) with the message `cutoff validate` prints for the same\n"
          "file and overrides, the overrides' origin named `set`.")
      .def_ro("path", &Scenario::path, "The scenario file.")
      .def_ro("sets", &Scenario::sets, "The overrides, as 'key=value' strings in order.")
      .def_ro("files", &Scenario::files, "The scenario files read: path, then each file it inherits.")
      .def_prop_ro(
          "toml", [](const Scenario& s) { return to_toml(s.params); },
          "Every parameter after loading, as TOML (as `cutoff validate` prints it on request).")
      .def_prop_ro(
          "summary", [](const Scenario& s) { return check_scenario(s.params); },
          "What a run of it would build (`cutoff validate`'s line).")
      .def("__repr__", [](const Scenario& s) { return "cutoff.Scenario.load('" + s.path + "')"; });

  nb::class_<Session>(m, "Simulation",
                      "One run of the model in this process: the run `cutoff run` makes, stepped from Python.")
      .def(nb::init<const Scenario&, std::optional<std::int64_t>, std::optional<std::int64_t>,
                    std::optional<std::int64_t>, std::optional<std::int64_t>, std::uint32_t, const std::string&, int,
                    const std::string&>(),
           "scenario"_a, "firms"_a = nb::none(), "users"_a = nb::none(), "seed"_a = nb::none(), "ticks"_a = nb::none(),
           "replicate"_a = 0, "backend"_a = "auto", "threads"_a = 0, "max_memory"_a = "",
           "Builds the initial state (docs/model.md §2.0) as `cutoff run` does, with its flags'\n"
           "meanings: firms, users, seed and ticks override n_firms, n_users, seed and horizon;\n"
           "backend is auto, cpu or cuda; threads 0 is every core; max_memory a byte count as the\n"
           "command line takes it ('8G'; empty: the machine's available memory).")
      .def("step", &Session::step, "n"_a = 1,
           "Runs n ticks with the GIL released (other Python threads run meanwhile).")
      .def(
          "save", [](Session& s, const std::string& path) { s.write(path, false); }, "path"_a,
          "Writes the HDF5 file `cutoff run` writes with the same inputs, running the ticks\n"
          "left to the horizon first (they count as stepped).")
      .def(
          "_write_ticks_so_far", [](Session& s, const std::string& path) { s.write(path, true); }, "path"_a,
          "Writes an output that ends at the current tick (Simulation.metrics reads it).")
      .def_prop_ro(
          "firms", [](const Session& s) { return s.fields(s.sim().firms(), nb::find(&s)); },
          nb::sig("def firms(self) -> dict[str, numpy.typing.NDArray]"),
          "The firm agents' fields, {name: read-only NumPy array}, views of the model's arrays:\n"
          "no copy, current after each step, each keeping the simulation alive.")
      .def_prop_ro(
          "users", [](const Session& s) { return s.fields(s.sim().users(), nb::find(&s)); },
          nb::sig("def users(self) -> dict[str, numpy.typing.NDArray]"), "The user agents' fields, as `firms`.")
      .def_prop_ro("last_step_span", &Session::last_step_span,
                   "(start, end) of the last step()'s ticks, run with the GIL released, in seconds of\n"
                   "time.monotonic(): spans of two simulations stepped in two threads overlap.")
      .def_prop_ro(
          "tick", [](const Session& s) { return s.sim().tick(); }, "Ticks run so far.")
      .def_prop_ro(
          "horizon", [](const Session& s) { return s.request().params.horizon; }, "Ticks of the scenario.")
      .def_prop_ro(
          "n_firms", [](const Session& s) { return s.sim().layout().n_firms; }, "Firm agents.")
      .def_prop_ro(
          "n_users", [](const Session& s) { return s.sim().layout().n_users; }, "User agents.")
      .def_prop_ro(
          "backend", [](const Session& s) { return s.request().options.backend.name; },
          "The backend that runs it (cpu or cuda).")
      .def_prop_ro("warnings", &Session::warnings, "The warnings `cutoff run` prints for the same inputs.")
      .def_prop_ro(
          "toml", [](const Session& s) { return to_toml(s.request().params); }, "Every parameter of the run, as TOML.");

  m.def("_ensemble", &run_ensemble_from_python, "scenario"_a, "out"_a, "replicates"_a = 1, "sweep"_a = nb::none(),
        "jobs"_a = 1, "threads"_a = 0, "firms"_a = nb::none(), "users"_a = nb::none(), "seed"_a = nb::none(),
        "ticks"_a = nb::none(), "backend"_a = "auto", "max_memory"_a = "",
        nb::sig("def _ensemble(scenario: Scenario, out: str, replicates: int = 1, sweep: "
                "collections.abc.Mapping[str, collections.abc.Sequence[float] | str] | None = None, jobs: int = 1, "
                "threads: int = 0, firms: int | None = None, users: int | None = None, seed: int | None = None, "
                "ticks: int | None = None, backend: str = 'auto', max_memory: str = '') -> None"),
        "Runs `cutoff ensemble` into the folder out (cutoff.ensemble opens it).");
  m.def("firm_fields", &field_table<Firms>, "The firm fields' names, units, meanings and whether they are state.");
  m.def("user_fields", &field_table<Users>, "The user fields' names, units, meanings and whether they are state.");
}
