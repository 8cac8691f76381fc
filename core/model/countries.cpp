#include "core/model/countries.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "core/model/params.hpp"

namespace cutoff {
namespace {

/// Splits one CSV record (RFC 4180 quoting) starting at `pos`; advances `pos`
/// past the record's line break. Returns false at end of text.
bool next_record(std::string_view text, std::size_t& pos, std::vector<std::string>& fields, int& line,
                 const std::string& origin) {
  fields.clear();
  if (pos >= text.size()) return false;
  std::string cur;
  bool quoted = false;
  const int start_line = line;
  while (pos < text.size()) {
    const char ch = text[pos++];
    if (quoted) {
      if (ch == '"') {
        if (pos < text.size() && text[pos] == '"') {
          cur += '"';
          ++pos;
        } else {
          quoted = false;
        }
      } else {
        if (ch == '\n') ++line;
        cur += ch;
      }
    } else if (ch == '"' && cur.empty()) {
      quoted = true;
    } else if (ch == ',') {
      fields.push_back(std::move(cur));
      cur.clear();
    } else if (ch == '\n') {
      ++line;
      break;
    } else if (ch != '\r') {
      cur += ch;
    }
  }
  if (quoted) throw InputError(origin + ":" + std::to_string(start_line) + ": unterminated quoted field");
  fields.push_back(std::move(cur));
  return true;
}

double parse_number(const std::string& s, const std::string& where) {
  double v = 0;
  const char* b = s.data();
  const char* e = s.data() + s.size();
  auto r = std::from_chars(b, e, v);
  if (s.empty() || r.ec != std::errc() || r.ptr != e || !std::isfinite(v))
    throw InputError(where + " = '" + s + "': expected a finite number");
  return v;
}

int parse_int(const std::string& s, const std::string& where) {
  int v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size())
    throw InputError(where + " = '" + s + "': expected an integer");
  return v;
}

}  // namespace

std::vector<Country> parse_countries(std::string_view text, const std::string& origin) {
  static const char* kColumns[] = {
      "iso3",    "name",     "region",      "subregion", "income_group", "population", "population_year",
      "gdp_usd", "gdp_year", "gdp_imputed", "tier"};
  std::size_t pos = 0;
  int line = 1;
  std::vector<std::string> f;
  if (!next_record(text, pos, f, line, origin)) throw InputError(origin + ": empty country table");
  std::map<std::string, std::size_t> col;
  for (std::size_t i = 0; i < f.size(); ++i) {
    // A repeated name would make col smaller than a row and its index ambiguous.
    if (!col.emplace(f[i], i).second) throw InputError(origin + ":1: duplicate column '" + f[i] + "'");
  }
  std::size_t idx[11];
  for (int k = 0; k < 11; ++k) {
    auto it = col.find(kColumns[k]);
    if (it == col.end())
      throw InputError(origin + ": missing column '" + kColumns[k] +
                       "'; required: iso3, name, region, subregion, income_group, population, "
                       "population_year, gdp_usd, gdp_year, gdp_imputed, tier");
    idx[k] = it->second;
  }
  std::vector<Country> out;
  std::map<std::string, int> seen;
  while (true) {
    const int rec_line = line;
    if (!next_record(text, pos, f, line, origin)) break;
    if (f.size() == 1 && f[0].empty()) continue;  // blank line
    const std::string where0 = origin + ":" + std::to_string(rec_line);
    if (f.size() != col.size())
      throw InputError(where0 + ": " + std::to_string(f.size()) + " fields, expected " + std::to_string(col.size()));
    auto field = [&](int k) -> const std::string& { return f[idx[k]]; };
    auto where = [&](int k) { return where0 + ": column '" + kColumns[k] + "'"; };
    Country c;
    c.iso3 = field(0);
    if (c.iso3.size() != 3 || !std::isupper(static_cast<unsigned char>(c.iso3[0])) ||
        !std::isupper(static_cast<unsigned char>(c.iso3[1])) || !std::isupper(static_cast<unsigned char>(c.iso3[2])))
      throw InputError(where(0) + " = '" + c.iso3 + "': expected three upper-case letters (ISO 3166-1 alpha-3)");
    if (seen.count(c.iso3)) throw InputError(where(0) + " = '" + c.iso3 + "': duplicate country");
    c.name = field(1);
    c.region = field(2);
    c.subregion = field(3);
    c.income_group = field(4);
    bool known = false;
    for (const auto& g : income_groups()) known = known || g == c.income_group;
    if (!known)
      throw InputError(where(4) + " = '" + c.income_group + "': allowed low, lower_middle, upper_middle, high");
    c.population = parse_number(field(5), where(5));
    if (!(c.population > 0)) throw InputError(where(5) + " = '" + field(5) + "': must be > 0");
    c.population_year = parse_int(field(6), where(6));
    c.gdp_usd = parse_number(field(7), where(7));
    if (!(c.gdp_usd > 0)) throw InputError(where(7) + " = '" + field(7) + "': must be > 0");
    c.gdp_year = parse_int(field(8), where(8));
    const int imputed = parse_int(field(9), where(9));
    if (imputed != 0 && imputed != 1) throw InputError(where(9) + " = '" + field(9) + "': allowed 0 or 1");
    c.gdp_imputed = imputed == 1;
    c.tier = parse_int(field(10), where(10));
    if (c.tier < 1 || c.tier > 3) throw InputError(where(10) + " = '" + field(10) + "': allowed 1, 2 or 3");
    seen[c.iso3] = static_cast<int>(out.size());
    out.push_back(std::move(c));
    if (out.size() > 65000) throw InputError(origin + ": more than 65000 countries");
  }
  if (out.empty()) throw InputError(origin + ": no country rows");
  return out;
}

std::vector<Country> load_countries(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open the country table (key 'countries')");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw InputError(path + ": cannot read the country table");
  return parse_countries(ss.str(), path);
}

int find_country(const std::vector<Country>& countries, std::string_view iso3) {
  for (std::size_t i = 0; i < countries.size(); ++i)
    if (countries[i].iso3 == iso3) return static_cast<int>(i);
  return -1;
}

}  // namespace cutoff
