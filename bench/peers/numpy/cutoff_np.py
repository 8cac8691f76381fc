#!/usr/bin/env python3
"""A NumPy peer of cutoff: the same agent-based model, vectorised over agents.

This is the model of docs/model.md (the specification, in the repository) written the
way a researcher would write it with NumPy: one array per agent attribute,
whole-array operations over firms and users, Python loops only over the few
providers, generations and countries, and a sort where the clearing or the
water-fill needs one. It follows cutoff's tick (core/sim/simulation.cpp,
Simulation::step) rule by rule and in the same order:

    place_policy_orders   §6 hosted orders of countries that took a policy
    step_capacity         §2.1 arrivals, home orders, cash
    step_training         §2.2 training, releases, stages, fast followers
    step_serving_cost     §2.3 h_g(t), stages of every generation
    choose_partners       §2.2 trusted partners of a generation entering
    step_choice           §2.4 KYC draws, eligibility, (provider, generation) choice
    step_market           §2.5-§2.6 bids, reserve, floor, plan layer's bid, clearing,
                          statuses, seats, budgets adapt, water-fill of users and seats
    step_firms            §2.7-§2.8 productivity, pool revenue, wealth, exit/entry
    step_adoption         §2.9 adoption and plans
    step_countries        §2.10, §6, §7 aggregates, GDP, spillover, policies, ranks

It ports model v5 (docs/model.md, "v5"), each mechanism behind the same scenario
parameter as in cutoff, all off by default: τ0 and need0 from the reference
population (§2.0, tau0_ref_firms, tau0_ref_users); the statuses of §7 in cutoff's
codes (no_value apart from no_budget; seats, seats_capped, not_adopted); consumer
need's own bounded growth (§2.5, need_growth, need_sat); the product layer (§2.6(e),
seats, seat_plan, seat_share); plans priced by scarcity and the labs' split (§2.9,
§2.6(c), plan_pass, plan_split); firms' diffusion (§2.9, firm_bass, firm_adopt0,
firm_bass_p, firm_bass_q, firm_adopt_size); the small stratum's size bands (§1,
size_strata); compute caps (§2.4, §2.6(e), compute_caps, p_repick: the plan layer's
fill weighs w_plan/h_g, adopters keep their generation unless they re-choose it with
probability p_repick, and choose it, as seats do, by the share of their cap it would
serve at the provider's level of t−1, Model.level_prev).

Random numbers come from numpy.random.Generator(PCG64) seeded from (seed,
replicate), so a run agrees with cutoff statistically, not bit for bit. The one
exception is §2.0's population of seed 0, replicate 0 on which τ0 and need0 are
derived (v5: at the reference counts tau0_ref_firms × tau0_ref_users, a second model
when the run's counts differ; v4, tau0_ref_firms = 0: at the run's counts): a
constant of the scenario, so it is drawn with docs/model.md §3's own counter-based
draws (Philox-4x32-10 as core/hd/rng.hpp packs them), the same population as
cutoff's, and τ0 and need0 agree with cutoff's to 1e−6 or better; the run's own agents
are then drawn with PCG64.

Usage:
  python3 cutoff_np.py SCENARIO --firms N --users N --ticks T --seed S
          [--replicate R] --out OUT.json [--set key=value]... [--cutoff PATH]

The scenario is resolved by `cutoff validate SCENARIO --set ... --print` (every
parameter after `inherits` chains and calibrated values), parsed with tomllib. The
JSON's metrics are those bench/compare.py compares: the four of v4 and (v5) provider
revenue, the plus plan's price, the plan layer's earnings per H100e and its revenue per
Mtok used (price(provider, consumer)) (means over providers), firms_by_status, real
firms by (tier, size class, status), and (what compute caps move) tokens per adopter in
the market and the access gap, world means (bench/compare.py CC_METRICS).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import time
import tomllib

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from common import pareto_capped_mean, share_largest_remainder, size_bands  # noqa: E402  (bench/peers/common.py)

# Release stages (docs/model.md §2.2); OPEN follows GENERAL under the open-weights lever.
GOV, TRUSTED, KYC, GENERAL, OPEN = 0, 1, 2, 3, 4
# Plans: 0 none, 1 free, 2 plus, 3 pro (index into plan_* arrays is plan - 1).
PLAN_FREE, PLAN_PLUS, PLAN_PRO = 1, 2, 3
# §7 firm statuses, in the codes of cutoff's firms_by_status (enum FirmStatus in agents/firm_kern.hpp).
(NO_ACCESS, NO_BUDGET, PRICED_OUT, RATIONED, BUDGET_BOUND, SERVED, NO_VALUE, SEATS, SEATS_CAPPED,
 NOT_ADOPTED) = range(10)
N_STATUS = 10
STATUS_NAMES = ("no_access", "no_budget", "priced_out", "rationed", "budget_bound", "served", "no_value", "seats",
                "seats_capped", "not_adopted")
USES_AI = [RATIONED, BUDGET_BOUND, SERVED, SEATS, SEATS_CAPPED]   # status_uses_ai: on the API or on seats


# ---------------------------------------------------------------------------
# Parameters and country table
# ---------------------------------------------------------------------------

def find_cutoff(explicit: str | None) -> str:
    """The cutoff binary: --cutoff, else build/cutoff of this checkout, else PATH."""
    if explicit:
        return explicit
    here = os.path.dirname(os.path.abspath(__file__))
    cand = os.path.normpath(os.path.join(here, "..", "..", "..", "build", "cutoff"))
    if os.path.exists(cand):
        return cand
    found = shutil.which("cutoff")
    if found:
        return found
    raise SystemExit("cannot find the cutoff binary: pass --cutoff PATH")


def resolve_params(scenario: str, sets: list[str], cutoff: str) -> dict:
    """Every parameter of the scenario, resolved by `cutoff validate --print` (TOML)."""
    cmd = [cutoff, "validate", scenario, "--print"]
    for s in sets:
        cmd += ["--set", s]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"cutoff validate failed:\n{out.stderr}")
    return tomllib.loads(out.stdout)


def load_countries(path: str) -> dict:
    """The country table (data/countries.csv), in file order."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {
        "iso3": [r["iso3"] for r in rows],
        "population": np.array([float(r["population"]) for r in rows]),
        "gdp": np.array([float(r["gdp_usd"]) for r in rows]),
        "tier": np.array([int(r["tier"]) for r in rows]),
    }


# ---------------------------------------------------------------------------
# §1 layout: agent counts, weights, strata, sectors
# ---------------------------------------------------------------------------

class Layout:
    """docs/model.md §1 "Agent weights and firm sizes" and "Sectors": how many firm and
    user agents each country gets, their weights, the large stratum, and the
    (country, sector) segments of the country-sorted firm arrays (large first)."""

    def __init__(self, P: dict, ct: dict):
        C = len(ct["iso3"])
        S = len(P["sector_share"])
        self.C, self.S = C, S
        n_firms, n_users = int(P["n_firms"]), int(P["n_users"])
        min_firms, min_users = int(P["min_firms"]), int(P["min_users"])
        if n_firms < min_firms * C or n_users < min_users * C:
            raise SystemExit("n_firms or n_users too small for min_firms / min_users per country")
        mean_size = pareto_capped_mean(P["pareto_alpha"], P["size_cap"])
        self.workers = P["worker_share"] * ct["population"]
        self.real_firms = self.workers / mean_size
        n_large = int(P["n_large"])
        if n_large > n_firms or n_firms - n_large < min_firms * C:
            fit = n_firms - min_firms * C
            print(f"warning: n_large shrunk from {n_large} to {fit}", file=sys.stderr)
            n_large = fit
        large = share_largest_remainder(n_large, ct["gdp"], 0)
        large = [min(large[c], int(math.floor(self.real_firms[c] / 2))) for c in range(C)]
        small_firms = [self.real_firms[c] - large[c] for c in range(C)]
        small = share_largest_remainder(n_firms - sum(large), small_firms, min_firms)
        users = share_largest_remainder(n_users, ct["population"], min_users)
        self.large = np.array(large)
        self.small = np.array(small)
        self.users = np.array(users)
        self.x_L = np.where(self.large > 0, (self.real_firms / np.maximum(self.large, 1)) ** (1.0 / P["pareto_alpha"]), np.inf)
        # (v5) size bands of the small stratum (size_strata; one band without it), each with its weight.
        NB = 4
        self.band_edge = np.zeros((C, NB + 1))
        self.w_small = np.zeros((C, NB))
        band_n = np.zeros((C, NB), dtype=int)
        for c in range(C):
            e, nb, wb = size_bands(float(self.x_L[c]), P["pareto_alpha"], P["size_cap"], bool(P["size_strata"]),
                                   small[c], small_firms[c])
            self.band_edge[c], band_n[c], self.w_small[c] = e, nb, wb
        self.w_user = ct["population"] / self.users
        # Firm agents, country by country, sector by sector, large first in each segment,
        # then the small stratum's bands in order.
        country, sector, is_large, band = [], [], [], []
        for c in range(C):
            ls = share_largest_remainder(large[c], P["sector_share"], 0)
            bs = [share_largest_remainder(int(band_n[c, b]), P["sector_share"], 0) for b in range(NB)]
            for s in range(S):
                nbs = [bs[b][s] for b in range(NB)]
                n = ls[s] + sum(nbs)
                country.append(np.full(n, c, dtype=np.int32))
                sector.append(np.full(n, s, dtype=np.int32))
                is_large.append(np.arange(n) < ls[s])
                band.append(np.concatenate([np.zeros(ls[s], dtype=np.int32)] +
                                           [np.full(nbs[b], b, dtype=np.int32) for b in range(NB)]))
        self.firm_country = np.concatenate(country)
        self.firm_sector = np.concatenate(sector)
        self.firm_large = np.concatenate(is_large)
        self.firm_band = np.concatenate(band)
        self.user_country = np.repeat(np.arange(C, dtype=np.int32), self.users)
        self.n_firms = len(self.firm_country)
        self.n_users = len(self.user_country)


# ---------------------------------------------------------------------------
# §2.6(c) the firms' clearing, one uniform price per provider (by sorting)
# ---------------------------------------------------------------------------

def bid_demand(price, need, money, pi_out):
    """x_i(π) = min(need, money/π) if π ≤ pi_out, else 0 (H100e)."""
    price = np.asarray(price, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(price * need <= money, need, money / price)
    return np.where(price <= pi_out, x, 0.0)


def clear_group(w, need, money, pi_out, min_alloc, cls, K, p_min, p_max, floor_price=None):
    """One uniform-price clearing of a group of bids on capacity K (§2.6c, and
    the semantics of core/market/clearing.hpp): π = inf{π ≥ p_min : D(π) ≤ K}; at a
    downward jump the marginal buyers (pi_out = π) are rationed pro rata, a
    share below min_alloc is 0 (unsold); above p_max, classes trusted, kyc,
    general are served in that order at p_max, the last reached pro rata.
    `floor_price` (first-resort's rest) lifts the price to max(π, π_home).
    Returns (price, alloc per bid, binding, unsold)."""
    x0 = bid_demand(p_min, need, money, pi_out)
    binding = bool(np.sum(w * x0) > K)
    kind, price, ratio = "floor", p_min, 1.0
    marg = None
    if binding:
        act = pi_out >= p_min
        wa, na, ma, oa = w[act], need[act], money[act], pi_out[act]
        bp = ma / na
        split = bp < oa                      # budget-bound on (c, o]
        c = np.where(split, bp, oa)          # demands `need` up to c, money/π on (c, o]
        wn = wa * na
        wm = np.where(split, wa * ma, 0.0)
        keys = np.unique(np.concatenate(([p_min], c[c >= p_min], oa)))
        # Suffix sums over keys ≥ k: A(k) = Σ_{c≥k} w·need, M(k) = Σ_{o≥k} w·money − Σ_{c≥k} w·money.
        ci = np.argsort(c, kind="stable")
        oi = np.argsort(oa, kind="stable")
        c_s, o_s = c[ci], oa[oi]
        suf = lambda v: np.concatenate((np.cumsum(v[::-1])[::-1], [0.0]))
        sA, sMc, sMo = suf(wn[ci]), suf(wm[ci]), suf(wm[oi])
        jc = np.searchsorted(c_s, keys, "left")
        jo = np.searchsorted(o_s, keys, "left")
        A = sA[jc]
        M = sMo[jo] - sMc[jc]
        D = A + M / keys
        ok = D <= K
        j = int(np.argmax(ok)) if ok.any() else len(keys)
        if j == 0:
            kind, price = "floor", p_min     # rounding: D(p_min) meets K
        else:
            Aj, Mj = (A[j], M[j]) if j < len(keys) else (0.0, 0.0)
            kprev = keys[j - 1]
            right = Aj + Mj / kprev          # D just above kprev
            if right <= K:
                kind, price = "jump", kprev
                mk = act & (pi_out == price)
                dm = np.sum(w[mk] * bid_demand(price, need[mk], money[mk], pi_out[mk]))
                ratio = float(np.clip((K - right) / dm, 0.0, 1.0)) if dm > 0 else 1.0
                marg = mk
            else:
                kind = "cont"
                price = Mj / (K - Aj)
                price = max(price, kprev)
                if j < len(keys):
                    price = min(price, keys[j])
    if price > p_max:
        # Price cap binds: classes served in order at p_max, the cut one pro rata.
        price = p_max
        x = bid_demand(price, need, money, pi_out)
        cum, cut = 0.0, 3
        for k in range(3):
            dk = np.sum((w * x)[np.minimum(cls, 2) == k])
            if cum + dk > K:
                cut = k
                ratio = float(np.clip((K - cum) / dk, 0.0, 1.0))
                break
            cum += dk
        c3 = np.minimum(cls, 2)
        alloc = np.where(c3 < cut, x, 0.0)
        pro = c3 == cut
        a = x * ratio
        alloc = np.where(pro, np.where((a < min_alloc) | ~(a > 0), 0.0, a), alloc)
        unsold = float(np.sum(np.where(pro & (alloc == 0) & (x > 0), w * a, 0.0)))
        return price, alloc, binding, unsold
    if floor_price is not None and not (price > floor_price or (kind == "jump" and price == floor_price)):
        # First-resort's rest: its own price is below π_home; all buy at π_home.
        price, kind = floor_price, "floor"
    x = bid_demand(price, need, money, pi_out)
    alloc = x
    unsold = 0.0
    if kind == "jump":
        a = x * ratio
        za = np.where((a < min_alloc) | ~(a > 0), 0.0, a)
        alloc = np.where(marg, za, x)
        unsold = float(np.sum(np.where(marg & (za == 0) & (x > 0), w * a, 0.0)))
    return price, alloc, binding, unsold


# ---------------------------------------------------------------------------
# §2.6(e) the consumer water-fill (by sorting the users' breakpoints)
# ---------------------------------------------------------------------------

def water_level(whc, whp, lam_u, C):
    """λ = max{λ ≥ 0 : Σ min(w·h·c, λ·w·h·p) ≤ C}; +inf when every cap fits."""
    total = whc.sum()
    if total <= C:
        return math.inf
    o = np.argsort(lam_u, kind="stable")
    lam_s, c_s, p_s = lam_u[o], whc[o], whp[o]
    cum_c = np.cumsum(c_s)                         # saturated load up to and including k
    rest_p = p_s.sum() - np.cumsum(p_s)            # slope of the users after k
    S = cum_c + lam_s * rest_p                     # S(λ_k)
    over = S > C
    if not over.any():
        return math.inf                            # every cap fits after all (the sums' rounding)
    k = int(np.argmax(over))
    A = cum_c[k] - c_s[k]                          # users before k saturated
    B = rest_p[k] + p_s[k]                         # users from k on rising
    lo = lam_s[k - 1] if k > 0 else 0.0
    return float(min(max((C - A) / B, lo), lam_s[k])) if B > 0 else float(lo)


# ---------------------------------------------------------------------------
# §3 cutoff's counter-based draws (core/hd/rng.hpp), for §2.0's seed-0 population
# ---------------------------------------------------------------------------

STREAM_FIRM_INIT, STREAM_USER_INIT, STREAM_KYC, STREAM_CHOICE_NOISE = 1, 2, 3, 5   # enum class Stream
_M32 = np.uint64(0xFFFFFFFF)


def philox4x32(ctr, key):
    """Philox-4x32-10 (Random123) over arrays: `ctr` four arrays of 32-bit words
    (held in uint64), `key` two ints. Returns the four output words."""
    c0, c1, c2, c3 = (np.asarray(x, dtype=np.uint64) for x in ctr)
    k0, k1 = int(key[0]) & 0xFFFFFFFF, int(key[1]) & 0xFFFFFFFF
    m0, m1, sh = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57), np.uint64(32)
    for r in range(10):
        if r:
            k0, k1 = (k0 + 0x9E3779B9) & 0xFFFFFFFF, (k1 + 0xBB67AE85) & 0xFFFFFFFF
        p0, p1 = c0 * m0, c2 * m1                     # 32 × 32 bits: exact in 64
        c0, c1, c2, c3 = (p1 >> sh) ^ c1 ^ np.uint64(k0), p1 & _M32, (p0 >> sh) ^ c3 ^ np.uint64(k1), p0 & _M32
    return c0, c1, c2, c3


def cutoff_uniform(seed, replicate, agents, tick, stream, k):
    """Draw k (an int, or one per agent) of Rng(seed, replicate, agent, tick,
    stream).uniform() for each agent: key (seed, replicate), counter (agent low,
    agent high, tick as uint32, stream << 16 | block); uniform k is words 2k, 2k+1
    of the stream (block k/2), (53 bits of hi·2^32 + lo, + 0.5)/2^53."""
    agents = np.asarray(agents, dtype=np.uint64)
    k = np.broadcast_to(np.asarray(k, dtype=np.uint64), agents.shape)
    one, sh = np.uint64(1), np.uint64(32)
    w = philox4x32((agents & _M32, agents >> sh, np.full(agents.shape, tick & 0xFFFFFFFF, dtype=np.uint64),
                    np.uint64(stream << 16) | (k >> one)), (seed, replicate))
    odd = (k & one) == one
    m = ((np.where(odd, w[2], w[0]) << sh) | np.where(odd, w[3], w[1])) >> np.uint64(11)
    return (m.astype(float) + 0.5) * (1.0 / 9007199254740992.0)


def cutoff_uniforms(seed, replicate, agents, tick, stream, n):
    """The first n uniforms of each agent's stream, shape (agents, n)."""
    return np.stack([cutoff_uniform(seed, replicate, agents, tick, stream, k) for k in range(n)], axis=1)


def box_muller(u1, u2):
    """Rng::normal's pair: √(−2 ln u1)·(cos 2πu2, sin 2πu2), the cosine drawn first."""
    rad = np.sqrt(-2.0 * np.log(u1))
    return rad * np.cos(2.0 * np.pi * u2), rad * np.sin(2.0 * np.pi * u2)


def gumbel_of(u):
    """Rng::gumbel: −ln(−ln u)."""
    return -np.log(-np.log(u))


# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------

class Model:
    """The state of one run and its tick (Simulation in core/sim/simulation.cpp)."""

    # ---- §2.0 initial state ----------------------------------------------

    def __init__(self, P: dict, ct: dict, seed: int, replicate: int, derive_only: bool = False):
        self.P, self.ct = P, ct
        self.L = Layout(P, ct)
        L = self.L
        C = L.C
        self.tick = 0
        self.iso3 = ct["iso3"]
        self.tier = ct["tier"]
        self.pop = ct["population"]
        self.gdp0 = ct["gdp"].copy()
        self.lever_country = self.iso3.index(P["lever_country"])
        self.sector_ict = P["sector_names"].index("ict") if "ict" in P["sector_names"] else -1
        self.init_market()
        # (v5) the plan layer's water levels per provider at t−1, (λ_p, λ1_p): none known
        # before tick 0 (+inf, 0); compute caps' choices read them (§2.4).
        self.level_prev = np.full(self.NP, math.inf)
        self.level_floor_prev = np.zeros(self.NP)
        # Lagged country values.
        self.gdp_prev = self.gdp0.copy()
        self.adoption_prev = np.zeros(C)
        self.use_ratio_prev = np.ones(C)
        self.spill = np.zeros(C)
        self.quota_demand_prev = np.zeros(C)
        self.gap_run = np.zeros(C, dtype=int)
        self.policy_provider = np.full(C, -1)
        self.policy = np.zeros(C, dtype=int)
        self.deal_arrival = np.full(C, -1)
        self.deal_order_tick = np.full(C, -1)
        self.Y0 = None
        self.tau0 = self.need0 = 0.0     # derived below (§2.0)
        self.quota_firm_demand = np.zeros(C)
        self.firm_use_prev = np.zeros(C)  # (v5) F_c(t−1): share of real firms using AI (§2.9)
        # §2.0: τ0 and need0 are constants of the scenario, derived on seed 0, replicate 0
        # whatever this run's own (Simulation::derive_scales): (v5) on the reference
        # population of tau0_ref_firms × tau0_ref_users agents, a second model derived
        # on itself, unless this run has those counts; (v4, tau0_ref_firms = 0) on this
        # run's counts. Then the run's own agents are drawn.
        ref_f, ref_u = int(P["tau0_ref_firms"]), int(P["tau0_ref_users"])
        if ref_f > 0 and (ref_f, ref_u) != (int(P["n_firms"]), int(P["n_users"])):
            ref = Model(dict(P, n_firms=ref_f, n_users=ref_u), ct, 0, 0, derive_only=True)
            self.tau0, self.need0, self.tightness0_reached = ref.tau0, ref.need0, ref.tightness0_reached
        else:
            self.draw_seed0_agents()
            self.derive_tau0()
            self.derive_need0()
        if not derive_only:
            self.draw_agents(seed, replicate)

    def draw_agents(self, seed: int, replicate: int):
        """§2.0 the run's own firms and users (init_firms, init_users) and step 4's
        draws of tick 0, from PCG64 keyed by (seed, replicate)."""
        self.rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, replicate])))
        self.init_firms()
        self.init_users()
        self.draws0 = self.firm_draws()

    def draw_seed0_agents(self):
        """§2.0 (v4) the population of seed 0, replicate 0 that τ0 and need0 are
        derived on, with cutoff's own draws (§3): init_firm's FirmInit stream (u_size,
        u_defender, z_A, z_b), init_user's UserInit stream (z_z, z_n, u_adopt) and
        ChoiceNoise at tick −1, and firm_pick's Kyc and ChoiceNoise streams at tick 0."""
        L = self.L
        self.rng = None                                # every draw below is cutoff's
        i = np.arange(L.n_firms)
        u = cutoff_uniforms(0, 0, i, -1, STREAM_FIRM_INIT, 4)
        z_A, z_b = box_muller(u[:, 2], u[:, 3])
        self.init_firms(dict(u_size=u[:, 0], u_def=u[:, 1], z_A=z_A, z_b=z_b))
        j = np.arange(L.n_users)
        u = cutoff_uniforms(0, 0, j, -1, STREAM_USER_INIT, 3)
        z_z, z_n = box_muller(u[:, 0], u[:, 1])
        noise = lambda idx, rank: gumbel_of(cutoff_uniform(0, 0, idx, -1, STREAM_CHOICE_NOISE, rank))
        self.init_users(dict(z_z=z_z, z_n=z_n, u_adopt=u[:, 2], noise=noise))
        u = cutoff_uniforms(0, 0, i, 0, STREAM_KYC, 3)    # (v5) the third: firm_bass's adoption draw
        G = gumbel_of(cutoff_uniforms(0, 0, i, 0, STREAM_CHOICE_NOISE, len(self.g_K)))
        self.draws0 = {"kyc": u[:, 0], "switch": u[:, 1], "adopt": u[:, 2], "gumbel_k": G}

    def init_market(self):
        """§2.0 providers: capacity, pipeline of past orders, T_p(0), K_p(0),
        two generations each (one GENERAL since tick −6, one entering at 0)."""
        P = self.P
        C = len(self.iso3)
        provs = P["provider"]
        self.NP = NPv = len(provs)
        self.p_min = (1.0 + P["markup"]) * (P["opex"] + P["capex"] / P["life"])
        # align(c, p): by tier, per-country overrides, 1 at home (§5).
        self.align = np.zeros((C, NPv))
        for q, pp in enumerate(provs):
            self.align[:, q] = np.array(pp["align"])[self.tier - 1]
            for iso, v in pp.get("align_country", {}).items():
                self.align[self.iso3.index(iso), q] = v
            self.align[self.iso3.index(pp["home"]), q] = 1.0
        self.lead = int(P["lead"])
        G = P["g_cap"] ** (1.0 / 12.0)
        s = P["train_share"]
        n_arrive = int(P["horizon"]) + self.lead + 1
        self.prov = []
        for pp in provs:
            v = dict(name=pp["name"], home=self.iso3.index(pp["home"]), follower=bool(pp["follower"]),
                     offset=float(pp["offset"]), d_gov=int(pp["d_gov"]), d_trusted=int(pp["d_trusted"]),
                     d_kyc=int(pp["d_kyc"]), C_home=pp["cap_share"] * P["capacity0"], C_hosted=0.0,
                     arrive_home=np.zeros(n_arrive), arrive_hosted=np.zeros(n_arrive), T=0.0, order=0.0,
                     gens=[])
            for k in range(1, self.lead):
                v["arrive_home"][k] = v["C_home"] * G ** (k - 1) * (G - 1.0)
            v["T"] = sum(s * v["C_home"] * G ** (-j) for j in range(1, 25))
            v["revenue"] = (1.0 - s) * v["C_home"] * self.p_min
            v["cash"] = 12.0 * v["revenue"]
            v["forecast"] = (1.0 - s) * v["C_home"]
            v["price"] = v["price_home"] = self.p_min
            v["plan_value"] = math.nan
            v["gov"] = self.iso3[v["home"]] in P["r_gov_homes"]
            self.prov.append(v)
        self.T_ref = max(v["T"] for v in self.prov if not v["follower"])
        holder = -1
        for q, v in enumerate(self.prov):
            v["K_own"] = P["K_lead0"] + P["beta"] * math.log(v["T"] / self.T_ref) + v["offset"]
            if not v["follower"]:
                v["K"] = v["K_own"]
                if holder < 0 or v["K"] > self.prov[holder]["K"] or (
                        v["K"] == self.prov[holder]["K"] and self.cap(q) > self.cap(holder)):
                    holder = q
        for v in self.prov:
            if v["follower"]:
                blocked = self.align[v["home"], holder] < 0
                crack = P["crackdown"] and 0 >= P["lever_tick"]
                Lg = int(P["L0"] + (P["dL_cd"] if crack else 0) + (P["dL_api"] if blocked else 0))
                Kl = self.lead_history(-Lg)
                v["K"] = Kl + P["chi"] * max(v["K_own"] - Kl, 0.0)
            v["lag"] = math.nan
        self.g_prov, self.g_K, self.g_tg, self.g_general = [], [], [], []
        self.K_lead_hist = []
        for q, v in enumerate(self.prov):
            self.add_generation(q, v["K"] - P["dK_release"], -6 - (v["d_gov"] + v["d_trusted"] + v["d_kyc"]))
            self.add_generation(q, v["K"], 0)
        self.step_serving_cost(0)
        self.price_plans()

    def price_plans(self):
        """§2.9 (v5) plans priced by scarcity (Simulation::price_plans): provider p's plans
        cost the list prices times m_p = (max(π_p(t−1), p_min)/p_min)^plan_pass (π_rest under
        first-resort); a seat costs plan seat_plan's price there."""
        P = self.P
        price = np.array([v["price"] for v in self.prov])
        self.plan_mult = (np.maximum(price / self.p_min, 1.0) ** P["plan_pass"] if P["plan_pass"] > 0
                          else np.ones(self.NP))
        self.seat_price = P["plan_price"][int(P["seat_plan"]) - 1] * self.plan_mult

    def plan_prices(self, p):
        """The (free, plus, pro) prices on providers p (one row each); p < 0 (nothing eligible): list prices."""
        mult = np.where(p >= 0, self.plan_mult[np.maximum(p, 0)], 1.0)
        return np.array(self.P["plan_price"])[None, :] * mult[:, None]

    def need_growth_factor(self, t):
        """§2.5 (v5) a person's need S(t) = S∞/(1 + (S∞ − 1)·e^(−g·t)) from tick 0, S∞ = need_sat,
        g = need_growth; S∞ = inf gives e^(g·t) (v4 with g = tau_growth)."""
        g, sat = self.P["need_growth"], self.P["need_sat"]
        tt = max(t, 0)
        if not sat < math.inf:
            return math.exp(g * tt)
        return sat / (1.0 + (sat - 1.0) * math.exp(-g * tt))

    def connectivity(self):
        """§2.9 conn_c = clip((GDP per capita_c(t−1)/conn_ref)^conn_exp, conn_min, 1)."""
        P = self.P
        return np.clip((self.gdp_prev / self.pop / P["conn_ref"]) ** P["conn_exp"], P["conn_min"], 1.0)

    def cap(self, q):
        return self.prov[q]["C_home"] + self.prov[q]["C_hosted"]

    def add_generation(self, q, K, t_g):
        v = self.prov[q]
        v["gens"].append(len(self.g_K))
        self.g_prov.append(q)
        self.g_K.append(K)
        self.g_tg.append(t_g)
        self.g_general.append(t_g + v["d_gov"] + v["d_trusted"] + v["d_kyc"])

    def lead_history(self, t):
        """K_lead(t): the released frontier's history formula for t < 0."""
        P = self.P
        if t < 0:
            return P["K_lead0"] - P["dK_release"] + t * P["K_trend"]
        return self.K_lead_hist[t]

    def follower_lag(self, t, K_f):
        """§7 (v4) follower lag (Labs::follower_lag): how many ticks ago the leaders'
        released frontier stood where the follower stands now, t − min{t' ≤ t :
        K_lead(t') ≥ K_f}; 0 at or ahead of it. Walks back while K_lead(t'−1) ≥ K_f,
        before tick 0 on §2.0's trend, at most 10^4 ticks."""
        frm = t
        while frm > t - 10000 and self.lead_history(frm - 1) >= K_f:
            frm -= 1
        return t - frm

    def stage_of(self, g, t):
        """§2.2 stage of generation g at tick t: GOV → TRUSTED → KYC → GENERAL (→ OPEN)."""
        v = self.prov[self.g_prov[g]]
        age = t - self.g_tg[g]
        if age < v["d_gov"]:
            return GOV
        if age < v["d_gov"] + v["d_trusted"]:
            return TRUSTED
        if age < v["d_gov"] + v["d_trusted"] + v["d_kyc"]:
            return KYC
        P = self.P
        if P["open_weights"] and t >= P["lever_tick"] and t >= self.g_general[g] + P["n_open"]:
            return OPEN
        return GENERAL

    def init_firms(self, draws=None):
        """§2.0 firms: raw Pareto sizes by stratum, scaled per country to its
        workers; A_i = A_c·lognormal(0, A_sigma0); b_i lognormal mean 1;
        defenders; revenue(−1) by the pool rule at tick 0; W = 3·revenue(−1).
        `draws` (u_size, u_def, z_A, z_b per firm) replaces self.rng's."""
        P, L, rng = self.P, self.L, self.rng
        n, C, S = L.n_firms, L.C, L.S
        c = L.firm_country
        self.f_country, self.f_sector, self.f_large = c, L.firm_sector, L.firm_large
        self.f_seg = c * S + self.f_sector
        self.f_band = L.firm_band
        self.f_w = np.where(self.f_large, 1.0, L.w_small[c, self.f_band])
        if draws is None:
            u_size, u_def = rng.random(n), rng.random(n)
            z_A, z_b = rng.standard_normal(n), rng.standard_normal(n)
        else:
            u_size, u_def, z_A, z_b = draws["u_size"], draws["u_def"], draws["z_A"], draws["z_b"]
        alpha = P["pareto_alpha"]
        xL = L.x_L[c]
        # Small stratum: inverse CDF within the firm's band [lo, hi) (v5; one band: [1, x_L)).
        lo, hi = L.band_edge[c, self.f_band], L.band_edge[c, self.f_band + 1]
        head = lo ** (-alpha)
        tail = np.where(np.isfinite(hi), hi ** (-alpha), 0.0)
        with np.errstate(over="ignore", divide="ignore"):
            raw = np.where(self.f_large, xL * u_size ** (-1.0 / alpha),
                           (head - u_size * (head - tail)) ** (-1.0 / alpha))
        raw = np.minimum(raw, P["size_cap"])
        scale = L.workers / np.bincount(c, weights=self.f_w * raw, minlength=C)
        self.f_emp = raw * scale[c]
        self.seg_E = np.bincount(self.f_seg, weights=self.f_w * self.f_emp, minlength=C * S)
        world_gdp, world_workers = self.gdp0.sum(), L.workers.sum()
        A_c = ((self.gdp0 / L.workers) / (world_gdp / world_workers)) ** (1.0 / P["sigma_c"])
        self.f_A = A_c[c] * np.exp(P["A_sigma0"] * z_A)
        bs = P["budget_sigma"]
        self.f_b = np.exp(bs * z_b - 0.5 * bs * bs)
        self.f_defender = self.f_large & (self.f_sector == self.sector_ict) & (self.tier[c] == 1) & (u_def < P["p_defender"])
        self.f_kyc = np.zeros(n, bool)
        self.f_partners = np.zeros(n, np.int64)       # bit p: trusted partner of provider p
        self.f_provider = np.full(n, -1)
        self.f_gen = np.full(n, -1)
        self.f_lnA_AI = np.zeros(n)
        self.f_alloc = np.zeros(n)
        self.f_K = np.zeros(n)
        self.f_K_elig = np.zeros(n)
        self.f_ai_value = np.zeros(n)
        self.f_buying = np.zeros(n, bool)
        self.f_used_ai = np.zeros(n, bool)
        self.f_entered = np.zeros(n, bool)
        self.f_adopted = np.zeros(n, bool)             # (v5) firm_bass: has adopted AI (§2.9)
        self.f_seats = np.zeros(n)                     # (v5) seats per real firm this tick (§2.6e)
        self.f_onseats = np.zeros(n, bool)             # (v5) on seats this tick (flag kSeats)
        self.f_status = np.zeros(n, dtype=int)         # §7 status this tick
        rate, _ = self.pool_rates()
        self.f_revenue = self.f_emp * self.f_A ** P["sigma_c"] * rate
        self.f_W = 3.0 * self.f_revenue
        self.large_idx = np.flatnonzero(self.f_large)
        self.f_align = self.align[c]                   # (n, providers): align(c_i, p)

    def pool_rates(self):
        """§2.8 pass 1 and the pool rule, the rate each firm agent earns:
        rate = (1−ω)·P_cs/Z_cs + ω·Σ_c' P_c's/Z_s, P_cs = GDP_c(t−1)/12·Y_cs/Y_c; under
        pool_price_taker (v5) the first term is (1−ω)·P_cs·o_i/Σ_j w·e·A^σ·o_j with
        o_i = (E_cs − w·e)/(Z_cs − w·e·A^σ), the segment without the agent (its whole E/Z if
        the agent is alone there).
        Also the employment-weighted mean A per segment (for entrants)."""
        P, L = self.P, self.L
        C, S = L.C, L.S
        wA = self.f_w * self.f_emp
        Y = np.bincount(self.f_seg, weights=wA * self.f_A, minlength=C * S).reshape(C, S)
        Z = np.bincount(self.f_seg, weights=wA * self.f_A ** P["sigma_c"], minlength=C * S).reshape(C, S)
        Yc = Y.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            Pcs = np.where(Yc[:, None] > 0, self.gdp_prev[:, None] / 12.0 * Y / Yc[:, None], 0.0)
            Ps, Zs = Pcs.sum(axis=0), Z.sum(axis=0)
            local = np.where(Z > 0, Pcs / Z, 0.0)
            traded = np.where(Zs > 0, Ps / Zs, 0.0)
            meanA = np.where(self.seg_E > 0, Y.ravel() / self.seg_E, 1.0)
        if not P.get("pool_price_taker", False):
            rate = (1.0 - P["omega"]) * local + P["omega"] * traded[None, :]
            return rate.ravel()[self.f_seg], meanA
        seg = self.f_seg
        x = wA * self.f_A ** P["sigma_c"]
        E_s, Z_s = self.seg_E[seg], Z.ravel()[seg]
        E_o, Z_o = E_s - wA, Z_s - x
        with np.errstate(divide="ignore", invalid="ignore"):
            others = np.where((E_o > 0) & (Z_o > 0), E_o / Z_o, np.where(Z_s > 0, E_s / Z_s, 0.0))
            R = np.bincount(seg, weights=x * others, minlength=C * S)
            own = np.where(R > 0, (1.0 - P["omega"]) * Pcs.ravel() / R, 0.0)
        return P["omega"] * traded[self.f_sector] + own[seg] * others, meanA

    def init_users(self, draws=None):
        """§2.0 users: z_u lognormal mean 1, n_u lognormal median 1; adoption with
        probability adopt0·access_c·afford_u (use ratio 1), then plan and generation.
        `draws` (z_z, z_n, u_adopt per user, and the choice noise) replaces self.rng's."""
        P, L, rng = self.P, self.L, self.rng
        n = L.n_users
        self.u_country = L.user_country
        s = P["income_sigma"]
        if draws is None:
            z_z, z_n = rng.standard_normal(n), rng.standard_normal(n)
        else:
            z_z, z_n = draws["z_z"], draws["z_n"]
        self.u_z = np.exp(s * z_z - 0.5 * s * s)
        self.u_n = np.exp(P["need_sigma"] * z_n)
        self.u_provider = np.full(n, -1)
        self.u_gen = np.full(n, -1)
        self.u_plan = np.zeros(n, dtype=int)
        self.u_adopter = np.zeros(n, bool)
        self.u_capped = np.zeros(n, bool)
        self.u_new = np.zeros(n, bool)                 # (v4) adopted this tick: not in this tick's market
        self.u_use = np.zeros(n)
        self.user_consts(-1)
        if draws is None:
            self.try_adopt(np.arange(n), rng.random(n))
        else:
            self.try_adopt(np.arange(n), draws["u_adopt"], draws["noise"])
        C = L.C
        ad = np.bincount(self.u_country, weights=self.u_adopter.astype(float), minlength=C)
        self.adoption_prev = ad * L.w_user / self.pop

    # ---- per-tick constants (firm_consts, user_consts) --------------------

    def firm_consts(self, t):
        """Per-tick constants of the firms' rules: τ_s(t), KYC rates, the tier-2
        quota factor ζ_c (§2.4, under diffusion_rule), deal masks (§6), first-resort flags, π(t−1)."""
        P, C = self.P, self.L.C
        self.tau_s = self.tau0 * np.array(P["mult_s"]) * math.exp(P["tau_growth"] * max(t, 0))
        raise_ = np.where(self.policy & 4, P["kyc_raise"], 1.0)
        self.kyc_rate_c = np.minimum(1.0, np.array(P["kyc_rate"])[self.tier - 1] * raise_)
        levers = t >= P["lever_tick"]
        quota = P["tier2_quota"] * (1.0 + P["tier2_quota_growth"]) ** (max(t, 0) / 12.0)
        # (v4) the quota is the lever diffusion_rule, from lever_tick.
        applies = bool(P["diffusion_rule"]) and levers
        with np.errstate(divide="ignore"):
            self.zeta = np.where(applies & (self.tier == 2) & (self.quota_demand_prev > 0),
                                 np.minimum(1.0, quota / np.where(self.quota_demand_prev > 0, self.quota_demand_prev, 1.0)), 1.0)
        self.deal_mask = np.zeros(C, np.int64)
        arrived = (self.deal_arrival >= 0) & (t >= self.deal_arrival)
        self.deal_mask[arrived] |= (1 << self.policy_provider[arrived])
        self.quota_provider = np.array([self.tier[v["home"]] == 1 for v in self.prov])
        self.first_resort = np.array([bool(P["first_resort"] and levers and v["home"] == self.lever_country)
                                      for v in self.prov])
        self.price = np.array([v["price"] for v in self.prov])
        self.price_home = np.array([v["price_home"] for v in self.prov])
        # §2.9 (v5) firms' diffusion: a one-employee firm's adoption probability,
        # firm_adopt0 at tick 0, then (p + q·F_c(t−1)), times conn_c (whoever serves c).
        rate = P["firm_adopt0"] if t <= 0 else P["firm_bass_p"] + P["firm_bass_q"] * self.firm_use_prev
        self.firm_adopt_rate = rate * self.connectivity()
        # §2.9 (v5) plan and seat prices at π(t−1); §2.6(e) a seat's cap, a person of need
        # multiplier 1 on plan seat_plan.
        self.price_plans()
        sp = int(P["seat_plan"]) - 1
        self.seat_cap = self.need0 * self.need_growth_factor(t) * P["plan_need"][sp] * min(1.0, P["plan_cap"])
        self.seat_weight = P["plan_weight"][sp]

    def user_consts(self, t):
        """Per-tick constants of the users' rules (§2.9): wage_c, the adoption
        rate (bass_p + bass_q·adoption_c(t−1))·conn_c·use_ratio_c(t−1)^ψ_u
        (adopt0·conn_c at t < 0), need scale need0·S(t) (v5: need_growth, need_sat)."""
        P = self.P
        self.wage = P["labour_share"] * self.gdp_prev / (12.0 * self.L.workers)
        serves = self.user_elig_c.any(axis=0)
        conn = np.where(serves, self.connectivity(), 0.0)
        access = conn * self.use_ratio_prev ** P["psi_u"]
        if t < 0:
            self.adopt_rate = P["adopt0"] * conn
        else:
            self.adopt_rate = (P["bass_p"] + P["bass_q"] * self.adoption_prev) * access
        self.need_scale = self.need0 * self.need_growth_factor(t)   # (v5) need0·S(t)

    # ---- §2.4 firm eligibility, utility, choice --------------------------

    def firm_cleared(self, idx, kyc, p):
        """Cleared for p: KYC-cleared with align ≥ a_kyc, or hosting an arrived deal of p."""
        c = self.f_country[idx]
        return (kyc & (self.f_align[idx, p] >= self.P["a_kyc"])) | (((self.deal_mask[c] >> p) & 1) == 1)

    def firm_eligible(self, g, idx, kyc, partners):
        """§2.4 eligibility of generation g for firms idx: OPEN; or align ≥ 0 and
        GENERAL, KYC with cleared or partner, TRUSTED with partner."""
        st = self.g_stage[g]
        if st == OPEN:
            return np.ones(len(idx), bool)
        p = self.g_prov[g]
        ok = self.f_align[idx, p] >= 0.0
        if st == GENERAL:
            return ok
        partner = ((partners >> p) & 1) == 1
        if st == KYC:
            return ok & (partner | self.firm_cleared(idx, kyc, p))
        if st == TRUSTED:
            return ok & partner
        return np.zeros(len(idx), bool)

    def firm_utility(self, g, idx, budget, need_q1):
        """§2.4 noiseless u = φ·K_g·min(1, a/q')^ψ, a = ζ(B − F_access)/(π(t−1)·h_g)."""
        P = self.P
        p = self.g_prov[g]
        c = self.f_country[idx]
        z = self.zeta[c] if self.quota_provider[p] else 1.0
        money = z * (budget - P["access_cost"])
        price = np.where(self.first_resort[p] & (c == self.lever_country), self.price_home[p], self.price[p])
        afford = np.where(money > 0, money / (price * self.g_h[g]), 0.0)
        ratio = np.minimum(1.0, afford / (z * need_q1))
        return P["phi"] * self.g_K[g] * np.where(ratio > 0, np.maximum(ratio, 0) ** P["psi"], 0.0)

    def firm_need(self, idx=slice(None)):
        """§2.5 q_i = employees·τ_s(t), Mtok."""
        return self.f_emp[idx] * self.tau_s[self.f_sector[idx]]

    def firm_budget(self, idx=slice(None)):
        """§2.5 B_i = b_i·(β_W·max(W, 0) + β_R·revenue(t−1))."""
        P = self.P
        return self.f_b[idx] * (P["beta_W"] * np.maximum(self.f_W[idx], 0.0) + P["beta_R"] * self.f_revenue[idx])

    def firm_draws(self):
        """Step 4's draws for every firm this tick: KYC and switch uniforms, and
        a Gumbel per generation (drawn lazily, one array per generation)."""
        n = self.L.n_firms
        return {"kyc": self.rng.random(n), "switch": self.rng.random(n), "adopt": self.rng.random(n), "gumbel": {}}

    def gumbel(self, draws, g, n, rank):
        """The Gumbel of generation g for every firm; with cutoff's draws
        (`gumbel_k`), the firm's rank-th one (one per candidate, in generation order)."""
        if "gumbel_k" in draws:
            return draws["gumbel_k"][np.arange(n), rank]
        if g not in draws["gumbel"]:
            draws["gumbel"][g] = self.rng.gumbel(size=n)
        return draws["gumbel"][g]

    def firm_pick(self, draws):
        """§2.4 for every firm, without writing: the KYC draw, then the choice
        among eligible (p, g) at π(t−1) with Gumbel noise; a trusted partner keeps
        its provider, others re-choose it with probability p_switch or when
        none of its generations is eligible. (v5, firm_bass) A firm that has not adopted AI
        first adopts, if a generation is eligible, with probability
        min(1, rate_c·employees^firm_adopt_size); one that has not chooses nothing.
        Returns (kyc, generation, K_elig, adopted)."""
        P = self.P
        n = self.L.n_firms
        idx = np.arange(n)
        kyc = self.f_kyc | (draws["kyc"] < self.kyc_rate_c[self.f_country])
        partners = self.f_partners
        budget = self.firm_budget()
        need_q1 = np.maximum(self.firm_need(), P["q_min"])
        cur = self.f_provider
        NG = len(self.g_K)
        elig = [self.firm_eligible(g, idx, kyc, partners) for g in range(NG)]
        best_K = np.zeros(n)
        has_own = np.zeros(n, bool)
        any_el = np.zeros(n, bool)
        for g in range(NG):
            best_K = np.where(elig[g], np.maximum(best_K, self.g_K[g]), best_K)
            has_own |= elig[g] & (cur == self.g_prov[g])
            any_el |= elig[g]
        adopted = self.f_adopted | (not P["firm_bass"])
        if P["firm_bass"]:
            prob = np.minimum(1.0, self.firm_adopt_rate[self.f_country] * self.f_emp ** P["firm_adopt_size"])
            adopted = adopted | (any_el & (draws["adopt"] < prob))
        partner_cur = ((partners >> np.maximum(cur, 0)) & 1) == 1
        keeps = (cur >= 0) & has_own & (partner_cur | ~(draws["switch"] < P["p_switch"]))
        # (v5) one that keeps its provider keeps its generation while it stays eligible,
        # re-choosing it with probability firm_p_repick (1: every tick; no draw then).
        stay = np.zeros(n, bool)
        if P["firm_p_repick"] < 1:
            held_ok = np.zeros(n, bool)
            for g in range(NG):
                held_ok |= elig[g] & (self.f_gen == g) & (cur == self.g_prov[g])
            if (keeps & held_ok).any():  # (never at tick 0, whose draws are cutoff's: nothing is held)
                stay = keeps & held_ok & ~(self.rng.random(n) < P["firm_p_repick"])
        best = np.full(n, -1)
        best_u = np.full(n, -np.inf)
        rank = np.zeros(n, dtype=int)                 # candidates so far (draws so far)
        for g in range(NG):
            cand = adopted & elig[g] & (~keeps | (cur == self.g_prov[g]))
            if not cand.any():
                continue
            u = self.firm_utility(g, idx, budget, need_q1) + P["switch_noise"] * self.gumbel(draws, g, n, rank)
            upd = cand & (u > best_u)
            best = np.where(upd, g, best)
            best_u = np.where(upd, u, best_u)
            rank += cand
        best = np.where(stay, self.f_gen, best)
        return kyc, best, best_K, adopted

    # ---- §2.5 firm bids ----------------------------------------------------

    def firm_bids(self, gen, kyc, partners):
        """§2.5 bids of every firm on its chosen generation: returns a dict of
        arrays over the bidding firms (idx, provider, w, need = ζq'h, money =
        ζ(B − F), pi_out = min(v, money/(ζ q_min h), money/x_F), min_alloc, class, home;
        z = ζ, wtp = v = V(q'h)/need, the bid's worth per H100e)."""
        P = self.P
        idx = np.flatnonzero(gen >= 0)
        g = gen[idx]
        gp = np.array(self.g_prov)[g]
        h = self.g_h[g]
        c = self.f_country[idx]
        z = np.where(self.quota_provider[gp], self.zeta[c], 1.0)
        q = self.firm_need(idx)
        need = z * np.maximum(q, P["q_min"]) * h
        F = P["access_cost"]
        money = z * (self.firm_budget(idx) - F)
        v_max = P["wtp_months"] * P["rho"] * P["sigma_c"] * self.f_revenue[idx] * P["phi"] * np.array(self.g_K)[g]
        ok = (money > 0) & (need > 0) & (q > 0) & ~(v_max < F)
        idx, g, gp, h, c, z, q, need, money, v_max = (a[ok] for a in (idx, g, gp, h, c, z, q, need, money, v_max))
        wtp = v_max / need
        min_alloc = z * P["q_min"] * h
        x_F = z * q * h * ((F / v_max) ** (1.0 / P["psi"]) if F > 0 else 0.0)
        pi_out = np.minimum(wtp, money / min_alloc)
        with np.errstate(divide="ignore"):
            pi_out = np.where(x_F > 0, np.minimum(pi_out, money / np.where(x_F > 0, x_F, 1.0)), pi_out)
        partner = ((partners[idx] >> gp) & 1) == 1
        cleared = (kyc[idx] & (self.f_align[idx, gp] >= P["a_kyc"])) | (((self.deal_mask[c] >> gp) & 1) == 1)
        cls = np.where(partner, 0, np.where(cleared, 1, 2))
        home = self.first_resort[gp] & (c == self.lever_country)
        return dict(idx=idx, p=gp, w=self.f_w[idx], need=need, money=money, pi_out=pi_out,
                    min_alloc=min_alloc, cls=cls, home=home, z=z, wtp=wtp)

    # ---- §2.0 derived τ0 and need0 ----------------------------------------

    def firm_demand_at_pmin(self, tau):
        """Σ w·x_i(p_min) at tick 0 with τ0 = tau and step 4's choices at π(−1)."""
        self.tau0 = tau
        self.firm_consts(0)
        kyc, gen, _, _ = self.firm_pick(self.draws0)
        b = self.firm_bids(gen, kyc, self.f_partners)
        return float(np.sum(b["w"] * bid_demand(self.p_min, b["need"], b["money"], b["pi_out"])))

    def derive_tau0(self):
        """§2.0 τ0: the smallest value at which weighted firm demand at p_min
        reaches tightness0 × firm capacity at tick 0 (no unused floor): scan up
        from 1e−3 by ×1.1 to 1e5, bisect the first bracket 50 times. (v4) Where
        budgets bind and the scan never reaches it, the target is 99% of the
        largest demand over the scan; only no demand at all is an error."""
        P = self.P
        cap = 0.0
        for q, v in enumerate(self.prov):
            inference = (1.0 - P["train_share"]) * self.cap(q)
            cap += inference * (1.0 - (P["r_gov"] if v["gov"] else 0.0) - P["r_cons"])
        target = P["tightness0"] * cap
        taus, demand = [], []
        tau = 1e-3
        while tau <= 1e5:
            taus.append(tau)
            demand.append(self.firm_demand_at_pmin(tau))
            if demand[-1] >= target:
                break
            tau *= 1.1
        self.tightness0_reached = P["tightness0"]
        if demand[-1] < target:
            most = max(demand)
            if not most > 0:
                print(f"cutoff_np: error: key 'tightness0' = {P['tightness0']}: no firm demands compute at p_min at any "
                      "tokens per worker up to 1e5 Mtok a month", file=sys.stderr)
                raise SystemExit(2)
            target = 0.99 * most
            self.tightness0_reached = target / cap
            print(f"cutoff_np: warning: tightness0 = {P['tightness0']} is out of reach (budgets bind): tau0 derived "
                  f"at 99% of the largest firm demand at p_min, tightness {self.tightness0_reached}", file=sys.stderr)
        j = next(k for k, d in enumerate(demand) if d >= target)
        hi = taus[j]
        lo = taus[j - 1] if j > 0 else hi / 1.1
        for _ in range(50):
            mid = 0.5 * (lo + hi)
            if self.firm_demand_at_pmin(mid) >= target:
                hi = mid
            else:
                lo = mid
        self.tau0 = hi

    def derive_need0(self):
        """§2.0 need0: consumer demand at full caps at tick 0, every adopter on its
        provider's newest GENERAL generation, equals tightness0_cons × the floor."""
        P = self.P
        h_newest = np.zeros(self.NP)
        floor = 0.0
        for q, v in enumerate(self.prov):
            for g in v["gens"]:
                if self.g_stage[g] >= GENERAL:
                    h_newest[q] = self.g_h[g]
            floor += P["r_cons"] * (1.0 - P["train_share"]) * self.cap(q)
        a = self.u_adopter
        pn = np.array(P["plan_need"])[self.u_plan[a] - 1]
        per_unit = np.sum(self.L.w_user[self.u_country[a]] * pn * np.minimum(self.u_n[a], P["plan_cap"])
                          * h_newest[self.u_provider[a]])
        if not per_unit > 0:
            raise SystemExit("adopt0: no initial adopters, need0 cannot be derived")
        self.need0 = P["tightness0_cons"] * floor / per_unit

    # ---- users: eligibility, choice, adoption ------------------------------

    def choose_user_generation(self, idx, only_own, noise=None, served=False):
        """§2.4 users' choice: the eligible generation maximising φ·K_g·served_g + noise·γ
        (GENERAL with align ≥ 0, or OPEN); with `only_own`, among the user's
        provider's generations first, then (if none) among all. `noise(idx, rank)`
        (cutoff's draws, only_own None): the rank-th Gumbel of each user. `served` (v5,
        under compute caps, step 4): the factor is the share of the user's cap that g
        would serve at its provider's level of t−1 (user_served); else 1."""
        P = self.P
        c = self.u_country[idx]
        cur = self.u_provider[idx]
        n = len(idx)
        best_own, u_own = np.full(n, -1), np.full(n, -np.inf)
        best_all, u_all = np.full(n, -1), np.full(n, -np.inf)
        rank = np.zeros(n, dtype=int)
        for g in range(len(self.g_K)):
            el = self.user_elig_c[g][c]
            if not el.any():
                continue
            gam = self.rng.gumbel(size=n) if noise is None else noise(idx, rank)
            rank += el
            s = self.user_served(idx, g) if served else 1.0
            u = P["phi"] * self.g_K[g] * s + P["switch_noise"] * gam
            up = el & (u > u_all)
            best_all = np.where(up, g, best_all)
            u_all = np.where(up, u, u_all)
            if only_own is not None:
                uo = el & only_own & (cur == self.g_prov[g]) & (u > u_own)
                best_own = np.where(uo, g, best_own)
                u_own = np.where(uo, u, u_own)
        return np.where(best_own >= 0, best_own, best_all)

    def user_served(self, idx, g):
        """§2.4 (v5, compute caps; UserServed) the share of users idx's demand at full caps
        on g's provider p that generation g would serve at p's plan-layer level of t−1:
        min(1, Λ·(w_plan/h_g)/c_u)^ψ, Λ the level the user would rise to there (a deal
        host's λ1 when above λ); 1 when every cap fitted (Λ = +inf) or c_u = 0."""
        P = self.P
        p = self.g_prov[g]
        c = self.u_country[idx]
        cap = self.user_cap(idx, np.full(len(idx), p))
        pw = np.array(P["plan_weight"])[self.u_plan[idx] - 1] / self.g_h[g]
        host = ((self.deal_mask[c] >> p) & 1) == 1
        lam, lam1 = self.level_prev[p], self.level_floor_prev[p]
        level = np.where(host & (lam1 > lam), lam1, lam)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            s = np.minimum(1.0, level * pw / cap) ** P["psi"]
        return np.where(np.isfinite(level) & (cap > 0), s, 1.0)

    def user_plan(self, income, p):
        """§2.9 plan by income on providers p: pro if ω_plan·income ≥ its price, else plus,
        else free (v5: at the provider's prices)."""
        b = self.P["omega_plan"] * income
        pp = self.plan_prices(p)
        return np.where(b >= pp[:, 2], PLAN_PRO, np.where(b >= pp[:, 1], PLAN_PLUS, PLAN_FREE))

    def try_adopt(self, idx, u, noise=None):
        """§2.9 adoption of users idx with probability adopt_rate_c·afford_u,
        afford = max(f_free, min(1, ω_inc·income/price[plus])) at the prices of the
        provider it would choose (v5; user_try_adopt): a draw below adopt_rate_c chooses
        a generation (none eligible: no adoption), then adopts if below
        adopt_rate_c·afford_u; then the plan. Returns the adopters."""
        P = self.P
        c = self.u_country[idx]
        maybe = u < self.adopt_rate[c]
        idx, u, c = idx[maybe], u[maybe], c[maybe]
        gen = self.choose_user_generation(idx, None, noise)
        ok = gen >= 0
        idx, u, c, gen = idx[ok], u[ok], c[ok], gen[ok]
        p = np.array(self.g_prov)[gen]
        income = self.u_z[idx] * self.wage[c]
        afford = np.maximum(P["f_free"], np.minimum(1.0, P["omega_inc"] * income / self.plan_prices(p)[:, 1]))
        yes = u < self.adopt_rate[c] * afford
        idx, income, gen, p = idx[yes], income[yes], gen[yes], p[yes]
        self.u_adopter[idx] = True
        self.u_plan[idx] = self.user_plan(income, p)
        self.u_gen[idx] = gen
        self.u_provider[idx] = p
        return idx

    def user_cap(self, idx, q=None):
        """§2.5 min(need_u, plancap_u) = need0·plan_need·e^(gt)·min(n_u, plan_cap), × ζ_c under the quota
        (on providers q; default: the users' own)."""
        P = self.P
        base = self.need_scale * np.array(P["plan_need"])[self.u_plan[idx] - 1]
        cap = base * np.minimum(self.u_n[idx], P["plan_cap"])
        if q is None:
            q = self.u_provider[idx]
        return np.where(self.quota_provider[np.maximum(q, 0)], cap * self.zeta[self.u_country[idx]], cap)

    # ---- one tick -----------------------------------------------------------

    def step(self):
        """One tick, in cutoff's order (Simulation::step)."""
        t = self.tick
        self.place_policy_orders(t)
        self.step_capacity(t)
        released = self.step_training(t)
        if t == 0:  # §2.0: the generation entering at t_g = 0 chooses its partners in step 2 of tick 0
            released = released + [q for q in range(self.NP) if q not in released]
        self.step_serving_cost(t)
        self.firm_consts(t)
        self.user_consts(t)
        if released:
            self.choose_partners(released)
        self.step_choice(t)
        self.step_market()
        self.step_firms()
        self.step_adoption()
        m = self.step_countries()
        self.level_prev, self.level_floor_prev = self.res_level, self.res_level_floor  # (v5) for t+1's choices
        self.tick += 1
        return m

    def place_policy_orders(self, t):
        """§6: domestic build orders build_share·GDP_c(t−1)/12/capex H100e a tick
        (hosted); a deal orders deal_size H100e once, arriving `lead` ticks later."""
        P = self.P
        for c in np.flatnonzero(self.policy_provider >= 0):
            q = self.policy_provider[c]
            if self.policy[c] & 1:
                self.prov[q]["arrive_hosted"][t + self.lead] += P["build_share"] * self.gdp_prev[c] / 12.0 / P["capex"]
            if self.deal_order_tick[c] == t:
                self.prov[q]["arrive_hosted"][t + self.lead] += P["deal_size"]
                self.deal_arrival[c] = t + self.lead

    def step_capacity(self, t):
        """§2.1 capacity: arrivals; home orders min(plan − C − pipeline, cash/capex,
        bm·x_max·C)⁺ (x_max_t3 for tier-3 homes, none under a moratorium); cash."""
        P = self.P
        plan = P["bm"] * P["g_cap"] ** (P["lead"] / 12.0)
        for v in self.prov:
            v["C_home"] += v["arrive_home"][t]
            v["C_hosted"] += v["arrive_hosted"][t]
            pipeline = v["arrive_home"][t + 1:].sum() + v["arrive_hosted"][t + 1:].sum()
            C = v["C_home"] + v["C_hosted"]
            x_cap = P["x_max_t3"] if self.tier[v["home"]] == 3 else P["x_max"]
            order = max(0.0, min(plan * v["forecast"] / (1.0 - P["train_share"]) - C - pipeline,
                                 max(v["cash"], 0.0) / P["capex"], P["bm"] * x_cap * C))
            if P["moratorium"] and t >= P["lever_tick"] and v["home"] == self.lever_country:
                order = 0.0
            v["order"] = order
            v["cash"] += (1.0 + P["bm"] * P["outside_finance"]) * v["revenue"] - P["opex"] * C - P["capex"] * order
            v["arrive_home"][t + self.lead] += order

    def step_training(self, t):
        """§2.2 training T += s·C, K_own = K_lead0 + β·ln(T/T_ref) + offset; a new
        generation enters at K ≥ newest K + ΔK_release; K_lead(t); followers
        distil K_f = K_lead(t−L) + χ·(K_own − K_lead(t−L))⁺ and get their lag (§7).
        Returns releasers."""
        P = self.P
        released = []

        def maybe_release(q):
            v = self.prov[q]
            if v["K"] >= self.g_K[v["gens"][-1]] + P["dK_release"]:
                self.add_generation(q, v["K"], t)
                released.append(q)

        for q, v in enumerate(self.prov):
            v["T"] += P["train_share"] * self.cap(q)
            v["K_own"] = P["K_lead0"] + P["beta"] * math.log(v["T"] / self.T_ref) + v["offset"]
            if v["follower"]:
                continue
            v["K"] = v["K_own"]
            maybe_release(q)
        best, holder = -math.inf, -1
        for g in range(len(self.g_K)):
            q = self.g_prov[g]
            if self.prov[q]["follower"] or self.stage_of(g, t) < KYC:
                continue
            if holder < 0 or self.g_K[g] > best or (self.g_K[g] == best and self.cap(q) > self.cap(holder)):
                best, holder = self.g_K[g], q
        if holder < 0:
            best = self.lead_history(t)
        self.K_lead_hist.append(best)
        for q, v in enumerate(self.prov):
            if not v["follower"]:
                continue
            blocked = holder >= 0 and self.align[v["home"], holder] < 0
            crack = P["crackdown"] and t >= P["lever_tick"]
            Lg = int(P["L0"] + (P["dL_cd"] if crack else 0) + (P["dL_api"] if blocked else 0))
            Kl = self.lead_history(t - Lg)
            v["K"] = Kl + P["chi"] * max(v["K_own"] - Kl, 0.0)
            v["lag"] = self.follower_lag(t, v["K"])
            maybe_release(q)
        return released

    def step_serving_cost(self, t):
        """§2.3 h_g(t) = h0·e^(−δt)·e^(κ(K_g − K_ref))·e^(−η(t − t_g)); stages;
        the users' eligibility by (generation, country)."""
        P = self.P
        K = np.array(self.g_K)
        tg = np.array(self.g_tg)
        self.g_stage = np.array([self.stage_of(g, t) for g in range(len(K))])
        self.g_h = P["h0"] * np.exp(-P["delta"] * t) * np.exp(P["kappa"] * (K - P["K_ref"])) * np.exp(-P["eta"] * (t - tg))
        gp = np.array(self.g_prov)
        self.user_elig_c = (self.g_stage[:, None] == OPEN) | (
            (self.g_stage[:, None] == GENERAL) & (self.align[:, gp].T >= 0.0))

    def choose_partners(self, released):
        """§2.2 trusted partners of each provider whose generation entered:
        large-stratum firms with align ≥ a_trusted, defenders first, then by
        revenue(t−1), n_trusted of them; (v4) a firm chosen by one of these releases
        (only those) moves to its partner provider with the highest noiseless u
        (if several)."""
        P = self.P
        L = self.large_idx
        chosen = np.zeros(self.L.n_firms, bool)
        for q in released:
            self.f_partners[L] &= ~(1 << q)
            cand = L[self.f_align[L, q] >= P["a_trusted"]]
            order = np.lexsort((cand, -self.f_revenue[cand], ~self.f_defender[cand]))
            chosen_q = cand[order[:int(P["n_trusted"])]]
            self.f_partners[chosen_q] |= (1 << q)
            chosen[chosen_q] = True
        idx = L[chosen[L]]
        if len(idx) == 0:
            return
        budget = self.firm_budget(idx)
        need_q1 = np.maximum(self.firm_need(idx), P["q_min"])
        best = np.full(len(idx), -1)
        best_u = np.full(len(idx), -np.inf)
        for g in range(len(self.g_K)):
            q = self.g_prov[g]
            ok = (((self.f_partners[idx] >> q) & 1) == 1) & self.firm_eligible(g, idx, self.f_kyc[idx], self.f_partners[idx])
            if not ok.any():
                continue
            u = self.firm_utility(g, idx, budget, need_q1)
            upd = ok & (u > best_u)
            best = np.where(upd, q, best)
            best_u = np.where(upd, u, best_u)
        move = (best >= 0) & (self.f_provider[idx] != best)
        self.f_provider[idx[move]] = best[move]
        self.f_gen[idx[move]] = -1

    def step_choice(self, t):
        """§2.4 choice: firms (KYC draw, then (p, g)), and adopters re-pick the
        generation among their provider's eligible ones, re-choosing the provider
        with probability p_switch or when none is eligible."""
        draws = self.draws0 if t == 0 else self.firm_draws()
        kyc, gen, best_K, adopted = self.firm_pick(draws)
        self.f_kyc = kyc
        self.f_adopted = adopted
        self.f_gen = gen
        self.f_provider = np.where(gen >= 0, np.array(self.g_prov)[np.maximum(gen, 0)], -1)
        self.f_K_elig = best_K
        a = np.flatnonzero(self.u_adopter)
        switching = self.rng.random(len(a)) < self.P["p_switch"]
        cc = bool(self.P.get("compute_caps", False))
        if cc:
            # (v5) under compute caps an adopter that does not switch keeps its generation
            # while it stays eligible, re-choosing it with probability p_repick.
            held = self.u_gen[a]
            keep = (~switching & (held >= 0) & self.user_elig_c[np.maximum(held, 0), self.u_country[a]]
                    & ~(self.rng.random(len(a)) < self.P["p_repick"]))
            a, switching = a[~keep], switching[~keep]
        own = ~switching & (self.u_provider[a] >= 0)
        g = self.choose_user_generation(a, own, served=cc)
        self.u_gen[a] = g
        self.u_provider[a] = np.where(g >= 0, np.array(self.g_prov)[np.maximum(g, 0)], -1)

    def user_bids(self):
        """Users' part in the consumer layer: adopters with a generation (and their plan's price)."""
        a = np.flatnonzero(self.u_adopter & (self.u_gen >= 0))
        g = self.u_gen[a]
        p = np.array(self.g_prov)[g]
        c = self.u_country[a]
        price = self.plan_prices(p)[np.arange(len(a)), self.u_plan[a] - 1]
        pw = np.array(self.P["plan_weight"])[self.u_plan[a] - 1]
        if self.P.get("compute_caps", False):
            pw = pw / self.g_h[g]   # (v5) the fill's weight w_plan/h_g: the level counts H100e (fill_weight)
        return dict(idx=a, p=p, w=self.L.w_user[c], cap=self.user_cap(a), pw=pw, h=self.g_h[g],
                    host=((self.deal_mask[c] >> p) & 1) == 1, price=price)

    def seat_generation(self, gen):
        """§2.6(e) (v5) the plan-layer generation of each firm whose API choice is gen: gen
        itself when a user of its country could use it (GENERAL with align ≥ 0, or OPEN),
        else the best-K such generation of the same provider (ties: the lower index); −1: none.
        Under compute caps, the generation x of that provider a user could use with the best
        K_x·min(1, Λ_p(t−1)·(w_seat/h_x)/(cap_seat·ζ))^ψ (ties: the lower index)."""
        P = self.P
        c = self.f_country
        ok = gen >= 0
        g0 = np.maximum(gen, 0)
        cc = bool(P.get("compute_caps", False))
        own = ok & self.user_elig_c[g0, c] & (not cc)
        best = np.where(own, gen, -1)
        best_u = np.where(own, np.array(self.g_K)[g0], 0.0)
        prov = np.array(self.g_prov)[g0]
        if cc:
            cap = self.seat_cap * np.where(self.quota_provider[prov], self.zeta[c], 1.0)
            host = ((self.deal_mask[c] >> prov) & 1) == 1
            lam, lam1 = self.level_prev[prov], self.level_floor_prev[prov]
            level = np.where(host & (lam1 > lam), lam1, lam)
            scale = np.isfinite(level) & (cap > 0)
        for x in range(len(self.g_K)):
            u = np.full(len(gen), self.g_K[x])
            if cc:
                with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                    s = np.minimum(1.0, level * (self.seat_weight / self.g_h[x]) / cap) ** P["psi"]
                u = np.where(scale, u * s, u)
            better = ok & ~own & (prov == self.g_prov[x]) & self.user_elig_c[x][c] & ((best < 0) | (u > best_u))
            best = np.where(better, x, best)
            best_u = np.where(better, u, best_u)
        return best

    def firm_seats(self, buying):
        """§2.6(e) (v5) a firm that got no API compute buys n = min(employees·seat_share,
        B/price_seat) seats on its seat generation's provider (no access cost) if their value
        at full caps V(n·seat_cap) ≥ n·price_seat (V of §2.5 at that generation), at the tick's
        budget before it adapts (firm_seats). Returns (seats per real firm, generation)."""
        P = self.P
        n_f = self.L.n_firms
        if not P["seats"]:
            return np.zeros(n_f), np.full(n_f, -1)
        sg = np.where(buying, -1, self.seat_generation(self.f_gen))
        q = self.firm_need()
        price = np.where(sg >= 0, self.seat_price[np.array(self.g_prov)[np.maximum(sg, 0)]], 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            n = np.minimum(self.f_emp * P["seat_share"], self.firm_budget() / price)
            K = np.array(self.g_K)[np.maximum(sg, 0)]
            v_max = P["wtp_months"] * P["rho"] * P["sigma_c"] * self.f_revenue * P["phi"] * K
            value = v_max * np.minimum(1.0, n * self.seat_cap / q) ** P["psi"]
            hold = (sg >= 0) & (q > 0) & (price > 0) & (n > 0) & (value >= n * price)
        return np.where(hold, n, 0.0), np.where(hold, sg, -1)

    def step_market(self):
        """§2.5-§2.6 per provider: (a) government reserve, (b) consumer demand at
        full caps and the unused floor, (v5) the plan layer's earnings per H100e and,
        under plan_split, its bid; (c) the firms' clearing at one price (two under
        first-resort), each firm's status (§7) and (v5) its seats; D_c's firm part;
        (v4) budgets adapt; (d) what firms left joins (e) the plan layer's water-filled
        caps, users and (v5) seats together; revenue, π_p and the forecast F_p."""
        P = self.P
        NP = self.NP
        ub = self.user_bids()
        cons_demand = np.bincount(ub["p"], weights=ub["w"] * ub["cap"] * ub["h"], minlength=NP)
        plan_rev = np.bincount(ub["p"], weights=ub["w"] * ub["price"], minlength=NP)
        inference = np.array([(1.0 - P["train_share"]) * self.cap(q) for q in range(NP)])
        reserve = np.array([P["r_gov"] * inference[q] if v["gov"] else 0.0 for q, v in enumerate(self.prov)])
        floor = P["r_cons"] * inference
        firm_cap = inference - reserve - floor + np.maximum(floor - cons_demand, 0.0)
        # (v5) the plan layer earns its users' plan revenue over their demand at full caps;
        # under plan_split it bids that per H100e for its demand above the floor.
        with np.errstate(divide="ignore", invalid="ignore"):
            self.plan_value = np.where(cons_demand > 0, plan_rev / np.where(cons_demand > 0, cons_demand, 1.0),
                                       math.nan)
        plan_bids = bool(P["plan_split"]) & (cons_demand > floor) & (self.plan_value > 0)

        b = self.firm_bids(self.f_gen, self.f_kyc, self.f_partners)
        alloc = np.zeros(len(b["idx"]))
        paid = np.zeros(len(b["idx"]))
        sold = np.zeros(NP)
        price = np.zeros(NP)
        price_home = np.zeros(NP)
        for q in range(NP):
            on = b["p"] == q

            def args(m, plan=False):
                a = [b["w"][m], b["need"][m], b["money"][m], b["pi_out"][m], b["min_alloc"][m], b["cls"][m]]
                if plan:  # one more bid of the general class, never money-bound, no minimum (plan_layer_bid)
                    pn, pv = cons_demand[q] - floor[q], self.plan_value[q]
                    a = [np.append(x, y) for x, y in zip(a, (1.0, pn, pn * pv * (1.0 + 2.0 ** -50), pv, 0.0, 2))]
                return a

            plan = bool(plan_bids[q])
            if self.first_resort[q]:
                hm, rm = on & b["home"], on & ~b["home"]
                ph, ah, binding, unsold = clear_group(*args(hm), firm_cap[q], self.p_min, P["p_max"])
                k_rest = min(unsold, firm_cap[q]) if binding else max(firm_cap[q] - np.sum(b["w"][hm] * ah), 0.0)
                pr, ar, _, _ = clear_group(*args(rm, plan), k_rest, self.p_min, P["p_max"], floor_price=ph)
                alloc[hm], paid[hm], alloc[rm], paid[rm] = ah, ph, ar[:rm.sum()], pr
                price[q], price_home[q] = pr, ph
            else:
                pq, aq, _, _ = clear_group(*args(on, plan), firm_cap[q], self.p_min, P["p_max"])
                alloc[on], paid[on] = aq[:on.sum()], pq
                price[q] = price_home[q] = pq
            sold[q] = np.sum(b["w"][on] * alloc[on])     # the firms' alone: what plans win is not sold
        n = self.L.n_firms
        self.f_alloc = np.zeros(n)
        self.f_alloc[b["idx"]] = alloc
        self.f_paid = np.zeros(n)
        self.f_paid[b["idx"]] = paid
        buying = self.f_alloc > 0
        self.f_K = np.where(buying, np.array(self.g_K + [0.0])[self.f_gen], 0.0)
        self.f_buying = buying
        self.f_used_ai |= buying
        self.f_entered[:] = False
        spend = np.bincount(b["p"], weights=b["w"] * paid * alloc, minlength=NP)
        demand_pmin = np.bincount(b["p"], weights=b["w"] * bid_demand(self.p_min, b["need"], b["money"], b["pi_out"]),
                                  minlength=NP)
        # (v4) D_c's firm part (FirmMarketSum quota_key): the bidding firms' x_i at the
        # price they cleared at on tier-1-homed providers, before the quota factor.
        wanted = bid_demand(paid, b["need"], b["money"], b["pi_out"])
        on_quota = self.quota_provider[b["p"]]
        self.quota_firm_demand = np.bincount(self.f_country[b["idx"]][on_quota],
                                             weights=(b["w"] * wanted / b["z"])[on_quota], minlength=self.L.C)
        self.firm_status(b, alloc, wanted)
        # (v5) seats, at this tick's budget before it adapts.
        self.f_seats, seat_gen = self.firm_seats(buying)
        self.f_onseats = np.zeros(n, bool)
        # §2.5 (v4): budgets adapt, after this tick's bids have been summed.
        if P["b_adapt"] > 0:
            self.firm_adapt_budget(b, alloc, paid, wanted)

        # (d)+(e) the plan layer: what firms did not buy, water-filled (deal hosts first
        # on their floor); (v5) the firms' seats are elements after the users.
        cons_cap = np.maximum(inference - reserve - sold, 0.0)
        cons_floor = np.zeros(NP)
        for c in np.flatnonzero(self.deal_mask):
            cons_floor[self.policy_provider[c]] += P["deal_cons_floor"] * P["deal_size"]
        cons_floor = np.minimum(cons_floor, cons_cap)
        si = np.flatnonzero(seat_gen >= 0)
        sg = seat_gen[si]
        sp = np.array(self.g_prov, dtype=int)[sg] if len(si) else np.zeros(0, dtype=int)
        sc = self.f_country[si]
        s_cap = self.seat_cap * np.where(self.quota_provider[sp], self.zeta[sc], 1.0)
        s_w = self.f_w[si] * self.f_seats[si]
        s_h = self.g_h[sg] if len(si) else np.zeros(0)
        nu = len(ub["idx"])
        e_p = np.concatenate((ub["p"], sp)).astype(int)
        e_cap = np.concatenate((ub["cap"], s_cap))
        s_pw = np.full(len(si), self.seat_weight)
        if P.get("compute_caps", False):
            s_pw = s_pw / s_h   # (v5) seat_bid's plan weight w_seat/h_g under compute caps
        e_pw = np.concatenate((ub["pw"], s_pw))
        e_host = np.concatenate((ub["host"], ((self.deal_mask[sc] >> sp) & 1) == 1))
        e_w = np.concatenate((ub["w"], s_w))
        e_h = np.concatenate((ub["h"], s_h))
        whc = e_w * e_h * e_cap
        whp = e_w * e_h * e_pw
        with np.errstate(divide="ignore", invalid="ignore"):
            lam_u = e_cap / e_pw
        level = np.zeros(len(e_p))
        self.res_level, self.res_level_floor = np.zeros(NP), np.zeros(NP)   # (λ_p, λ1_p): WaterLevel
        for q in range(NP):
            on = (e_p == q) & (whc > 0)
            host = on & e_host
            stage1 = cons_floor[q] > 0 and whc[host].sum() > 0
            lamJ = water_level(whc[on], whp[on], lam_u[on], cons_cap[q])
            lam, lam1 = lamJ, 0.0
            if stage1:
                F1 = cons_floor[q]
                lam1 = water_level(whc[host], whp[host], lam_u[host], F1)
                if lamJ < lam1:
                    used1 = min(F1, whc[host].sum())
                    oth = on & ~e_host
                    lam = min(water_level(whc[oth], whp[oth], lam_u[oth], cons_cap[q] - used1), lam1)
            level[e_p == q] = lam
            level[(e_p == q) & e_host & (lam1 > lam)] = lam1
            self.res_level[q], self.res_level_floor[q] = lam, (lam1 if stage1 else 0.0)
        with np.errstate(invalid="ignore"):
            reach = level * e_pw
        use_all = np.minimum(e_cap, reach)
        capped_all = reach < e_cap
        use = use_all[:nu]
        self.u_use = np.zeros(self.L.n_users)
        self.u_use[ub["idx"]] = use
        self.u_capped = np.zeros(self.L.n_users, bool)
        self.u_capped[ub["idx"]] = capped_all[:nu]
        self.u_new[:] = False                          # (v4) user_settle clears the new flag of every user
        use_compute = np.bincount(ub["p"], weights=ub["w"] * use * ub["h"], minlength=NP)
        # (v5) firms on seats (firm_seat_settle): the seat generation and provider, the
        # seats' compute, K, and status seats or seats_capped.
        s_use = use_all[nu:]
        self.f_gen[si] = sg
        self.f_provider[si] = sp
        self.f_alloc[si] = self.f_seats[si] * s_use * s_h
        self.f_K[si] = np.where(s_use > 0, np.array(self.g_K)[sg] if len(si) else 0.0, 0.0)
        self.f_onseats[si] = True
        self.f_used_ai[si] |= s_use > 0
        self.f_status[si] = np.where(capped_all[nu:], SEATS_CAPPED, SEATS)
        seat_demand = np.bincount(sp, weights=s_w * s_cap * s_h, minlength=NP)
        seat_compute = np.bincount(sp, weights=self.f_w[si] * self.f_alloc[si], minlength=NP)
        seat_revenue = np.bincount(sp, weights=s_w * self.seat_price[sp], minlength=NP)
        # §7 price(provider, consumer): the plan layer's revenue per Mtok used, users' plans and (v5) seats.
        tokens = np.bincount(ub["p"], weights=ub["w"] * use, minlength=NP) + np.bincount(sp, weights=s_w * s_use,
                                                                                        minlength=NP)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.res_consumer_price = np.where(tokens > 0, (plan_rev + seat_revenue) / tokens, math.nan)
        self.sum_statuses()

        self.res_price = price
        self.res_revenue = spend + self.p_min * reserve + plan_rev + seat_revenue
        self.res_utilisation = np.where(inference > 0, (sold + reserve + use_compute + seat_compute)
                                        / np.where(inference > 0, inference, 1), 0.0)
        for q, v in enumerate(self.prov):
            v["revenue"] = self.res_revenue[q]
            v["price"] = price[q]
            v["price_home"] = price_home[q]
            v["forecast"] += P["F_smooth"] * (demand_pmin[q] + cons_demand[q] + seat_demand[q] - v["forecast"])

    def firm_status(self, b, alloc, wanted):
        """§7 each firm's status after the clearing (firm_status, firm_settle): no_access (no
        generation), no_value / no_budget (no bid: AI not worth its access cost, or worth it
        but B − F_access ≤ 0), priced_out (x_i(π) = 0), rationed (alloc < x_i(π)),
        budget_bound (x_i(π) < need), served; (v5) not_adopted (firm_bass: a generation is
        eligible but it has not adopted)."""
        P = self.P
        gen = self.f_gen
        K = np.append(self.g_K, 0.0)[gen]
        v_max = P["wtp_months"] * P["rho"] * P["sigma_c"] * self.f_revenue * P["phi"] * K
        values_ai = (self.firm_need() > 0) & (v_max >= P["access_cost"])
        st = np.where(gen < 0, NO_ACCESS, np.where(values_ai, NO_BUDGET, NO_VALUE))
        bs = np.where(~(wanted > 0), PRICED_OUT, np.where(alloc < wanted, RATIONED,
                                                          np.where(wanted < b["need"], BUDGET_BOUND, SERVED)))
        st[b["idx"]] = bs
        if P["firm_bass"]:
            st = np.where(~self.f_adopted & (self.f_K_elig > 0), NOT_ADOPTED, st)
        self.f_status = st

    def sum_statuses(self):
        """§7 real firms per (country, size class, status) (StatusSum), size classes by
        employees per real firm 1–9, 10–49, 50–249, 250+; (v5) F_c, the share of each
        country's real firms using AI (API or seats), for next tick's diffusion."""
        C = self.L.C
        e = self.f_emp
        sc = np.where(e < 10, 0, np.where(e < 50, 1, np.where(e < 250, 2, 3)))
        key = (self.f_country * 4 + sc) * N_STATUS + self.f_status
        self.res_status = np.bincount(key, weights=self.f_w, minlength=C * 4 * N_STATUS).reshape(C, 4, N_STATUS)
        all_ = self.res_status.sum(axis=(1, 2))
        use = self.res_status[:, :, USES_AI].sum(axis=(1, 2))
        self.firm_use_prev = np.where(all_ > 0, use / np.where(all_ > 0, all_, 1.0), 0.0)

    def firm_adapt_budget(self, b, alloc, paid, wanted):
        """§2.5 (v4) budgets adapt (firm_adapt_budget, budget_signal, firm_status in
        agents/firm_kern.hpp): every firm with a chosen generation moves
        b ← clip(b·exp(b_adapt·clip(ℓ, −1, 1)), b_floor, b_max), stored as float32;
        ℓ = ln(v/π) if it bid (v = V(q'h)/need of its bid, π the price its class paid),
        at most 0 if it was served (got x_i(π) = need, not rationed); ℓ = ℓ_up if it
        could not bid for want of money (B − F_access ≤ 0) although q > 0 and
        V(q'h) ≥ F_access; else 0. `wanted` is x_i(π) of each bid."""
        P = self.P
        has_gen = self.f_gen >= 0
        K = np.append(self.g_K, 0.0)[self.f_gen]
        F = P["access_cost"]
        v_max = P["wtp_months"] * P["rho"] * P["sigma_c"] * self.f_revenue * P["phi"] * K
        short = has_gen & ~(self.firm_budget() - F > 0.0) & (self.firm_need() > 0.0) & (v_max >= F)
        l = np.where(short, P["b_up"], 0.0)
        served = (wanted > 0) & ~(alloc < wanted) & ~(wanted < b["need"])
        lb = np.log(b["wtp"] / paid)
        l[b["idx"]] = np.where(served, np.minimum(lb, 0.0), lb)
        nb = np.clip(self.f_b * np.exp(P["b_adapt"] * np.clip(l, -1.0, 1.0)), P["b_floor"], P["b_max"])
        self.f_b = np.where(has_gen, nb.astype(np.float32).astype(float), self.f_b)

    def step_firms(self):
        """§2.7 productivity A ← A·(1 + g0 + ρ·u + σ_A·ε)⁺, lnA_AI += ln(1 + ρu),
        u = φ·K·min(1, alloc/(q·h))^ψ + spill_c(t−1); §2.8 pool revenue, wages,
        other costs, compute and F_access (v5: or seats) into wealth, AI value, exit and entry."""
        P = self.P
        n = self.L.n_firms
        c = self.f_country
        u = self.spill[c].copy()
        b = self.f_buying | self.f_onseats              # API compute, or (v5) seats' tokens
        qh = self.firm_need(b) * self.g_h[self.f_gen[b]]
        u[b] += P["phi"] * self.f_K[b] * np.minimum(1.0, self.f_alloc[b] / qh) ** P["psi"]
        eps = self.rng.standard_normal(n)
        self.f_A = self.f_A * np.maximum(1.0 + P["g0"] + P["rho"] * u + P["sigma_A"] * eps, 0.0)
        self.f_lnA_AI = self.f_lnA_AI + np.log(1.0 + P["rho"] * u)
        rate_i, meanA = self.pool_rates()
        wage = P["labour_share"] * self.gdp_prev / (12.0 * self.L.workers)
        sig = P["sigma_c"]
        revenue = self.f_emp * self.f_A ** sig * rate_i
        wages = self.f_emp * wage[c]
        compute = np.where(self.f_buying, self.f_paid * self.f_alloc + P["access_cost"], 0.0)
        on = self.f_onseats                             # (v5) seats at their price, no access cost
        compute[on] = self.f_seats[on] * self.seat_price[self.f_provider[on]]
        W = self.f_W + revenue - wages - P["other_cost"] * revenue - compute
        ai = revenue * (1.0 - np.exp(-sig * self.f_lnA_AI))
        stay = W >= -P["exit_months"] * wages
        self.f_W = np.where(stay, W, self.f_W)
        self.f_revenue = np.where(stay, revenue, self.f_revenue)
        self.f_ai_value = np.where(stay, self.f_ai_value + ai, self.f_ai_value)
        # Entrants in place of the exits: same country, sector, size, weight, strata.
        e = np.flatnonzero(~stay)
        if len(e):
            z_A = self.rng.standard_normal(len(e))
            z_b = self.rng.standard_normal(len(e))
            bs = P["budget_sigma"]
            self.f_A[e] = meanA[self.f_seg[e]] * np.exp(P["entrant_sigma"] * z_A)
            self.f_b[e] = np.exp(bs * z_b - 0.5 * bs * bs)
            earn = self.f_emp[e] * self.f_A[e] ** sig * rate_i[e]
            self.f_revenue[e] = earn
            self.f_W[e] = 3.0 * earn
            self.f_kyc[e] = False
            self.f_buying[e] = False
            self.f_used_ai[e] = False
            self.f_adopted[e] = False
            self.f_onseats[e] = False
            self.f_seats[e] = 0.0
            self.f_entered[e] = True
            self.f_partners[e] = 0
            self.f_provider[e] = -1
            self.f_gen[e] = -1
            self.f_lnA_AI[e] = 0.0
            self.f_ai_value[e] = 0.0
            self.f_alloc[e] = 0.0
            self.f_K[e] = 0.0

    def step_adoption(self):
        """§2.9 a non-adopter adopts with probability (bass_p + bass_q·share_c(t−1))
        ·access_c·afford_u; adopters keep their plan (or re-pick under plan_repick, or
        step down under plan_pass).
        (v4) A new adopter is flagged new: it joins the market next tick (user_adopt)."""
        a = self.u_adopter
        if self.P["plan_repick"] or self.P["plan_pass"] > 0:
            # (v5) under plans priced by scarcity an adopter steps down to the plan its
            # income affords at its provider's prices, never up (plan_repick: both ways).
            idx = np.flatnonzero(a)
            plan = self.user_plan(self.u_z[idx] * self.wage[self.u_country[idx]], self.u_provider[idx])
            self.u_plan[idx] = plan if self.P["plan_repick"] else np.minimum(plan, self.u_plan[idx])
        idx = np.flatnonzero(~a)
        self.u_new[self.try_adopt(idx, self.rng.random(len(idx)))] = True

    def step_countries(self):
        """§2.10 country aggregates, GDP_c = GDP_c0·Y_c/Y_c(0), adoption, use
        ratio and capped share over the adopters in this tick's market (v4), D_c
        for the quota, spillover; §6 access gap and policies by rule;
        §7 the recorded metrics."""
        P, L = self.P, self.L
        C = L.C
        c = self.f_country
        w = self.f_w
        we = w * self.f_emp
        bc = lambda x, wts: np.bincount(x, weights=wts, minlength=C)
        Y = bc(c, we * self.f_A)
        Emp = bc(c, we)
        EmpK = bc(c, we * self.f_K)
        BuyEmpK = bc(c, np.where(self.f_buying, we * self.f_K, 0.0))
        BuyEmp = bc(c, np.where(self.f_buying, we, 0.0))
        uc = self.u_country
        ad = self.u_adopter
        Adopt = bc(uc, ad.astype(float))
        ug = ad & (self.u_gen >= 0)
        i = np.flatnonzero(ug)
        cap = self.user_cap(i)
        gi = self.u_gen[i]
        # (v4) use, caps and capping over the adopters in this tick's market (not new).
        mk = ~self.u_new[i]
        Market = bc(uc[i], mk.astype(float))
        Use = bc(uc[i], np.where(mk, self.u_use[i], 0.0))
        Cap = bc(uc[i], np.where(mk, cap, 0.0))
        Capped = bc(uc[i], (mk & self.u_capped[i]).astype(float))
        UserK = bc(uc[i], np.array(self.g_K)[gi])
        pi = np.array(self.g_prov)[gi]
        quotaU = bc(uc[i], np.where(self.quota_provider[pi], cap / self.zeta[uc[i]] * self.g_h[gi], 0.0))
        if self.Y0 is None:
            self.Y0 = Y.copy()
        ratio = lambda a, b, fb: np.where(b > 0, a / np.where(b > 0, b, 1.0), fb)
        gdp = self.gdp0 * ratio(Y, self.Y0, 1.0)
        Kbar = ratio(EmpK, Emp, 0.0)
        wu = L.w_user
        adoption = Adopt * wu / self.pop
        released = max([self.g_K[g] for g in range(len(self.g_K)) if self.g_stage[g] >= TRUSTED], default=0.0)
        released = max(released, 0.0)
        has_f = BuyEmp > 0
        has_u = (Adopt > 0) & (UserK > 0)
        firm_K = ratio(BuyEmpK, BuyEmp, 0.0)
        user_K = ratio(UserK, Adopt, 0.0)
        access = np.where(has_f & has_u, P["w_firm"] * firm_K + (1 - P["w_firm"]) * user_K,
                          np.where(has_f, firm_K, np.where(has_u, user_K, 0.0)))
        gap = released - access
        self.adoption_prev = adoption
        self.use_ratio_prev = ratio(Use, Cap, 1.0)
        self.quota_demand_prev = self.quota_firm_demand + quotaU * wu
        in_market = (Market * wu).sum()
        capped_share = (Capped * wu).sum() / in_market if in_market > 0 else 0.0
        capped_c = ratio(Capped, Market, math.nan)
        # (v5) what compute caps move: tokens per adopter in the market (per country, NaN
        # without one; world: weighted by adopters, adoption·population) and the access gap
        # (world: weighted by population), as bench/compare.py reads them from cutoff.
        tpa = ratio(Use, Market, math.nan)
        wa = np.where(np.isfinite(tpa), adoption * self.pop, 0.0)
        tpa_world = float(np.sum(wa * np.nan_to_num(tpa)) / wa.sum()) if wa.sum() > 0 else math.nan
        gap_world = float(np.sum(self.pop * gap) / self.pop.sum())
        self.gdp_prev = gdp
        # Spillover: ξ·(Σ_j a_cj K̄_j / Σ_j a_cj − K̄_c)⁺, a_cj = GDP_j·tier_sim(|tier_c − tier_j|), j ≠ c.
        sim = np.array(P["tier_sim"])[np.abs(self.tier[:, None] - self.tier[None, :])]
        a = gdp[None, :] * sim
        np.fill_diagonal(a, 0.0)
        num, den = a @ Kbar, a.sum(axis=1)
        self.spill = np.where(den > 0, P["xi"] * np.maximum(ratio(num, den, 0.0) - Kbar, 0.0), 0.0)
        # §6 policies by rule.
        any_lever = P["policy_build"] or P["policy_deal"] or P["policy_kyc"]
        self.gap_run = np.where(gap > P["gap_policy"], self.gap_run + 1, 0)
        if any_lever and self.tick >= P["lever_tick"]:
            for cc in np.flatnonzero((self.policy_provider < 0) & (self.gap_run >= P["n_policy"])):
                best = 0
                for q in range(1, self.NP):
                    x, y = self.align[cc, q], self.align[cc, best]
                    if x > y or (x == y and self.cap(q) > self.cap(best)):
                        best = q
                self.policy_provider[cc] = best
                if P["policy_build"]:
                    self.policy[cc] |= 1
                if P["policy_deal"]:
                    self.policy[cc] |= 2
                    self.deal_order_tick[cc] = self.tick + 1
                if P["policy_kyc"]:
                    self.policy[cc] |= 4
        # §7 top-20% share of cumulative AI value over firms that have bought compute (weighted).
        top20 = top_share(w[self.f_used_ai], self.f_ai_value[self.f_used_ai], 0.2)
        return {
            "compute_price": self.res_price.copy(),
            "top20_value_share": top20,
            "adoption_world": float((adoption * self.pop).sum() / self.pop.sum()),
            "users_capped_share": float(capped_share),
            "tokens_per_adopter": tpa_world,
            "access_gap": gap_world,
            # diagnostics
            "tokens_per_worker": self.tau0 * math.exp(P["tau_growth"] * self.tick),
            "capacity": np.array([self.cap(q) for q in range(self.NP)]),
            "frontier_K": np.array([v["K"] for v in self.prov]),
            "revenue": self.res_revenue.copy(),
            "utilisation": self.res_utilisation.copy(),
            "K_eligible_world": float((ratio(bc(c, we * self.f_K_elig), Emp, 0.0) * Emp).sum() / Emp.sum()),
            "entries": float(w[self.f_entered].sum()),
            "trusted_partners": np.array([((self.f_partners[self.large_idx] >> q) & 1).sum() for q in range(self.NP)]),
            "follower_lag": np.array([v["lag"] for v in self.prov], dtype=float),
            "capped_share": capped_c,
            "zeta": self.zeta.copy(),
            "quota_demand": self.quota_demand_prev.copy(),
            # (v5) plan prices and earnings; §7 who is cut off, real firms by tier, size class, status
            "plan_price": np.array(P["plan_price"])[None, :] * self.plan_mult[:, None],
            "plan_value": self.plan_value.copy(),
            "consumer_price": self.res_consumer_price.copy(),
            "firms_by_status": np.stack([self.res_status[self.tier == k].sum(axis=0) for k in (1, 2, 3)]),
        }


def top_share(w, x, f):
    """Share of Σ w·x held by the top f of the weight, ranked by x descending,
    the element straddling the cut counting with the part inside it; NaN if empty."""
    W = w.sum()
    if not W > 0:
        return math.nan
    X = float(np.sum(w * x))
    if not X > 0:
        return f
    o = np.argsort(-x, kind="stable")
    ws, xs = w[o], x[o]
    cw = np.cumsum(ws)
    k = int(np.searchsorted(cw, f * W, "left"))      # first element whose cumulative weight reaches fW
    k = min(k, len(ws) - 1)
    before = cw[k] - ws[k]
    top = np.sum(ws[:k] * xs[:k]) + (f * W - before) * xs[k]
    return float(min(max(top / X, f), 1.0))


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scenario")
    ap.add_argument("--firms", type=int)
    ap.add_argument("--users", type=int)
    ap.add_argument("--ticks", type=int)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--replicate", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--set", action="append", default=[], dest="sets")
    ap.add_argument("--cutoff")
    ap.add_argument("--diagnostics", action="store_true", help="add per-tick intermediate quantities to the JSON")
    a = ap.parse_args(argv)
    P = resolve_params(a.scenario, a.sets, find_cutoff(a.cutoff))
    if a.firms is not None:
        P["n_firms"] = a.firms
    if a.users is not None:
        P["n_users"] = a.users
    if a.ticks is not None:
        P["horizon"] = a.ticks
    if a.seed is not None:
        P["seed"] = a.seed
    ct = load_countries(P["countries"])
    t0 = time.perf_counter()
    model = Model(P, ct, int(P["seed"]), a.replicate)
    init_seconds = time.perf_counter() - t0
    tick_seconds = []
    series = []
    for _ in range(int(P["horizon"])):
        t1 = time.perf_counter()
        series.append(model.step())
        tick_seconds.append(time.perf_counter() - t1)
    nanfix = lambda x: None if x is None or (isinstance(x, float) and math.isnan(x)) else x
    out = {
        "peer": "numpy",
        "firms": int(P["n_firms"]),
        "users": int(P["n_users"]),
        "ticks": int(P["horizon"]),
        "seed": int(P["seed"]),
        "tau0": model.tau0,
        "need0": model.need0,
        "init_seconds": init_seconds,
        "tick_seconds": tick_seconds,
        "metrics": {
            "mean_price": [float(np.mean(m["compute_price"])) for m in series],
            "top20_value_share": [nanfix(float(m["top20_value_share"])) for m in series],
            "adoption_share": [m["adoption_world"] for m in series],
            "users_capped_share": [m["users_capped_share"] for m in series],
            # (v5) what the v5 mechanisms move (bench/compare.py V5_METRICS)
            "revenue": [float(np.sum(m["revenue"])) for m in series],
            "plan_price_plus": [float(np.mean(m["plan_price"][:, 1])) for m in series],
            "plan_value": [nanfix(float(np.nanmean(m["plan_value"]))) if np.isfinite(m["plan_value"]).any()
                           else None for m in series],
            "consumer_price": [nanfix(float(np.nanmean(m["consumer_price"]))) if np.isfinite(m["consumer_price"]).any()
                               else None for m in series],
            "firms_by_status": [m["firms_by_status"].tolist() for m in series],
            # (v5) what compute caps move (bench/compare.py CC_METRICS)
            "tokens_per_adopter": [nanfix(m["tokens_per_adopter"]) for m in series],
            "access_gap": [m["access_gap"] for m in series],
        },
    }
    if a.diagnostics:
        keys = ["compute_price", "tokens_per_worker", "capacity", "frontier_K", "revenue", "utilisation",
                "K_eligible_world", "entries", "trusted_partners", "follower_lag", "capped_share", "zeta",
                "quota_demand", "plan_price", "plan_value"]
        nan_none = lambda x: [nan_none(y) for y in x] if isinstance(x, list) else nanfix(x)
        out["diagnostics"] = {k: [nan_none(np.asarray(m[k]).tolist()) for m in series] for k in keys}
        out["diagnostics"]["tau0"] = model.tau0
        out["diagnostics"]["need0"] = model.need0
    with open(a.out, "w") as fh:
        json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
