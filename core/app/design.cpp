/// @file
/// Designs; see design.hpp and docs/ensembles.md ("Designs").
///
/// Why a reader of its own: the build has no CSV library (CMakeLists.txt), and a design is
/// the simplest CSV there is — a header of keys and rows of numbers. Quoted fields, the one
/// part of RFC 4180 that needs a real parser, are refused with a message instead.

#include "core/app/design.hpp"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/hd/error.hpp"
#include "core/io/sha256.hpp"

namespace cutoff {

namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

std::vector<std::string> split_trimmed(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(trim(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(trim(cur));
  return out;
}

bool parse_number(const std::string& text, double& out) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size() && errno == 0 && std::isfinite(out);
}

const FieldSpec* key_spec(const std::string& key) {
  if (key.rfind("provider.", 0) == 0) {
    const auto dot = key.find('.', 9);
    if (dot == std::string::npos) return nullptr;
    return find_provider_field(key.substr(dot + 1));
  }
  return find_param(key);
}

std::string design_where(const Design& d, std::size_t row, std::size_t column) {
  return "--design '" + d.file + "' row " + std::to_string(row + 1) + " (line " + std::to_string(d.lines.at(row)) +
         "), column '" + d.keys.at(column) + "'";
}

namespace {

const char* const kDesignAllowed = "allowed: a header row of scenario keys, then one row of numbers per point";

/// The design file's bytes; a Parquet, missing or unreadable file is refused (@p what names it).
std::string design_bytes(const std::string& path, const std::string& what) {
  std::string lower = path;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ends_with(lower, ".parquet") || ends_with(lower, ".pq"))
    throw InputError(what +
                     ": Parquet is not read by cutoff itself; allowed: CSV (the Python package "
                     "cutoff_analysis converts a Parquet design to CSV)");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw InputError(what + ": no such file; allowed: a CSV file");
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  if (!in && !in.eof()) throw InputError(what + ": cannot be read; allowed: a readable CSV file");
  return buf.str();
}

/// The header's columns checked: each key's schema entry (nullptr: an unknown key, named
/// by the loader with its suggestion).
std::vector<const FieldSpec*> header_specs(const std::vector<std::string>& fields, const std::string& what) {
  std::vector<const FieldSpec*> specs;
  for (std::size_t c = 0; c < fields.size(); ++c) {
    const std::string& key = fields[c];
    const std::string col = what + " header, column " + std::to_string(c + 1);
    if (key.empty()) throw InputError(col + ": empty name; " + kDesignAllowed);
    for (std::size_t j = 0; j < c; ++j)
      if (fields[j] == key)
        throw InputError(col + " '" + key + "': repeats column " + std::to_string(j + 1) + "; allowed: each key once");
    if (key == "horizon")
      throw InputError(col +
                       " 'horizon': horizon cannot be a design column (members share the tick axis); use --ticks");
    const FieldSpec* f = key_spec(key);
    if (f && f->type != ParamType::Integer && f->type != ParamType::Real && f->type != ParamType::Bool)
      throw InputError(col + " '" + key + "': the key takes " + describe(*f) +
                       "; allowed as design columns: keys that take a number or a boolean");
    specs.push_back(f);
  }
  return specs;
}

/// One cell's text for --set and its value, appended to @p texts and @p values (@p cell
/// names it in messages).
void read_cell(const FieldSpec* spec, const std::string& t, const std::string& cell, std::vector<std::string>& texts,
               std::vector<double>& values) {
  double v = 0;
  if (spec && spec->type == ParamType::Bool) {
    std::string word = t;  // True/False as pandas writes them, TRUE/FALSE as spreadsheets do
    for (char& ch : word) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (word == "1" || word == "true") {
      texts.emplace_back("true");
      values.push_back(1);
    } else if (word == "0" || word == "false") {
      texts.emplace_back("false");
      values.push_back(0);
    } else {
      throw InputError(cell + ": value '" + t + "' for a boolean key; allowed: 0, 1, true, false");
    }
    return;
  }
  if (t.empty()) throw InputError(cell + ": empty value; allowed: a number");
  if (!parse_number(t, v)) throw InputError(cell + ": value '" + t + "' is not a number; allowed: a number");
  // A real goes to --set as TOML spells it (`.5` and `1.` are numbers here, not in TOML);
  // an integer key's text as written, which the loader reads by its integer rule.
  texts.push_back(spec && spec->type == ParamType::Real ? render_value(ParamValue(v)) : t);
  values.push_back(v);
}

/// A data row (file line @p line_no) appended to @p d.
void add_row(Design& d, const std::vector<const FieldSpec*>& specs, const std::vector<std::string>& fields,
             std::size_t line_no, const std::string& what) {
  const std::size_t row = d.texts.size();
  const std::string at = what + " row " + std::to_string(row + 1) + " (line " + std::to_string(line_no) + ")";
  if (fields.size() != d.keys.size())
    throw InputError(at + ": " + std::to_string(fields.size()) + (fields.size() == 1 ? " field" : " fields") +
                     ", the header has " + std::to_string(d.keys.size()) + "; allowed: one value per column");
  d.lines.push_back(line_no);
  std::vector<std::string> texts;
  std::vector<double> values;
  for (std::size_t c = 0; c < fields.size(); ++c)
    read_cell(specs[c], fields[c], at + ", column '" + d.keys[c] + "'", texts, values);
  d.texts.push_back(std::move(texts));
  d.values.push_back(std::move(values));
}

}  // namespace

Design read_design(const std::string& path) {
  Design d;
  d.file = path;
  const std::string what = "--design '" + path + "'";
  std::string text = design_bytes(path, what);
  d.sha256 = sha256_hex(text);
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);  // a spreadsheet's byte order mark

  std::istringstream lines(text);
  std::string line;
  std::size_t line_no = 0;
  bool have_header = false;
  std::vector<const FieldSpec*> specs;
  while (std::getline(lines, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (trim(line).empty()) continue;
    if (line.find('"') != std::string::npos || line.find('\'') != std::string::npos)
      throw InputError(what + " line " + std::to_string(line_no) +
                       ": quoted fields are not supported; allowed: plain comma-separated keys and numbers");
    std::vector<std::string> fields = split_trimmed(line, ',');
    if (!have_header) {
      have_header = true;
      specs = header_specs(fields, what);
      d.keys = std::move(fields);
    } else {
      add_row(d, specs, fields, line_no, what);
    }
  }
  if (!have_header) throw InputError(what + ": empty file; " + kDesignAllowed);
  if (d.texts.empty()) throw InputError(what + ": a header and no rows; " + kDesignAllowed);
  return d;
}

}  // namespace cutoff
