#pragma once
/// @file
/// Designs for `cutoff ensemble --design FILE.csv` (docs/ensembles.md, "Designs"): a header
/// row of scenario keys, then one row per point. This file reads the CSV and checks what
/// does not need the scenario (syntax, numbers, booleans, the columns); plan_ensemble()
/// checks every value through the scenario loader, as --sweep does.

#include <cstddef>
#include <string>
#include <vector>

#include "core/model/params.hpp"

namespace cutoff {

/// A design read from its file: columns are scenario keys, rows are points.
struct Design {
  std::string file;               ///< the path as given
  std::string sha256;             ///< of the file's bytes
  std::vector<std::string> keys;  ///< the header, in column order
  /// [row][column]: the value as `--set key=value` takes it (booleans as true/false)
  std::vector<std::vector<std::string>> texts;
  std::vector<std::vector<double>> values;  ///< [row][column]: the coordinate (booleans 0/1)
  std::vector<std::size_t> lines;           ///< [row]: its line in the file, 1-based (the header is line 1)
  std::size_t rows() const { return texts.size(); }
};

/// @p s without leading and trailing spaces and tabs.
std::string trim(const std::string& s);
/// @p s cut at every @p sep, each part trimmed (a design's row, a --sweep's values).
std::vector<std::string> split_trimmed(const std::string& s, char sep);
/// A whole-string finite decimal number (TOML-style underscores not accepted), or false:
/// how --sweep and --design read numbers.
bool parse_number(const std::string& text, double& out);

/// The schema entry of a scenario key (`bm`, `provider.0.offset`), or nullptr for an unknown key.
const FieldSpec* key_spec(const std::string& key);

/// Reads a CSV design. Values are plain comma-separated fields (no quotes), spaces around
/// them ignored, blank lines skipped, `\r\n` line ends and a UTF-8 byte order mark accepted.
/// A column of a boolean key takes 0, 1, true or false (any case); every other column a
/// number, which a real key receives as TOML text (render_value) and an integer key as written.
/// @throws InputError, one line naming --design, the file and, where it applies, the row
///         (1-based data row), its line and the column (key), with what is allowed: a file
///         that cannot be read or is Parquet, no header, no rows, a ragged row, a quoted
///         field, an empty, repeated or `horizon` column, a string or array key, an empty
///         value, a non-number, a boolean other than 0/1/true/false
Design read_design(const std::string& path);

/// "--design 'FILE' row R (line L), column 'KEY'" for messages about one value.
std::string design_where(const Design& d, std::size_t row, std::size_t column);

}  // namespace cutoff
