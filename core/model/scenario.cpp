/// @file
/// Scenario loading: reading the inherits chain, converting TOML nodes through the
/// schema of params.cpp, `--set` overrides, and the error messages of all of them.

#include "core/model/scenario.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <string_view>
#include <utility>

namespace cutoff {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const std::string& origin, const std::string& key, const std::string& value,
                       const std::string& what) {
  throw InputError(origin + ": key '" + key + "' = " + value + ": " + what);
}

/// A node as the user wrote it, on one line, for messages.
std::string render_node(const toml::node& n) {
  if (auto v = n.as_integer()) return std::to_string(v->get());
  if (auto v = n.as_floating_point()) return render_value(v->get());
  if (auto v = n.as_boolean()) return v->get() ? "true" : "false";
  if (auto v = n.as_string()) return render_value(std::string(v->get()));
  if (auto a = n.as_array()) {
    std::string s = "[";
    for (std::size_t i = 0; i < a->size(); ++i) s += (i ? ", " : "") + render_node((*a)[i]);
    return s + "]";
  }
  if (auto t = n.as_table()) {
    if (t->empty()) return "{}";
    std::string s = "{ ";
    bool first = true;
    for (auto&& [k, v] : *t) {
      s += (first ? "" : ", ") + std::string(k.str()) + " = " + render_node(v);
      first = false;
    }
    return s + " }";
  }
  std::ostringstream os;  // dates and times
  if (auto v = n.as_date()) os << v->get();
  if (auto v = n.as_time()) os << v->get();
  if (auto v = n.as_date_time()) os << v->get();
  return os.str();
}

std::optional<double> as_number(const toml::node& n) {
  if (auto v = n.as_floating_point()) return v->get();
  if (auto v = n.as_integer()) return static_cast<double>(v->get());
  return std::nullopt;
}

/// Stores the node in `out` as the schema type of f; false when the TOML type does
/// not fit. An integer key takes a real with an integer value (`n_firms = 1e6`).
/// (An out-parameter, not std::optional<ParamValue>: GCC 12 warns falsely on that.)
/// The one integer rule (parse_integer()): an integer, or a float that is an exact integer.
std::optional<std::int64_t> exact_integer(const toml::node& n) {
  if (auto v = n.as_integer()) return v->get();
  auto x = n.as_floating_point();
  if (!x || std::floor(x->get()) != x->get() || !(std::fabs(x->get()) < 9.0e18)) return std::nullopt;
  return static_cast<std::int64_t>(x->get());
}

bool convert(const FieldSpec& f, const toml::node& n, ParamValue& out) {
  switch (f.type) {
    case ParamType::Integer: {
      const auto v = exact_integer(n);
      return v && (out = *v, true);
    }
    case ParamType::Real: {
      auto x = as_number(n);
      return x && (out = *x, true);
    }
    case ParamType::Bool:
      if (auto v = n.as_boolean()) return out = v->get(), true;
      return false;
    case ParamType::String:
      if (auto v = n.as_string()) return out = v->get(), true;
      return false;
    case ParamType::RealArray: {
      auto a = n.as_array();
      if (!a) return false;
      std::vector<double> xs;
      for (auto&& e : *a) {
        auto x = as_number(e);
        if (!x) return false;
        xs.push_back(*x);
      }
      return out = std::move(xs), true;
    }
    case ParamType::StringArray: {
      auto a = n.as_array();
      if (!a) return false;
      std::vector<std::string> ss;
      for (auto&& e : *a) {
        auto s = e.as_string();
        if (!s) return false;
        ss.push_back(s->get());
      }
      return out = std::move(ss), true;
    }
    case ParamType::RealTable: {
      auto t = n.as_table();
      if (!t) return false;
      std::map<std::string, double> m;
      for (auto&& [k, v] : *t) {
        auto x = as_number(v);
        if (!x) return false;
        m[std::string(k.str())] = *x;
      }
      return out = std::move(m), true;
    }
  }
  return false;
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

/// " (did you mean 'bm'?)" for the closest known key within edit distance 2.
std::string suggestion(const std::string& key, const std::vector<std::string>& known) {
  std::size_t best = 3;
  std::string pick;
  for (const auto& k : known) {
    // The length difference bounds the distance from below: skip the hopeless (long keys).
    if ((key.size() > k.size() ? key.size() - k.size() : k.size() - key.size()) >= best) continue;
    std::size_t d = edit_distance(key, k);
    if (d < best) best = d, pick = k;
  }
  return pick.empty() ? "" : " (did you mean '" + pick + "'?)";
}

template <class S> std::vector<std::string> keys_of(const std::vector<Field<S>>& schema) {
  std::vector<std::string> keys;
  for (const auto& f : schema) keys.push_back(f.key);
  return keys;
}

/// Converts and range-checks one node, then stores it. Lengths that depend on the
/// number of sectors wait for validate(): a file may change sectors and arrays together.
template <class S>
void apply(S& s, const Field<S>& f, const toml::node& n, const std::string& origin, const std::string& key) {
  ParamValue v;
  if (!convert(f, n, v))
    fail(origin, key, render_node(n),
         f.type == ParamType::Integer && n.is_number() ? integer_rule() : "expected " + describe(f));
  std::string msg = check_value(f, v);
  if (!msg.empty()) fail(origin, key, render_node(n), msg);
  f.set(s, std::move(v));
}

std::string resolve_path(const fs::path& dir, const std::string& p) {
  return fs::absolute(dir / fs::path(p)).lexically_normal().string();
}

/// One parsed scenario file.
struct Doc {
  std::string name;  ///< as the user or the inheriting file wrote it, for messages
  fs::path dir;      ///< absolute directory, for relative paths inside it
  toml::table table;
};

/// Applies documents and overrides to one Params, remembering who set each key last
/// so that cross-key errors name the right file.
class Loader {
 public:
  Params p;

  void apply_table(const toml::table& t, const std::string& origin, const fs::path& dir) {
    for (auto&& [k, node] : t) {
      const std::string key(k.str());
      if (key == "inherits") continue;  // read when the chain was built
      if (key == "provider") {
        apply_providers(node, origin);
      } else {
        const Field<Params>* f = find_param(key);
        if (!f) fail(origin, key, render_node(node), "unknown key" + suggestion(key, root_keys()));
        apply(p, *f, node, origin, key);
        if (key == "countries") {
          p.countries = resolve_path(dir, p.countries);
          countries_set = true;
        }
      }
      set_at_[key] = {++seq_, origin};
    }
  }

  /// Cross-key rules and per-sector lengths, once every source has been applied.
  void finish() {
    validate(p, [this](const std::vector<std::string>& keys) {
      std::pair<int, std::string> last{0, "defaults"};
      for (const auto& k : keys) {
        auto it = set_at_.find(k);
        if (it != set_at_.end() && it->second.first > last.first) last = it->second;
      }
      return last.second;
    });
  }

  bool countries_set = false;

 private:
  static const std::vector<std::string>& root_keys() {
    static const std::vector<std::string> keys = [] {
      auto k = keys_of(params_schema());
      k.push_back("inherits");
      k.push_back("provider");
      return k;
    }();
    return keys;
  }

  void apply_providers(const toml::node& n, const std::string& origin) {
    if (auto a = n.as_array()) {
      if (!a->empty() && !a->is_array_of_tables()) {
        fail(origin, "provider", render_node(n), "expected [[provider]] tables");
      }
      std::vector<ProviderParams> list;
      for (std::size_t i = 0; i < a->size(); ++i) list.push_back(new_provider(*(*a)[i].as_table(), origin, i));
      p.provider = std::move(list);  // count checked by validate()
    } else if (auto t = n.as_table()) {
      for (auto&& [k, sub] : *t) {
        const std::string idx(k.str());
        const std::string key = "provider." + idx;
        std::size_t i = 0;
        bool digits = !idx.empty() && idx.size() < 4 &&
                      std::all_of(idx.begin(), idx.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (digits) i = std::stoul(idx);
        if (!digits || i >= p.provider.size()) {
          fail(origin, key, render_node(sub),
               p.provider.empty() ? std::string("no inherited provider to change")
                                  : "expected a provider index from 0 to " + std::to_string(p.provider.size() - 1));
        }
        if (!sub.is_table()) fail(origin, key, render_node(sub), "expected a table of provider fields");
        patch_provider(p.provider[i], *sub.as_table(), origin, i);
      }
    } else {
      fail(origin, "provider", render_node(n), "expected [[provider]] tables");
    }
  }

  /// A new provider: its home picks the defaults of the fields it does not give.
  ProviderParams new_provider(const toml::table& t, const std::string& origin, std::size_t i) {
    const std::string key = "provider." + std::to_string(i);
    for (const auto& f : provider_schema()) {
      if (f.required && !t.contains(f.key)) {
        fail(origin, key, render_node(t), std::string("missing required field '") + f.key + "'");
      }
    }
    ProviderParams home_only;
    apply(home_only, *find_provider_field("home"), *t.get("home"), origin, key + ".home");
    ProviderParams q = provider_defaults(home_only.home);
    patch_provider(q, t, origin, i);
    return q;
  }

  void patch_provider(ProviderParams& q, const toml::table& t, const std::string& origin, std::size_t i) {
    for (auto&& [k, node] : t) {
      const std::string field(k.str());
      const std::string key = "provider." + std::to_string(i) + "." + field;
      const Field<ProviderParams>* f = find_provider_field(field);
      if (!f) {
        fail(origin, key, render_node(node), "unknown provider field" + suggestion(field, keys_of(provider_schema())));
      }
      apply(q, *f, node, origin, key);
    }
  }

  std::map<std::string, std::pair<int, std::string>> set_at_;  // key → (order, origin)
  int seq_ = 0;
};

std::string quote_key(const std::string& k) { return render_value(ParamValue(k)); }

/// One `key=value` override as a one-key TOML table, so files and overrides share
/// every check. `provider.N.field` becomes the dotted key "provider"."N"."field".
toml::table parse_set(const std::string& set, const std::string& origin) {
  const auto eq = set.find('=');
  auto trim = [](std::string s) {
    const char* ws = " \t";
    s.erase(0, s.find_first_not_of(ws));
    s.erase(s.find_last_not_of(ws) + 1);
    return s;
  };
  const std::string key = eq == std::string::npos ? "" : trim(set.substr(0, eq));
  const std::string text = eq == std::string::npos ? "" : trim(set.substr(eq + 1));
  if (key.empty() || set.find_first_of("\r\n") != std::string::npos) {
    throw InputError(origin + " '" + set + "': expected key=value");
  }
  if (key == "inherits") fail(origin, key, text, "only a scenario file may inherit");

  // The schema entry decides whether raw text may stand for a string.
  std::string toml_key = quote_key(key);
  const FieldSpec* f = find_param(key);
  if (key.rfind("provider.", 0) == 0) {
    const auto dot = key.find('.', 9);
    const std::string idx = key.substr(9, dot == std::string::npos ? std::string::npos : dot - 9);
    const std::string field = dot == std::string::npos ? "" : key.substr(dot + 1);
    toml_key = "provider." + quote_key(idx) + (field.empty() ? "" : "." + quote_key(field));
    f = find_provider_field(field);
    if (!field.empty() && !f) {
      fail(origin, key, text, "unknown provider field" + suggestion(field, keys_of(provider_schema())));
    }
  } else if (!f && key != "provider") {
    fail(origin, key, text, "unknown key" + suggestion(key, keys_of(params_schema())));
  }
  try {
    return toml::parse(std::string_view(toml_key + " = " + text), std::string_view(origin));
  } catch (const toml::parse_error&) {
  }
  if (f && f->type == ParamType::String) {
    try {
      return toml::parse(std::string_view(toml_key + " = " + quote_key(text)), std::string_view(origin));
    } catch (const toml::parse_error& e) {  // e.g. invalid UTF-8 in the text or the key
      fail(origin, key, text, std::string(e.description()));
    }
  }
  fail(origin, key, text.empty() ? "(nothing)" : text,
       f ? "expected " + describe(*f) : std::string("expected a TOML value"));
}

Doc read_doc(const std::string& name, const std::string& referrer, const std::string& ref_value) {
  // Errors in an inherited file's reading are reported on the referring key.
  auto cannot = [&](const std::string& why) {
    if (referrer.empty()) throw InputError(name + ": cannot read scenario file: " + why);
    fail(referrer, "inherits", ref_value, "cannot read " + name + ": " + why);
  };
  std::error_code ec;
  const auto st = fs::status(name, ec);
  if (!fs::exists(st)) cannot("no such file");
  if (!fs::is_regular_file(st)) cannot("not a regular file");
  std::ifstream in(name, std::ios::binary);
  if (!in.is_open()) cannot("cannot open");
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) cannot("read failed");
  Doc doc{name, fs::absolute(fs::path(name)).parent_path(), {}};
  try {
    doc.table = toml::parse(std::string_view(text), std::string_view(name));
  } catch (const toml::parse_error& e) {
    const auto& at = e.source().begin;
    throw InputError(name + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) +
                     ": malformed TOML: " + std::string(e.description()));
  }
  return doc;
}

}  // namespace

std::optional<std::int64_t> parse_integer(const std::string& text) {
  if (text.find_first_of("\n\r#") != std::string::npos) return std::nullopt;  // one value, nothing after it
  try {
    const toml::table t = toml::parse("v = " + text);
    const toml::node* n = t.get("v");
    return t.size() == 1 && n ? exact_integer(*n) : std::nullopt;
  } catch (const toml::parse_error&) {
    return std::nullopt;
  }
}

Params load_scenario(const std::string& path, const std::vector<std::string>& sets, const std::string& origin,
                     std::vector<std::string>* files) {
  // The chain, leaf first.
  std::vector<Doc> chain;
  std::vector<fs::path> seen;
  std::string name = path, referrer, ref_value;
  for (;;) {
    std::error_code ec;
    fs::path id = fs::weakly_canonical(fs::absolute(name), ec);
    if (ec) id = fs::absolute(name).lexically_normal();
    if (std::find(seen.begin(), seen.end(), id) != seen.end()) {
      std::string cycle;
      for (const auto& d : chain) cycle += d.name + " -> ";
      fail(referrer, "inherits", ref_value, "inheritance cycle " + cycle + name);
    }
    seen.push_back(id);
    chain.push_back(read_doc(name, referrer, ref_value));
    if (files) files->push_back(name);
    const toml::node* parent = chain.back().table.get("inherits");
    if (!parent) break;
    referrer = chain.back().name;
    ref_value = render_node(*parent);
    if (!parent->is_string() || parent->as_string()->get().empty()) {
      fail(referrer, "inherits", ref_value, "expected a non-empty path of the parent scenario");
    }
    name = (fs::path(referrer).parent_path() / parent->as_string()->get()).lexically_normal().string();
  }

  Loader loader;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) loader.apply_table(it->table, it->name, it->dir);
  // Without a file that set it, the default country path is relative to the base file.
  if (!loader.countries_set) {
    loader.p.countries = resolve_path(chain.back().dir, loader.p.countries);
    loader.countries_set = true;
  }
  for (const auto& s : sets) loader.apply_table(parse_set(s, origin), origin, fs::current_path());
  loader.finish();
  return std::move(loader.p);
}

}  // namespace cutoff
