#pragma once
/// @file
/// The field registries of the two large populations (docs/model.md §1). Everything
/// per agent lives here: one line per array. Providers and countries are few and
/// live on the host (core/model/providers.hpp, core/model/population.hpp).
///
/// Budget (docs/memory.md): at most 64 bytes per firm and 24 per user, state
/// plus per-tick scratch; the static_asserts below hold the line.

#include <cstdint>

#include "core/hd/registry.hpp"

namespace cutoff {

/// Sentinel for "no provider" / "no generation".
inline constexpr std::uint8_t kNone = 255;

/// Bits of FirmView::flags.
namespace firm_flag {
inline constexpr std::uint8_t kKyc = 1u << 0;       ///< KYC-cleared (for every provider with align ≥ a_kyc)
inline constexpr std::uint8_t kLarge = 1u << 1;     ///< large stratum: one real firm, weight 1
inline constexpr std::uint8_t kDefender = 1u << 2;  ///< defender (large ICT firm in a tier-1 country)
inline constexpr std::uint8_t kBuying = 1u << 3;    ///< bought compute this tick
inline constexpr std::uint8_t kEntered = 1u << 4;   ///< replaced an exiting firm this tick (step 8)
/// Has bought compute at least once (§7, §8 "firms that have used AI").
inline constexpr std::uint8_t kUsedAI = 1u << 5;
/// (v5) On seats in the plan layer this tick (§2.6e), not on the API.
inline constexpr std::uint8_t kSeats = 1u << 6;
/// (v5) Has adopted AI (§2.9's firm diffusion; read only under `firm_bass`): it may buy.
inline constexpr std::uint8_t kAdopted = 1u << 7;
}  // namespace firm_flag

/// Bits of UserView::flags.
namespace user_flag {
inline constexpr std::uint8_t kAdopter = 1u << 0;  ///< uses AI
inline constexpr std::uint8_t kCapped = 1u << 1;   ///< compute-capped this tick (step 6e)
inline constexpr std::uint8_t kNew = 1u << 2;      ///< adopted this tick (step 9): not in this tick's market
}  // namespace user_flag

// X(role, type, name, unit, description)
#define CUTOFF_FIRM_FIELDS(X)                                                                                    \
  X(State, std::uint16_t, country, "1", "index into the country table; agents sorted by country, then sector")   \
  X(State, std::uint8_t, sector, "1", "sector index")                                                            \
  X(State, std::uint8_t, provider, "1", "provider serving the firm, 255 = none")                                 \
  X(State, std::uint8_t, generation, "1", "generation used (index into the run's generation table), 255 = none") \
  X(State, std::uint8_t, flags, "1",                                                                             \
    "bits: 1 KYC-cleared, 2 large stratum, 4 defender, 8 bought this tick, 16 entered this tick, 32 has ever "   \
    "bought, 64 on seats this tick, 128 has adopted AI (v5)")                                                    \
  X(State, std::uint16_t, partners, "1", "bit p set: trusted partner of provider p")                             \
  X(State, std::uint8_t, band, "1", "size band of the small stratum (0 in the large stratum; docs/model.md 1)")  \
  X(State, float, employees, "workers", "employees of the real firm(s) this agent stands for, per real firm")    \
  X(State, float, A, "1", "productivity A_i")                                                                    \
  X(State, float, lnA_AI, "1", "AI part of log-productivity, sum of ln(1 + rho*u_i)")                            \
  X(State, double, W, "USD", "wealth W_i")                                                                       \
  X(State, float, b, "1", "budget multiplier b_i")                                                               \
  X(State, float, revenue, "USD/month", "revenue of the last tick")                                              \
  X(State, float, alloc, "H100e", "compute allocated this tick")                                                 \
  X(State, float, K, "K", "capability accessed: K_g of the generation bought, 0 if none")                        \
  X(State, double, ai_value, "USD", "cumulative AI value")                                                       \
  X(Scratch, float, K_elig, "K", "best K_g eligible to the firm this tick (step 4)")                             \
  X(Scratch, float, seats, "seats", "seats bought on the plan layer this tick, per real firm (v5; 0: none)")     \
  X(Scratch, std::uint8_t, status, "1",                                                                          \
    "who is cut off (section 7): 0 no_access, 1 no_budget, 2 priced_out, 3 rationed, 4 budget_bound, 5 served, " \
    "6 no_value, 7 seats, 8 seats_capped, 9 not_adopted")

#define CUTOFF_USER_FIELDS(X)                                                                                    \
  X(State, std::uint16_t, country, "1", "index into the country table; agents sorted by country")                \
  X(State, std::uint8_t, provider, "1", "provider used, 255 = none")                                             \
  X(State, std::uint8_t, generation, "1", "generation used (index into the run's generation table), 255 = none") \
  X(State, std::uint8_t, plan, "1", "plan: 0 none, 1 free, 2 plus, 3 pro")                                       \
  X(State, std::uint8_t, flags, "1", "bits: 1 adopter, 2 compute-capped this tick, 4 adopted this tick")         \
  X(State, float, z, "1", "income multiplier z_u (lognormal, mean 1)")                                           \
  X(State, float, n, "1", "need multiplier n_u (lognormal, median 1)")                                           \
  X(State, float, use, "Mtok/month", "tokens used this tick")

CUTOFF_DEFINE_POPULATION(Firms, FirmView, "firms", CUTOFF_FIRM_FIELDS)
CUTOFF_DEFINE_POPULATION(Users, UserView, "users", CUTOFF_USER_FIELDS)

static_assert(bytes_per_agent<Firms>() <= 64, "firm state over its 64-byte budget");
static_assert(bytes_per_agent<Users>() <= 24, "user state over its 24-byte budget");

/// Plans (index of plan_price etc. is plan − 1).
enum Plan : std::uint8_t { kPlanNone = 0, kPlanFree = 1, kPlanPlus = 2, kPlanPro = 3 };

}  // namespace cutoff
