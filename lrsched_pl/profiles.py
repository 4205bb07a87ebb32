"""Performance profiles (Dolan & Moré 2002, as AlgoPerf uses them): how often is a method within a factor of the best?

For methods ``m`` and workloads ``w`` with scores ``s[m][w]`` (time to reach the workload's target, lower is better,
``inf`` when it was never reached), the ratio ``r[m][w] = s[m][w] / min_m' s[m'][w]`` and the profile

    rho_m(tau) = |{w : r[m][w] <= tau}| / |workloads|

is the share of workloads on which ``m`` reaches the target within ``tau`` times the fastest method's time.
``rho_m(1)`` is the share on which ``m`` is the fastest; a curve that rises earlier and higher is better. A workload
that no method solves counts against every method.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path


def ratios(scores: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """``r[m][w] = s[m][w] / best[w]``; ``inf`` where ``m`` missed the target or no method reached it.

    Args:
        scores: ``scores[method][workload]``, > 0 or ``inf``; every method must score every workload.

    Raises:
        ValueError: On a non-positive score or a method that lacks a workload.
    """
    workloads = sorted({w for per in scores.values() for w in per})
    for method, per in scores.items():
        if missing := [w for w in workloads if w not in per]:
            raise ValueError(f"method `{method}` has no score for workloads {missing}")
        if bad := {w: s for w, s in per.items() if not s > 0}:
            raise ValueError(f"scores must be > 0 (or inf), got {bad} for `{method}`")
    best = {w: min(per[w] for per in scores.values()) for w in workloads}
    return {m: {w: per[w] / best[w] if math.isfinite(best[w]) else math.inf for w in workloads}
            for m, per in scores.items()}  # fmt: skip


def profiles(scores: Mapping[str, Mapping[str, float]], taus: Sequence[float]) -> dict[str, list[float]]:
    """``rho_m(tau)`` for each method and each ``tau`` (see the module docstring)."""
    r = ratios(scores)
    return {m: [sum(v <= tau for v in per.values()) / len(per) for tau in taus] for m, per in r.items()}


def plot_profiles(
    scores: Mapping[str, Mapping[str, float]], path: Path, tau_max: float = 4.0, title: str = ""
) -> Path:
    """Draws every method's profile for ``tau`` in ``[1, tau_max]`` as a step curve into ``path`` (PNG).

    Methods are listed by the area under their curve, best first; each curve is shifted vertically by a small,
    distinct offset so that methods with equal profiles do not hide each other.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    taus = [1 + (tau_max - 1) * k / 300 for k in range(301)]
    curves = profiles(scores, taus)
    fig, ax = plt.subplots(figsize=(8.0, 4.2))
    styles = ["-", "--", "-.", ":"]
    ranked = sorted(curves.items(), key=lambda kv: -sum(kv[1]))  # the best area first, listed first
    for k, (method, rho) in enumerate(ranked):
        offset = 0.012 * (k - (len(ranked) - 1) / 2)  # equal curves would hide each other: shift each a little
        ax.step(taus, [r + offset for r in rho], where="post", label=method, linestyle=styles[k % 4],
                color=plt.get_cmap("tab10")(k % 10), linewidth=1.6)  # fmt: skip
    workloads = len(next(iter(scores.values())))
    ax.set(xlabel="τ (steps to target / the fastest arm's)", ylabel=f"share of the {workloads} workloads",
           xlim=(1, tau_max), ylim=(-0.08, 1.08), title=title or "Performance profiles")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), title="best first", title_fontsize=8)
    ax.text(1.0, -0.2, "curves offset vertically by up to ±0.05 so that equal ones stay visible", fontsize=7,
            transform=ax.transAxes, ha="right", va="top")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
