"""Resuming with a new horizon: the rest of a schedule stretched over a longer (or shorter) run, without a jump.

A schedule bound to a run of ``old`` intervals, resumed at ``t0`` into a run of ``new`` intervals
(``trainer.max_epochs`` or ``max_steps`` changed), with ``rebind=true``::

    lr(t) = S_old(t),                                              t <= t0
    lr(t) = S_old(t0 + (t - t0) * (old - t0) / (new - t0)),        t0 < t      (old > t0, new > t0)
    lr(t) = S_old(t),                                              old <= t0   (the old curve had ended)

so the LR at ``t0`` is the checkpoint's, and the rest of the old curve (a cosine's or linear decay's descent, a
one-cycle's annihilation, ``wsd``'s cooldown, a fractional warmup still under way) is stretched to end at the new
run's end instead of the old one's. What this gives per schedule:

- Schedules whose curve depends on the run's length (``cosine``, ``linear``, ``polynomial``, ``onecycle``, ``wsd``,
  ``total: null`` or a fraction, ``Dur`` lengths anywhere): continuous at ``t0``, they reach their final value at the
  new end.
- Schedules whose lengths are absolute (``constant``, ``step``, ``multistep``, ``exponential``, ``time_based``,
  ``inverse_sqrt``, ``cyclic`` with int steps, ``piecewise``): the run's length does not change them, so there is
  nothing to rebind and the curve continues unchanged.
- A curve that had ended before ``t0`` (a finished cosine at ``min_lr``) stays at its end value: it cannot decay
  again without a jump up.

Without ``rebind`` the schedule is bound to the new length and evaluated at ``t0``, so the LR may jump (warned).
"""

from __future__ import annotations

from dataclasses import dataclass

from lrsched_pl.schedules import Schedule


@dataclass(frozen=True)
class Rebound(Schedule):
    """``inner`` (bound to ``old`` intervals) with its part after ``t0`` stretched to end at ``new``.

    Args:
        inner: The schedule as the checkpoint's run bound it.
        t0: The interval the run was resumed at.
        old: The length ``inner`` was bound to.
        new: The resumed run's length.
    """

    inner: Schedule = None  # type: ignore[assignment]
    t0: int = 0
    old: int = 0
    new: int = 0

    def time(self, t: float) -> float:
        """The time of ``inner`` that time ``t`` of the resumed run maps to."""
        if t <= self.t0 or self.old <= self.t0 or self.new <= self.t0:
            return t
        return self.t0 + (t - self.t0) * (self.old - self.t0) / (self.new - self.t0)

    def affine(self, t: int) -> tuple[float, float]:
        return self.inner.affine(self.time(t))  # type: ignore[arg-type]

    def momentum(self, t: int) -> float | None:
        return self.inner.momentum(self.time(t))  # type: ignore[arg-type]

    def bind(self, run: int | None, horizon: int | None = None) -> Rebound:
        return self

    def check_lr(self, lr0: float) -> None:
        self.inner.check_lr(lr0)


def rebound(schedule: Schedule, first: int | None, warps: list[tuple[int, int, int]]) -> Schedule:
    """``schedule`` bound to ``first`` intervals, then stretched by each ``(t0, old, new)`` of ``warps`` in turn."""
    bound = schedule.bind(first)
    for t0, old, new in warps:
        bound = Rebound(bound, t0, old, new)
    return bound
