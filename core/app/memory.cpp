#include "core/app/memory.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "agents/fields.hpp"
#include "core/model/params.hpp"

namespace cutoff {
namespace {

/// First number in a file, or 0 if it is missing, unreadable or "max".
std::uint64_t read_number(const char* path) {
  std::ifstream in(path);
  std::string s;
  if (!(in >> s) || s == "max") return 0;
  try {
    return std::stoull(s);
  } catch (...) {
    return 0;
  }
}

std::uint64_t meminfo_available() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024;
  return 0;
}

}  // namespace

MemoryEstimate estimate_memory(std::uint64_t n_firms, std::uint64_t n_users, std::uint64_t snapshot_in_flight) {
  MemoryEstimate m;
  m.firms = n_firms * bytes_per_agent<Firms>();
  m.users = n_users * bytes_per_agent<Users>();
  // The writer holds at most its bound plus the field being handed over.
  const std::uint64_t largest_field = std::max(n_firms * 8, n_users * 4);
  m.snapshot = snapshot_in_flight > 0 ? std::min(snapshot_in_flight + largest_field, m.firms + m.users) : 0;
  m.fixed = 64ull << 20;  // program, country and provider tables, reduction partials, HDF5 buffers
  return m;
}

std::uint64_t available_memory(std::uint64_t cap, std::string* which) {
  std::uint64_t best = meminfo_available();
  std::string name = "available memory (/proc/meminfo)";
  auto consider = [&](std::uint64_t v, const std::string& what) {
    if (v > 0 && (best == 0 || v < best)) {
      best = v;
      name = what;
    }
  };
  // cgroup v2, then v1.
  if (const std::uint64_t lim = read_number("/sys/fs/cgroup/memory.max"); lim > 0) {
    const std::uint64_t used = read_number("/sys/fs/cgroup/memory.current");
    consider(lim > used ? lim - used : 1, "cgroup limit (memory.max) less usage");
  } else if (const std::uint64_t lim1 = read_number("/sys/fs/cgroup/memory/memory.limit_in_bytes");
             lim1 > 0 && lim1 < (1ull << 60)) {
    const std::uint64_t used = read_number("/sys/fs/cgroup/memory/memory.usage_in_bytes");
    consider(lim1 > used ? lim1 - used : 1, "cgroup limit (memory.limit_in_bytes) less usage");
  }
  if (cap > 0) consider(cap, "--max-memory");
  if (which) *which = name;
  return best;
}

std::string format_bytes(std::uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024.0 && u < 5) {
    v /= 1024.0;
    ++u;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", v, units[u]);
  return buf;
}

std::uint64_t parse_bytes(const std::string& text, const std::string& flag) {
  std::size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(text, &pos);
  } catch (...) {
    pos = 0;
  }
  std::string suffix = text.substr(pos);
  const std::string allowed = "': expected a byte count such as 8000000000, 8G, 512MiB or 2.5GB";
  if (pos == 0 || !(v >= 0) || !std::isfinite(v)) throw InputError(flag + " '" + text + allowed);
  double mult = 1;
  if (!suffix.empty()) {
    const char c = static_cast<char>(std::toupper(static_cast<unsigned char>(suffix[0])));
    const std::string rest = suffix.substr(1);
    const std::string kinds = "KMGTP";
    const auto k = kinds.find(c);
    if (suffix == "B") {
      mult = 1;
    } else if (k == std::string::npos || !(rest.empty() || rest == "B" || rest == "iB")) {
      throw InputError(flag + " '" + text + allowed);
    } else {
      mult = std::pow(1024.0, static_cast<double>(k + 1));
    }
  }
  const double bytes = v * mult;
  if (bytes > 1.8e19) throw InputError(flag + " '" + text + "': too large");
  return static_cast<std::uint64_t>(bytes);
}

}  // namespace cutoff
