/// @file
/// The parameter schema (docs/model.md §9) and what reads it: defaults, checks, the
/// resolved-TOML dump and docs/parameters.md. The scenario loader is in scenario.cpp.

#include "core/model/params.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <ostream>
#include <set>
#include <sstream>

namespace cutoff {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kCount40 = 1099511627776.0;  // 2^40: n_firms, n_users at the scale targets and beyond
constexpr double kSeedMax = 4294967295.0;     // seeds are uint32 (Philox key word)

// ---------------------------------------------------------------------------
// Builders for schema lines, so the table below reads one parameter per line.
// ---------------------------------------------------------------------------

template <class S>
Field<S> field(const char* key, ParamType t, const char* unit, double lo, double hi, int length, TextRule text,
               ParamValue def, const char* meaning, ParamMember<S> m, bool required = false,
               const char* def_text = nullptr) {
  Field<S> f;
  static_cast<FieldSpec&>(f) =
      FieldSpec{key, t, unit, lo, hi, length, text, std::move(def), meaning, required, def_text};
  f.member = m;
  return f;
}
template <class S>
Field<S> integer(const char* key, std::int64_t S::*m, const char* unit, double lo, double hi, std::int64_t def,
                 const char* meaning) {
  return field<S>(key, ParamType::Integer, unit, lo, hi, 0, TextRule::Any, def, meaning, m);
}
template <class S>
Field<S> real(const char* key, double S::*m, const char* unit, double lo, double hi, double def, const char* meaning) {
  return field<S>(key, ParamType::Real, unit, lo, hi, 0, TextRule::Any, def, meaning, m);
}
template <class S> Field<S> flag(const char* key, bool S::*m, const char* meaning) {
  return field<S>(key, ParamType::Bool, "", 0, 1, 0, TextRule::Any, ParamValue(std::in_place_type<bool>, false),
                  meaning, m);
}
template <class S>
Field<S> text(const char* key, std::string S::*m, TextRule rule, std::string def, const char* meaning) {
  return field<S>(key, ParamType::String, "", 0, 0, 0, rule, std::move(def), meaning, m);
}
template <class S>
Field<S> reals(const char* key, std::vector<double> S::*m, const char* unit, int length, double lo, double hi,
               std::vector<double> def, const char* meaning) {
  return field<S>(key, ParamType::RealArray, unit, lo, hi, length, TextRule::Any, std::move(def), meaning, m);
}
template <class S>
Field<S> texts(const char* key, std::vector<std::string> S::*m, TextRule rule, int length, std::vector<std::string> def,
               const char* meaning) {
  return field<S>(key, ParamType::StringArray, "", 0, 0, length, rule, std::move(def), meaning, m);
}

std::vector<Field<Params>> make_params_schema() {
  using P = Params;
  return {
      // run
      integer("horizon", &P::horizon, "ticks", 1, 100000, 120,
              "Ticks simulated; one tick is one month, tick 0 is January 2025"),
      integer("calib_tick", &P::calib_tick, "ticks", 0, 99999, 14,
              "Tick the calibration targets of §8 refer to (14 = March 2026); a shorter run has no calibration point"),
      integer("seed", &P::seed, "1", 0, kSeedMax, 1, "Random seed (Philox key, §3)"),
      integer("n_firms", &P::n_firms, "agents", 1, kCount40, 100000, "Firm agents in the world (§1)"),
      integer("n_users", &P::n_users, "agents", 1, kCount40, 1000000, "User agents in the world (§1)"),
      integer("tau0_ref_firms", &P::tau0_ref_firms, "agents", 0, kCount40, 100000,
              "Firm agents of the reference population that derives tau0 and need0, whatever the run's own "
              "counts (§2.0, v5); 0: the run's own n_firms and n_users (v4)"),
      integer("tau0_ref_users", &P::tau0_ref_users, "agents", 0, kCount40, 1000000,
              "User agents of that reference population (§2.0, v5); 0: as tau0_ref_firms = 0"),
      integer("min_firms", &P::min_firms, "agents per country", 1, kCount40, 20,
              "Fewest small-stratum firm agents per country (§1)"),
      integer("min_users", &P::min_users, "agents per country", 1, kCount40, 50, "Fewest user agents per country (§1)"),
      integer("lever_tick", &P::lever_tick, "ticks", 0, 100000, 0,
              "Tick from which the scenario's levers apply (§4); at or after horizon, never"),
      text("description", &P::description, TextRule::Any, "",
           "Free text describing the scenario; not used by the model"),
      text("countries", &P::countries, TextRule::Path, "../countries.csv",
           "Country table (§5); relative to the directory of the file that sets it "
           "(default: of the base of the inherits chain; an override: of the working directory)"),
      // capacity and finance
      real("capacity0", &P::capacity0, "H100e", 1, 1e12, 4e6, "World provider capacity at tick 0, shared by cap_share"),
      real("train_share", &P::train_share, "1", 0, 0.99, 0.5,
           "Share s_p of capacity used for training (§2.2); the rest serves inference"),
      integer("lead", &P::lead, "ticks", 1, 120, 12, "Ticks from a capacity order to its arrival (§2.1)"),
      real("g_cap", &P::g_cap, "times per year", 1, 100, 2.3, "Planned capacity growth a lab orders for (§2.1)"),
      real("x_max", &P::x_max, "of C_p per tick", 0, 10, 0.2, "Order cap as a share of capacity (§2.1)"),
      real("x_max_t3", &P::x_max_t3, "of C_p per tick", 0, 10, 0.04,
           "Order cap for providers homed in tier-3 countries (export controls, §2.1)"),
      real("bm", &P::bm, "1", 0, 100, 1,
           "Build-out multiplier on planned growth, order cap and outside finance (§2.1)"),
      real("F_smooth", &P::F_smooth, "per tick", 0, 1, 0.3, "Smoothing weight of the demand forecast F_p (§2.6)"),
      real("capex", &P::capex, "USD per H100e", 1, 1e9, 30000, "Capital cost of one H100e (§2.1)"),
      real("opex", &P::opex, "USD per H100e-month", 0, 1e9, 600, "Running cost of one H100e for a month (§2.3)"),
      real("life", &P::life, "ticks", 1, 1200, 36, "Depreciation life; c_H = opex + capex/life (§2.3)"),
      real("markup", &P::markup, "1", 0, 100, 0.3, "Markup m; floor price p_min = (1 + m)·c_H (§2.3)"),
      real("outside_finance", &P::outside_finance, "USD per USD of revenue", 0, 100, 1.5,
           "Outside finance f a lab raises per dollar of revenue, times bm (§2.1)"),
      // capability
      real("beta", &P::beta, "K per e-fold of T_p", 0, 10, 1.2,
           "Capability per e-fold of cumulative training compute (§2.2)"),
      real("K_lead0", &P::K_lead0, "K", 0, 100, 2.6, "Frontier capability at tick 0 (§2.2)"),
      real("dK_release", &P::dK_release, "K", 0.01, 10, 1, "Capability gain that triggers a new generation (§2.2)"),
      real("K_trend", &P::K_trend, "K per tick", 0, 1, 1.0 / 12, "Frontier trend before tick 0 (§2.0); default 1/12"),
      // serving cost
      real("delta", &P::delta, "per tick", 0, 1, std::log(1.5) / 12,
           "Hardware decline of all serving cost, exp(-delta·t) (§2.3); default ln(1.5)/12"),
      real("kappa", &P::kappa, "per K", 0, 10, std::log(2.5),
           "Serving cost rise per unit of capability, exp(kappa·(K_g - K_ref)) (§2.3); default ln(2.5)"),
      real("eta", &P::eta, "per tick", 0, 1, std::log(6.0) / 12,
           "Serving cost decline of one generation with age (§2.3); default ln(6)/12"),
      real("h0", &P::h0, "H100e per Mtok", 1e-9, 1000, 2.5e-3, "Serving cost at K_ref and tick 0 (§2.3)"),
      real("K_ref", &P::K_ref, "K", 0, 100, 2, "Reference capability of h0 (§2.3)"),
      // trusted partners
      integer("n_trusted", &P::n_trusted, "real firms", 0, kCount40, 50,
              "Trusted partners a provider covers per release (§2.2)"),
      real("a_trusted", &P::a_trusted, "1", -1, 2, 0.9,
           "Least alignment for trusted partners (§2.2); above 1 admits none"),
      real("p_defender", &P::p_defender, "1", 0, 1, 0.3, "Probability a large tier-1 ICT firm is a defender (§1)"),
      integer("n_large", &P::n_large, "agents", 0, kCount40, 20000, "Largest firms of the world, one agent each (§1)"),
      flag("size_strata", &P::size_strata,
           "Small-stratum firms drawn in size bands, 1-9, 10-49, 50-249 and 250+ employees, each with its own agents "
           "(in proportion to its employment) and weight (§1, v5); false: one band, one weight per country (v4)"),
      // fast followers and open weights
      integer("L0", &P::L0, "ticks", 0, 120, 2, "Base distillation lag L of fast followers (§2.2)"),
      integer("dL_api", &P::dL_api, "ticks", 0, 120, 2,
              "Extra lag when the follower's home is blocked from the leader (§2.2)"),
      integer("dL_cd", &P::dL_cd, "ticks", 0, 120, 6, "Extra lag under a distillation crackdown (§2.2)"),
      real("chi", &P::chi, "1", 0, 1, 0.3, "Weight of a follower's own training (§2.2)"),
      integer("n_open", &P::n_open, "ticks", 0, 1200, 6,
              "Ticks from GENERAL to OPEN under the open_weights lever (§2.2)"),
      // reserves and price cap
      real("r_gov", &P::r_gov, "1", 0, 1, 0.05, "Government reserve share of inference capacity (§2.6a)"),
      texts("r_gov_homes", &P::r_gov_homes, TextRule::Iso3, kAnyLength, {"USA"},
            "Homes whose providers hold the government reserve (§2.6a)"),
      real("r_cons", &P::r_cons, "1", 0, 1, 0.3, "Consumer floor share of inference capacity (§2.6b)"),
      real("p_max", &P::p_max, "USD per H100e-month", 0, kInf, kInf, "Price cap; inf = none (§2.6); at least p_min"),
      // KYC and quota
      reals("kyc_rate", &P::kyc_rate, "per tick", kTiers, 0, 1, {0.02, 0.008, 0},
            "KYC clearance probability by tier 1/2/3 (§2.4); default 0.02 × (1, 0.4, 0)"),
      real("a_kyc", &P::a_kyc, "1", -1, 2, 0.3,
           "Least alignment for KYC clearance to apply (§2.4); above 1 admits none"),
      real("tier2_quota", &P::tier2_quota, "H100e per country", 0, kInf, 50000,
           "Tier-2 quota Q_c on tier-1-homed providers (§2.4); inf = none"),
      real("tier2_quota_growth", &P::tier2_quota_growth, "per year", 0, 100, 0, "Growth of the tier-2 quota (§2.4)"),
      // choice
      real("p_switch", &P::p_switch, "per tick", 0, 1, 0.05, "Probability of re-choosing the provider (§2.4)"),
      real("firm_p_repick", &P::firm_p_repick, "per tick", 0, 1, 1.0,
           "A firm that keeps its provider re-chooses its generation with this probability, and keeps the one it "
           "has while it stays eligible otherwise (§2.4, v5); 1: every firm re-chooses its generation every tick"),
      real("switch_noise", &P::switch_noise, "uplift", 0, 100, 0.5, "Gumbel scale of choice noise (§2.4)"),
      // firms and sectors
      real("worker_share", &P::worker_share, "1", 0.01, 1, 0.45, "Workers per person (§1)"),
      real("pareto_alpha", &P::pareto_alpha, "1", 0.1, 10, 1.1, "Pareto index of firm sizes (§1)"),
      real("size_cap", &P::size_cap, "raw size", 1, 1e9, 1e4, "Cap on raw Pareto firm sizes (§1)"),
      real("tightness0", &P::tightness0, "1", 0.001, 100, 0.9,
           "Firm demand at p_min over firm capacity at tick 0; derives tau0 (§2.0)"),
      real("tau_growth", &P::tau_growth, "per tick", -1, 1, std::log(3.0) / 12,
           "Growth of tokens per worker (§2.5); default ln(3)/12"),
      texts("sector_names", &P::sector_names, TextRule::Name, kPerSector,
            {"agriculture", "manufacturing", "trade", "services", "finance_professional", "ict"},
            "Sector names (§1); the last is ICT (defenders)"),
      reals("sector_share", &P::sector_share, "1", kSectorCount, 0, 1, {0.25, 0.20, 0.20, 0.20, 0.10, 0.05},
            "Employment share of each sector (§1); sums to 1 within 1e-9; defines the sectors"),
      reals("mult_s", &P::mult_s, "1", kPerSector, 0, 1e6, {0.1, 0.6, 0.8, 1.5, 4, 8},
            "Tokens-per-worker multiplier of each sector (§1, §2.5)"),
      // productivity
      real("phi", &P::phi, "per K", 0, 100, 1, "AI uplift per unit of capability (§2.4, §2.7)"),
      real("rho", &P::rho, "1", 0, 1, 0.001, "Productivity growth per unit of uplift (§2.7)"),
      real("psi", &P::psi, "1", 0, 10, 0.5, "Exponent of the served share in the uplift (§2.4, §2.7)"),
      real("g0", &P::g0, "per tick", -1, 1, 0.0015, "Productivity growth without AI (§2.7)"),
      real("sigma_A", &P::sigma_A, "per tick", 0, 1, 0.01, "Productivity shock scale (§2.7)"),
      real("sigma_c", &P::sigma_c, "1", 0.1, 20, 3, "Competition exponent; revenue ∝ A^sigma_c (§2.0, §2.8)"),
      real("A_sigma0", &P::A_sigma0, "1", 0, 10, 0.1, "Lognormal sigma of initial productivity (§2.0)"),
      // budgets and demand
      real("budget_sigma", &P::budget_sigma, "1", 0, 10, 0.7,
           "Lognormal sigma (mean 1) of the budget multiplier b_i (§2.0)"),
      real("beta_W", &P::beta_W, "per tick", 0, 1, 0.0005, "Budget per dollar of wealth (§2.5)"),
      real("beta_R", &P::beta_R, "per tick", 0, 10, 0.001, "Budget per dollar of revenue (§2.5)"),
      real("wtp_months", &P::wtp_months, "months", 0, 1200, 12, "Months of uplift a firm will pay for (§2.5)"),
      real("access_cost", &P::access_cost, "USD per month", 0, 1e9, 500,
           "Fixed monthly access cost F_access of a buying firm (§2.5)"),
      real("q_min", &P::q_min, "Mtok per month", 0, 1e9, 10, "Minimum commitment of a buying firm (§2.5)"),
      real("b_adapt", &P::b_adapt, "per tick", 0, 10, 0.05,
           "Budget adaptation: b_i <- clip(b_i·exp(b_adapt·clip(l_i, -1, 1)), b_floor, b_max) after the clearing, "
           "l_i = ln(worth/price) (§2.5, v4); 0 keeps budgets fixed"),
      real("b_max", &P::b_max, "1", 0, 1e9, 30, "Largest budget multiplier b_i under adaptation (§2.5)"),
      real("b_floor", &P::b_floor, "1", 0, 1e9, 0.01, "Smallest budget multiplier b_i under adaptation (§2.5)"),
      real("b_up", &P::b_up, "1", -1, 1, 0.5,
           "l_up: the adaptation signal of a firm that could not bid for want of money although AI would pay "
           "its access cost (§2.5)"),
      // competition, wealth, entry and exit
      real("labour_share", &P::labour_share, "of GDP", 0, 1, 0.6, "Labour share of GDP; sets wages (§2.8)"),
      real("other_cost", &P::other_cost, "of revenue", 0, 1, 0.3, "Non-wage, non-compute costs (§2.8)"),
      real("exit_months", &P::exit_months, "months of wages", 0, 1200, 6,
           "A firm exits when wealth falls below minus this many months of wages (§2.8)"),
      real("entrant_sigma", &P::entrant_sigma, "1", 0, 10, 0.3, "Lognormal sigma of an entrant's productivity (§2.8)"),
      // spillover and trade
      real("xi", &P::xi, "uplift per K", 0, 10, 0.1, "Spillover of partners' capability (§2.10)"),
      reals("tier_sim", &P::tier_sim, "1", 3, 0, 1, {1, 0.4, 0},
            "Spillover similarity: same tier, adjacent tiers, tiers 1 and 3 (§2.10)"),
      real("omega", &P::omega, "1", 0, 1, 0.25, "Tradable share of every revenue pool (§2.8)"),
      flag("pool_price_taker", &P::pool_price_taker,
           "Each firm agent earns its country pool's rate without its own agent in the sums, as a firm too small to "
           "move its market would (§2.8, v5); false: with it, so the rate depends on how many agents share the pool"),
      // users and plans
      real("income_sigma", &P::income_sigma, "1", 0, 10, 0.8, "Lognormal sigma (mean 1) of user income z_u (§2.0)"),
      real("tightness0_cons", &P::tightness0_cons, "1", 0.001, 100, 0.7,
           "Consumer demand at full caps over the consumer floor at tick 0; derives need0 (§2.0)"),
      real("need_sigma", &P::need_sigma, "1", 0, 10, 1.0, "Lognormal sigma (median 1) of user need n_u (§2.0)"),
      real("need_growth", &P::need_growth, "per tick", -1, 1, std::log(3.0) / 12,
           "Initial growth of consumer need per person, its own rate (§2.5, v5); default ln(3)/12"),
      real("need_sat", &P::need_sat, "times need0", 1, kInf, kInf,
           "Consumer need per person saturates at this multiple of tick 0's (logistic, §2.5, v5); inf: it grows "
           "exp(need_growth t) without bound (v4 with need_growth = tau_growth)"),
      real("omega_inc", &P::omega_inc, "1", 0, 1, 0.03, "Income share for affordability (§2.9)"),
      real("omega_plan", &P::omega_plan, "1", 0, 1, 0.003, "Income share for plan choice (§2.9)"),
      real("f_free", &P::f_free, "1", 0, 1, 0.5, "Floor of affordability (free plan) (§2.9)"),
      reals("plan_price", &P::plan_price, "USD per month", kPlans, 0, 1e6, {0, 20, 200},
            "Price of plans free/plus/pro (§2.9)"),
      reals("plan_weight", &P::plan_weight, "1", kPlans, 0, 1e6, {1, 5, 25},
            "Water-fill weight w_plan of plans free/plus/pro (§2.6e)"),
      reals("plan_need", &P::plan_need, "1", kPlans, 0, 1e6, {1, 10, 100},
            "Need multiplier of plans free/plus/pro (§2.5)"),
      real("plan_cap", &P::plan_cap, "times plan need", 0, 1e6, 2, "Plan cap as a multiple of plan need (§2.5)"),
      flag("seats", &P::seats,
           "Product layer (§2.6e, v5): a firm that got no API compute buys seats on a plan for its AI-using "
           "workers, served in the plan layer; false: no seats (v4)"),
      integer("seat_plan", &P::seat_plan, "plan", 1, 3, 2,
              "Plan of the firms' seats: 1 free, 2 plus, 3 pro (its price, need, cap and weight; §2.6e, v5)"),
      real("seat_share", &P::seat_share, "1", 0, 1, 0.3,
           "Share of a firm's employees that want a seat (§2.6e, v5); a starting point, not calibrated"),
      flag("plan_split", &P::plan_split,
           "Labs split inference capacity between the API and the plans by what each earns (§2.6c, v5): the plan "
           "layer bids for its demand at full caps above its floor at its revenue per H100e; false: plans take "
           "the floor and what firms leave (v4)"),
      real("plan_pass", &P::plan_pass, "1", 0, 2, 0,
           "Plans priced by scarcity (§2.9, v5): a provider's plan and seat prices are the list prices times "
           "(pi_p(t-1)/p_min)^plan_pass, and an adopter steps down to the plan it can afford; 0: list prices (v4)"),
      flag(
          "compute_caps", &P::compute_caps,
          "Plans cap compute, not tokens (§2.6e, v5): the water-fill levels H100e per plan weight, so a cheaper "
          "generation gives more tokens, and adopters and seats choose a generation by the share of their cap its "
          "provider's level of t-1 serves, min(1, level w_plan/(h_g cap))^psi; false: token caps, frontier first (v4)"),
      real("p_repick", &P::p_repick, "per tick", 0, 1, 0.2,
           "Under compute caps (§2.4, v5), an adopter's probability of re-choosing its generation in a tick; "
           "otherwise it keeps it while it stays eligible (without compute caps every adopter re-chooses each tick)"),
      flag("plan_repick", &P::plan_repick,
           "Adopters re-choose their plan by income every tick; false: the plan chosen at adoption is kept (§2.9, a "
           "choice docs/model.md leaves open)"),
      // adoption
      real("bass_p", &P::bass_p, "per tick", 0, 1, 0.003, "Bass innovation rate (§2.9)"),
      real("bass_q", &P::bass_q, "per tick", 0, 1, 0.03, "Bass imitation rate (§2.9)"),
      real("psi_u", &P::psi_u, "1", 0, 10, 1, "Exponent of the use ratio in access (§2.9)"),
      real("adopt0", &P::adopt0, "1", 0, 1, 0.22, "Initial adoption probability scale (§2.0)"),
      real("conn_ref", &P::conn_ref, "USD per person per year", 1, 1e9, 14005,
           "GDP per capita of full connectivity (the high-income line) (§2.9)"),
      real("conn_exp", &P::conn_exp, "1", 0, 10, 0.4, "Exponent of connectivity in GDP per capita (§2.9)"),
      real("conn_min", &P::conn_min, "1", 0, 1, 0.2, "Least connectivity (§2.9)"),
      flag("firm_bass", &P::firm_bass,
           "Firms adopt AI by diffusion (§2.9, v5): a firm buys API compute or seats only once it has adopted, "
           "with probability (firm_adopt0 at tick 0, else firm_bass_p + firm_bass_q x its country's share of firms "
           "using AI at t-1) x conn_c x employees^firm_adopt_size; false: every firm has adopted (v4)"),
      real("firm_adopt0", &P::firm_adopt0, "1", 0, 1, 0.10,
           "Firms' adoption probability at tick 0 for one employee at full connectivity (§2.9, v5); with "
           "firm_adopt_size, calibrated to the Census BTOS (docs/model.md, v5)"),
      real("firm_bass_p", &P::firm_bass_p, "per tick", 0, 1, 0.003,
           "Firms' Bass innovation rate for one employee (§2.9, v5); default the users' bass_p"),
      real("firm_bass_q", &P::firm_bass_q, "per tick", 0, 1, 0.03,
           "Firms' Bass imitation rate for one employee (§2.9, v5); default the users' bass_q"),
      real("firm_adopt_size", &P::firm_adopt_size, "1", 0, 2, 0.15,
           "Exponent of employees in a firm's adoption probability (§2.9, v5); calibrated to the Census BTOS"),
      // policies by rule
      real("gap_policy", &P::gap_policy, "K", 0, 100, 1.0, "Access gap that triggers a policy (§6)"),
      integer("n_policy", &P::n_policy, "ticks", 1, 100000, 6,
              "Ticks in a row above gap_policy before a country acts (§6)"),
      real("w_firm", &P::w_firm, "1", 0, 1, 0.5, "Weight of firms in the access gap (§6)"),
      real("deal_size", &P::deal_size, "H100e", 0, 1e12, 100000, "Hosted capacity of a compute deal (§6)"),
      real("deal_cons_floor", &P::deal_cons_floor, "of hosted capacity", 0, 1, 0.05,
           "Consumer floor a deal host's users get (§6)"),
      real("build_share", &P::build_share, "of GDP per year", 0, 1, 0.002, "GDP share spent on domestic build (§6)"),
      real("kyc_raise", &P::kyc_raise, "1", 0, 1000, 2, "KYC rate multiplier of the KYC-raise policy (§6)"),
      // levers
      flag("moratorium", &P::moratorium, "No new home orders by providers homed in lever_country (§2.1)"),
      flag("first_resort", &P::first_resort, "lever_country's firms clear first on its providers (§2.6)"),
      flag("crackdown", &P::crackdown, "Distillation crackdown adds dL_cd to the follower lag (§2.2)"),
      flag("open_weights", &P::open_weights, "Generations become OPEN n_open ticks after GENERAL (§2.2)"),
      flag("policy_build", &P::policy_build, "Countries may take the domestic-build policy (§6)"),
      flag("policy_deal", &P::policy_deal, "Countries may take compute-for-access deals (§6)"),
      flag("policy_kyc", &P::policy_kyc, "Countries may raise their KYC rate (§6)"),
      flag("diffusion_rule", &P::diffusion_rule,
           "The January 2025 framework's tier-2 quota on tier-1-homed providers, from lever_tick (§2.4, v4; off "
           "in the baseline: rescinded in May 2025)"),
      text("lever_country", &P::lever_country, TextRule::Iso3, "USA",
           "Country flagged by moratorium and first_resort (§4)"),
  };
}

std::vector<Field<ProviderParams>> make_provider_schema() {
  using P = ProviderParams;
  auto by_home = "by home";
  return {
      field<P>("name", ParamType::String, "", 0, 0, 0, TextRule::Name, std::string(), "Provider name, unique", &P::name,
               true, "required"),
      field<P>("home", ParamType::String, "", 0, 0, 0, TextRule::Iso3, std::string(), "Home country", &P::home, true,
               "required"),
      field<P>("cap_share", ParamType::Real, "1", 1e-6, 1, 0, TextRule::Any, 0.0,
               "Share of capacity0 at tick 0; the shares sum to at most 1", &P::cap_share, true, "required"),
      flag("follower", &P::follower, "Fast follower: distils the released frontier (§2.2)"),
      real("offset", &P::offset, "K", -10, 10, 0, "Capability offset offset_p (§2.2)"),
      field<P>("d_gov", ParamType::Integer, "ticks", 0, 120, 0, TextRule::Any, std::int64_t{0},
               "Government review stage (§2.2)", &P::d_gov, false, by_home),
      field<P>("d_trusted", ParamType::Integer, "ticks", 0, 120, 0, TextRule::Any, std::int64_t{0},
               "Trusted-partner stage (§2.2)", &P::d_trusted, false, by_home),
      field<P>("d_kyc", ParamType::Integer, "ticks", 0, 120, 0, TextRule::Any, std::int64_t{0}, "KYC stage (§2.2)",
               &P::d_kyc, false, by_home),
      field<P>("align", ParamType::RealArray, "1", -1, 1, kTiers, TextRule::Any, std::vector<double>(),
               "Alignment of tier 1/2/3 countries with this provider (§5)", &P::align, false, by_home),
      field<P>("align_country", ParamType::RealTable, "1", -1, 1, 0, TextRule::Iso3, std::map<std::string, double>(),
               "Per-country alignment overriding align; own home is 1 by rule (§5)", &P::align_country, false, by_home),
  };
}

bool is_iso3(const std::string& s) {
  return s.size() == 3 && std::isupper(static_cast<unsigned char>(s[0])) &&
         std::isupper(static_cast<unsigned char>(s[1])) && std::isupper(static_cast<unsigned char>(s[2]));
}

bool text_ok(TextRule rule, const std::string& s) {
  switch (rule) {
    case TextRule::Any: return true;
    case TextRule::Name:
    case TextRule::Path: return !s.empty();
    case TextRule::Iso3: return is_iso3(s);
  }
  return false;
}

/// Shortest decimal that reads back to x exactly (at most 17 significant digits):
/// plain notation for moderate exponents ("100", "0.0025", "1863.3333333333335"),
/// else a tidy exponent ("1e12", "1e-9"); no ".0" is added.
std::string fmt_real(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  char buf[64];
  int digits = 1;
  for (; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*e", digits - 1, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  const char* e = std::strchr(buf, 'e');
  const int exp10 = std::atoi(e + 1);
  if (exp10 >= -5 && exp10 < std::max(digits, 7)) {
    std::snprintf(buf, sizeof buf, "%.*f", std::max(0, digits - 1 - exp10), x);
    return buf;
  }
  return std::string(static_cast<const char*>(buf), e) + "e" + std::to_string(exp10);
}

std::string fmt_bound(const FieldSpec& f, double x) {
  if (f.type == ParamType::Integer && std::isfinite(x)) {
    return std::to_string(static_cast<std::int64_t>(x));
  }
  return fmt_real(x);
}

std::string range_text(const FieldSpec& f) { return fmt_bound(f, f.min) + " to " + fmt_bound(f, f.max); }

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04X", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

bool bare_key(const std::string& k) {
  if (k.empty()) return false;
  for (unsigned char c : k) {
    if (!std::isalnum(c) && c != '_' && c != '-') return false;
  }
  return true;
}

std::string length_text(const FieldSpec& f, std::size_t n_sectors) {
  if (f.length > 0) return std::to_string(f.length) + " ";
  if (f.length == kPerSector && n_sectors > 0) return std::to_string(n_sectors) + " ";
  if (f.length == kSectorCount) return "1 to " + std::to_string(kMaxSectors) + " ";
  return "";
}

std::string describe_n(const FieldSpec& f, std::size_t n_sectors) {
  std::string per_sector = f.length == kPerSector ? ", one per sector" : "";
  std::string elems = "[" + fmt_bound(f, f.min) + ", " + fmt_bound(f, f.max) + "]";
  switch (f.type) {
    case ParamType::Integer: return "an integer from " + range_text(f);
    case ParamType::Real: return "a real from " + range_text(f);
    case ParamType::Bool: return "true or false";
    case ParamType::String:
      switch (f.text) {
        case TextRule::Any: return "a string";
        case TextRule::Name: return "a non-empty string";
        case TextRule::Path: return "a non-empty path";
        case TextRule::Iso3: return "an ISO3 code (3 upper-case letters)";
      }
      break;
    case ParamType::RealArray: return "an array of " + length_text(f, n_sectors) + "reals in " + elems + per_sector;
    case ParamType::StringArray:
      return "an array of " + length_text(f, n_sectors) +
             (f.text == TextRule::Iso3 ? std::string("ISO3 codes") : std::string("distinct non-empty strings")) +
             per_sector;
    case ParamType::RealTable: return "a table of ISO3 code = real in " + elems;
  }
  return "?";
}

bool length_ok(const FieldSpec& f, std::size_t n, std::size_t n_sectors) {
  if (f.length > 0) return n == static_cast<std::size_t>(f.length);
  if (f.length == kPerSector) return n_sectors == 0 || n == n_sectors;
  if (f.length == kSectorCount) return n >= 1 && n <= static_cast<std::size_t>(kMaxSectors);
  return true;
}

std::string num_list(const std::vector<double>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + fmt_real(v[i]);
  return s + "]";
}

/// TOML text of a real: like fmt_real, plus ".0" where it would read as an integer.
std::string toml_real(double x) {
  std::string s = fmt_real(x);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

template <class S> bool equal_by_schema(const std::vector<Field<S>>& schema, const S& a, const S& b) {
  for (const auto& f : schema) {
    if (f.get(a) != f.get(b)) return false;
  }
  return true;
}

std::string md_cell(std::string s) {
  for (std::size_t i = 0; (i = s.find('|', i)) != std::string::npos; i += 2) s.replace(i, 1, "\\|");
  return s;
}

std::string type_text(const FieldSpec& f) {
  switch (f.type) {
    case ParamType::Integer: return "integer";
    case ParamType::Real: return "real";
    case ParamType::Bool: return "bool";
    case ParamType::String: return "string";
    case ParamType::RealArray:
      return f.length > 0             ? "real[" + std::to_string(f.length) + "]"
             : f.length == kAnyLength ? "real[]"
                                      : "real[sectors]";
    case ParamType::StringArray: return f.length == kPerSector ? "string[sectors]" : "string[]";
    case ParamType::RealTable: return "table";
  }
  return "?";
}

std::string range_doc(const FieldSpec& f) {
  switch (f.type) {
    case ParamType::Integer:
    case ParamType::Real: return range_text(f);
    case ParamType::Bool: return "true, false";
    case ParamType::String:
    case ParamType::StringArray: {
      std::string each = f.type == ParamType::StringArray ? "each " : "";
      switch (f.text) {
        case TextRule::Any: return "any text";
        case TextRule::Name: return each + "non-empty" + (each.empty() ? "" : ", distinct");
        case TextRule::Path: return "path";
        case TextRule::Iso3: return each + "ISO3 code";
      }
      break;
    }
    case ParamType::RealArray: {
      std::string r = "each " + range_text(f);
      if (f.length == kSectorCount) r += "; 1 to " + std::to_string(kMaxSectors) + " sectors";
      return r;
    }
    case ParamType::RealTable: return "ISO3 code = " + range_text(f);
  }
  return "?";
}

std::string md_value(const FieldSpec& f) {
  if (f.def_text) return f.def_text;
  return "`" + render_value(f.def) + "`";
}

template <class S> void md_table(std::ostringstream& os, const std::vector<Field<S>>& schema, const char* first) {
  os << "| " << first << " | type | unit | range | default | meaning |\n|---|---|---|---|---|---|\n";
  for (const auto& f : schema) {
    os << "| `" << f.key << "` | " << type_text(f) << " | " << md_cell(f.unit) << " | " << md_cell(range_doc(f))
       << " | " << md_cell(md_value(f)) << " | " << md_cell(f.meaning) << " |\n";
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// Public functions
// ---------------------------------------------------------------------------

const std::vector<Field<Params>>& params_schema() {
  static const std::vector<Field<Params>> schema = make_params_schema();
  return schema;
}

const std::vector<Field<ProviderParams>>& provider_schema() {
  static const std::vector<Field<ProviderParams>> schema = make_provider_schema();
  return schema;
}

const Field<Params>* find_param(const std::string& key) {
  for (const auto& f : params_schema()) {
    if (key == f.key) return &f;
  }
  return nullptr;
}

const Field<ProviderParams>* find_provider_field(const std::string& key) {
  for (const auto& f : provider_schema()) {
    if (key == f.key) return &f;
  }
  return nullptr;
}

Params::Params() {
  for (const auto& f : params_schema()) f.set(*this, f.def);
  provider = default_providers();
}

ProviderParams provider_defaults(const std::string& home) {
  ProviderParams p;
  p.home = home;
  if (home == "USA") {
    p.d_gov = 2, p.d_trusted = 3, p.d_kyc = 4;
    p.align = {0.9, 0.4, -1};
  } else if (home == "CHN") {
    p.d_gov = 0, p.d_trusted = 0, p.d_kyc = 1;
    p.align = {0.05, 0.2, 0.6};
    p.align_country = {{"USA", -0.5}};
  } else {  // a European provider (docs/model.md §5), the stand-in for any other home
    p.d_gov = 0, p.d_trusted = 1, p.d_kyc = 2;
    p.align = {0.9, 0.4, -0.5};
  }
  return p;
}

std::vector<ProviderParams> default_providers() {
  auto make = [](const char* name, const char* home, double share, bool follower, double offset) {
    ProviderParams p = provider_defaults(home);
    p.name = name, p.cap_share = share, p.follower = follower, p.offset = offset;
    return p;
  };
  return {make("US-A", "USA", 0.28, false, 0), make("US-B", "USA", 0.25, false, 0), make("US-C", "USA", 0.22, false, 0),
          make("CN-F", "CHN", 0.15, true, 0.4), make("FR-E", "FRA", 0.05, false, 0.5)};
}

bool operator==(const ProviderParams& a, const ProviderParams& b) { return equal_by_schema(provider_schema(), a, b); }
bool operator!=(const ProviderParams& a, const ProviderParams& b) { return !(a == b); }
bool operator==(const Params& a, const Params& b) {
  return equal_by_schema(params_schema(), a, b) && a.provider == b.provider;
}
bool operator!=(const Params& a, const Params& b) { return !(a == b); }

std::string describe(const FieldSpec& f) { return describe_n(f, 0); }

std::string check_value(const FieldSpec& f, const ParamValue& v, std::size_t n_sectors) {
  auto in = [&](double x) { return x >= f.min && x <= f.max; };  // false for NaN
  bool ok = true;
  switch (f.type) {
    case ParamType::Integer:
      if (!in(static_cast<double>(std::get<std::int64_t>(v)))) return "out of range, allowed " + range_text(f);
      return "";
    case ParamType::Real:
      if (!in(std::get<double>(v))) return "out of range, allowed " + range_text(f);
      return "";
    case ParamType::Bool: return "";
    case ParamType::String: ok = text_ok(f.text, std::get<std::string>(v)); break;
    case ParamType::RealArray: {
      const auto& a = std::get<std::vector<double>>(v);
      ok = length_ok(f, a.size(), n_sectors);
      for (double x : a) ok = ok && in(x);
      break;
    }
    case ParamType::StringArray: {
      const auto& a = std::get<std::vector<std::string>>(v);
      ok = length_ok(f, a.size(), n_sectors);
      for (const auto& s : a) ok = ok && text_ok(f.text, s);
      if (f.text == TextRule::Name) ok = ok && std::set<std::string>(a.begin(), a.end()).size() == a.size();
      break;
    }
    case ParamType::RealTable:
      for (const auto& [k, x] : std::get<std::map<std::string, double>>(v)) ok = ok && text_ok(f.text, k) && in(x);
      break;
  }
  return ok ? "" : "expected " + describe_n(f, n_sectors);
}

std::string render_value(const ParamValue& v) {
  struct Render {
    std::string operator()(std::int64_t x) const { return std::to_string(x); }
    std::string operator()(double x) const { return toml_real(x); }
    std::string operator()(bool x) const { return x ? "true" : "false"; }
    std::string operator()(const std::string& s) const { return quote(s); }
    std::string operator()(const std::vector<double>& a) const {
      std::string s = "[";
      for (std::size_t i = 0; i < a.size(); ++i) s += (i ? ", " : "") + toml_real(a[i]);
      return s + "]";
    }
    std::string operator()(const std::vector<std::string>& a) const {
      std::string s = "[";
      for (std::size_t i = 0; i < a.size(); ++i) s += (i ? ", " : "") + quote(a[i]);
      return s + "]";
    }
    std::string operator()(const std::map<std::string, double>& t) const {
      if (t.empty()) return "{}";
      std::string s = "{ ";
      bool first = true;
      for (const auto& [k, x] : t) {
        s += (first ? "" : ", ") + (bare_key(k) ? k : quote(k)) + " = " + toml_real(x);
        first = false;
      }
      return s + " }";
    }
  };
  return std::visit(Render{}, v);
}

void validate(const Params& p, const OriginFn& origin) {
  auto fail = [&](const std::vector<std::string>& keys, const std::string& key, const std::string& value,
                  const std::string& what) {
    throw InputError(origin(keys) + ": key '" + key + "' = " + value + ": " + what);
  };
  const std::size_t ns = p.sector_share.size();
  for (const auto& f : params_schema()) {
    ParamValue v = f.get(p);
    std::string msg = check_value(f, v, ns);
    if (msg.empty()) continue;
    // A per-sector array can be wrong because another file changed the sectors.
    if (f.length == kPerSector) fail({f.key, "sector_share"}, f.key, render_value(v), msg);
    fail({f.key}, f.key, render_value(v), msg);
  }
  double sum = 0;
  for (double s : p.sector_share) sum += s;
  if (std::fabs(sum - 1) > 1e-9) {
    fail({"sector_share"}, "sector_share", num_list(p.sector_share),
         "expected shares summing to 1 within 1e-9 (sum is " + fmt_real(sum) + ")");
  }
  if (p.b_floor > p.b_max) {
    fail({"b_floor", "b_max"}, "b_floor", fmt_real(p.b_floor),
         "out of range, allowed 0 to b_max = " + fmt_real(p.b_max));
  }
  if (p.r_gov + p.r_cons > 1) {
    fail({"r_gov", "r_cons"}, "r_cons", fmt_real(p.r_cons),
         "out of range, r_gov + r_cons must be at most 1 (r_gov = " + fmt_real(p.r_gov) + ")");
  }
  const double p_min = (1 + p.markup) * (p.opex + p.capex / p.life);
  if (p.p_max < p_min) {
    fail({"p_max", "markup", "opex", "capex", "life"}, "p_max", fmt_real(p.p_max),
         "out of range, allowed p_min = (1 + markup)·(opex + capex/life) = " + fmt_real(p_min) + " to inf");
  }

  // Providers.
  const std::vector<std::string> pk = {"provider"};
  std::vector<std::string> names;
  for (const auto& q : p.provider) names.push_back(q.name);
  if (p.provider.empty() || p.provider.size() > static_cast<std::size_t>(kMaxProviders)) {
    fail(pk, "provider", render_value(names), "expected 1 to " + std::to_string(kMaxProviders) + " providers");
  }
  std::vector<double> shares;
  bool any_leader = false;
  for (std::size_t i = 0; i < p.provider.size(); ++i) {
    const ProviderParams& q = p.provider[i];
    for (const auto& f : provider_schema()) {
      ParamValue v = f.get(q);
      std::string msg = check_value(f, v);
      if (!msg.empty()) fail(pk, "provider." + std::to_string(i) + "." + f.key, render_value(v), msg);
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (p.provider[j].name == q.name) {
        fail(pk, "provider." + std::to_string(i) + ".name", quote(q.name),
             "expected a name distinct from provider." + std::to_string(j) + "'s");
      }
    }
    shares.push_back(q.cap_share);
    any_leader = any_leader || !q.follower;
  }
  sum = 0;
  for (double s : shares) sum += s;
  if (!(sum > 0 && sum <= 1 + 1e-9)) {
    fail(pk, "provider.*.cap_share", num_list(shares),
         "expected shares summing to more than 0 and at most 1 (sum is " + fmt_real(sum) + ")");
  }
  if (!any_leader) {
    fail(pk, "provider.*.follower", "true for all",
         "expected at least one provider with follower = false (T_ref needs a non-follower)");
  }
}

void validate(const Params& p) {
  validate(p, [](const std::vector<std::string>&) { return std::string("parameters"); });
}

std::string to_toml(const Params& p) {
  std::ostringstream os;
  os << "# cutoff: fully resolved scenario parameters (every key; loads back to the same values)\n\n";
  for (const auto& f : params_schema()) os << f.key << " = " << render_value(f.get(p)) << "\n";
  for (const auto& q : p.provider) {
    os << "\n[[provider]]\n";
    for (const auto& f : provider_schema()) os << f.key << " = " << render_value(f.get(q)) << "\n";
  }
  return os.str();
}

std::string schema_markdown() {
  std::ostringstream os;
  os << "## Scenario keys\n\n"
        "A scenario is a TOML file of flat keys (docs/model.md §4, §9). Every key is optional: a "
        "key not given takes its value from the file named by `inherits` (a path relative to "
        "the file; the chain is applied base first), else the default below. Ranges are "
        "inclusive; for arrays and tables they apply to each element. Integer keys also take "
        "a real with an integer value (`n_firms = 1e6`); real keys take integers. Per-tier "
        "arrays are for tiers 1/2/3, per-plan arrays for free/plus/pro. An override "
        "`key=value` (how to give one is under \"Overrides\" below) sets a key after all "
        "files (the value is TOML; a string may be given bare), and "
        "`provider.N.field=value` one field of provider N (0-based).\n\n";
  md_table(os, params_schema(), "key");
  os << "\n## Providers\n\n"
        "`[[provider]]` tables (1 to "
     << kMaxProviders
     << ") list the AI labs. A file that "
        "gives `[[provider]]` tables replaces the inherited list as a whole; a table "
        "`[provider.N]` instead changes fields of inherited provider N. `name`, `home` and "
        "`cap_share` are required in a new provider; the fields marked \"by home\" default "
        "by the provider's home, as listed below.\n\n";
  md_table(os, provider_schema(), "field");
  os << "\nDefaults by home (docs/model.md §5): stages in ticks, alignment of tier 1/2/3 "
        "countries.\n\n| home | d_gov | d_trusted | d_kyc | align | align_country |\n"
        "|---|---|---|---|---|---|\n";
  for (const char* home : {"USA", "CHN", "other"}) {
    ProviderParams q = provider_defaults(home);
    os << "| " << home << " | " << q.d_gov << " | " << q.d_trusted << " | " << q.d_kyc << " | `"
       << render_value(q.align) << "` | `" << render_value(q.align_country) << "` |\n";
  }
  os << "\nDefault providers (docs/model.md §9):\n\n"
        "| name | home | cap_share | follower | offset | d_gov | d_trusted | d_kyc | align | "
        "align_country |\n|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& q : default_providers()) {
    os << "| " << q.name << " | " << q.home << " | " << fmt_real(q.cap_share) << " | "
       << (q.follower ? "true" : "false") << " | " << fmt_real(q.offset) << " | " << q.d_gov << " | " << q.d_trusted
       << " | " << q.d_kyc << " | `" << render_value(q.align) << "` | `" << render_value(q.align_country) << "` |\n";
  }
  os << "\n## Rules across keys\n\n"
        "- `sector_share` has 1 to "
     << kMaxSectors
     << " entries summing to 1 within 1e-9; "
        "`sector_names` and `mult_s` have one entry per sector; sector names are distinct.\n"
        "- `r_gov` + `r_cons` ≤ 1.\n"
        "- `p_max` ≥ p_min = (1 + `markup`)·(`opex` + `capex`/`life`).\n"
        "- Provider names are distinct; `cap_share` sums to more than 0 and at most 1 "
        "(within 1e-9); at least one provider is not a follower.\n";
  return os.str();
}

bool uses_reference_population(const Params& p) {
  return p.tau0_ref_firms > 0 && p.tau0_ref_users > 0 &&
         (p.tau0_ref_firms != p.n_firms || p.tau0_ref_users != p.n_users);
}

}  // namespace cutoff
