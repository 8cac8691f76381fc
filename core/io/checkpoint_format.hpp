#pragma once
/// @file
/// The byte format of a checkpoint (checkpoint.hpp), apart from what it holds: the
/// magic and format number, the writer and reader of values, and the header with its
/// identity and payload checksum. It needs no Simulation, so that the checkpoint fuzzer
/// (tests/fuzz/fuzz_checkpoint.cpp) reads headers through exactly this code.

#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/hd/error.hpp"

namespace cutoff::checkpoint_format {

constexpr char kMagic[8] = {'C', 'U', 'T', 'O', 'F', 'F', 'C', 'K'};
// 2: (v5) the firms' lagged use share; 3: (v5) the plan layer's levels; 4: (v5) the top-20%
// share among the firms of 250+ employees.
constexpr std::uint32_t kFormat = 4;

/// Appends values to a byte string (host byte order: a checkpoint resumes on the machine
/// kind that wrote it).
struct Writer {
  std::string bytes;
  static constexpr bool kLoading = false;
  void raw(const void* p, std::size_t n) {
    if (n > 0) bytes.append(static_cast<const char*>(p), n);  // an empty vector's data() may be null
  }
  template <class T> void operator()(T& v) {
    if constexpr (std::is_arithmetic_v<T>) {
      raw(&v, sizeof v);
    } else if constexpr (std::is_same_v<T, std::string>) {
      std::uint64_t n = v.size();
      raw(&n, sizeof n);
      raw(v.data(), v.size());
    } else {
      io(*this, v);
    }
  }
  template <class T> void operator()(std::vector<T>& v) {
    std::uint64_t n = v.size();
    (*this)(n);
    if constexpr (std::is_arithmetic_v<T>)
      raw(v.data(), v.size() * sizeof(T));
    else
      for (T& x : v) (*this)(x);
  }
  template <class A, class B> void operator()(std::set<std::pair<A, B>>& s) {
    std::uint64_t n = s.size();
    (*this)(n);
    for (std::pair<A, B> x : s) {
      (*this)(x.first);
      (*this)(x.second);
    }
  }
};

/// Reads them back; any overrun is a damaged file.
struct Reader {
  const std::string& bytes;
  std::size_t at = 0;
  std::string path;
  static constexpr bool kLoading = true;
  void raw(void* p, std::size_t n) {
    if (n > bytes.size() - at)
      throw InputError("checkpoint '" + path + "' is truncated or damaged; delete it to start over");
    if (n == 0) return;  // an empty vector's data() may be null
    std::memcpy(p, bytes.data() + at, n);
    at += n;
  }
  std::uint64_t count() {
    std::uint64_t n = 0;
    raw(&n, sizeof n);
    if (n > bytes.size())
      throw InputError("checkpoint '" + path + "' is damaged (a length of " + std::to_string(n) + ")");
    return n;
  }
  template <class T> void operator()(T& v) {
    if constexpr (std::is_arithmetic_v<T>) {
      raw(&v, sizeof v);
    } else if constexpr (std::is_same_v<T, std::string>) {
      v.resize(count());
      raw(v.data(), v.size());
    } else {
      io(*this, v);
    }
  }
  template <class T> void operator()(std::vector<T>& v) {
    v.resize(count());
    if constexpr (std::is_arithmetic_v<T>)
      raw(v.data(), v.size() * sizeof(T));
    else
      for (T& x : v) (*this)(x);
  }
  template <class A, class B> void operator()(std::set<std::pair<A, B>>& s) {
    s.clear();
    for (std::uint64_t n = count(); n > 0; --n) {
      std::pair<A, B> x;
      (*this)(x.first);
      (*this)(x.second);
      s.insert(x);
    }
  }
};

struct Identity {
  std::string version, scenario_sha;
  std::uint64_t seed = 0, replicate = 0, n_firms = 0, n_users = 0;
  std::int64_t tick = 0;
  std::uint64_t payload_size = 0;
  std::string payload_sha;

  template <class Ar> void checkpoint_io(Ar& ar) {
    ar(version);
    ar(scenario_sha);
    ar(seed);
    ar(replicate);
    ar(n_firms);
    ar(n_users);
    ar(tick);
    ar(payload_size);
    ar(payload_sha);
  }
};

template <class Ar> void io(Ar& ar, Identity& id) { id.checkpoint_io(ar); }

/// The identity of checkpoint @p bytes (of @p path), after the magic, the format, and the
/// payload's size and SHA-256 are checked; @p body_at gets where the payload starts.
/// Throws InputError naming @p path when any of it is damaged.
Identity read_head(const std::string& bytes, const std::string& path, std::size_t* body_at);

}  // namespace cutoff::checkpoint_format
