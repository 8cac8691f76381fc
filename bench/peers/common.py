"""Helpers both peers share: the layout arithmetic of docs/model.md §1 (as in
core/model/population.cpp), so the NumPy and Mesa peers differ only in how they run agents."""
import math


def pareto_capped_mean(alpha: float, cap: float) -> float:
    """E[min(X, cap)] for X Pareto(alpha, minimum 1)."""
    if abs(alpha - 1.0) < 1e-12:
        return 1.0 + math.log(cap)
    return 1.0 + (1.0 - cap ** (1.0 - alpha)) / (alpha - 1.0)


def share_largest_remainder(total: int, weight, floor: int) -> list[int]:
    """Shares `total` units in proportion to `weight`, each at least `floor`
    (pinning those below it and re-sharing until none is), by largest
    remainder, ties to the lower index (docs/model.md "Minimum agents")."""
    n = len(weight)
    weight = [float(x) for x in weight]
    out = [0] * n
    if n == 0:
        return out
    pinned = [False] * n
    f = floor if total >= floor * n else total // n
    while True:
        free_total = total
        wsum = 0.0
        for i in range(n):
            if pinned[i]:
                free_total -= f
            else:
                wsum += weight[i]
        changed = False
        for i in range(n):
            if not pinned[i] and (wsum <= 0 or float(free_total) * weight[i] / wsum < float(f)):
                pinned[i] = True
                changed = True
        if changed:
            continue
        rem = [-1.0] * n
        given = 0
        for i in range(n):
            if pinned[i]:
                out[i] = f
                continue
            exact = float(free_total) * weight[i] / wsum
            out[i] = int(math.floor(exact))
            rem[i] = exact - out[i]
            given += out[i]
        order = sorted(range(n), key=lambda i: -rem[i])  # stable: ties to the lower index
        left = free_total - given
        for i in order:
            if left <= 0:
                break
            if not pinned[i]:
                out[i] += 1
                left -= 1
        return out


SIZE_BAND_LOWER = (1.0, 10.0, 50.0, 250.0)   # §7's size classes by raw size: 1–9, 10–49, 50–249, 250+


def size_bands(x_L: float, alpha: float, cap: float, strata: bool, agents: int, firms: float):
    """docs/model.md §1 (v5) size bands of a country's small stratum (size_bands in
    core/model/population.cpp): the raw-size edges of the four bands (with `size_strata`
    [1, 10), [10, 50), [50, 250), [250, x_L), each cut at x_L; without it band 0 is
    [1, x_L) and the others are empty), the agents of each band (in proportion to its
    expected employment E[min(X, cap); lo ≤ X < hi], at least one each, largest remainder)
    and the real firms per agent of each band. Returns (edges[5], agents[4], weight[4])."""
    nb = len(SIZE_BAND_LOWER)
    edge = [min(SIZE_BAND_LOWER[b], x_L) if strata else (1.0 if b == 0 else x_L) for b in range(nb)] + [x_L]

    def above(x):
        return x ** (-alpha) if x < math.inf else 0.0

    def mass(x):
        h = min(x, cap)
        body = alpha * math.log(h) if abs(alpha - 1.0) < 1e-12 else alpha * (1.0 - h ** (1.0 - alpha)) / (alpha - 1.0)
        return body + (cap * (cap ** (-alpha) - above(x)) if x > cap else 0.0)

    used = [b for b in range(nb) if edge[b] < edge[b + 1]]
    share = share_largest_remainder(agents, [mass(edge[b + 1]) - mass(edge[b]) for b in used], 1)
    n, w = [0] * nb, [0.0] * nb
    for j, b in enumerate(used):
        n[b] = share[j]
        w[b] = firms * (above(edge[b]) - above(edge[b + 1])) / (1.0 - above(x_L)) / n[b]
    return edge, n, w
