#pragma once
/// @file
/// Strict loading of scenario TOML files (docs/model.md §4) into Params. Every key is
/// checked against the schema of core/model/params.hpp; any problem is an InputError of
/// one line naming the file (or the override's origin), the key, the value and what is allowed.
/// Loading reads files only; it never writes.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/model/params.hpp"

namespace cutoff {

/// Loads a scenario: schema defaults, then the `inherits` chain base first (each
/// path relative to the file naming it; cycles are errors), then `path` itself, then
/// `sets` in order, then validate(). A file's `[[provider]]` tables replace the
/// inherited list; a `[provider.N]` table changes fields of inherited provider N.
/// `countries` comes back as an absolute path: relative to the directory of the file
/// that set it, of the base file of the chain if none did, of the working directory
/// for overrides.
/// @param path  scenario file
/// @param sets  "key=value" overrides: the value is TOML (`bm=2.5`,
///              `kyc_rate=[0.01,0.004,0]`, `lever_country="CHN"`); a string key also
///              takes raw text (`lever_country=CHN`); `provider.N.field=value` sets a
///              field of provider N (0-based)
/// @param origin  what errors in `sets` name as their source: the command line
///              passes its flag (`--set`), the Python API its argument
/// @param[out] files  when given, the scenario files read: @p path, then each file it
///              inherits (the run refuses to write over one of them)
/// @throws InputError for a missing or unreadable file, malformed TOML, unknown key
///         or provider field, wrong type, out-of-range value, wrong array length,
///         bad override syntax, an inherits cycle or a broken cross-key rule
Params load_scenario(const std::string& path, const std::vector<std::string>& sets = {},
                     const std::string& origin = "override", std::vector<std::string>* files = nullptr);

/// An integer as every count on the command line and in a scenario is read (issue 37: one
/// rule for flags and `--set`): a TOML integer (`100000`, `100_000`), or a TOML float that
/// is an exact integer below 9e18 (`1e5`, `2.5e5`). Nothing for anything else (`2.5`, `many`).
std::optional<std::int64_t> parse_integer(const std::string& text);

/// What an integer key or flag says of a value parse_integer() refuses.
inline const char* integer_rule() { return "expected an integer (integers only; 1e5 is accepted where it is exact)"; }

}  // namespace cutoff
