// The benchmark's byte counts come from the steps' declared field accesses:
// every name there must be a registry field of its population, and every
// registry field must be used by some step (or the count would be wrong).
#include <gtest/gtest.h>

#include <set>

#include "agents/fields.hpp"
#include "core/sim/simulation.hpp"

namespace cutoff {
namespace {

template <class Pop> std::set<std::string> names() {
  std::set<std::string> s;
  for (const FieldInfo& f : Pop::kFields) s.insert(f.name);
  return s;
}

TEST(Bench, StepAccessesNameRegistryFields) {
  const auto firms = names<Firms>(), users = names<Users>();
  std::set<std::string> used_f, used_u;
  std::set<std::string> steps(Simulation::step_names().begin(), Simulation::step_names().end());
  for (const StepAccess& a : Simulation::step_accesses()) {
    EXPECT_TRUE(steps.count(a.step)) << a.step;
    ASSERT_TRUE(a.population == "firms" || a.population == "users") << a.population;
    const auto& known = a.population == "firms" ? firms : users;
    auto& used = a.population == "firms" ? used_f : used_u;
    for (const auto* list : {&a.read, &a.written})
      for (const auto& f : *list) {
        EXPECT_TRUE(known.count(f)) << a.step << ": " << a.population << "." << f << " is not a registry field";
        used.insert(f);
      }
  }
  EXPECT_EQ(used_f, firms);
  EXPECT_EQ(used_u, users);
}

}  // namespace
}  // namespace cutoff
