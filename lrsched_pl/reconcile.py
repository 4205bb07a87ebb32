"""Resume reconciliation: what a checkpoint written under another config means for the schedule callback.

:class:`~lrsched_pl.callback.ScheduleCallback` saves the base values of every scheduled key (``lr0``, the
configured weight decay, ...), the plateau, the lengths its schedules were bound to and any rebinds, plus the config
it was written under (``schedule``, ``bound``, ``interval``, ``values``, ``plateau_settings``). Restoring under the
same config continues every curve exactly; every difference is reported, never silently half-restored:

- Another schedule, interval or scheduled values: the base values and the plateau are restored and the new
  schedules are evaluated at the restored time, so values may jump at the first step (warning).
- Another run length (``max_epochs``, ``max_steps``, batches, devices) under a length-dependent schedule: with
  ``rebind=true`` the rest of the curve is stretched to the new end without a jump (:mod:`lrsched_pl.rebind`);
  without, the schedule is bound to the new length and may jump (warning naming ``rebind=true``).
- Other plateau settings: restored and continued under the new settings (warning); another ``monitor`` or ``mode``
  keeps only the reductions so far (``scale``). A plateau dropped or added: its reductions dropped / started afresh.
- A checkpoint without the callback's state: the optimizer's restored values are taken as base values (warning).
- ``validation_pending``: a checkpoint written between a batch and the validation due right after it, which
  Lightning does not run on resume, so the plateau misses it (warning).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl
from lightning.pytorch.utilities.rank_zero import rank_zero_warn

from lrsched_pl.checkpoint import check_schedule_state

if TYPE_CHECKING:
    from lrsched_pl.callback import ScheduleCallback
    from lrsched_pl.plateau import ReducePlateau

Lengths = dict[str, "int | None"]
Warp = tuple[str, int, int, int]  # (interval, t0, old length, new length)


@dataclass
class Binding:
    """How to bind the schedules on this start: the lengths first bound to, and the rebinds since."""

    first: Lengths
    warps: list[Warp] = field(default_factory=list)

    def for_interval(self, interval: str) -> tuple[int | None, list[tuple[int, int, int]]]:
        return self.first.get(interval), [(t0, old, new) for i, t0, old, new in self.warps if i == interval]

    def ends(self) -> Lengths:
        """The length each interval's curve now ends at (the last rebind's, or the first)."""
        ends = dict(self.first)
        for interval, _, _, new in self.warps:
            ends[interval] = new
        return ends


def restore(callback: ScheduleCallback, state: dict[str, Any]) -> None:
    """Restores base values and plateau from ``state`` into ``callback``, warning about every config change.

    Raises:
        CheckpointError: On a state that cannot be resumed (:func:`lrsched_pl.checkpoint.check_schedule_state`).
    """
    check_schedule_state(state)  # NaN or negative LRs, a scale outside (0, 1]...: refused, never trained on
    callback.base_lrs = state.get("base_lrs")
    callback.base_values = dict(state.get("base_values") or {})
    callback._restored = state
    old = (state.get("schedule"), state.get("interval"))
    if None not in old and old != (repr(callback.schedule), callback.interval):
        rank_zero_warn(
            f"ScheduleCallback: the checkpoint was written with schedule {old[0]} (interval {old[1]}), this run "
            f"uses {callback.schedule!r} (interval {callback.interval}). The base LRs {callback.base_lrs} and the "
            "plateau state are restored and the new schedule is evaluated at the restored step/epoch, so the LR may "
            "jump at the first step. Start a new run without `ckpt_path` to begin the new schedule at t = 0."
        )
    values = state.get("values")
    now = [repr(v) for v in callback.values]
    if values is not None and values != now:
        rank_zero_warn(
            f"ScheduleCallback: the checkpoint's other scheduled values were {values or 'none'}, this run's are "
            f"{now or 'none'}. Their base values are restored where the checkpoint has them and the new schedules "
            "are evaluated at the restored step/epoch, so those values may jump at the first step."
        )
    _restore_plateau(callback.plateau, state.get("plateau"), state.get("plateau_settings"))
    if state.get("validation_pending") and callback.plateau is not None:
        rank_zero_warn(
            "ScheduleCallback: this checkpoint was written after a training batch and before the validation due "
            "right after it (e.g. by `ModelCheckpoint(every_n_train_steps=...)` on the last batch of an epoch). "
            "Lightning does not run that validation when resuming, so the plateau on "
            f"`{callback.plateau.monitor}` misses one observation and the LR may differ from an uninterrupted run's "
            "from here on. For exact resumes, resume from checkpoints written at the end of a validation "
            "(`ModelCheckpoint` with `every_n_epochs`, or an `every_n_train_steps` that falls between validations)."
        )


def binding(
    restored: dict[str, Any] | None,
    lengths: Lengths,
    times: dict[str, int],
    rebind: bool,
    depends: Callable[[str, int | None, int | None], bool] = lambda interval, old, new: True,
) -> Binding:
    """The lengths to bind to: the checkpoint's (plus a stretch for each changed length with ``rebind``), or the
    run's own.

    Args:
        restored: The checkpoint's callback state (``None`` on a fresh start).
        lengths: This run's length per interval (``None``: unknown).
        times: The restored time per interval.
        rebind: Whether to stretch the rest of each curve to a changed length instead of binding anew.
        depends: ``depends(interval, old, new)``: whether a schedule of that interval binds differently to the two
            lengths (a step decay does not: nothing to stretch, its curve continues as it was).
    """
    if not restored or not isinstance(restored.get("lengths"), dict):
        return Binding(dict(lengths))
    was = Binding({k: restored["lengths"].get(k) for k in lengths}, [tuple(w) for w in restored.get("warps") or []])
    ends = was.ends()
    out = Binding({})
    for interval, now in lengths.items():
        end, kept = ends.get(interval), [w for w in was.warps if w[0] == interval]
        if end == now or now is None or not depends(interval, end, now):
            # the same length, an unknown one now (a branch with max_epochs=-1), or one the schedules ignore:
            # the checkpoint's curve goes on as it was bound
            out.first[interval], out.warps = was.first.get(interval), out.warps + kept
        elif rebind and end is not None:
            out.first[interval], out.warps = was.first.get(interval), out.warps + kept + [(interval, times[interval], end, now)]
        else:  # bound anew to this run's length (reported by check_restored when the curve changes)
            out.first[interval] = now
    return out


def check_restored(callback: ScheduleCallback, trainer: pl.Trainer, t: int, restored: dict[str, Any] | None) -> None:
    """Resume warnings that need the Trainer, after the schedules are bound (``on_train_start``).

    Warns when resuming from a checkpoint that holds no state of the callback, or whose schedule resolved
    differently against the run's length while ``rebind`` is off (e.g. ``cosine`` with ``total: null`` after
    ``trainer.max_epochs`` changed).
    """
    if trainer.ckpt_path is None:
        return
    if restored is None or restored.get("base_lrs") is None:
        rank_zero_warn(
            f"ScheduleCallback: resuming from {trainer.ckpt_path}, which holds no state of this callback (it was "
            "written without a ScheduleCallback, or with another schedule class or interval, which are part of "
            "the callback's `state_key`). The LR of each param group as restored from the checkpoint's "
            f"optimizer, {callback.base_lrs}, is taken as lr0, the schedule continues at the restored t = {t}, and "
            "the plateau, if any, starts afresh. Start a new run without `ckpt_path` to begin the schedule at "
            "t = 0."
        )
        return
    new, old_bound = repr(callback.bound), restored.get("bound")
    if old_bound is not None and restored.get("schedule") == repr(callback.schedule) and old_bound != new:
        if callback.rebind:
            return
        rank_zero_warn(
            f"ScheduleCallback: the schedule resolves against this run's length as {new}, but as {old_bound} in the "
            f"run that wrote the checkpoint (the run's length changed: `max_epochs`, `max_steps`, batches or "
            f"devices). The LR follows the new curve from the restored t = {t}, so it may jump there; set "
            "`rebind=true` to stretch the rest of the checkpoint's curve to the new length instead."
        )


def validation_pending(trainer: pl.Trainer | None) -> bool:
    """Whether a checkpoint written now falls between a training batch and the validation due after it.

    That is a checkpoint written in ``on_train_batch_end`` (``ModelCheckpoint(every_n_train_steps=...)``) on a
    batch that validation follows. Lightning 2.6 does not run that validation when it resumes from such a
    checkpoint (``_TrainingEpochLoop`` skips it), so a plateau cannot observe it.
    """
    if trainer is None or not trainer.training or trainer.sanity_checking:
        return False
    loop = trainer.fit_loop.epoch_loop
    done = loop.batch_progress.current
    if not (done.ready == done.processed and done.completed == done.processed - 1):  # not in on_train_batch_end
        return False
    try:  # the same test Lightning makes right after this batch; private, so absent in another version
        return bool(loop._should_check_val_fx(trainer.fit_loop._data_fetcher))
    except AttributeError:
        return False


def _restore_plateau(plateau: ReducePlateau | None, state: dict[str, Any] | None, settings: dict[str, Any] | None) -> None:
    """Restores the plateau state, by the policy in this module's docstring."""
    if plateau is None:
        if state is not None and state.get("scale", 1.0) != 1.0:
            rank_zero_warn(
                f"ScheduleCallback: the checkpoint has a plateau that had reduced the LR by a factor of "
                f"{state['scale']}, this run has no plateau: that reduction is dropped and the LR returns to the "
                "schedule's own value."
            )
        return
    if state is None:
        rank_zero_warn(
            f"ScheduleCallback: the checkpoint has no plateau state; the plateau on `{plateau.monitor}` "
            "starts afresh (no best value, no reduction)."
        )
        return
    now = plateau.settings()
    changed = {k: (v, now[k]) for k, v in (settings or {}).items() if k in now and k != "strict" and now[k] != v}
    what = "; ".join(f"`{k}` {a!r} -> {b!r}" for k, (a, b) in changed.items())
    if "monitor" in changed or "mode" in changed:
        plateau.load_state_dict({**type(plateau)(**now).state_dict(), "scale": state["scale"]})
        rank_zero_warn(
            f"ScheduleCallback: the plateau's settings changed since the checkpoint ({what}). Its best value "
            f"{state['best']} cannot be compared with the new metric, so only its reductions so far (scale "
            f"{state['scale']}) are kept; the best value and the counters start afresh."
        )
        return
    plateau.load_state_dict(state)
    if changed:
        rank_zero_warn(
            f"ScheduleCallback: the plateau's settings changed since the checkpoint ({what}). Its state (best "
            f"{state['best']}, {state['num_bad']} bad validations, cooldown {state['cooldown_counter']}, scale "
            f"{state['scale']}) is restored and continues under the new settings."
        )
