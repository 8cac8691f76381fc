/// @file
/// libFuzzer target for the country-table parser (core/model/countries.cpp).
/// InputError is the parser's only allowed failure; any other exception escapes
/// and libFuzzer reports it as a crash.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/model/countries.hpp"
#include "core/model/params.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    (void)cutoff::parse_countries(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.csv");
  } catch (const cutoff::InputError&) {
  }
  return 0;
}
