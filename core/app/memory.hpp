#pragma once
/// @file
/// The run's memory, estimated from the field registries before anything is
/// allocated, and the memory this process may use.

#include <cstdint>
#include <string>

namespace cutoff {

struct MemoryEstimate {
  std::uint64_t firms = 0;     ///< n_firms × registry bytes per firm
  std::uint64_t users = 0;     ///< n_users × registry bytes per user
  std::uint64_t snapshot = 0;  ///< snapshot copies in flight to the background writer
  std::uint64_t fixed = 0;     ///< countries, providers, reduction partials, program
  std::uint64_t total() const { return firms + users + snapshot + fixed; }
};

/// @param snapshot_in_flight  bound on the bytes queued to the writer (0: no snapshots)
MemoryEstimate estimate_memory(std::uint64_t n_firms, std::uint64_t n_users, std::uint64_t snapshot_in_flight);

/// Bytes this process may still allocate: min(MemAvailable of /proc/meminfo,
/// cgroup limit − cgroup usage (v2 or v1), `cap` when > 0). Also says which bound won.
std::uint64_t available_memory(std::uint64_t cap, std::string* which = nullptr);

/// "1.5 GiB"-style text.
std::string format_bytes(std::uint64_t b);

/// Parses "123", "4G", "512MiB", "2.5GB" (binary multiples for K/M/G/T, with or
/// without "iB"/"B"). Throws InputError naming `flag` on anything else.
std::uint64_t parse_bytes(const std::string& text, const std::string& flag);

}  // namespace cutoff
