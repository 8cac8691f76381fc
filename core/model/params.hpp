#pragma once
/// @file
/// Every scenario parameter of docs/model.md §9, and the one schema table that drives
/// them. `Params` holds one plain member per TOML key (member name == key); the
/// schema (params_schema(), provider_schema()) lists for each key its type, unit,
/// inclusive range, default and meaning, and is the only place those are written.
/// Defaults, loading (core/model/scenario.hpp), validation, overrides, the resolved-TOML dump
/// (to_toml) and docs/parameters.md (schema_markdown) all read it, so adding a
/// parameter is one member plus one schema line.
///
/// Params is host-side data (strings, vectors); kernels take a plain struct built
/// from it elsewhere.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "core/hd/error.hpp"

namespace cutoff {

inline constexpr int kTiers = 3;          ///< export tiers 1/2/3 (arrays index tier − 1)
inline constexpr int kPlans = 3;          ///< free / plus / pro
inline constexpr int kMaxProviders = 16;  ///< partner masks are 16 bits
inline constexpr int kMaxSectors = 64;    ///< sectors are u8; 64 keeps tables small

/// One provider (AI lab), a `[[provider]]` table. Stage durations and alignment
/// default by home (provider_defaults); name, home and cap_share are required.
struct ProviderParams {
  std::string name;
  std::string home;                                  ///< ISO3 of the home country
  double cap_share = 0;                              ///< share of capacity0 at tick 0
  bool follower = false;                             ///< fast follower: distils (§2.2)
  double offset = 0;                                 ///< offset_p [K]
  std::int64_t d_gov = 0, d_trusted = 0, d_kyc = 0;  ///< release stages [ticks]
  std::vector<double> align;                         ///< length kTiers: tiers 1/2/3 with this provider
  std::map<std::string, double> align_country;       ///< ISO3 → alignment, overrides align
};

/// All scenario parameters; the default constructor gives the schema defaults
/// (docs/model.md §9). Meanings and units: params_schema() or docs/parameters.md.
/// After load_scenario, `countries` holds the resolved absolute path of the table.
struct Params {
  Params();

  // run (§4)
  std::int64_t horizon, calib_tick, seed, n_firms, n_users, min_firms, min_users, lever_tick;
  /// Agent counts of the reference population on which τ0 and need0 are derived
  /// (§2.0, v5); 0: the run's own counts (v4).
  std::int64_t tau0_ref_firms, tau0_ref_users;
  std::string description, countries;
  // capacity and finance (§2.1, §2.3)
  double capacity0, train_share;
  std::int64_t lead;
  double g_cap, x_max, x_max_t3, bm, F_smooth, capex, opex, life, markup, outside_finance;
  // capability and releases (§2.2)
  double beta, K_lead0, dK_release, K_trend;
  // serving cost (§2.3)
  double delta, kappa, eta, h0, K_ref;
  // trusted partners (§2.2)
  std::int64_t n_trusted;
  double a_trusted, p_defender;
  std::int64_t n_large;
  bool size_strata;  ///< the small stratum in size bands, each with its own weight (§1, v5)
  // fast followers and open weights (§2.2)
  std::int64_t L0, dL_api, dL_cd;
  double chi;
  std::int64_t n_open;
  // reserves and price cap (§2.6)
  double r_gov;
  std::vector<std::string> r_gov_homes;
  double r_cons, p_max;
  // KYC and tier-2 quota (§2.4)
  std::vector<double> kyc_rate;  ///< length kTiers
  double a_kyc, tier2_quota, tier2_quota_growth;
  // choice (§2.4)
  double p_switch, switch_noise;
  double firm_p_repick;  ///< (v5) a firm keeping its provider: its probability of re-choosing its generation (§2.4)
  // firms and sectors (§1, §2.5)
  double worker_share, pareto_alpha, size_cap, tightness0, tau_growth;
  std::vector<std::string> sector_names;     ///< one per sector
  std::vector<double> sector_share, mult_s;  ///< one per sector
  // productivity (§2.0, §2.7)
  double phi, rho, psi, g0, sigma_A, sigma_c, A_sigma0;
  // budgets and demand (§2.5)
  double budget_sigma, beta_W, beta_R, wtp_months, access_cost, q_min;
  double b_adapt, b_max, b_floor, b_up;  ///< budget adaptation (§2.5, v4)
  // competition, wealth, entry and exit (§2.8)
  double labour_share, other_cost, exit_months, entrant_sigma;
  // spillover and trade (§2.8, §2.10)
  double xi;
  std::vector<double> tier_sim;  ///< same tier, adjacent tiers, tiers 1 and 3
  double omega;
  bool pool_price_taker;  ///< each firm agent's country pool rate leaves out its own agent (§2.8, v5)
  // users and plans (§2.5, §2.9)
  double income_sigma, tightness0_cons, need_sigma, omega_inc, omega_plan, f_free;
  double need_growth, need_sat;                            ///< consumer need's own growth and saturation (§2.5, v5)
  std::vector<double> plan_price, plan_weight, plan_need;  ///< length kPlans
  double plan_cap;
  bool plan_repick;
  bool seats;              ///< the product layer: firms' seats on a plan (§2.6e, v5)
  bool plan_split;         ///< labs split capacity between the API and the plans by earnings (§2.6c, v5)
  double plan_pass;        ///< plan prices follow the API's scarcity, (π/p_min)^plan_pass (§2.9, v5)
  std::int64_t seat_plan;  ///< 1 free, 2 plus, 3 pro
  double seat_share;       ///< share of a firm's employees wanting a seat
  bool compute_caps;       ///< plans cap compute, and users choose by the tokens it gives (§2.4, §2.6e, v5)
  double p_repick;         ///< under compute caps: an adopter's probability of re-choosing its generation (§2.4)
  // adoption (§2.9)
  double bass_p, bass_q, psi_u, adopt0, conn_ref, conn_exp, conn_min;
  bool firm_bass;  ///< firms adopt AI by diffusion (§2.9, v5)
  double firm_adopt0, firm_bass_p, firm_bass_q, firm_adopt_size;
  // policies by rule (§6)
  double gap_policy;
  std::int64_t n_policy;
  double w_firm, deal_size, deal_cons_floor, build_share, kyc_raise;
  // levers (§4, §6)
  bool moratorium, first_resort, crackdown, open_weights, policy_build, policy_deal, policy_kyc, diffusion_rule;
  std::string lever_country;

  std::vector<ProviderParams> provider;  ///< 1 … kMaxProviders
};

bool operator==(const ProviderParams& a, const ProviderParams& b);
bool operator!=(const ProviderParams& a, const ProviderParams& b);
bool operator==(const Params& a, const Params& b);
bool operator!=(const Params& a, const Params& b);

// ---------------------------------------------------------------------------
// The schema
// ---------------------------------------------------------------------------

/// Value types of the schema; the order matches ParamValue and ParamMember.
enum class ParamType { Integer, Real, Bool, String, RealArray, StringArray, RealTable };
using ParamValue = std::variant<std::int64_t, double, bool, std::string, std::vector<double>, std::vector<std::string>,
                                std::map<std::string, double>>;
template <class S>
using ParamMember = std::variant<std::int64_t S::*, double S::*, bool S::*, std::string S::*, std::vector<double> S::*,
                                 std::vector<std::string> S::*, std::map<std::string, double> S::*>;

/// What a string (or each string of an array, or each key of a table) must look like.
enum class TextRule { Any, Name, Iso3, Path };

/// Array lengths: > 0 fixed; these for the others.
inline constexpr int kAnyLength = 0;     ///< any length (string lists)
inline constexpr int kPerSector = -1;    ///< as many as sector_share has
inline constexpr int kSectorCount = -2;  ///< defines the sectors: 1 … kMaxSectors

/// One schema entry without its member pointer, so checks need no template.
struct FieldSpec {
  const char* key;
  ParamType type;
  const char* unit;      ///< in words: "ticks", "H100e", "USD per H100e", "1"
  double min, max;       ///< inclusive; per element for arrays and tables; ±inf allowed
  int length;            ///< arrays only: > 0 fixed, or kAnyLength, kPerSector, kSectorCount
  TextRule text;         ///< strings only
  ParamValue def;        ///< the default (docs/model.md §9)
  const char* meaning;   ///< one line for the docs
  bool required;         ///< provider fields without a default
  const char* def_text;  ///< docs show this instead of def (nullptr: def)
};

/// A schema entry of struct S (Params or ProviderParams).
template <class S> struct Field : FieldSpec {
  ParamMember<S> member;

  ParamValue get(const S& s) const {
    return std::visit([&](auto m) -> ParamValue { return s.*m; }, member);
  }
  /// @param v must hold the alternative of type(); a mismatch is a bug (std::bad_variant_access).
  void set(S& s, ParamValue v) const {
    std::visit([&](auto m) { s.*m = std::get<std::decay_t<decltype(s.*m)>>(std::move(v)); }, member);
  }
};

/// Every key of Params, in documentation order.
const std::vector<Field<Params>>& params_schema();
/// Every field of a `[[provider]]` table.
const std::vector<Field<ProviderParams>>& provider_schema();
/// Schema entry for a key, or nullptr.
const Field<Params>* find_param(const std::string& key);
const Field<ProviderParams>* find_provider_field(const std::string& key);

/// A provider with the defaults of its home: stages and alignment of docs/model.md §5
/// for USA and CHN, the European ones (FRA) for any other home.
ProviderParams provider_defaults(const std::string& home);
/// The five default providers of docs/model.md §9.
std::vector<ProviderParams> default_providers();

/// "a real from 0 to 100", "an array of 3 reals in [0, 1]", … (for messages).
std::string describe(const FieldSpec& f);
/// Checks v against f's range, length and text rule. Returns "" when allowed, else
/// the message tail, e.g. "out of range, allowed 0 to 100".
/// @param n_sectors length kPerSector arrays must have; 0 skips that check
std::string check_value(const FieldSpec& f, const ParamValue& v, std::size_t n_sectors = 0);
/// v as TOML text: shortest decimal that reads back to the same double, `inf`,
/// quoted and escaped strings, `[a, b]`, `{ K = v }`.
std::string render_value(const ParamValue& v);

/// Names where a key was set, for messages: the origin (file or override) of the
/// key among `keys` set last; "defaults" if none was set.
using OriginFn = std::function<std::string(const std::vector<std::string>& keys)>;

/// Every per-key check and the cross-key rules (calib_tick < horizon, sector arrays,
/// sector_share sums to 1, r_gov + r_cons ≤ 1, p_max ≥ p_min, providers). Throws
/// InputError naming origin(keys), the key, the value and what is allowed.
void validate(const Params& p, const OriginFn& origin);
/// Same, with every message naming "parameters" as the origin.
void validate(const Params& p);

/// Fully resolved parameters as TOML (every key, providers last as `[[provider]]`)
/// that load back to an equal Params.
std::string to_toml(const Params& p);

/// §2.0 (v5): whether τ0 and need0 come from a reference population other than the
/// run's own agents (tau0_ref_firms and tau0_ref_users set and not the run's counts).
bool uses_reference_population(const Params& p);
/// Markdown reference of every parameter, the provider fields and default providers.
std::string schema_markdown();

}  // namespace cutoff
