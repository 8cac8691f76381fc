#pragma once
// The contract of core/market/solver.hpp that the CUDA backend relies on, checked on
// the host, where it can run: every part of a solver's fresh partials holds one value
// (the device fills its twin from the part's first element), that value is the
// merge's identity, and partials made in any grouping and merged in any order give
// the same answer (the device's atomics add in no fixed order, and gather lists
// come back in any order).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <tuple>
#include <vector>

#include "core/market/solver.hpp"

namespace cutoff::test {

/// The bytes of each part of `d`, in tie() order.
template <class Data> std::vector<std::vector<unsigned char>> part_bytes(Data d) {
  std::vector<std::vector<unsigned char>> out;
  std::apply(
      [&](auto&... part) {
        (out.emplace_back(reinterpret_cast<const unsigned char*>(part.data()),
                          reinterpret_cast<const unsigned char*>(part.data() + part.size())),
         ...);
      },
      d.parts.tie());
  return out;
}

/// Every part of `fresh` holds one value throughout, and merging `fresh` changes nothing.
template <class Data, class Merge> void expect_fresh_is_identity(const Data& fresh, const Merge& merge) {
  Data d = fresh;
  int k = 0;
  std::apply(
      [&](auto&... part) {
        auto uniform = [&](const auto& v) {
          for (std::size_t j = 1; j < v.size(); ++j)
            if (std::memcmp(&v[j], &v[0], sizeof v[0]) != 0) {
              ADD_FAILURE() << "part " << k << " is not uniform at element " << j;
              break;
            }
          ++k;
        };
        (uniform(part), ...);
      },
      d.parts.tie());
  Data merged = fresh;
  merge(merged, fresh);
  EXPECT_EQ(part_bytes(merged), part_bytes(fresh)) << "merging a fresh partials changed it";
}

/// A pass as the device may make it: the elements in uneven chunks (one of a single
/// element, empty ones at small n), each visited into its own fresh partials, merged
/// last chunk first. The same signature as host_pass.
template <class Data, class MakeSink, class Visit, class Merge>
Data scrambled_pass(std::uint64_t n, bool /*parallel*/, const Data& fresh, const MakeSink& make_sink,
                    const Visit& visit, const Merge& merge) {
  expect_fresh_is_identity(fresh, merge);
  std::uint64_t cut[] = {0, n / 7, n / 7 + (n > 0), n / 3, n / 2, n - n / 5, n};
  std::sort(std::begin(cut), std::end(cut));
  const int chunks = static_cast<int>(std::size(cut)) - 1;
  Data out = fresh;
  for (int c = chunks - 1; c >= 0; --c) {
    Data local = fresh;
    const auto sink = make_sink(local);
    for (std::uint64_t i = cut[c]; i < cut[c + 1]; ++i) visit(i, sink);
    merge(out, local);
  }
  return out;
}

}  // namespace cutoff::test
