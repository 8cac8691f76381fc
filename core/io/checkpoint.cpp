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
#include "core/io/sha256.hpp"
#include "cutoff_version.hpp"

namespace cutoff {
namespace {

constexpr char kMagic[8] = {'C', 'U', 'T', 'O', 'F', 'F', 'C', 'K'};
constexpr std::uint32_t kFormat = 2;  // 2: (v5) the firms' lagged use share (firm_use_prev_)

/// Appends values to a byte string (host byte order: a checkpoint resumes on the machine
/// kind that wrote it).
struct Writer {
  std::string bytes;
  static constexpr bool kLoading = false;
  void raw(const void* p, std::size_t n) {
    if (n > 0) bytes.append(static_cast<const char*>(p), n);  // an empty vector's data() may be null
  }
  template <class T> void operator()(T& v) {
    if constexpr (std::is_arithmetic_v<T>) {
      raw(&v, sizeof v);
    } else if constexpr (std::is_same_v<T, std::string>) {
      std::uint64_t n = v.size();
      raw(&n, sizeof n);
      raw(v.data(), v.size());
    } else {
      io(*this, v);
    }
  }
  template <class T> void operator()(std::vector<T>& v) {
    std::uint64_t n = v.size();
    (*this)(n);
    if constexpr (std::is_arithmetic_v<T>)
      raw(v.data(), v.size() * sizeof(T));
    else
      for (T& x : v) (*this)(x);
  }
  template <class A, class B> void operator()(std::set<std::pair<A, B>>& s) {
    std::uint64_t n = s.size();
    (*this)(n);
    for (std::pair<A, B> x : s) {
      (*this)(x.first);
      (*this)(x.second);
    }
  }
};

/// Reads them back; any overrun is a damaged file.
struct Reader {
  const std::string& bytes;
  std::size_t at = 0;
  std::string path;
  static constexpr bool kLoading = true;
  void raw(void* p, std::size_t n) {
    if (n > bytes.size() - at)
      throw InputError("checkpoint '" + path + "' is truncated or damaged; delete it to start over");
    if (n == 0) return;  // an empty vector's data() may be null
    std::memcpy(p, bytes.data() + at, n);
    at += n;
  }
  std::uint64_t count() {
    std::uint64_t n = 0;
    raw(&n, sizeof n);
    if (n > bytes.size())
      throw InputError("checkpoint '" + path + "' is damaged (a length of " + std::to_string(n) + ")");
    return n;
  }
  template <class T> void operator()(T& v) {
    if constexpr (std::is_arithmetic_v<T>) {
      raw(&v, sizeof v);
    } else if constexpr (std::is_same_v<T, std::string>) {
      v.resize(count());
      raw(v.data(), v.size());
    } else {
      io(*this, v);
    }
  }
  template <class T> void operator()(std::vector<T>& v) {
    v.resize(count());
    if constexpr (std::is_arithmetic_v<T>)
      raw(v.data(), v.size() * sizeof(T));
    else
      for (T& x : v) (*this)(x);
  }
  template <class A, class B> void operator()(std::set<std::pair<A, B>>& s) {
    s.clear();
    for (std::uint64_t n = count(); n > 0; --n) {
      std::pair<A, B> x;
      (*this)(x.first);
      (*this)(x.second);
      s.insert(x);
    }
  }
};

template <class Ar> void io(Ar& ar, Generation& g) {
  ar(g.provider);
  ar(g.K);
  ar(g.t_g);
  ar(g.general);
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

struct Identity {
  std::string version, scenario_sha;
  std::uint64_t seed = 0, replicate = 0, n_firms = 0, n_users = 0;
  std::int64_t tick = 0;
  std::uint64_t payload_size = 0;
  std::string payload_sha;

  template <class Ar> void checkpoint_io(Ar& ar) {
    ar(version);
    ar(scenario_sha);
    ar(seed);
    ar(replicate);
    ar(n_firms);
    ar(n_users);
    ar(tick);
    ar(payload_size);
    ar(payload_sha);
  }
};

template <class Ar> void io(Ar& ar, Identity& id) { id.checkpoint_io(ar); }

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

}  // namespace

template <class Ar> void Market::checkpoint_io(Ar& ar) {
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
  market_.checkpoint_io(ar);
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
  ar(large_);
  TickResults& r = res_;
  for (auto* v : {&r.price, &r.price_home, &r.revenue, &r.utilisation, &r.sold, &r.reserve, &r.cons_use, &r.class_spend,
                  &r.class_tokens, &r.rationed, &r.adoption, &r.gap, &r.K_elig, &r.gdp, &r.spill})
    ar(*v);
  for (double* x : {&r.top20, &r.gini, &r.negative_wealth, &r.capped_share, &r.entries}) ar(*x);
}

void save_checkpoint(const std::string& path, Simulation& sim, const MetricRows& rows) {
  Writer body;
  sim.checkpoint_io(body);
  MetricRows copy = rows;
  body(copy);
  Identity id = identity_of(sim);
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
  Reader r{bytes, 0, path};
  char magic[sizeof kMagic];
  std::uint32_t format = 0;
  r.raw(magic, sizeof magic);
  if (std::memcmp(magic, kMagic, sizeof kMagic) != 0)
    throw InputError("checkpoint '" + path + "' is not a cutoff checkpoint; delete it to start over");
  r(format);
  if (format != kFormat)
    throw InputError("checkpoint '" + path + "' has format " + std::to_string(format) + ", this program writes " +
                     std::to_string(kFormat) + "; delete it to start over");
  Identity got;
  r(got);
  const Identity want = identity_of(sim);
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
  const std::string body = bytes.substr(r.at);
  if (body.size() != got.payload_size || sha256_hex(body) != got.payload_sha)
    throw InputError("checkpoint '" + path + "' is damaged (its checksum does not match); delete it to start over");
  Reader b{body, 0, path};
  sim.checkpoint_io(b);
  b(rows);
  if (sim.tick() != got.tick || b.at != body.size())
    throw InputError("checkpoint '" + path + "' is damaged (inconsistent contents); delete it to start over");
}

}  // namespace cutoff
