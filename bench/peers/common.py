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
