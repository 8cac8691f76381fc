#!/usr/bin/env python3
"""The cutoff model written the way researchers write it in Mesa 3.

A peer implementation of docs/model.md (v5) that ports the C++ reference
(core/sim/simulation.cpp, agents/*.hpp, core/model/providers.cpp, core/model/population.cpp,
core/model/spillover.cpp) rule by rule, for comparison of results and of speed:

* ``FirmAgent`` and ``UserAgent`` are ``mesa.Agent`` subclasses, one object per
  agent, with one method per step of the tick (choice, bid, settle,
  productivity, wealth, adoption); the model calls them through its
  ``agents_by_type`` AgentSets with ``do``.
* Providers (AI labs), their generations and the countries are few, so they are
  plain Python objects on the model (``Labs``, ``Provider``, ``Generation``,
  ``Country``).
* The market clearing of §2.6(c) and the consumer water-fill of §2.6(e) run at
  model level by sorting the bids (not the C++'s histogram passes); their
  semantics are those of core/market/clearing.hpp and core/market/waterfill.hpp.
* Random numbers come from Mesa's seeded ``random.Random`` (``self.random``),
  so results agree with cutoff statistically, not bit for bit.
* A ``mesa.DataCollector`` records the model-level metrics of §7 every tick.

The only vectorised piece is the derivation of τ0 (§2.0, scan and bisect),
which evaluates the firms' tick-0 choice and bid ~150 times; it uses numpy on
arrays taken from the agents and the same draws the agents use at tick 0. As in
cutoff, τ0 and need0 are derived on the agents of seed 0, replicate 0 (drawn with
Mesa's generator, so statistically, not exactly cutoff's): (v5) at the reference
counts tau0_ref_firms × tau0_ref_users, a second model when the run's counts differ
(at the default 1e5/1e6 that costs minutes in pure Python), (v4, tau0_ref_firms = 0)
at the run's counts; a run with another seed or replicate then draws its own agents
afresh.

Model v5's mechanisms (docs/model.md, "v5") are ported behind the same parameters as
in cutoff, all off by default: the statuses of §7 in cutoff's codes (no_value,
seats, seats_capped, not_adopted); consumer need's bounded growth (need_growth,
need_sat); seats on a plan (seats, seat_plan, seat_share: ``FirmAgent.decide_seats``,
``seat_settle``, the seats sharing the users' water-fill); plans priced by scarcity
(plan_pass) and the plan layer's bid in the clearing (plan_split); firms' diffusion
(firm_bass, firm_adopt0, firm_bass_p, firm_bass_q, firm_adopt_size: in
``FirmAgent.choose``); the small stratum's size bands (size_strata, §1); compute caps
(compute_caps, p_repick: the fill's weight w_plan/h_g, ``UserAgent.served`` in the
users' choice, ``FirmAgent.seat_generation``, the plan layer's levels of t−1 in
``CutoffModel.level_prev``).

Usage::

    python3 bench/peers/mesa/cutoff_mesa.py SCENARIO --firms N --users N \\
        --ticks T --seed S [--replicate R] --out OUT.json [--set key=value]... \\
        [--cutoff PATH] [--diagnostics]

The scenario is resolved by ``cutoff validate SCENARIO --set ... --print``, so
every parameter, inheritance and override is exactly cutoff's.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import time
import tomllib
from collections import namedtuple
from itertools import accumulate

import mesa
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from common import pareto_capped_mean, share_largest_remainder, size_bands  # noqa: E402  (bench/peers/common.py)

INF = math.inf

# Release stages (§2.2); OPEN follows GENERAL under the open-weights lever.
GOV, TRUSTED, KYC, GENERAL, OPEN = range(5)
# Plans (§2.9): index into plan_price etc. is plan − 1.
NO_PLAN, FREE, PLUS, PRO = range(4)
# Firms' classes with a provider (§2.4).
CLS_TRUSTED, CLS_KYC, CLS_GENERAL = range(3)
# §7 who is cut off: a firm's status each tick, in the codes of cutoff's firms_by_status
# (agents/firm_kern.hpp FirmStatus; v5 added no_value, seats, seats_capped and not_adopted).
(NO_ACCESS, NO_BUDGET, PRICED_OUT, RATIONED, BUDGET_BOUND, SERVED, NO_VALUE, SEATS, SEATS_CAPPED,
 NOT_ADOPTED) = range(10)
N_STATUS = 10
USES_AI = (RATIONED, BUDGET_BOUND, SERVED, SEATS, SEATS_CAPPED)   # status_uses_ai: on the API or on seats


def f32(x: float) -> float:
    """x rounded to float32, as cutoff stores it (the firm field ``b``)."""
    return float(np.float32(x))


def gumbel(rng) -> float:
    """A standard Gumbel draw, −ln(−ln U), from a ``random.Random``."""
    u = rng.random()
    while u == 0.0:
        u = rng.random()
    return -math.log(-math.log(u))


# ---------------------------------------------------------------------------
# Parameters and countries
# ---------------------------------------------------------------------------


class Params:
    """Every scenario parameter, resolved by ``cutoff validate --print`` (§4, §9)."""

    def __init__(self, table: dict):
        self.__dict__.update(table)


def load_params(scenario: str, sets: list[str], cutoff: str) -> Params:
    """Resolves SCENARIO (``inherits`` chain, --set overrides) with cutoff itself."""
    cmd = [cutoff, "validate", scenario]
    for s in sets:
        cmd += ["--set", s]
    cmd.append("--print")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    if out.stderr.strip():
        print(out.stderr.strip(), file=sys.stderr)
    return Params(tomllib.loads(out.stdout))


class Country:
    """One row of data/countries.csv plus its layout and lagged aggregates (§1, §2.10)."""

    def __init__(self, row: dict):
        self.iso3 = row["iso3"]
        self.population = float(row["population"])
        self.gdp0 = float(row["gdp_usd"])
        self.tier = int(row["tier"])


def load_countries(path: str) -> list[Country]:
    with open(path, newline="") as fh:
        return [Country(r) for r in csv.DictReader(fh)]


# ---------------------------------------------------------------------------
# §1 agent weights, strata and sectors (core/model/population.cpp)
# ---------------------------------------------------------------------------


def make_layout(countries: list[Country], p: Params) -> list[str]:
    """§1: agents per country and stratum, weights, large-stratum threshold x_L and
    the (country, sector) segments; stored on the Country objects. Returns warnings."""
    C = len(countries)
    warnings = []
    mean_size = pareto_capped_mean(p.pareto_alpha, p.size_cap)
    for c in countries:
        c.workers = p.worker_share * c.population
        c.real_firms = c.workers / mean_size
    n_firms, n_users = int(p.n_firms), int(p.n_users)
    n_large = int(p.n_large)
    if n_large > n_firms or n_firms - n_large < p.min_firms * C:
        fit = n_firms - p.min_firms * C
        warnings.append(f"n_large shrunk from {n_large} to {fit}")
        n_large = fit
    large = share_largest_remainder(n_large, [c.gdp0 for c in countries], 0)
    for k, c in enumerate(countries):  # a country cannot have more large firms than firms
        c.large = min(large[k], int(math.floor(c.real_firms / 2)))
    n_large = sum(c.large for c in countries)
    small_firms = [c.real_firms - c.large for c in countries]
    small = share_largest_remainder(n_firms - n_large, small_firms, int(p.min_firms))
    users = share_largest_remainder(n_users, [c.population for c in countries], int(p.min_users))
    for k, c in enumerate(countries):
        c.small, c.users = small[k], users[k]
        c.x_L = math.pow(c.real_firms / c.large, 1.0 / p.pareto_alpha) if c.large > 0 else INF
        # (v5) the small stratum's size bands (size_strata; one band without it), each with its weight.
        c.band_edge, band_n, c.w_band = size_bands(c.x_L, p.pareto_alpha, p.size_cap, bool(p.size_strata), c.small,
                                                   small_firms[k])
        c.w_user = c.population / c.users
        # Sectors within a country by their shares, for each stratum and band (stratified).
        c.seg_large = share_largest_remainder(c.large, p.sector_share, 0)
        c.seg_band = [share_largest_remainder(n, p.sector_share, 0) for n in band_n]
    return warnings


def alignment_matrix(p: Params, countries: list[Country]) -> list[list[float]]:
    """align(c, p) (§5): the provider's value for the country's tier, its per-country
    overrides, and 1 at its home."""
    index = {c.iso3: k for k, c in enumerate(countries)}
    a = [[0.0] * len(p.provider) for _ in countries]
    for q, pp in enumerate(p.provider):
        for k, c in enumerate(countries):
            a[k][q] = pp["align"][c.tier - 1]
        for iso3, v in pp.get("align_country", {}).items():
            a[index[iso3]][q] = v
        a[index[pp["home"]]][q] = 1.0
    return a


# ---------------------------------------------------------------------------
# Providers and generations (§2.0, §2.1–§2.3; core/model/providers.cpp)
# ---------------------------------------------------------------------------


class Generation:
    """One model generation of one lab: capability, pipeline entry, stage and h_g(t)."""

    def __init__(self, provider: int, K: float, t_g: int, general: int):
        self.provider, self.K, self.t_g, self.general = provider, K, t_g, general
        self.stage = GOV
        self.h = 0.0


class Provider:
    """An AI lab: capacity, pipeline, cash, training, capability, price, forecast (§1)."""

    def __init__(self, pp: dict, home: int, home_tier: int):
        self.name = pp["name"]
        self.home, self.home_tier = home, home_tier
        self.follower = bool(pp["follower"])
        self.cap_share, self.offset = pp["cap_share"], pp["offset"]
        self.d_gov, self.d_trusted, self.d_kyc = int(pp["d_gov"]), int(pp["d_trusted"]), int(pp["d_kyc"])
        self.C_home = self.C_hosted = 0.0
        self.cash = self.T = self.K_own = self.K = 0.0
        self.price = self.price_home = self.forecast = self.revenue = self.order = 0.0
        self.lag = -1.0              # followers: §7 follower lag (Labs.follower_lag); −1 otherwise
        self.gens: list[int] = []

    @property
    def capacity(self) -> float:
        return self.C_home + self.C_hosted


class Labs:
    """All labs and their generations; steps 1–3 of the tick and their §2.0 state."""

    def __init__(self, p: Params, countries: list[Country], align: list[list[float]]):
        self.p = p
        self.align = align
        index = {c.iso3: k for k, c in enumerate(countries)}
        self.lever_country = index[p.lever_country]
        self.p_min = (1.0 + p.markup) * (p.opex + p.capex / p.life)
        self.lead = int(p.lead)
        G = math.pow(p.g_cap, 1.0 / 12.0)
        n_arrive = int(p.horizon) + self.lead + 1
        s = p.train_share
        self.providers: list[Provider] = []
        self.gens: list[Generation] = []
        self.K_lead_hist: list[float] = []
        for pp in p.provider:
            home = index[pp["home"]]
            v = Provider(pp, home, countries[home].tier)
            v.C_home = v.cap_share * p.capacity0
            v.arrive_home = [0.0] * n_arrive
            v.arrive_hosted = [0.0] * n_arrive
            # Orders of ticks 1−lead … −1, as if C_p had grown by g_cap a year.
            for k in range(1, self.lead):
                v.arrive_home[k] = v.C_home * math.pow(G, k - 1) * (G - 1.0)
            for j in range(1, 25):  # T_p(0): 24 months of that history
                v.T += s * v.C_home * math.pow(G, -j)
            v.revenue = (1.0 - s) * v.C_home * self.p_min
            v.cash = 12.0 * v.revenue
            v.forecast = (1.0 - s) * v.C_home
            v.price = v.price_home = self.p_min
            self.providers.append(v)
        self.T_ref = max(v.T for v in self.providers if not v.follower)
        # K_p(0) by step 2's formulas, with the released frontier's history for t < 0.
        holder = None
        for q, v in enumerate(self.providers):
            v.K_own = p.K_lead0 + p.beta * math.log(v.T / self.T_ref) + v.offset
            if not v.follower:
                v.K = v.K_own
                if holder is None or v.K > self.providers[holder].K or (
                        v.K == self.providers[holder].K and v.capacity > self.providers[holder].capacity):
                    holder = q
        for v in self.providers:
            if v.follower:
                L = self.follower_lag_ticks(v, holder, 0)
                Kl = self.lead_history(-L)
                v.K = Kl + p.chi * max(v.K_own - Kl, 0.0)
        # One generation at GENERAL since tick −6, one entering the pipeline at tick 0.
        for q, v in enumerate(self.providers):
            self.add_generation(q, v.K - p.dK_release, -6 - (v.d_gov + v.d_trusted + v.d_kyc))
            self.add_generation(q, v.K, 0)
        self.step_serving_cost(0)

    def follower_lag_ticks(self, v: Provider, holder, t: int) -> int:
        """L = L0 + ΔL_cd·crackdown + ΔL_api·blocked (§2.2)."""
        p = self.p
        blocked = holder is not None and self.align[v.home][holder] < 0.0
        crack = p.crackdown and t >= p.lever_tick
        return int(p.L0 + (p.dL_cd if crack else 0) + (p.dL_api if blocked else 0))

    def add_generation(self, q: int, K: float, t_g: int) -> None:
        v = self.providers[q]
        v.gens.append(len(self.gens))
        self.gens.append(Generation(q, K, t_g, t_g + v.d_gov + v.d_trusted + v.d_kyc))

    def follower_lag(self, t: int, K_f: float) -> int:
        """§7 (v4) follower lag, as Market::follower_lag: t − min{t' ≤ t : K_lead(t') ≥ K_f},
        0 at or ahead of the leaders; K_lead never falls, so walk back while it holds
        (before tick 0 the §2.0 trend, at most 10^4 ticks back)."""
        start = t
        while start > t - 10000 and self.lead_history(start - 1) >= K_f:
            start -= 1
        return t - start

    def lead_history(self, t: int) -> float:
        """K_lead(t); for t < 0 the released frontier's trend K_lead0 − ΔK_release + t·K_trend."""
        if t < 0:
            return self.p.K_lead0 - self.p.dK_release + t * self.p.K_trend
        return self.K_lead_hist[t]

    def stage_of(self, g: Generation, t: int) -> int:
        """GOV → TRUSTED → KYC → GENERAL (→ OPEN under open weights), §2.2."""
        v = self.providers[g.provider]
        age = t - g.t_g
        if age < v.d_gov:
            return GOV
        if age < v.d_gov + v.d_trusted:
            return TRUSTED
        if age < v.d_gov + v.d_trusted + v.d_kyc:
            return KYC
        p = self.p
        if p.open_weights and t >= p.lever_tick and t >= g.general + p.n_open:
            return OPEN
        return GENERAL

    def step_capacity(self, t: int) -> None:
        """§2.1: arrivals, home orders (plans, cash, order cap, moratorium), cash."""
        p = self.p
        plan = p.bm * math.pow(p.g_cap, p.lead / 12.0)
        for v in self.providers:
            v.C_home += v.arrive_home[t]
            v.C_hosted += v.arrive_hosted[t]
            pipeline = sum(v.arrive_home[t + 1:]) + sum(v.arrive_hosted[t + 1:])
            C = v.capacity
            x_cap = p.x_max_t3 if v.home_tier == 3 else p.x_max
            order = max(0.0, min(plan * v.forecast / (1.0 - p.train_share) - C - pipeline,
                                 max(v.cash, 0.0) / p.capex, p.bm * x_cap * C))
            if p.moratorium and t >= p.lever_tick and v.home == self.lever_country:
                order = 0.0
            v.order = order
            v.cash += (1.0 + p.bm * p.outside_finance) * v.revenue - p.opex * C - p.capex * order
            v.arrive_home[t + self.lead] += order

    def step_training(self, t: int) -> list[int]:
        """§2.2: training, own capability, releases, K_lead, fast followers.
        Returns the providers that released a generation this tick."""
        p = self.p
        released = []

        def maybe_release(q):
            v = self.providers[q]
            if v.K >= self.gens[v.gens[-1]].K + p.dK_release:
                self.add_generation(q, v.K, t)
                released.append(q)

        for q, v in enumerate(self.providers):
            v.T += p.train_share * v.capacity
            v.K_own = p.K_lead0 + p.beta * math.log(v.T / self.T_ref) + v.offset
            if v.follower:
                continue
            v.K = v.K_own
            maybe_release(q)
        # K_lead(t) after the non-followers' step 2: the best K_g at KYC or later.
        best, holder = -INF, None
        for g in self.gens:
            h = self.providers[g.provider]
            if h.follower or self.stage_of(g, t) < KYC:
                continue
            if holder is None or g.K > best or (g.K == best and h.capacity > self.providers[holder].capacity):
                best, holder = g.K, g.provider
        if holder is None:
            best = self.lead_history(t)
        self.K_lead_hist.append(best)
        for q, v in enumerate(self.providers):
            if not v.follower:
                continue
            Kl = self.lead_history(t - self.follower_lag_ticks(v, holder, t))
            v.K = Kl + p.chi * max(v.K_own - Kl, 0.0)
            v.lag = self.follower_lag(t, v.K)  # §7 (v4)
            maybe_release(q)
        return released

    def step_serving_cost(self, t: int) -> None:
        """§2.3: stages and h_g(t) = h0·e^(−δt)·e^(κ(K_g − K_ref))·e^(−η(t − t_g))."""
        p = self.p
        for g in self.gens:
            g.stage = self.stage_of(g, t)
            g.h = (p.h0 * math.exp(-p.delta * t) * math.exp(p.kappa * (g.K - p.K_ref))
                   * math.exp(-p.eta * (t - g.t_g)))

    def add_hosted_order(self, q: int, amount: float, t: int) -> None:
        """§6 hosted capacity, arriving lead ticks later (capex paid by the host)."""
        self.providers[q].arrive_hosted[t + self.lead] += amount

    def settle(self, q, revenue, price, price_home, demand) -> None:
        """Step 6's provider outcome and the forecast F ← F + F_smooth·(demand − F)."""
        v = self.providers[q]
        v.revenue, v.price, v.price_home = revenue, price, price_home
        v.forecast += self.p.F_smooth * (demand - v.forecast)

    def user_eligible(self, c: int, g: Generation) -> bool:
        """§2.4 for a user: GENERAL with align(c, p) ≥ 0, or OPEN."""
        return g.stage == OPEN or (g.stage == GENERAL and self.align[c][g.provider] >= 0.0)

    def released_frontier(self) -> float:
        """Best K_g of any generation at TRUSTED or later (§6)."""
        return max((g.K for g in self.gens if g.stage >= TRUSTED), default=0.0)


# ---------------------------------------------------------------------------
# §2.6(c) market clearing, one price per provider (semantics of core/market/clearing.hpp)
# ---------------------------------------------------------------------------

Bid = namedtuple("Bid", "provider w need money pi_out min_alloc cls home")
"""A firm's bid: weight, need q'·h (H100e), money B − F_access ($), drop-out
price, min_alloc q_min·h, class (trusted/kyc/general), first-resort home flag."""

ALL, MARGINAL, CLASS_CAP = range(3)


class Group:
    """One uniform-price clearing: everyone of a provider, or one side of first-resort."""

    def __init__(self, price, mode=ALL, ratio=1.0, cut_class=0, binding=False):
        self.price, self.mode, self.ratio, self.cut_class, self.binding = price, mode, ratio, cut_class, binding
        self.unsold = 0.0


class Clearing:
    """A provider's clearing: π_p (π_rest under first-resort), π_home, the groups."""

    def __init__(self, rest: Group, home: Group | None, p_min: float):
        self.rest, self.home, self.p_min = rest, home, p_min
        self.first_resort = home is not None
        self.price = rest.price
        self.price_home = home.price if home is not None else rest.price

    def group(self, b: Bid) -> Group:
        return self.home if self.first_resort and b.home else self.rest


def bid_demand(b: Bid, price: float) -> float:
    """x_i(π) = min(need, money/π) if π ≤ pi_out, else 0 (§2.5)."""
    if not b.pi_out > 0.0 or not price > 0.0 or price > b.pi_out:
        return 0.0
    return b.need if price <= b.money / b.need else b.money / price


def allocate_in(b: Bid, g: Group) -> float:
    """A firm's allocation in its group: x_i(π), pro rata for the marginal buyers
    (rule 2) or the cut class under p_max (rule 3); a pro-rata share below
    min_alloc is 0."""
    x = bid_demand(b, g.price)
    if not x > 0.0:
        return 0.0
    if g.mode == MARGINAL:
        if b.pi_out != g.price:
            return x
    elif g.mode == CLASS_CAP:
        c = min(b.cls, 2)
        if c < g.cut_class:
            return x
        if c > g.cut_class:
            return 0.0
    else:
        return x
    a = x * g.ratio
    return 0.0 if a < b.min_alloc or not a > 0.0 else a


def allocate(b: Bid, pc: Clearing) -> float:
    return allocate_in(b, pc.group(b))


def _solve(bids: list[Bid], K: float, p_min: float):
    """π* = inf{π ≥ p_min : D(π) ≤ K} by sorting the bids' breakpoints.

    A bid demands need up to c = min(money/need, pi_out), money/π on (c, pi_out]
    and 0 above, so between breakpoints D(π) = A + M/π. Sweeping the breakpoints
    from the top, D either crosses K continuously on a segment (π = M/(K − A)) or
    jumps over it at a breakpoint (the marginal buyers, pi_out = π, are rationed).
    Returns (kind, price, A, M, mA, mM) with kind 'floor', 'jump' or 'cont'.
    """
    events = {}
    for b in bids:
        o = b.pi_out
        if o < p_min:
            continue
        bp = b.money / b.need
        wn = b.w * b.need
        if bp < o:  # budget-bound on (bp, o]
            wm = b.w * b.money
            if bp >= p_min:
                e = events.setdefault(bp, [0.0, 0.0, 0.0, 0.0])
                e[0] += wn
                e[1] -= wm
            e = events.setdefault(o, [0.0, 0.0, 0.0, 0.0])
            e[1] += wm
            e[3] += wm
        else:
            e = events.setdefault(o, [0.0, 0.0, 0.0, 0.0])
            e[0] += wn
            e[2] += wn
    keys = sorted(events, reverse=True)
    A_all = sum(events[k][0] for k in keys)
    M_all = sum(events[k][1] for k in keys)
    if A_all + M_all / p_min <= K:
        return "floor", p_min, 0.0, 0.0, 0.0, 0.0

    def continuous(A, M, lo, hi):
        price = M / (K - A) if K - A > 0.0 else hi
        if not price > lo:
            price = math.nextafter(lo, INF)
        return "cont", min(price, hi), A, M, 0.0, 0.0

    A = M = 0.0
    upper = INF
    for key in keys:
        dA, dM, mA, mM = events[key]
        if A + M / key > K:  # D just above key exceeds K: the root lies in (key, upper]
            return continuous(A, M, key, upper)
        if (A + dA) + (M + dM) / key > K:  # a downward jump at key
            return "jump", key, A, M, mA, mM
        A, M, upper = A + dA, M + dM, key
    return continuous(A, M, p_min, upper)


def _clear_group(bids: list[Bid], K: float, p_min: float, p_max: float, pi_home: float | None) -> Group:
    """Rules 1–3 of core/market/clearing.hpp for one group; rule 4's π_rest when pi_home is set."""
    kind, price, A, M, mA, mM = _solve(bids, K, p_min)
    binding = kind != "floor"
    if p_max < INF and price > p_max:
        # Rule 3: classes served in order at p_max, the first that does not fit pro rata.
        clsA, clsM = [0.0] * 3, [0.0] * 3
        for b in bids:
            if b.pi_out >= p_max:
                c = min(b.cls, 2)
                if min(b.money / b.need, b.pi_out) >= p_max:
                    clsA[c] += b.w * b.need
                else:
                    clsM[c] += b.w * b.money
        cA = cM = 0.0
        for c in range(3):
            if (cA + clsA[c]) + (cM + clsM[c]) / p_max > K:
                ratio = (K - cA - cM / p_max) / (clsA[c] + clsM[c] / p_max)
                return Group(p_max, CLASS_CAP, min(max(ratio, 0.0), 1.0), c, binding)
            cA += clsA[c]
            cM += clsM[c]
        return Group(p_max, ALL, 1.0, 0, binding)
    if pi_home is not None and not price > pi_home and not (kind == "jump" and price == pi_home):
        return Group(pi_home, ALL, 1.0, 0, binding)  # the rest's own price is below π_home
    g = Group(min(price, p_max), ALL, 1.0, 0, binding)
    if pi_home is not None:
        g.price = max(g.price, pi_home)
    if kind == "jump":
        left = K - A - M / price
        ratio = left / (mA + mM / price)
        g.mode, g.ratio = MARGINAL, min(max(ratio, 0.0), 1.0)
    return g


def clear_provider(bids: list[Bid], K: float, p_min: float, p_max: float, first_resort: bool) -> Clearing:
    """§2.6(c) for one provider: one uniform price π_p; under first-resort the home
    firms first on all of K at π_home, the rest on what is left at
    π_rest = max(π_home, their own price)."""
    if not first_resort:
        return Clearing(_clear_group(bids, K, p_min, p_max, None), None, p_min)
    home_bids = [b for b in bids if b.home]
    home = _clear_group(home_bids, K, p_min, p_max, None)
    sold = 0.0
    for b in home_bids:
        a = allocate_in(b, home)
        sold += b.w * a
        if a == 0.0 and home.mode != ALL:  # pro-rata shares zeroed by min_alloc stay unsold
            pro_rata = (home.mode == MARGINAL and b.pi_out == home.price) or (
                home.mode == CLASS_CAP and min(b.cls, 2) == home.cut_class)
            if pro_rata:
                home.unsold += b.w * bid_demand(b, home.price) * home.ratio
    K_rest = min(home.unsold, K) if home.binding else max(K - sold, 0.0)
    rest = _clear_group([b for b in bids if not b.home], K_rest, p_min, p_max, home.price)
    return Clearing(rest, home, p_min)


# ---------------------------------------------------------------------------
# §2.6(e) consumer water-fill (semantics of core/market/waterfill.hpp)
# ---------------------------------------------------------------------------

Level = namedtuple("Level", "lam lam_floor")
"""A provider's water level λ_p and the deal hosts' first-stage level λ1."""


def _fill(items: list[tuple], C: float) -> float:
    """λ = max{λ ≥ 0 : Σ w·h·min(c, λ·w_plan) ≤ C} (+inf if every cap fits);
    items are (λ_u = c/w_plan, w·h·c, w·h·w_plan), swept in order of λ_u."""
    if sum(it[1] for it in items) <= C:
        return INF
    items = sorted(items)
    rising = list(accumulate(it[2] for it in reversed(items)))[::-1]  # Σ w·h·w_plan of users not yet saturated
    saturated = 0.0
    for (lam_u, whc, _), B in zip(items, rising):
        if saturated + B * lam_u > C:
            return max((C - saturated) / B, 0.0)
        saturated += whc
    return INF


def water_levels(user_bids: list[list[tuple]], capacity: list[float], floor: list[float]) -> list[Level]:
    """λ_p per provider; deal hosts' users first share the floor F' = min(F, C)
    alone (λ1), then everyone shares C with the hosts keeping their head start."""
    levels = []
    for items, C, F in zip(user_bids, capacity, floor):
        F = min(F, C)
        host = [it[:3] for it in items if it[3]]
        if F > 0.0 and host:
            lam1 = _fill(host, F)
            U1 = min(F, sum(it[1] for it in host))
            lamJ = _fill([it[:3] for it in items], C)
            lam = lamJ if lamJ >= lam1 else _fill([it[:3] for it in items if not it[3]], C - U1)
            levels.append(Level(lam, lam1))
        else:
            levels.append(Level(_fill([it[:3] for it in items], C), 0.0))
    return levels


# ---------------------------------------------------------------------------
# Agents
# ---------------------------------------------------------------------------


class FirmAgent(mesa.Agent):
    """A firm agent: one real firm (large stratum) or its size band's w_band real firms (§1)."""

    def __init__(self, model: "CutoffModel", country: int, sector: int, large: bool, defender_sector: int,
                 band: int = 0):
        super().__init__(model)
        p, c = model.p, model.countries[country]
        rnd = self.random
        u_size, u_defender = 1.0 - rnd.random(), rnd.random()
        z_A, z_b = rnd.gauss(0.0, 1.0), rnd.gauss(0.0, 1.0)
        self.country, self.sector, self.large = country, sector, large
        self.segment = country * len(p.sector_share) + sector
        self.band = band             # (v5) size band of the small stratum (§1)
        self.weight = 1.0 if large else c.w_band[band]
        self.defender = large and sector == defender_sector and c.tier == 1 and u_defender < p.p_defender
        self.kyc = False
        self.partners = 0            # bit q: trusted partner of provider q
        self.provider = None
        self.generation = None
        lo, hi = (c.x_L, INF) if large else (c.band_edge[band], c.band_edge[band + 1])
        self.employees = self.raw_size(large, lo, hi, p.pareto_alpha, p.size_cap, u_size)
        self.A = model.A_c[country] * math.exp(p.A_sigma0 * z_A)
        self.lnA_AI = 0.0
        self.W = 0.0
        self.b = math.exp(p.budget_sigma * z_b - 0.5 * p.budget_sigma ** 2)
        self.revenue = 0.0
        self.alloc = 0.0
        self.K = 0.0
        self.K_elig = 0.0
        self.ai_value = 0.0
        self.buying = self.entered = self.used_ai = False
        self.adopted = False         # (v5) firm_bass: has adopted AI (§2.9)
        self.seats = 0.0             # (v5) seats per real firm this tick (§2.6e), and their generation
        self.seat_gen = None
        self.on_seats = False
        self.status = NO_ACCESS      # §7, set in settle
        self.bid = None
        self.pending_draws = None    # tick-0 draws shared with the τ0 derivation

    @staticmethod
    def raw_size(large: bool, lo: float, hi: float, alpha: float, cap: float, u: float) -> float:
        """§1 raw size by inverse CDF of Pareto(α, min 1), above lo = x_L (large) or in the
        small stratum's band [lo, hi) (v5; one band: [1, x_L))."""
        if large:
            x = lo * math.pow(u, -1.0 / alpha)
        else:
            head = math.pow(lo, -alpha)
            tail = math.pow(hi, -alpha) if hi < INF else 0.0
            x = math.pow(head - u * (head - tail), -1.0 / alpha)
        return min(x, cap)

    # -- §2.4 eligibility and choice ---------------------------------------

    def budget(self) -> float:
        """§2.5 B_i = b_i·(β_W·max(W, 0) + β_R·revenue(t−1))."""
        p = self.model.p
        return self.b * (p.beta_W * max(self.W, 0.0) + p.beta_R * self.revenue)

    def need(self) -> float:
        """§2.5 q_i = employees·τ_s(t), Mtok."""
        return self.employees * self.model.tau_s[self.sector]

    def cleared_for(self, q: int) -> bool:
        """KYC-cleared and align ≥ a_kyc, or the country hosts an arrived deal of q (§6)."""
        m = self.model
        return (self.kyc and m.labs.align[self.country][q] >= m.p.a_kyc) or bool((m.deal_mask[self.country] >> q) & 1)

    def eligible(self, g: Generation) -> bool:
        """§2.4: OPEN; or align ≥ 0 and GENERAL, KYC if cleared or a partner, TRUSTED if a partner."""
        st = g.stage
        if st == OPEN:
            return True
        q = g.provider
        if self.model.labs.align[self.country][q] < 0.0:
            return False
        if st == GENERAL:
            return True
        partner = (self.partners >> q) & 1
        if st == KYC:
            return bool(partner) or self.cleared_for(q)
        if st == TRUSTED:
            return bool(partner)
        return False

    def firm_class(self, q: int) -> int:
        if (self.partners >> q) & 1:
            return CLS_TRUSTED
        return CLS_KYC if self.cleared_for(q) else CLS_GENERAL

    def is_home(self, q: int) -> bool:
        m = self.model
        return m.first_resort[q] and self.country == m.labs.lever_country

    def utility(self, budget: float, need_q1: float, g: Generation) -> float:
        """Noiseless u = φ·K_g·min(1, a/q')^ψ with a = ζ(B − F)/(π_p(t−1)·h_g) (§2.4)."""
        m, p = self.model, self.model.p
        q = g.provider
        z = m.zeta[self.country] if m.quota_provider[q] else 1.0
        money = z * (budget - p.access_cost)
        price = m.price_home[q] if self.is_home(q) else m.price[q]
        afford = money / (price * g.h) if money > 0.0 else 0.0
        ratio = min(1.0, afford / (z * need_q1))
        return p.phi * g.K * (math.pow(ratio, p.psi) if ratio > 0.0 else 0.0)

    def draw_choice(self, n_gens: int) -> tuple:
        """This tick's step-4 draws: KYC, provider switch, one Gumbel per generation and
        (v5) the adoption draw of firm_bass."""
        rnd = self.random
        return rnd.random(), rnd.random(), [gumbel(rnd) for _ in range(n_gens)], rnd.random()

    def adopt_prob(self) -> float:
        """§2.9 (v5) min(1, rate_c·employees^firm_adopt_size) (firm_adopt_prob)."""
        return min(1.0, self.model.firm_adopt_rate[self.country] * self.employees ** self.model.p.firm_adopt_size)

    def choose(self) -> None:
        """Step 4: the KYC draw, then re-pick the generation among the provider's
        eligible ones; re-choose the provider with probability p_switch or when none
        is eligible; a trusted partner keeps its provider. (v5, firm_bass) A firm that has
        not adopted AI first adopts, if a generation is eligible, with adopt_prob(); one
        that has not chooses nothing."""
        m, p = self.model, self.model.p
        gens = m.labs.gens
        if self.pending_draws is not None:
            u_kyc, u_switch, noise, u_adopt = self.pending_draws
            self.pending_draws = None
            noise += [gumbel(self.random) for _ in range(len(gens) - len(noise))]  # a release at tick 0
        else:
            u_kyc, u_switch, noise, u_adopt = self.draw_choice(len(gens))
        if not self.kyc and u_kyc < m.kyc_rate[self.country]:
            self.kyc = True
        budget = self.budget()
        need_q1 = max(self.need(), p.q_min)
        current = self.provider
        eligible = [k for k, g in enumerate(gens) if self.eligible(g)]
        best_K = max((gens[k].K for k in eligible), default=0.0)
        has_own = current is not None and any(gens[k].provider == current for k in eligible)
        self.K_elig = best_K
        if p.firm_bass and not self.adopted:
            if not (eligible and u_adopt < self.adopt_prob()):
                self.generation = self.provider = None
                return
            self.adopted = True
        keeps = has_own and (((self.partners >> current) & 1) or not u_switch < p.p_switch)
        # (v5) one that keeps its provider keeps its generation while it stays eligible,
        # re-choosing it with probability firm_p_repick (1: every tick; no draw then).
        held = self.generation
        if (p.firm_p_repick < 1 and keeps and held is not None and gens[held].provider == current
                and held in eligible and not self.random.random() < p.firm_p_repick):
            return
        best, best_u = None, 0.0
        for k in eligible:
            g = gens[k]
            if keeps and g.provider != current:
                continue
            u = self.utility(budget, need_q1, g) + p.switch_noise * noise[k]
            if best is None or u > best_u:
                best, best_u = k, u
        self.generation = best
        self.provider = None if best is None else gens[best].provider

    # -- §2.5 demand and §2.6 settlement ------------------------------------

    def make_bid(self) -> None:
        """Step 5: the bid on the chosen generation, or None (no generation, no
        money, or the value at saturation below F_access). ζ scales need and money."""
        self.bid = None
        if self.generation is None:
            return
        m, p = self.model, self.model.p
        g = m.labs.gens[self.generation]
        q = g.provider
        z = m.zeta[self.country] if m.quota_provider[q] else 1.0
        qi = self.need()
        need = z * max(qi, p.q_min) * g.h
        money = z * (self.budget() - p.access_cost)
        v_max = p.wtp_months * p.rho * p.sigma_c * self.revenue * p.phi * g.K  # V_i at saturation
        if not money > 0.0 or not need > 0.0 or not qi > 0.0 or v_max < p.access_cost:
            return
        min_alloc = z * p.q_min * g.h
        x_F = z * qi * g.h * (math.pow(p.access_cost / v_max, 1.0 / p.psi) if p.access_cost > 0.0 else 0.0)
        pi_out = min(v_max / need, money / min_alloc)  # WTP; q_min feasibility
        if x_F > 0.0:
            pi_out = min(pi_out, money / x_F)          # V(x_F) = F_access
        self.bid = Bid(q, self.weight, need, money, pi_out, min_alloc, self.firm_class(q), self.is_home(q))

    def paid_price(self) -> float:
        """The price this firm's bid clears at: π_home for first-resort home firms, else
        π_rest / π_p (core/market/clearing.hpp paid_price)."""
        return self.model.clearing[self.bid.provider].group(self.bid).price

    def value_max(self, g: Generation) -> float:
        """§2.5 V_i at saturation: wtp_months·ρ·σ_c·revenue(t−1)·φ·K_g."""
        p = self.model.p
        return p.wtp_months * p.rho * p.sigma_c * self.revenue * p.phi * g.K

    def seat_generation(self) -> int | None:
        """§2.6(e) (v5) the plan-layer generation for this firm's API choice: the choice
        itself when a user of its country could use it, else the best-K such generation of
        the same provider (ties: the lower index); None when there is none."""
        m = self.model
        if self.generation is None:
            return None
        gens = m.labs.gens
        cc = bool(getattr(m.p, "compute_caps", False))
        if not cc and m.labs.user_eligible(self.country, gens[self.generation]):
            return self.generation
        q = gens[self.generation].provider
        # (v5) under compute caps: the best K_x·min(1, Λ_q(t−1)·(w_seat/h_x)/(cap_seat·ζ))^ψ
        level, cap = INF, 0.0
        if cc:
            cap = m.seat_cap * (m.zeta[self.country] if m.quota_provider[q] else 1.0)
            lv = m.level_prev[q]
            host = bool((m.deal_mask[self.country] >> q) & 1)
            level = lv.lam_floor if host and lv.lam_floor > lv.lam else lv.lam
        best, best_u = None, 0.0
        for k, g in enumerate(gens):
            if g.provider != q or not m.labs.user_eligible(self.country, g):
                continue
            u = g.K
            if level < INF and cap > 0.0:
                u *= math.pow(min(1.0, level * (m.seat_weight / g.h) / cap), m.p.psi)
            if best is None or u > best_u:
                best, best_u = k, u
        return best

    def decide_seats(self) -> None:
        """§2.6(e) (v5) a firm that got no API compute buys n = min(employees·seat_share,
        B/price_seat) seats (no access cost) if V(n·seat_cap) ≥ n·price_seat, at this tick's
        budget before it adapts (firm_seats)."""
        m, p = self.model, self.model.p
        self.seats, self.seat_gen, self.on_seats = 0.0, None, False
        if not p.seats or self.buying:
            return
        k = self.seat_generation()
        q = self.need()
        if k is None or not q > 0.0:
            return
        g = m.labs.gens[k]
        price = m.seat_price[g.provider]
        if not price > 0.0:
            return
        n = min(self.employees * p.seat_share, self.budget() / price)
        if not n > 0.0:
            return
        if self.value_max(g) * math.pow(min(1.0, n * m.seat_cap / q), p.psi) >= n * price:
            self.seats, self.seat_gen = n, k

    def seat_bid(self):
        """The seats as an element of the plan layer's water-fill (provider, weight w·n, cap
        per seat, plan weight, h, deal-host floor), or None."""
        if self.seat_gen is None:
            return None
        m = self.model
        g = m.labs.gens[self.seat_gen]
        q = g.provider
        cap = m.seat_cap * (m.zeta[self.country] if m.quota_provider[q] else 1.0)
        pw = m.seat_weight / g.h if getattr(m.p, "compute_caps", False) else m.seat_weight  # (v5) fill_weight
        return (q, self.weight * self.seats, cap, pw, g.h, bool((m.deal_mask[self.country] >> q) & 1))

    def seat_settle(self) -> None:
        """After the water-fill (firm_seat_settle): the seat generation and provider, the
        seats' compute n·use·h, K, and status seats or seats_capped."""
        b = self.seat_bid()
        if b is None:
            return
        q, _, cap, pw, h, host = b
        lv = self.model.levels[q]
        level = lv.lam_floor if host and lv.lam_floor > lv.lam else lv.lam
        use = min(cap, level * pw)
        self.generation, self.provider = self.seat_gen, q
        self.alloc = self.seats * use * h
        self.K = self.model.labs.gens[self.seat_gen].K if use > 0.0 else 0.0
        self.on_seats = True
        self.used_ai = self.used_ai or use > 0.0
        self.status = SEATS_CAPPED if level * pw < cap else SEATS

    def settle(self) -> None:
        """§2.6(c) after the clearing: allocation, capability accessed, buying flags, the
        §7 status (firm_settle, firm_status) and (v5) the seats it will hold."""
        p = self.model.p
        x = allocate(self.bid, self.model.clearing[self.bid.provider]) if self.bid is not None else 0.0
        self.alloc = x
        self.K = self.model.labs.gens[self.generation].K if x > 0.0 else 0.0
        self.buying = x > 0.0
        self.used_ai = self.used_ai or self.buying
        self.entered = False
        self.decide_seats()
        if p.firm_bass and not self.adopted and self.K_elig > 0.0:
            self.status = NOT_ADOPTED
        elif self.generation is None:
            self.status = NO_ACCESS
        elif self.bid is None:
            g = self.model.labs.gens[self.generation]
            values_ai = self.need() > 0.0 and self.value_max(g) >= p.access_cost
            self.status = NO_BUDGET if values_ai else NO_VALUE
        else:
            wanted = bid_demand(self.bid, self.paid_price())
            if not wanted > 0.0:
                self.status = PRICED_OUT
            elif x < wanted:
                self.status = RATIONED
            else:
                self.status = BUDGET_BOUND if wanted < self.bid.need else SERVED

    def budget_signal(self) -> float:
        """§2.5 (v4) the signal ℓ_i before the clip (budget_signal): ln(v_i/π) if it bid,
        v_i = V(q'·h)/(q'·h) per the bid's own need and π the price it cleared at (at most 0
        if served); ℓ_up if it could not bid for want of money although V(q'·h) ≥ F_access;
        else 0."""
        m, p = self.model, self.model.p
        g = m.labs.gens[self.generation]
        v_max = p.wtp_months * p.rho * p.sigma_c * self.revenue * p.phi * g.K  # V_i at saturation
        if self.bid is not None:
            ratio = v_max / self.bid.need / self.paid_price()
            l = math.log(ratio) if ratio > 0.0 else -INF  # fp::log(0) = −inf, clipped to −1 below
            return min(l, 0.0) if self.status == SERVED else l
        want_of_money = not self.budget() - p.access_cost > 0.0 and self.need() > 0.0 and v_max >= p.access_cost
        return p.b_up if want_of_money else 0.0

    def adapt_budget(self) -> None:
        """§2.5 (v4) budgets adapt after this tick's bids were summed (firm_adapt_budget):
        b ← clip(b·exp(b_adapt·clip(ℓ, −1, 1)), b_floor, b_max), stored as float32."""
        if self.generation is None:
            return
        p = self.model.p
        l = max(-1.0, min(1.0, self.budget_signal()))
        self.b = f32(max(p.b_floor, min(p.b_max, self.b * math.exp(p.b_adapt * l))))

    # -- §2.7 productivity and §2.8 wealth ----------------------------------

    def grow(self) -> None:
        """Step 7: u = φ·K_i·min(1, alloc/(q·h))^ψ + spill_c(t−1);
        A ← A·(1 + g0 + ρ·u + σ_A·ε); lnA_AI += ln(1 + ρ·u)."""
        m, p = self.model, self.model.p
        u = m.countries[self.country].spill
        if self.buying or self.on_seats:  # API compute, or (v5) seats' tokens
            qh = self.need() * m.labs.gens[self.generation].h
            u += p.phi * self.K * math.pow(min(1.0, self.alloc / qh), p.psi)
        growth = 1.0 + p.g0 + p.rho * u + p.sigma_A * self.random.gauss(0.0, 1.0)
        self.A *= max(growth, 0.0)
        self.lnA_AI += math.log(1.0 + p.rho * u)

    def pool_others(self) -> float:
        """§2.8 (v5, pool_price_taker): the other agents' employees per unit of w·e·A^σ in
        this agent's segment, (E_cs − w·e)/(Z_cs − w·e·A^σ) (its whole E/Z if it is alone)."""
        m, p = self.model, self.model.p
        k = self.segment
        we = self.weight * self.employees
        E, Z = m.seg_E[k] - we, m.seg_Z[k] - we * self.A ** p.sigma_c
        return E / Z if E > 0 and Z > 0 else (m.seg_E[k] / m.seg_Z[k] if m.seg_Z[k] > 0 else 0.0)

    def pool_rate(self) -> float:
        """§2.8: the pool rate this agent earns; under pool_price_taker (v5) its share of the
        country pool is (1−ω)·P_cs·o_i/Σ_j w·e·A^σ·o_j, o = pool_others."""
        m, p = self.model, self.model.p
        if not getattr(p, "pool_price_taker", False):
            return m.seg_rate[self.segment]
        return m.seg_rate[self.segment] + m.seg_own[self.segment] * self.pool_others()

    def earn(self) -> None:
        """Step 8 pass 2: revenue by the pool rule, costs, wealth, AI value; exit below
        −exit_months of wages and replacement in place by an entrant."""
        m, p = self.model, self.model.p
        rate = self.pool_rate()
        revenue = self.employees * self.A ** p.sigma_c * rate
        wages = self.employees * m.countries[self.country].wage
        compute = 0.0
        if self.buying:
            q = self.provider
            price = m.labs.providers[q].price_home if self.is_home(q) else m.labs.providers[q].price
            compute = price * self.alloc + p.access_cost
        elif self.on_seats:
            compute = self.seats * m.seat_price[self.provider]  # (v5) seats, no access cost
        W = self.W + revenue - wages - p.other_cost * revenue - compute
        if W >= -p.exit_months * wages:
            self.W = W
            self.revenue = revenue
            self.ai_value += revenue * (1.0 - math.exp(-p.sigma_c * self.lnA_AI))
            return
        # An entrant takes the place: same country, sector, employees, weight and strata.
        rnd = self.random
        z_A, z_b = rnd.gauss(0.0, 1.0), rnd.gauss(0.0, 1.0)
        self.A = m.seg_meanA[self.segment] * math.exp(p.entrant_sigma * z_A)
        self.b = math.exp(p.budget_sigma * z_b - 0.5 * p.budget_sigma ** 2)
        self.revenue = self.employees * self.A ** p.sigma_c * rate
        self.W = 3.0 * self.revenue
        self.kyc = self.buying = self.used_ai = self.adopted = self.on_seats = False
        self.seats, self.seat_gen = 0.0, None
        self.entered = True
        self.partners = 0
        self.provider = self.generation = None
        self.lnA_AI = self.ai_value = self.alloc = self.K = 0.0


class UserAgent(mesa.Agent):
    """A user agent: w_user people of its country (§1)."""

    def __init__(self, model: "CutoffModel", country: int):
        super().__init__(model)
        p = model.p
        rnd = self.random
        z_z, z_n = rnd.gauss(0.0, 1.0), rnd.gauss(0.0, 1.0)
        self.country = country
        self.provider = None
        self.generation = None
        self.plan = NO_PLAN
        self.adopter = False
        self.capped = False
        self.new = False             # adopted in this tick's step 9: in the market from the next tick
        self.z = math.exp(p.income_sigma * z_z - 0.5 * p.income_sigma ** 2)  # income, mean 1
        self.n = math.exp(p.need_sigma * z_n)                                  # need, median 1
        self.use = 0.0
        self.bid = None
        self.try_adopt(rnd.random())                                           # §2.0

    def pick_generation(self, only_provider, served: bool = False) -> int | None:
        """§2.4 for a user: the eligible generation maximising φ·K_g·served_g + noise·γ;
        served_g (v5, compute caps, step 4: ``served``) else 1."""
        m = self.model
        gens = m.labs.gens
        phi, noise, rnd = m.p.phi, m.p.switch_noise, self.random
        best, best_u = None, 0.0
        for k in m.user_gens[self.country]:
            if only_provider is not None and gens[k].provider != only_provider:
                continue
            u = phi * gens[k].K * (self.served(k) if served else 1.0) + noise * gumbel(rnd)
            if best is None or u > best_u:
                best, best_u = k, u
        return best

    def served(self, k: int) -> float:
        """§2.4 (v5, compute caps; UserServed) the share of this user's demand at full caps on
        generation k's provider q that k would serve at q's plan-layer level of t−1,
        min(1, Λ·(w_plan/h_k)/c_u)^ψ (Λ: a deal host's λ1 when above λ); 1 when every cap
        fitted there (Λ = +inf) or c_u = 0."""
        m = self.model
        g = m.labs.gens[k]
        q = g.provider
        cap = self.cap(q)
        pw = m.p.plan_weight[self.plan - 1] / g.h
        lv = m.level_prev[q]
        host = bool((m.deal_mask[self.country] >> q) & 1)
        level = lv.lam_floor if host and lv.lam_floor > lv.lam else lv.lam
        if not level < INF or not cap > 0.0:
            return 1.0
        return math.pow(min(1.0, level * pw / cap), m.p.psi)

    def plan_for(self, income: float, q: int | None) -> int:
        """§2.9: pro if ω_plan·income ≥ its price, else plus, else free, at provider q's
        prices (v5; None: list prices)."""
        budget = self.model.p.omega_plan * income
        if budget >= self.model.plan_price_on(2, q):
            return PRO
        return PLUS if budget >= self.model.plan_price_on(1, q) else FREE

    def try_adopt(self, u: float) -> None:
        """Adopts with probability adopt_rate_c·afford_u at the prices of the provider it
        would choose (v5, user_try_adopt): a draw below adopt_rate_c picks a generation (a
        user with nothing eligible does not adopt), then adopts if below adopt_rate_c·afford_u,
        afford_u = max(f_free, min(1, ω_inc·income/price[plus])); then a plan by income (§2.0, §2.9)."""
        m, p = self.model, self.model.p
        c = m.countries[self.country]
        if not u < c.adopt_rate:
            return
        g = self.pick_generation(None)
        if g is None:
            return
        q = m.labs.gens[g].provider
        income = self.z * c.wage
        afford = max(p.f_free, min(1.0, p.omega_inc * income / m.plan_price_on(1, q)))
        if not u < c.adopt_rate * afford:
            return
        self.adopter = True
        self.plan = self.plan_for(income, q)
        self.generation, self.provider = g, q

    def choose(self) -> None:
        """Step 4: re-pick the generation at the provider; re-choose the provider with
        probability p_switch, or when none of its generations is eligible."""
        if not self.adopter:
            return
        m = self.model
        switching = self.random.random() < m.p.p_switch
        cc = bool(getattr(m.p, "compute_caps", False))
        # (v5) under compute caps an adopter that does not switch keeps its generation while
        # it stays eligible, re-choosing it with probability p_repick (the second draw).
        if (cc and not switching and self.generation is not None and self.generation in m.user_gens[self.country]
                and not self.random.random() < m.p.p_repick):
            return
        g = None
        if not switching and self.provider is not None:
            g = self.pick_generation(self.provider, cc)
        if g is None:
            g = self.pick_generation(None, cc)
        self.generation = g
        self.provider = None if g is None else self.model.labs.gens[g].provider

    def cap(self, q: int | None = None) -> float:
        """§2.5 min(need_u, plancap_u), Mtok, × ζ_c on tier-1-homed providers (on provider q;
        default: its own)."""
        m, p = self.model, self.model.p
        base = m.need_scale * p.plan_need[self.plan - 1]
        cap = min(base * self.n, p.plan_cap * base)
        q = self.provider if q is None else q
        return cap * m.zeta[self.country] if m.quota_provider[q] else cap

    def make_bid(self) -> None:
        """Step 6(e): (provider, weight, cap, plan weight, h, deal-host floor), or None."""
        self.bid = None
        if not self.adopter or self.generation is None:
            return
        m = self.model
        q = self.provider
        h = m.labs.gens[self.generation].h
        pw = m.p.plan_weight[self.plan - 1]
        if getattr(m.p, "compute_caps", False):
            pw /= h  # (v5) the fill's weight w_plan/h_g: the level counts H100e (fill_weight)
        self.bid = (q, m.countries[self.country].w_user, self.cap(), pw, h,
                    bool((m.deal_mask[self.country] >> q) & 1))

    def settle(self) -> None:
        """Step 6(e): use = min(cap, Λ·w_plan); compute-capped when Λ·w_plan < cap; the
        "new" flag of last tick's adoption clears (user_settle)."""
        self.new = False
        if self.bid is None:
            self.use, self.capped = 0.0, False
            return
        q, _, cap, pw, _, host = self.bid
        lv = self.model.levels[q]
        level = lv.lam_floor if host and lv.lam_floor > lv.lam else lv.lam
        self.use = min(cap, level * pw)
        self.capped = level * pw < cap

    def adopt(self) -> None:
        """Step 9: a non-adopter adopts with probability (bass_p + bass_q·share(t−1))·
        access_c·afford_u; adopters keep their plan (or re-pick under plan_repick, or step
        down under plan_pass, v5). A new
        adopter is flagged "new": it joins the market next tick (user_adopt, v4)."""
        if self.adopter:
            p = self.model.p
            if p.plan_repick or p.plan_pass > 0:
                # (v5) priced plans: step down to the plan the income affords at the
                # provider's prices, never up (plan_repick: both ways).
                plan = self.plan_for(self.z * self.model.countries[self.country].wage, self.provider)
                if p.plan_repick or plan < self.plan:
                    self.plan = plan
            return
        self.try_adopt(self.random.random())
        self.new = self.adopter


# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------


def pool_rates(countries: list[Country], n_sectors: int, Y: list[float], Z: list[float], omega: float,
               taker: bool = False) -> tuple[list[float], list[float]]:
    """§2.8: rate_(c,s) = (1−ω)·P_cs/Z_cs + ω·Σ_c' P_c's/Z_s, P_cs = GDP_c(t−1)/12·Y_cs/Y_c,
    and no second list; with taker (pool_price_taker) rate_(c,s) = ω·Σ_c' P_c's/Z_s and the
    second list (1−ω)·P_cs."""
    S = n_sectors
    P = [0.0] * len(Y)
    Ps, Zs = [0.0] * S, [0.0] * S
    for c, ctry in enumerate(countries):
        Yc = sum(Y[c * S:(c + 1) * S])
        for s in range(S):
            k = c * S + s
            P[k] = ctry.gdp_prev / 12.0 * Y[k] / Yc if Yc > 0 else 0.0
            Ps[s] += P[k]
            Zs[s] += Z[k]
    rate = [0.0] * len(Y)
    own = [0.0] * len(Y) if taker else []
    for k in range(len(Y)):
        s = k % S
        traded = Ps[s] / Zs[s] if Zs[s] > 0 else 0.0
        if taker:
            own[k] = (1.0 - omega) * P[k]
            rate[k] = omega * traded
            continue
        local = P[k] / Z[k] if Z[k] > 0 else 0.0
        rate[k] = (1.0 - omega) * local + omega * traded
    return rate, own


def top_share(w: np.ndarray, x: np.ndarray, f: float = 0.2) -> float:
    """Share of Σ w·x held by the top f of the weight, ranked by x (the element
    straddling the cut counts with the part of its weight inside it), §7."""
    if w.size == 0 or not w.sum() > 0:
        return math.nan
    order = np.argsort(-x, kind="stable")
    w, x = w[order], x[order]
    X = float(np.dot(w, x))
    if not X > 0:
        return f
    cut = f * w.sum()
    k = int(np.searchsorted(np.cumsum(w), cut))
    k = min(k, w.size - 1)
    xs = x[k]
    above = x > xs
    share = (float(np.dot(w[above], x[above])) + (cut - float(w[above].sum())) * xs) / X
    return min(max(share, f), 1.0)


def gini(w: np.ndarray, x: np.ndarray) -> float:
    """Weighted Gini, 1 − Σ w_k(2·S_{k−1} + w_k·x_k)/(W·X), ranked ascending (§7)."""
    order = np.argsort(x, kind="stable")
    w, x = w[order], x[order]
    W, X = w.sum(), np.dot(w, x)
    if not X > 0:
        return 0.0
    S = np.cumsum(w * x)
    S_prev = S - w * x
    return max(0.0, 1.0 - float(np.sum(w * (2.0 * S_prev + w * x))) / (W * X))


class CutoffModel(mesa.Model):
    """The cutoff model (docs/model.md §2): firms and users as Mesa agents, providers and
    countries as plain objects, one ``step()`` per tick (one month)."""

    def __init__(self, p: Params, countries: list[Country], seed: int, derive_only: bool = False,
                 scales: tuple | None = None):
        super().__init__(seed=seed)
        self.p = p
        self.countries = countries
        self.warnings = make_layout(countries, p)
        self.labs = Labs(p, countries, alignment_matrix(p, countries))
        self.tick = 0
        C, P = len(countries), len(self.labs.providers)
        self.n_sectors = len(p.sector_share)
        for c in countries:  # lagged values (§2.0)
            c.gdp_prev = c.gdp0
            c.adoption_prev = 0.0
            c.use_ratio_prev = 1.0
            c.spill = 0.0
            c.quota_demand_prev = 0.0
            c.gap_run = 0
            c.policy_provider = -1
            c.policy = 0
            c.deal_arrival = -1
            c.deal_order_tick = -1
        self.deal_mask = [0] * C
        # (v5) the plan layer's water levels per provider at t−1: none known before tick 0
        self.level_prev = [Level(INF, 0.0)] * P
        self.zeta = [1.0] * C
        self.kyc_rate = [0.0] * C
        self.quota_provider = [countries[v.home].tier == 1 for v in self.labs.providers]
        self.first_resort = [False] * P
        self.price = [v.price for v in self.labs.providers]
        self.price_home = [v.price_home for v in self.labs.providers]
        self.tau0 = 0.0
        self.need0 = 0.0
        self.tightness0_reached = p.tightness0
        self.Y0 = None
        self.out = {}
        self.firm_use_prev = [0.0] * C   # (v5) F_c(t−1): share of real firms using AI (§2.9)
        self.firm_adopt_rate = [0.0] * C
        self.price_plans()
        # §2.0: τ0 and need0 are constants of the scenario, derived on seed 0, replicate 0
        # whatever this run's own (Simulation::derive_scales): (v5) on the reference
        # population of tau0_ref_firms × tau0_ref_users agents, a second model derived on
        # itself, unless this run has those counts; (v4, tau0_ref_firms = 0) on this run's
        # counts. Then the run's own agents are drawn.
        ref_f, ref_u = int(p.tau0_ref_firms), int(p.tau0_ref_users)
        if scales is not None:
            # Given (--tau0, --need0): a comparison with cutoff at small counts, where τ0 is
            # ill-conditioned and this peer's seed-0 sample (Mesa's generator) is not cutoff's.
            self.tau0, self.need0 = scales
            self.tau0_target = math.nan
            self.random.seed(seed)
            self.init_agents()
        elif ref_f > 0 and (ref_f, ref_u) != (int(p.n_firms), int(p.n_users)):
            rp = Params(dict(vars(p), n_firms=ref_f, n_users=ref_u))
            ref = CutoffModel(rp, load_countries(p.countries), 0, derive_only=True)
            self.tau0, self.need0, self.tightness0_reached = ref.tau0, ref.need0, ref.tightness0_reached
            self.tau0_target = ref.tau0_target
            self.random.seed(seed)
            self.init_agents()
        else:
            self.random.seed(0)
            self.init_agents()
            self.derive_tau0()
            self.derive_need0()
            if seed != 0:
                self.remove_all_agents()
                self.random.seed(seed)
                self.init_agents()
        if derive_only:
            return
        self.datacollector = mesa.DataCollector(model_reporters={
            "mean_price": lambda m: float(np.mean(m.out["price"])),
            "top20_value_share": lambda m: m.out["top20"],
            "adoption_share": lambda m: m.out["adoption_world"],
            "users_capped_share": lambda m: m.out["capped_share"],
            "gini_wealth": lambda m: m.out["gini"],
            "negative_wealth_share": lambda m: m.out["negative_wealth"],
            "entries": lambda m: m.out["entries"],
            "tokens_per_worker": lambda m: m.tau0 * math.exp(m.p.tau_growth * m.tick),
            "compute_price": lambda m: list(m.out["price"]),
            "capacity": lambda m: [v.capacity for v in m.labs.providers],
            "revenue": lambda m: list(m.out["revenue"]),
            "utilisation": lambda m: list(m.out["utilisation"]),
            "frontier_K": lambda m: [v.K for v in m.labs.providers],
            "follower_lag": lambda m: [float(v.lag) if v.follower and v.lag >= 0 else math.nan
                                       for v in m.labs.providers],
            "K_lead": lambda m: m.labs.K_lead_hist[m.tick],
            "released_frontier": lambda m: m.labs.released_frontier(),
            "K_eligible_world": lambda m: m.out["K_elig_world"],
            "zeta": lambda m: list(m.zeta),
            "quota_demand": lambda m: [c.quota_demand_prev for c in m.countries],
            "trusted_partners": lambda m: [sum((f.partners >> q) & 1 for f in m.large_firms) for q in range(P)],
            # (v5) what the v5 mechanisms move (bench/compare.py V5_METRICS)
            "revenue_total": lambda m: float(sum(m.out["revenue"])),
            "plan_price_plus": lambda m: float(np.mean([m.plan_price_on(1, q) for q in range(P)])),
            "plan_value": lambda m: (float(np.nanmean(m.plan_value)) if np.isfinite(m.plan_value).any()
                                     else math.nan),
            "consumer_price": lambda m: (float(np.nanmean(m.consumer_price)) if np.isfinite(m.consumer_price).any()
                                         else math.nan),
            "firms_by_status": lambda m: m.out["firms_by_status"],
            # (v5) what compute caps move (bench/compare.py CC_METRICS)
            "tokens_per_adopter": lambda m: m.out["tokens_per_adopter"],
            "access_gap": lambda m: m.out["access_gap"],
        })

    # -- §2.0 initial state --------------------------------------------------

    def init_agents(self) -> None:
        """§2.0 firms, then users, drawn from the model's generator as it stands."""
        self.init_firms()
        self.firms = self.agents_by_type[FirmAgent]
        self.init_users()
        self.users = self.agents_by_type[UserAgent]

    def init_firms(self) -> None:
        """Firms sorted by country, then sector (large first): sizes, A, b; the
        per-country size scaling; revenue(−1) by the pool rule and W = 3·revenue."""
        p, cs = self.p, self.countries
        world_gdp = sum(c.gdp0 for c in cs)
        world_workers = sum(c.workers for c in cs)
        self.A_c = [math.pow((c.gdp0 / c.workers) / (world_gdp / world_workers), 1.0 / p.sigma_c) for c in cs]
        defender_sector = p.sector_names.index("ict") if "ict" in p.sector_names else -1
        firms = []
        for k, c in enumerate(cs):
            for s in range(self.n_sectors):  # large first, then (v5) the size bands in order
                for j in range(c.seg_large[s]):
                    firms.append(FirmAgent(self, k, s, True, defender_sector))
                for b, band in enumerate(c.seg_band):
                    for j in range(band[s]):
                        firms.append(FirmAgent(self, k, s, False, defender_sector, b))
        raw = [0.0] * len(cs)
        for f in firms:
            raw[f.country] += f.weight * f.employees
        for f in firms:
            f.employees *= cs[f.country].workers / raw[f.country]
        self.seg_E = [0.0] * (len(cs) * self.n_sectors)
        for f in firms:
            self.seg_E[f.segment] += f.weight * f.employees
        self.pool_rate_table()
        for f in firms:
            f.revenue = f.employees * f.A ** p.sigma_c * f.pool_rate()
            f.W = 3.0 * f.revenue
        self.large_firms = [f for f in firms if f.large]

    def pool_rate_table(self) -> None:
        """Step 8 pass 1: Y = Σ w·A·e and Z = Σ w·e·A^σ_c per (country, sector); the
        pool rates (seg_rate, and seg_own, seg_Z under pool_price_taker); and the
        employment-weighted mean A per segment (entrants)."""
        p = self.p
        Y = [0.0] * len(self.seg_E)
        Z = [0.0] * len(self.seg_E)
        for f in self.agents_by_type[FirmAgent]:
            we = f.weight * f.employees
            Y[f.segment] += we * f.A
            Z[f.segment] += we * f.A ** p.sigma_c
        self.seg_meanA = [Y[k] / self.seg_E[k] if self.seg_E[k] > 0 else 1.0 for k in range(len(Y))]
        taker = getattr(p, "pool_price_taker", False)
        self.seg_Z = Z
        self.seg_rate, self.seg_own = pool_rates(self.countries, self.n_sectors, Y, Z, p.omega, taker)
        if taker:  # the country pool shared in proportion to w·e·A^σ·pool_others
            R = [0.0] * len(Y)
            for f in self.agents_by_type[FirmAgent]:
                R[f.segment] += f.weight * f.employees * f.A ** p.sigma_c * f.pool_others()
            self.seg_own = [o / r if r > 0 else 0.0 for o, r in zip(self.seg_own, R)]

    def user_consts(self, t: int) -> None:
        """Per-country wage, adoption rate (§2.9) and the users' eligible generations."""
        p, mk = self.p, self.labs
        self.user_gens = []
        for k, c in enumerate(self.countries):
            c.wage = p.labour_share * c.gdp_prev / (12.0 * c.workers)
            gens = [j for j, g in enumerate(mk.gens) if mk.user_eligible(k, g)]
            self.user_gens.append(gens)
            conn = (min(max(math.pow(c.gdp_prev / c.population / p.conn_ref, p.conn_exp), p.conn_min), 1.0)
                    if gens else 0.0)
            access = conn * math.pow(c.use_ratio_prev, p.psi_u)
            c.adopt_rate = p.adopt0 * conn if t < 0 else (p.bass_p + p.bass_q * c.adoption_prev) * access
        self.need_scale = self.need0 * self.need_growth_factor(t)  # (v5) need0·S(t)

    def need_growth_factor(self, t: int) -> float:
        """§2.5 (v5) a person's need S(t) = S∞/(1 + (S∞ − 1)·e^(−g·t)) from tick 0, S∞ = need_sat,
        g = need_growth; S∞ = inf gives e^(g·t) (v4 with g = tau_growth)."""
        g, sat, tt = self.p.need_growth, self.p.need_sat, max(t, 0)
        if not sat < INF:
            return math.exp(g * tt)
        return sat / (1.0 + (sat - 1.0) * math.exp(-g * tt))

    def price_plans(self) -> None:
        """§2.9 (v5) plans priced by scarcity (Simulation::price_plans): provider q's plans
        cost the list prices times (max(π_q(t−1), p_min)/p_min)^plan_pass; a seat costs plan
        seat_plan's price there."""
        p, mk = self.p, self.labs
        self.plan_mult = [math.pow(max(v.price / mk.p_min, 1.0), p.plan_pass) if p.plan_pass > 0 else 1.0
                          for v in mk.providers]
        self.seat_price = [p.plan_price[int(p.seat_plan) - 1] * m for m in self.plan_mult]

    def plan_price_on(self, j: int, q: int | None) -> float:
        """The price of plan index j (0 free, 1 plus, 2 pro) on provider q (None: list price)."""
        return self.p.plan_price[j] * (1.0 if q is None else self.plan_mult[q])

    def firm_consts(self, t: int, tau0: float | None = None) -> None:
        """Per-tick tables the firms read: τ_s(t), KYC rates, ζ_c (under the lever
        diffusion_rule from lever_tick, v4), deal masks, quota and first-resort providers,
        prices π(t−1) (§2.4, §2.5)."""
        p, mk = self.p, self.labs
        tau0 = self.tau0 if tau0 is None else tau0
        self.tau_s = [tau0 * m * math.exp(p.tau_growth * max(t, 0)) for m in p.mult_s]
        quota = p.tier2_quota * math.pow(1.0 + p.tier2_quota_growth, max(t, 0) / 12.0)
        for k, c in enumerate(self.countries):
            raise_ = p.kyc_raise if c.policy & 4 else 1.0
            self.kyc_rate[k] = min(1.0, p.kyc_rate[c.tier - 1] * raise_)
            quota_applies = p.diffusion_rule and t >= p.lever_tick and c.tier == 2 and c.quota_demand_prev > 0
            self.zeta[k] = min(1.0, quota / c.quota_demand_prev) if quota_applies else 1.0
            self.deal_mask[k] = (1 << c.policy_provider) if 0 <= c.deal_arrival <= t else 0
        for q, v in enumerate(mk.providers):
            self.first_resort[q] = bool(p.first_resort and t >= p.lever_tick and v.home == mk.lever_country)
            self.price[q] = v.price
            self.price_home[q] = v.price_home
        # §2.9 (v5) firms' diffusion: a one-employee firm's adoption probability, firm_adopt0
        # at tick 0, then p + q·F_c(t−1), times conn_c (whoever serves the country).
        for k, c in enumerate(self.countries):
            rate = p.firm_adopt0 if t <= 0 else p.firm_bass_p + p.firm_bass_q * self.firm_use_prev[k]
            conn = min(max(math.pow(c.gdp_prev / c.population / p.conn_ref, p.conn_exp), p.conn_min), 1.0)
            self.firm_adopt_rate[k] = rate * conn
        # §2.9 (v5) plan and seat prices at π(t−1); §2.6(e) a seat's cap and weight: a person
        # of need multiplier 1 on plan seat_plan.
        self.price_plans()
        sp = int(p.seat_plan) - 1
        self.seat_cap = self.need0 * self.need_growth_factor(t) * p.plan_need[sp] * min(1.0, p.plan_cap)
        self.seat_weight = p.plan_weight[sp]

    def init_users(self) -> None:
        """Users: income and need multipliers, initial adoption at adopt0·access_c·afford_u."""
        self.user_consts(-1)
        adopters = [0] * len(self.countries)
        for k, c in enumerate(self.countries):
            for _ in range(c.users):
                u = UserAgent(self, k)
                adopters[k] += u.adopter
        for k, c in enumerate(self.countries):
            c.adoption_prev = adopters[k] * c.w_user / c.population

    def derive_tau0(self) -> None:
        """§2.0: τ0 is the smallest value at which weighted firm demand at p_min (step 5,
        with step 4's choices at π(−1)) reaches tightness0 × firm capacity at tick 0.
        Scan τ = 1e−3, ×1.1, … ≤ 1e5 up to the first reaching the target, then bisect
        50 times below it. (v4) If none reaches it, the target is 99% of the largest
        demand over the scan (a warning, tightness0_reached); only no demand at all
        is an error (Simulation::derive_tau0)."""
        p = self.p
        demand, capacity = self.tick0_demand()
        target = p.tightness0 * capacity
        taus, demands = [], []
        tau = 1e-3
        while tau <= 1e5:
            taus.append(tau)
            demands.append(demand(tau))
            if demands[-1] >= target:
                break
            tau *= 1.1
        if demands[-1] < target:
            most = max(demands)
            if not most > 0:
                print(f"cutoff_mesa: error: key 'tightness0' = {p.tightness0}: no firm demands compute at p_min "
                      "at any tokens per worker up to 1e5 Mtok a month", file=sys.stderr)
                raise SystemExit(2)  # cutoff's exit status for the same input error
            target = 0.99 * most
            self.tightness0_reached = target / capacity
            print(f"cutoff_mesa: warning: tightness0 = {p.tightness0} is out of reach (budgets bind): tau0 derived "
                  f"at 99% of the largest firm demand at p_min, tightness {self.tightness0_reached:g}",
                  file=sys.stderr)
        j = 0
        while demands[j] < target:
            j += 1
        hi = taus[j]
        lo = taus[j - 1] if j > 0 else hi / 1.1
        for _ in range(50):
            mid = 0.5 * (lo + hi)
            if demand(mid) >= target:
                hi = mid
            else:
                lo = mid
        self.tau0 = hi
        self.tau0_target = target

    def tick0_demand(self):
        """Weighted firm demand at p_min at tick 0 as a function of τ0, and step 6's firm
        capacity at tick 0 with no unused floor (§2.0). Vectorised with numpy over the firms'
        state and the very draws they will use in tick 0's step 4 (drawn here)."""
        p, mk = self.p, self.labs
        self.firm_consts(0, tau0=1.0)
        capacity = 0.0
        for v in mk.providers:
            gov = self.countries[v.home].iso3 in p.r_gov_homes
            capacity += (1.0 - p.train_share) * v.capacity * (1.0 - (p.r_gov if gov else 0.0) - p.r_cons)
        firms = list(self.firms)
        gens = mk.gens
        n_gens = len(gens)
        for f in firms:
            f.pending_draws = f.draw_choice(n_gens)
            if not f.kyc and f.pending_draws[0] < self.kyc_rate[f.country]:
                f.kyc = True  # the tick-0 KYC draw, as choose() will apply it
        elig = np.array([[f.eligible(g) for g in gens] for f in firms])
        if p.firm_bass:  # (v5) only tick 0's adopters demand (their adoption draw, as choose() will apply it)
            adopts = np.array([f.pending_draws[3] < f.adopt_prob() for f in firms])
            elig = elig & adopts[:, None]
        noise = np.array([f.pending_draws[2] for f in firms])
        budget = np.array([f.budget() for f in firms])
        base = np.array([f.employees * p.mult_s[f.sector] for f in firms])  # q_i at τ0 = 1
        revenue = np.array([f.revenue for f in firms])
        w = np.array([f.weight for f in firms])
        price = np.array([[self.price_home[g.provider] if f.is_home(g.provider) else self.price[g.provider]
                           for g in gens] for f in firms])
        Kg = np.array([g.K for g in gens])
        hg = np.array([g.h for g in gens])
        for f in firms:  # choose() applies the KYC draw itself
            f.kyc = False
        money = budget - p.access_cost
        afford = np.where(money[:, None] > 0, money[:, None] / (price * hg[None, :]), 0.0)
        p_min = mk.p_min

        def demand(tau):
            need_q1 = np.maximum(base * tau, p.q_min)
            ratio = np.minimum(1.0, afford / need_q1[:, None])
            u = p.phi * Kg[None, :] * np.where(ratio > 0, ratio, 0.0) ** p.psi + p.switch_noise * noise
            u = np.where(elig, u, -np.inf)
            has = elig.any(axis=1)
            g = np.argmax(u, axis=1)
            qi = base * tau
            h, K = hg[g], Kg[g]
            need = np.maximum(qi, p.q_min) * h
            v_max = p.wtp_months * p.rho * p.sigma_c * revenue * p.phi * K
            ok = has & (money > 0) & (need > 0) & (qi > 0) & (v_max >= p.access_cost)
            with np.errstate(divide="ignore", invalid="ignore"):
                pi_out = np.minimum(v_max / need, money / (p.q_min * h))
                x_F = qi * h * (p.access_cost / v_max) ** (1.0 / p.psi) if p.access_cost > 0 else 0.0 * qi
                pi_out = np.where(x_F > 0, np.minimum(pi_out, money / x_F), pi_out)
                x = np.where(p_min <= money / need, need, money / p_min)
            x = np.where(ok & (pi_out > 0) & (p_min <= pi_out), x, 0.0)
            return float(np.dot(w, x))

        return demand, capacity

    def derive_need0(self) -> None:
        """§2.0: consumer demand at full caps at tick 0, every adopter on its provider's
        newest GENERAL generation, equals tightness0_cons × the consumer floor."""
        p, mk = self.p, self.labs
        h_newest = [0.0] * len(mk.providers)
        floor = 0.0
        for q, v in enumerate(mk.providers):
            for k in v.gens:
                if mk.gens[k].stage >= GENERAL:
                    h_newest[q] = mk.gens[k].h
            floor += p.r_cons * (1.0 - p.train_share) * v.capacity
        per_unit = sum(self.countries[u.country].w_user * p.plan_need[u.plan - 1] * min(u.n, p.plan_cap)
                       * h_newest[u.provider] for u in self.users if u.adopter)
        if not per_unit > 0:
            print("cutoff_mesa: error: key 'adopt0': no initial adopters, so need0 cannot be derived",
                  file=sys.stderr)
            raise SystemExit(2)
        self.need0 = p.tightness0_cons * floor / per_unit

    # -- one tick ------------------------------------------------------------

    def step(self) -> None:
        """One tick (one month), in the order of docs/model.md §2."""
        t = self.tick
        self.place_policy_orders(t)                      # §6
        self.labs.step_capacity(t)                     # §2.1
        released = self.labs.step_training(t)          # §2.2
        if t == 0:  # §2.0: the generation entering at t_g = 0 chooses its partners in step 2 of tick 0
            released = released + [q for q in range(len(self.labs.providers)) if q not in released]
        self.labs.step_serving_cost(t)                 # §2.3
        self.firm_consts(t)
        self.user_consts(t)
        if released:
            self.choose_partners(released)               # §2.2 trusted partners
        self.firms.do("choose")                          # §2.4
        self.users.do("choose")
        self.step_market()                               # §2.5–§2.6
        self.firms.do("grow")                            # §2.7
        self.pool_rate_table()                           # §2.8 pass 1
        self.firms.do("earn")                            # §2.8 pass 2
        self.users.do("adopt")                           # §2.9
        self.step_countries()                            # §2.10, §6
        self.datacollector.collect(self)                 # §2.11
        self.level_prev = self.levels                    # (v5) t+1's choices see this tick's levels (§2.4)
        self.tick += 1

    def place_policy_orders(self, t: int) -> None:
        """§6 domestic build (each tick) and compute-for-access (once) hosted orders."""
        p = self.p
        for c in self.countries:
            if c.policy_provider < 0:
                continue
            if c.policy & 1:
                self.labs.add_hosted_order(c.policy_provider, p.build_share * c.gdp_prev / 12.0 / p.capex, t)
            if c.deal_order_tick == t:
                self.labs.add_hosted_order(c.policy_provider, p.deal_size, t)
                c.deal_arrival = t + int(p.lead)

    def choose_partners(self, released: list[int]) -> None:
        """§2.2: a releasing provider re-chooses its trusted partners among large firms
        in countries with align ≥ a_trusted (defenders first, then by revenue(t−1));
        a firm chosen by one of this tick's releases (only those, v4) moves to the
        partner provider whose eligible generation gives the highest noiseless u."""
        p, mk = self.p, self.labs
        chosen = set()  # unique_ids of the firms chosen by these releases
        for q in released:
            cand = []
            for f in self.large_firms:
                f.partners &= ~(1 << q)
                if mk.align[f.country][q] >= p.a_trusted:
                    cand.append(f)
            cand.sort(key=lambda f: (not f.defender, -f.revenue))  # stable: ties keep index order
            for f in cand[:int(p.n_trusted)]:
                f.partners |= 1 << q
                chosen.add(f.unique_id)
        for f in self.large_firms:
            if f.unique_id not in chosen:
                continue
            budget, need = f.budget(), max(f.need(), p.q_min)
            best, best_u = None, 0.0
            for g in mk.gens:
                if not (f.partners >> g.provider) & 1 or not f.eligible(g):
                    continue
                u = f.utility(budget, need, g)
                if best is None or u > best_u:
                    best, best_u = g.provider, u
            if best is not None and f.provider != best:
                f.provider, f.generation = best, None

    def step_market(self) -> None:
        """§2.5–§2.6 per provider: (a) government reserve, (b) consumer demand at full
        caps and the consumer floor, (v5) the plan layer's earnings and, under plan_split,
        its bid, (c) the firms' clearing, each firm's status and (v5) seats, then the
        firms' part of D_c and (v4) the budgets' adaptation, (d) what firms did not buy
        joins (e) the plan layer's water-filled caps, users and (v5) seats together;
        revenue and forecast."""
        p, mk = self.p, self.labs
        P = len(mk.providers)
        p_min = mk.p_min
        self.users.do("make_bid")
        cons_demand, plan_revenue = [0.0] * P, [0.0] * P
        user_bids = [[] for _ in range(P)]
        for u in self.users:
            if u.bid is None:
                continue
            q, w, cap, pw, h, host = u.bid
            cons_demand[q] += w * cap * h
            plan_revenue[q] += w * self.plan_price_on(u.plan - 1, q)  # (v5) at the provider's prices
            if w * h * cap > 0.0:
                user_bids[q].append((cap / pw, w * h * cap, w * h * pw, host))
        inference, reserve = [0.0] * P, [0.0] * P
        supply = [0.0] * P
        self.plan_value = [math.nan] * P
        bids = [[] for _ in range(P)]
        for q, v in enumerate(mk.providers):
            inference[q] = (1.0 - p.train_share) * v.capacity
            gov = self.countries[v.home].iso3 in p.r_gov_homes
            reserve[q] = p.r_gov * inference[q] if gov else 0.0                       # (a)
            floor = p.r_cons * inference[q]
            supply[q] = inference[q] - reserve[q] - floor + max(floor - cons_demand[q], 0.0)  # (b)
            # (v5) the plan layer earns its users' plan revenue over their demand at full caps;
            # under plan_split it bids that per H100e for its demand above the floor, as one
            # more bid of the general class that money never binds, with no minimum
            # (plan_layer_bid); what it wins is not sold to firms.
            if cons_demand[q] > 0:
                self.plan_value[q] = plan_revenue[q] / cons_demand[q]
            if p.plan_split and cons_demand[q] > floor and self.plan_value[q] > 0:
                need, value = cons_demand[q] - floor, self.plan_value[q]
                bids[q].append(Bid(q, 1.0, need, need * value * (1.0 + 2.0 ** -50), value, 0.0, CLS_GENERAL, False))
        # (c) the firms' clearing, one price per provider.
        self.firms.do("make_bid")
        for f in self.firms:
            if f.bid is not None:
                bids[f.bid.provider].append(f.bid)
        self.clearing = [clear_provider(bids[q], supply[q], p_min, p.p_max, self.first_resort[q]) for q in range(P)]
        self.firms.do("settle")
        spend, sold, demand_pmin = [0.0] * P, [0.0] * P, [0.0] * P
        self.quota_firm_demand = [0.0] * len(self.countries)
        for f in self.firms:
            b = f.bid
            if b is None:
                continue
            price = f.paid_price()
            spend[b.provider] += b.w * price * f.alloc
            sold[b.provider] += b.w * f.alloc
            demand_pmin[b.provider] += b.w * bid_demand(b, p_min)
            if self.quota_provider[b.provider]:  # D_c (§2.4, v4): x_i(π) at its price, before ζ_c
                self.quota_firm_demand[f.country] += b.w * bid_demand(b, price) / self.zeta[f.country]
        if self.tick == 0:
            self.tau0_check = sum(demand_pmin) / self.tau0_target
        if p.b_adapt > 0:  # §2.5 (v4), after every sum that reads the bids
            self.firms.do("adapt_budget")
        # (d)+(e) consumers: what firms did not buy, water-filled (deal hosts first).
        cons_capacity = [max(inference[q] - reserve[q] - sold[q], 0.0) for q in range(P)]
        cons_floor = [0.0] * P
        for k, c in enumerate(self.countries):
            if self.deal_mask[k]:
                cons_floor[c.policy_provider] += p.deal_cons_floor * p.deal_size
        # (v5) the firms' seats join the users in the plan layer's fill.
        seat_firms = [f for f in self.firms if f.seat_gen is not None]
        for f in seat_firms:
            q, w, cap, pw, h, host = f.seat_bid()
            if w * h * cap > 0.0:
                user_bids[q].append((cap / pw, w * h * cap, w * h * pw, host))
        self.levels = water_levels(user_bids, cons_capacity, cons_floor)
        self.users.do("settle")
        use_compute = [0.0] * P
        for u in self.users:
            if u.bid is not None:
                use_compute[u.bid[0]] += u.bid[1] * u.use * u.bid[4]
        seat_demand, seat_compute, seat_revenue = [0.0] * P, [0.0] * P, [0.0] * P
        tokens = [0.0] * P  # the plan layer's Mtok used: users' and (v5) seats'
        for u in self.users:
            if u.bid is not None:
                tokens[u.bid[0]] += u.bid[1] * u.use
        for f in seat_firms:  # firm_seat_settle, SeatSum
            f.seat_settle()
            q, w, cap, pw, h, host = f.seat_bid()
            seat_demand[q] += w * cap * h
            seat_compute[q] += f.weight * f.alloc
            seat_revenue[q] += w * self.seat_price[q]
            tokens[q] += f.weight * f.alloc / h
        # §7 price(provider, consumer): the plan layer's revenue per Mtok used.
        self.consumer_price = [(plan_revenue[q] + seat_revenue[q]) / tokens[q] if tokens[q] > 0 else math.nan
                               for q in range(P)]
        self.sum_statuses()
        price, revenue, util = [0.0] * P, [0.0] * P, [0.0] * P
        for q in range(P):
            pc = self.clearing[q]
            price[q] = pc.price
            revenue[q] = spend[q] + p_min * reserve[q] + plan_revenue[q] + seat_revenue[q]
            used = sold[q] + reserve[q] + use_compute[q] + seat_compute[q]
            util[q] = used / inference[q] if inference[q] > 0 else 0.0
            mk.settle(q, revenue[q], pc.price, pc.price_home if pc.first_resort else pc.price,
                      demand_pmin[q] + cons_demand[q] + seat_demand[q])
        self.out.update(price=price, revenue=revenue, utilisation=util)

    def sum_statuses(self) -> None:
        """§7 real firms per (tier, size class, status), size classes by employees per real
        firm 1–9, 10–49, 50–249, 250+; (v5) F_c, each country's share of real firms using
        AI (API or seats), for next tick's diffusion (sum_statuses)."""
        C = len(self.countries)
        by_tier = [[[0.0] * N_STATUS for _ in range(4)] for _ in range(3)]
        all_, use = [0.0] * C, [0.0] * C
        for f in self.firms:
            e = f.employees
            sc = 0 if e < 10 else 1 if e < 50 else 2 if e < 250 else 3
            by_tier[self.countries[f.country].tier - 1][sc][f.status] += f.weight
            all_[f.country] += f.weight
            if f.status in USES_AI:
                use[f.country] += f.weight
        self.firm_use_prev = [use[k] / all_[k] if all_[k] > 0 else 0.0 for k in range(C)]
        self.out["firms_by_status"] = by_tier

    def step_countries(self) -> None:
        """§2.10: per-country aggregates, GDP, adoption, access gap, lagged values,
        spillover; §6 policies by rule; §7 ranks (top-20% share, Gini)."""
        p, mk = self.p, self.labs
        cs = self.countries
        C = len(cs)
        Y, Emp, EmpK, BuyEmpK, BuyEmp, EmpKelig = ([0.0] * C for _ in range(6))
        entries = negative = 0.0
        gens = mk.gens
        for f in self.firms:
            k = f.country
            we = f.weight * f.employees
            Y[k] += we * f.A
            Emp[k] += we
            EmpK[k] += we * f.K
            EmpKelig[k] += we * f.K_elig
            if f.buying:
                BuyEmpK[k] += we * f.K
                BuyEmp[k] += we
            if f.entered:
                entries += f.weight
            if f.W < 0.0:
                negative += f.weight
        Adopt, Use, Cap, Capped, UserK, QuotaU, InMarket = ([0.0] * C for _ in range(7))
        for u in self.users:  # CountryUserSum
            if not u.adopter:
                continue
            k = u.country
            Adopt[k] += 1.0
            if u.generation is None:
                continue
            cap = u.cap()
            UserK[k] += gens[u.generation].K
            if self.quota_provider[u.provider]:
                QuotaU[k] += cap / self.zeta[k] * gens[u.generation].h
            if u.new:  # adopted in this tick's step 9: not in this tick's market (v4)
                continue
            InMarket[k] += 1.0
            Use[k] += u.use
            Cap[k] += cap
            Capped[k] += u.capped
        if self.Y0 is None:
            self.Y0 = list(Y)
        released = mk.released_frontier()
        capped = in_market = adopt_people = pop = 0.0
        tpa_num = tpa_den = gap_pop = 0.0  # (v5) compute caps' metrics (bench/compare.py CC_METRICS)
        Kbar, gdp = [0.0] * C, [0.0] * C
        for k, c in enumerate(cs):
            gdp[k] = c.gdp0 * (Y[k] / self.Y0[k] if self.Y0[k] > 0 else 1.0)
            Kbar[k] = EmpK[k] / Emp[k] if Emp[k] > 0 else 0.0
            c.adoption = Adopt[k] * c.w_user / c.population
            has_firms, has_users = BuyEmp[k] > 0, Adopt[k] > 0 and UserK[k] > 0
            firm_K = BuyEmpK[k] / BuyEmp[k] if BuyEmp[k] > 0 else 0.0
            user_K = UserK[k] / Adopt[k] if Adopt[k] > 0 else 0.0
            if has_firms and has_users:
                access = p.w_firm * firm_K + (1.0 - p.w_firm) * user_K
            else:
                access = firm_K if has_firms else (user_K if has_users else 0.0)
            c.gap = released - access
            c.adoption_prev = c.adoption
            c.use_ratio_prev = Use[k] / Cap[k] if Cap[k] > 0 else 1.0
            c.quota_demand_prev = self.quota_firm_demand[k] + QuotaU[k] * c.w_user
            capped += Capped[k] * c.w_user
            in_market += InMarket[k] * c.w_user
            adopt_people += c.adoption * c.population
            pop += c.population
            gap_pop += c.gap * c.population
            if InMarket[k] > 0:
                tpa_num += c.adoption * c.population * Use[k] / InMarket[k]
                tpa_den += c.adoption * c.population
        # Spillover for the next tick: ξ·(Σ_j a_cj·K̄_j / Σ_j a_cj − K̄_c)⁺, a_cj = GDP_j·tier_sim.
        tier = np.array([c.tier for c in cs])
        a = np.array(gdp)[None, :] * np.array(p.tier_sim)[np.abs(tier[:, None] - tier[None, :])]
        np.fill_diagonal(a, 0.0)
        num, den = a @ np.array(Kbar), a.sum(axis=1)
        for k, c in enumerate(cs):
            c.gdp_prev = gdp[k]
            c.spill = p.xi * max(num[k] / den[k] - Kbar[k], 0.0) if den[k] > 0 else 0.0
        # §6 policies by rule.
        any_policy = p.policy_build or p.policy_deal or p.policy_kyc
        for k, c in enumerate(cs):
            c.gap_run = c.gap_run + 1 if c.gap > p.gap_policy else 0
            if not any_policy or self.tick < p.lever_tick or c.policy_provider >= 0 or c.gap_run < p.n_policy:
                continue
            best = 0
            for q in range(1, len(mk.providers)):
                x, y = mk.align[k][q], mk.align[k][best]
                if x > y or (x == y and mk.providers[q].capacity > mk.providers[best].capacity):
                    best = q
            c.policy_provider = best
            if p.policy_build:
                c.policy |= 1
            if p.policy_deal:
                c.policy |= 2
                c.deal_order_tick = self.tick + 1
            if p.policy_kyc:
                c.policy |= 4
        # §7 ranks over the firms.
        used = [(f.weight, f.ai_value) for f in self.firms if f.used_ai]
        wv = np.array(used, dtype=float).reshape(-1, 2)
        ww = np.array([(f.weight, max(f.W, 0.0)) for f in self.firms])
        self.out.update(
            top20=top_share(wv[:, 0], wv[:, 1], 0.2),
            gini=gini(ww[:, 0], ww[:, 1]),
            adoption_world=adopt_people / pop,
            capped_share=capped / in_market if in_market > 0 else 0.0,
            negative_wealth=negative / sum(c.real_firms for c in cs),
            entries=entries,
            K_elig_world=sum(EmpKelig) / sum(Emp),
            tokens_per_adopter=tpa_num / tpa_den if tpa_den > 0 else math.nan,
            access_gap=gap_pop / pop,
        )


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def main(argv=None) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario")
    ap.add_argument("--firms", type=int, required=True)
    ap.add_argument("--users", type=int, required=True)
    ap.add_argument("--ticks", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--replicate", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--set", action="append", default=[], dest="sets", metavar="KEY=VALUE")
    ap.add_argument("--cutoff", default=os.path.join(here, "..", "..", "..", "build", "cutoff"))
    ap.add_argument("--diagnostics", action="store_true", help="add every collected series to the JSON")
    ap.add_argument("--tau0", type=float, help="use this τ0 (and --need0) instead of deriving them (§2.0): to "
                    "compare with cutoff's run at small counts, where τ0 hangs on the seed-0 sample")
    ap.add_argument("--need0", type=float)
    a = ap.parse_args(argv)
    if (a.tau0 is None) != (a.need0 is None):
        ap.error("--tau0 and --need0 go together")

    sets = a.sets + [f"n_firms={a.firms}", f"n_users={a.users}", f"horizon={a.ticks}", f"seed={a.seed}"]
    p = load_params(a.scenario, sets, a.cutoff)
    countries = load_countries(p.countries)
    t0 = time.perf_counter()
    model = CutoffModel(p, countries, seed=(a.seed << 32) | a.replicate,
                        scales=None if a.tau0 is None else (a.tau0, a.need0))
    init_seconds = time.perf_counter() - t0
    tick_seconds = []
    for _ in range(a.ticks):
        t0 = time.perf_counter()
        model.step()
        tick_seconds.append(time.perf_counter() - t0)

    df = model.datacollector.get_model_vars_dataframe()
    keys = ["mean_price", "top20_value_share", "adoption_share", "users_capped_share"]
    v5 = {"revenue": "revenue_total", "plan_price_plus": "plan_price_plus", "plan_value": "plan_value",
          "consumer_price": "consumer_price", "tokens_per_adopter": "tokens_per_adopter",
          "access_gap": "access_gap"}
    nanfix = lambda x: None if math.isnan(x) else x  # noqa: E731
    out = {
        "peer": "mesa", "firms": a.firms, "users": a.users, "ticks": a.ticks, "seed": a.seed,
        "replicate": a.replicate, "mesa_version": mesa.__version__, "tau0": model.tau0, "need0": model.need0,
        "init_seconds": init_seconds, "tick_seconds": tick_seconds,
        "metrics": {k: [nanfix(float(x)) for x in df[k]] for k in keys},
    }
    # (v5) what the v5 mechanisms move (bench/compare.py V5_METRICS)
    out["metrics"].update({k: [nanfix(float(x)) for x in df[c]] for k, c in v5.items()})
    out["metrics"]["firms_by_status"] = list(df["firms_by_status"])
    if a.diagnostics:
        out["diagnostics"] = {k: [v if isinstance(v, list) else float(v) for v in df[k]]
                              for k in df.columns if k not in keys and k != "firms_by_status"}
        out["diagnostics"]["tau0"] = model.tau0
        out["diagnostics"]["need0"] = model.need0
        out["diagnostics"]["tau0_demand_ratio_tick0"] = model.tau0_check
        out["diagnostics"]["tightness0_reached"] = model.tightness0_reached
    with open(a.out, "w") as fh:
        json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
