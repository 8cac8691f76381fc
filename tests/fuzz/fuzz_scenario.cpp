/// @file
/// libFuzzer target for the scenario loader (core/model/scenario.cpp, core/model/params.cpp).
///
/// Each input is written to one scenario file in a private temporary directory
/// (created once per process, named with the pid, removed at a normal exit) and loaded
/// with cutoff::load_scenario. If the input has a line break and its first line
/// is neither empty nor a TOML comment, that first line is passed as one `--set`
/// override and the rest is the file; otherwise the whole input is the file (so
/// the shipped scenarios, which start with a comment, load whole).
///
/// InputError is the loader's only allowed failure; any other exception escapes
/// and libFuzzer reports it as a crash.
///
/// Safety: the fuzzer writes only its own file. Loading never writes; it reads the
/// `inherits` chain, whose relative paths resolve inside the private directory,
/// where there is nothing but the input itself (an inheritance cycle). An input
/// whose `inherits` points into /proc, /sys or /dev (huge or blocking pseudo-files)
/// is skipped; reading any other existing file is harmless.

#include <toml++/toml.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "core/model/params.hpp"
#include "core/model/scenario.hpp"

namespace {

namespace fs = std::filesystem;

/// The private directory: under $TMPDIR (std::filesystem::temp_directory_path),
/// else /dev/shm where it exists, else /tmp; the pid keeps parallel jobs apart.
/// Never destroyed, so the exit handler can still read it.
const fs::path& work_dir() {
  static const fs::path* dir = [] {
    std::error_code ec;
    fs::path base;
    if (const char* t = std::getenv("TMPDIR"); t && *t) {
      base = fs::temp_directory_path(ec);
    } else if (fs::is_directory("/dev/shm", ec)) {
      base = "/dev/shm";
    }
    if (base.empty()) base = fs::temp_directory_path();
    auto* d = new fs::path(base / ("cutoff-fuzz-scenario-" + std::to_string(::getpid())));
    fs::remove_all(*d, ec);
    fs::create_directories(*d);
    std::atexit([] {
      std::error_code ec2;
      fs::remove_all(work_dir(), ec2);
    });
    return d;
  }();
  return *dir;
}

/// False when `inherits` in the text resolves into a pseudo-file system.
bool inherits_is_safe(std::string_view text, const fs::path& dir) {
  if (text.find("inherits") == std::string_view::npos && text.find('\\') == std::string_view::npos) {
    return true;  // no way to spell the key
  }
  toml::table t;
  try {
    t = toml::parse(text);
  } catch (const toml::parse_error&) {
    return true;  // the loader rejects it before reading anything else
  }
  const auto* s = t.get_as<std::string>("inherits");
  if (!s) return true;
  std::error_code ec;
  fs::path target = fs::weakly_canonical(dir / fs::path(s->get()), ec);
  if (ec) target = (dir / fs::path(s->get())).lexically_normal();
  const std::string p = target.string();
  for (const char* bad : {"/proc", "/sys", "/dev"}) {
    const std::string b(bad);
    if (p.compare(0, b.size(), b) == 0 && (p.size() == b.size() || p[b.size()] == '/')) {
      // The private directory itself may live under /dev/shm.
      const std::string own = dir.string();
      if (p.compare(0, own.size(), own) == 0) return true;
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> sets;
  std::string_view file_text = in;
  const auto nl = in.find('\n');
  if (nl != std::string_view::npos && nl > 0 && in[0] != '#') {
    sets.emplace_back(in.substr(0, nl));
    file_text = in.substr(nl + 1);
  }

  const fs::path& dir = work_dir();
  if (!inherits_is_safe(file_text, dir)) return 0;

  const std::string path = (dir / "scenario.toml").string();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(file_text.data(), static_cast<std::streamsize>(file_text.size()));
    if (!out) {
      std::fprintf(stderr, "fuzz_scenario: cannot write %s\n", path.c_str());
      std::abort();
    }
  }
  try {
    (void)cutoff::load_scenario(path, sets);
  } catch (const cutoff::InputError&) {
  }
  return 0;
}
