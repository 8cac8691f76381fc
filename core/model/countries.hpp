#pragma once
/// @file
/// The country table (data/countries.csv, built by data/build_countries.py).

#include <string>
#include <string_view>
#include <vector>

namespace cutoff {

struct Country {
  std::string iso3, name, region, subregion, income_group;
  double population = 0;  ///< people
  int population_year = 0;
  double gdp_usd = 0;  ///< US$ a year
  int gdp_year = 0;
  bool gdp_imputed = false;
  int tier = 2;  ///< export tier 1/2/3
};

/// Income groups in table order (index stored in the output's income_group coordinate).
inline const std::vector<std::string>& income_groups() {
  static const std::vector<std::string> g{"low", "lower_middle", "upper_middle", "high"};
  return g;
}

/// Parses the CSV text of a country table. `origin` names the file in errors.
/// Throws InputError naming the file, line, column and value for a missing
/// column, a duplicate column, a malformed number, a duplicate or malformed ISO3, a tier outside 1–3,
/// an unknown income group or a non-positive population or GDP.
std::vector<Country> parse_countries(std::string_view text, const std::string& origin);

/// Reads and parses a country table file (InputError if unreadable).
std::vector<Country> load_countries(const std::string& path);

/// Index of an ISO3 code, or −1.
int find_country(const std::vector<Country>& countries, std::string_view iso3);

}  // namespace cutoff
