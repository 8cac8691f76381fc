#include "core/io/checkpoint.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "core/io/atomic_file.hpp"
#include "core/io/checkpoint_format.hpp"
#include "core/io/sha256.hpp"
#include "cutoff_version.hpp"

namespace cutoff {
namespace checkpoint_format {

template <class Ar> void io(Ar& ar, Generation& g) {
  ar(g.provider);
  ar(g.K);
  ar(g.t_g);
  ar(g.general);
}

template <class Ar> void io(Ar& ar, WaterLevel& l) {
  for (double* x : {&l.lambda, &l.lambda_floor, &l.demand, &l.demand_floor}) ar(*x);
}

template <class Ar> void io(Ar& ar, Provider& v) {
  // Names, homes and stages come from the parameters; the rest is state.
  for (double* x : {&v.C_home, &v.C_hosted, &v.cash, &v.T, &v.K_own, &v.K, &v.price, &v.price_home, &v.forecast,
                    &v.revenue, &v.order, &v.lag})
    ar(*x);
  ar(v.arrive_home);
  ar(v.arrive_hosted);
  ar(v.gens);
}

/// The State fields of a population (Scratch is recomputed every tick, never saved).
template <class Pop> void io_agents(Writer& ar, const HostArrays<Pop>& arrays) {
  std::uint64_t n = arrays.size();
  ar(n);
  typename Pop::View v = arrays.view();
  Pop::for_each(v, [&](const FieldInfo& f, auto*& ptr) {
    if (f.role == FieldRole::State) ar.raw(ptr, static_cast<std::size_t>(n) * f.bytes);
  });
}

template <class Pop> void io_agents(Reader& ar, HostArrays<Pop>& arrays) {
  std::uint64_t n = 0;
  ar(n);
  if (n != arrays.size()) throw InputError("checkpoint '" + ar.path + "': " + Pop::kName + " count differs");
  typename Pop::View v = arrays.view();
  Pop::for_each(v, [&](const FieldInfo& f, auto*& ptr) {
    if (f.role == FieldRole::State) ar.raw(ptr, static_cast<std::size_t>(n) * f.bytes);
  });
}

Identity identity_of(const Simulation& sim) {
  Identity id;
  id.version = std::string(kVersion) + " " + kGitCommit;
  id.scenario_sha = sha256_hex(to_toml(sim.params()));
  id.seed = static_cast<std::uint64_t>(sim.params().seed);
  id.replicate = sim.options().replicate;
  id.n_firms = static_cast<std::uint64_t>(sim.params().n_firms);
  id.n_users = static_cast<std::uint64_t>(sim.params().n_users);
  id.tick = sim.tick();
  return id;
}

}  // namespace checkpoint_format

using checkpoint_format::Identity;
using checkpoint_format::kFormat;
using checkpoint_format::kMagic;
using checkpoint_format::Reader;
using checkpoint_format::Writer;

template <class Ar> void Labs::checkpoint_io(Ar& ar) {
  std::uint64_t n = providers_.size();
  ar(n);
  if (n != providers_.size()) throw InputError("checkpoint: provider count differs");
  for (Provider& v : providers_) io(ar, v);
  ar(gens_);
  ar(gen_provider_);
  ar(gen_stage_);
  ar(gen_K_);
  ar(gen_h_);
  ar(K_lead_hist_);
  ar(lead_holder_hist_);
}

template <class Ar> void Simulation::checkpoint_io(Ar& ar) {
  ar(tick_);
  ar(tau0_);
  ar(need0_);
  labs_.checkpoint_io(ar);
  // The agents go through the backend: host copies out (on CUDA from the device), loaded back in.
  if constexpr (Ar::kLoading) {
    HostArrays<Firms> firms(layout_.n_firms);
    HostArrays<Users> users(layout_.n_users);
    io_agents(ar, firms);
    io_agents(ar, users);
    exec_->load_firms(firms);
    exec_->load_users(users);
  } else {
    io_agents(ar, exec_->host_firms());
    io_agents(ar, exec_->host_users());
  }
  io_agents(ar, large_firms_);
  for (auto* v : {&gdp_prev_, &Y0_, &adoption_prev_, &use_ratio_prev_, &firm_use_prev_, &spill_, &quota_demand_prev_,
                  &seg_E_, &kyc_rate_c_, &zeta_, &tau_s_, &price_, &price_home_, &wage_, &adopt_rate_})
    ar(*v);
  for (auto* v : {&gap_run_, &policy_provider_, &deal_arrival_, &deal_order_tick_}) ar(*v);
  for (auto* v : {&policy_, &tier_u8_, &quota_provider_, &first_resort_}) ar(*v);
  ar(deal_mask_);
  ar(level_prev_);
  ar(large_);
  TickResults& r = res_;
  for (auto* v : {&r.price, &r.price_home, &r.revenue, &r.utilisation, &r.sold, &r.reserve, &r.cons_use, &r.class_spend,
                  &r.class_tokens, &r.rationed, &r.adoption, &r.gap, &r.K_elig, &r.gdp, &r.spill})
    ar(*v);
  for (double* x : {&r.top20, &r.top20_large, &r.gini, &r.negative_wealth, &r.capped_share, &r.entries}) ar(*x);
}

void save_checkpoint(const std::string& path, Simulation& sim, const MetricRows& rows) {
  Writer body;
  sim.checkpoint_io(body);
  MetricRows copy = rows;
  body(copy);
  Identity id = checkpoint_format::identity_of(sim);
  id.payload_size = body.bytes.size();
  id.payload_sha = sha256_hex(body.bytes);
  Writer head;
  head.raw(kMagic, sizeof kMagic);
  std::uint32_t format = kFormat;
  head(format);
  head(id);
  write_atomically(path, {head.bytes, body.bytes});
}

void load_checkpoint(const std::string& path, Simulation& sim, MetricRows& rows) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("checkpoint '" + path + "' cannot be read");
  std::ostringstream s;
  s << in.rdbuf();
  const std::string bytes = s.str();
  std::size_t body_at = 0;
  const Identity got = checkpoint_format::read_head(bytes, path, &body_at);
  const Identity want = checkpoint_format::identity_of(sim);
  auto refuse = [&](const std::string& what, const std::string& there, const std::string& here) {
    throw InputError("checkpoint '" + path + "' is from another run: " + what + " " + there + " there, " + here +
                     " here; allowed: the same command, or delete the checkpoint to start over");
  };
  if (got.version != want.version) refuse("program version", got.version, want.version);
  if (got.seed != want.seed) refuse("seed", std::to_string(got.seed), std::to_string(want.seed));
  if (got.replicate != want.replicate)
    refuse("replicate", std::to_string(got.replicate), std::to_string(want.replicate));
  if (got.n_firms != want.n_firms) refuse("n_firms", std::to_string(got.n_firms), std::to_string(want.n_firms));
  if (got.n_users != want.n_users) refuse("n_users", std::to_string(got.n_users), std::to_string(want.n_users));
  if (got.scenario_sha != want.scenario_sha)
    refuse("scenario (SHA-256 of the resolved TOML)", got.scenario_sha.substr(0, 12), want.scenario_sha.substr(0, 12));
  Reader b{bytes, body_at, path};  // the payload, read in place
  sim.checkpoint_io(b);
  b(rows);
  if (sim.tick() != got.tick || b.at != bytes.size())
    throw InputError("checkpoint '" + path + "' is damaged (inconsistent contents); delete it to start over");
}

}  // namespace cutoff
