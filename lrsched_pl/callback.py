"""The Lightning callback: the only code that touches the Trainer and the optimizers.

It binds the scheduled values (the LR of ``schedule``, plus any weight decay, momentum or per-group schedule,
:mod:`lrsched_pl.values`), writes them after each optimizer step or epoch, decides the plateau after each
validation, and saves and restores its state; what a checkpoint written under another config means is
:mod:`lrsched_pl.reconcile`'s business.

When it writes: the values for optimizer step ``k + 1`` are written right after optimizer step ``k``
(``on_train_batch_end`` once ``global_step`` has advanced; accumulation micro-batches change nothing), and the
first ones in ``on_train_start``, which runs after a checkpoint is restored. ``LearningRateMonitor`` reads the live
param groups in ``on_train_batch_start``, so it logs at step ``k`` the LR (weight decay, momentum) that step ``k``
uses, whatever order the callbacks are listed in.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from typing_extensions import override

from lrsched_pl import reconcile
from lrsched_pl.errors import ConfigValueError, check_choice
from lrsched_pl.plateau import ReducePlateau
from lrsched_pl.rebind import rebound
from lrsched_pl.schedules import Constant, Schedule
from lrsched_pl.values import (
    LR,
    MOMENTUM,
    WEIGHT_DECAY,
    CycledMomentum,
    ScheduledValue,
    Writer,
    assign,
    cycles_momentum,
    has_key,
    read,
    targets,
)


class ScheduleCallback(Callback):
    """Writes the learning rate (and any other scheduled param-group value) from pure schedules.

    ``lr = max(schedule(t, lr0) * plateau.scale, plateau.min_lr)`` (without a plateau: ``schedule(t, lr0)``),
    where ``lr0`` is the group's LR as configured and ``t`` counts optimizer steps (``trainer.global_step``, so
    gradient accumulation counts steps, not batches) or completed epochs. Every other scheduled value ``v``
    (``values``) is ``v(t) = its_schedule(t, v0)`` on its own interval (:class:`~lrsched_pl.values.ScheduledValue`).

    Args:
        schedule: A :class:`~lrsched_pl.schedules.Schedule`; default :class:`~lrsched_pl.schedules.Constant`.
        interval: ``"step"`` or ``"epoch"``: the unit of ``t`` and when the LR changes.
        plateau: Optional :class:`~lrsched_pl.plateau.ReducePlateau`, decided once after each real validation
            (never on the sanity check); the new LR applies from the next optimizer step. Under DDP the monitored
            value is averaged over ranks first, so every rank takes the same decision.
        values: More :class:`~lrsched_pl.values.ScheduledValue` s: weight decay, momentum, or an LR schedule of
            its own for named param groups (which then do not follow ``schedule``).
        rebind: On a resume into a run of another length, stretch the rest of each curve to the new end without
            a jump (:mod:`lrsched_pl.rebind`) instead of binding the schedules to the new length.

    Example:
        >>> from lrsched_pl import ScheduleCallback, StepDecay
        >>> cb = ScheduleCallback(StepDecay(step_size=10, gamma=0.5), interval="epoch")
        >>> # lightning.Trainer(callbacks=[cb, LearningRateMonitor()]).fit(model)
    """

    def __init__(
        self,
        schedule: Schedule | None = None,
        interval: Literal["step", "epoch"] | None = None,
        plateau: ReducePlateau | None = None,
        values: Sequence[ScheduledValue] = (),
        rebind: bool = False,
    ) -> None:
        from lrsched_pl.config import natural_interval  # pure Python: the option table

        self.schedule = schedule if schedule is not None else Constant()
        if not isinstance(self.schedule, Schedule):
            raise ConfigValueError(
                "schedule", schedule, f"a Schedule instance, e.g. CosineDecay() (the classes: {_schedule_classes()})"
            )
        if plateau is not None and not isinstance(plateau, ReducePlateau):
            raise ConfigValueError("plateau", plateau, "a ReducePlateau instance or None")
        self.interval = natural_interval(self.schedule) if interval is None else interval
        check_choice("interval", self.interval, ("step", "epoch"))
        self.plateau = plateau
        self.values = tuple(values)
        for value in self.values:
            if not isinstance(value, ScheduledValue):
                raise ConfigValueError("values", value, "ScheduledValue instances, e.g. ScheduledValue('weight_decay', CosineDecay())")
        if not isinstance(rebind, bool):
            raise ConfigValueError("rebind", rebind, "true or false")
        self.rebind = rebind
        self.base_lrs: list[list[float]] | None = None
        self.base_values: dict[str, list[list[float | None]]] = {}
        self.bound: Schedule | None = None
        self._binding: reconcile.Binding | None = None
        self._writers: dict[str, list[Writer]] = {"step": [], "epoch": []}
        self._step_t: int | None = None  # the step whose values were written last
        self._step_writers: list[Writer] = []
        self._restored: dict[str, Any] | None = None
        self._fitting = _WeakTrainer()
        self._names = _Names()

    def __repr__(self) -> str:
        extra = f", values={list(self.values)!r}" if self.values else ""
        extra += ", rebind=True" if self.rebind else ""
        return f"ScheduleCallback(schedule={self.schedule!r}, interval={self.interval!r}, plateau={self.plateau!r}{extra})"

    def use_config_names(
        self, schedule: str = "schedule", plateau: str = "plateau", values: Sequence[str] = ()
    ) -> ScheduleCallback:
        """Makes error messages name config keys (``schedule.monitor``, ``wd_schedule``) rather than Python arguments.

        Called by the Hydra target :func:`lrsched_pl.config.schedule_callback`; ``plateau`` is ``"schedule"`` for
        ``schedule=plateau``, whose keys are the plateau's; ``values`` names each of ``values``.
        """
        self._names = _Names(schedule, plateau, values)
        return self

    @property
    @override
    def state_key(self) -> str:
        # one fixed key: a resume under another schedule still finds the base LRs and reports the change
        # (reconcile.restore); Lightning reads this on every hook call, so it is a constant, not built each time
        return "ScheduleCallback"

    # ---- hooks: guard, then delegate -------------------------------------------------------------------------

    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        _log_scheduled_keys(trainer, {v.key for v in self.values} | ({MOMENTUM} if cycles_momentum(self.schedule) else set()))
        if trainer.lr_scheduler_configs:
            names = [type(c.scheduler).__name__ for c in trainer.lr_scheduler_configs]
            raise RuntimeError(
                f"`configure_optimizers` returned LR scheduler(s) {names} and a ScheduleCallback is also set: both "
                "would write the learning rate. Either return only the optimizer from `configure_optimizers`, or "
                "remove the ScheduleCallback."
            )

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        groups = [len(opt.param_groups) for opt in trainer.optimizers]
        if self.base_lrs is None:
            self.base_lrs = [[float(g["lr"]) for g in opt.param_groups] for opt in trainer.optimizers]
        elif [len(lrs) for lrs in self.base_lrs] != groups:
            raise RuntimeError(
                f"The checkpoint's ScheduleCallback state has param groups {[len(x) for x in self.base_lrs]} per "
                f"optimizer, the model now has {groups}. Resume with the optimizer setup the checkpoint was "
                "written with, or start a new run without `ckpt_path`."
            )
        intervals = {self.interval, *(v.interval for v in self.values)}
        if "step" in intervals and not pl_module.automatic_optimization and len(trainer.optimizers) > 1:
            raise RuntimeError(
                f"{self._names.schedule_key('interval', 'step')} counts optimizer steps with `trainer.global_step`, "
                "which under manual optimization counts every `optimizer.step()` call of each of the "
                f"{len(trainer.optimizers)} optimizers. Use {self._names.schedule_key('interval', 'epoch')}, or step "
                "a single optimizer."
            )
        self._fitting = _WeakTrainer(trainer)
        restored = self._restored if trainer.ckpt_path else None
        times = {"step": trainer.global_step, "epoch": _epochs(trainer)}
        self._binding = reconcile.binding(restored, _lengths(trainer), times, self.rebind, self._depends)
        self._bind(trainer)
        reconcile.check_restored(self, trainer, times[self.interval], restored)
        self._restored = None
        for interval in ("step", "epoch"):
            self._apply(interval, times[interval])

    @override
    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any, **kwargs: Any) -> None:
        writers = self._step_writers
        if writers:
            t = trainer.global_step  # unchanged on accumulation micro-batches: then there is nothing to do
            if t != self._step_t:
                self._step_t = t
                for writer in writers:
                    writer.write(t)

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._apply("epoch", _epochs(trainer))

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.plateau is None or trainer.sanity_checking or trainer.state.fn != "fit":
            return
        metric = self._read_monitor(trainer)
        if metric is None:  # not logged, and the plateau is not strict: this validation is skipped
            return
        times = {"step": trainer.global_step, "epoch": _epochs(trainer)}
        lrs = [w.unreduced(times[w.interval]) for ws in self._writers.values() for w in ws if w.key == LR]
        if self.plateau.step(metric, [lr for group in lrs for lr in group]):
            for interval in ("step", "epoch"):  # the new scale applies from the next optimizer step
                self._apply(interval, times[interval])

    # ---- checkpointing ---------------------------------------------------------------------------------------

    @override
    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs to continue the same curves, as plain Python values (``weights_only`` loads).

        ``base_lrs``, ``base_values`` (every other scheduled key's configured value per group), ``plateau``,
        ``lengths`` (what the schedules were first bound to) and ``warps`` (rebinds since) are the state.
        ``schedule``, ``bound``, ``interval``, ``values`` and ``plateau_settings`` record the config it was written
        under, so that a resume under another config is reported (:mod:`lrsched_pl.reconcile`).
        ``validation_pending`` marks a checkpoint written before a validation Lightning will not re-run.
        """
        if self.bound is None:  # not trained since a load_state_dict: hand back what was loaded
            restored = self._restored or {}
            bound_repr, pending = restored.get("bound"), bool(restored.get("validation_pending"))
            lengths, warps = restored.get("lengths"), restored.get("warps") or []
        else:
            bound_repr, pending = repr(self.bound), reconcile.validation_pending(self._fitting())
            lengths, warps = self._binding.first, [list(w) for w in self._binding.warps]  # type: ignore[union-attr]
        return {
            "base_lrs": self.base_lrs,
            "base_values": self.base_values,
            "schedule": repr(self.schedule),
            "bound": bound_repr,
            "interval": self.interval,
            "values": [repr(v) for v in self.values],
            "lengths": lengths,
            "warps": warps,
            "plateau": self.plateau.state_dict() if self.plateau is not None else None,
            "plateau_settings": self.plateau.settings() if self.plateau is not None else None,
            "validation_pending": pending,
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restores the base values and the plateau; every difference from the checkpoint's config is warned about
        (:func:`lrsched_pl.reconcile.restore`).

        Raises:
            CheckpointError: On a state that cannot be resumed (:func:`lrsched_pl.checkpoint.check_schedule_state`).
        """
        reconcile.restore(self, state_dict)

    # ---- the work --------------------------------------------------------------------------------------------

    def _all_values(self) -> tuple[list[ScheduledValue], list[str]]:
        """The LR's scheduled value, its cycled momentum (``onecycle``, ``cyclic``), then ``values``; with names."""
        lr = ScheduledValue(LR, self.schedule, self.interval)
        found, names = [lr], [self._names.schedule]
        if cycles_momentum(self.schedule):
            found.append(ScheduledValue(MOMENTUM, CycledMomentum(self.schedule), self.interval))
            names.append(self._names.schedule_key("cycle_momentum", False) + " (the schedule cycles momentum)")
        found += self.values
        names += self._names.values(self.values)
        return found, names

    def _depends(self, interval: str, old: int | None, new: int | None) -> bool:
        """Whether a schedule of ``interval`` binds differently to run lengths ``old`` and ``new``."""
        schedules = [self.schedule] if self.interval == interval else []
        schedules += [v.schedule for v in self.values if v.interval == interval]
        try:
            return any(repr(s.bind(old)) != repr(s.bind(new)) for s in schedules)
        except ConfigValueError:  # a length one of them cannot hold: bound anew, where the error is reported
            return True

    def _bind(self, trainer: pl.Trainer) -> None:
        """Binds every scheduled value to the run's length and decides which param groups each one writes."""
        binding = self._binding
        values, names = self._all_values()
        if len(values) > 1 and isinstance(values[1].schedule, CycledMomentum):
            for opt in trainer.optimizers:
                if not all(has_key(g, MOMENTUM) for g in opt.param_groups):
                    raise RuntimeError(
                        f"The schedule cycles momentum, but {type(opt).__name__} has neither `momentum` nor `betas`. "
                        f"Set {self._names.schedule_key('cycle_momentum', False)}, or use an optimizer with momentum "
                        "(SGD, RMSprop, Adam...)."
                    )
        assigned = assign(values, trainer.optimizers, names)
        for value in values[1:]:
            if value.key != LR and value.key not in self.base_values:
                self.base_values[value.key] = [
                    [read(g, value.key) if has_key(g, value.key) else None for g in opt.param_groups]
                    for opt in trainer.optimizers
                ]
        self._writers = {"step": [], "epoch": []}
        for value, name, groups in zip(values, names, assigned):
            first, warps = binding.for_interval(value.interval)
            try:
                bound = rebound(value.schedule, first, warps)
            except ConfigValueError as err:
                raise err.under(name) from None
            base = self.base_lrs if value.key == LR else self.base_values[value.key]
            where_base = {(i, j): v for i, row in enumerate(base) for j, v in enumerate(row) if v is not None}
            writer = Writer(value, bound, targets(value, groups, where_base), self.plateau)
            if value.key == LR:
                for target in writer.targets:
                    try:
                        bound.check_lr(target.v0)
                        if self.plateau is not None:
                            self.plateau.check_lr(target.v0)
                    except ConfigValueError as err:
                        raise err.under(name) from None
            self._writers[value.interval].append(writer)
            if value is values[0]:
                self.bound = bound
        self._step_writers = self._writers["step"]

    def _read_monitor(self, trainer: pl.Trainer) -> float | None:
        """This validation's monitored value, the same on every rank; ``None`` when skipped (``strict=False``).

        Under DDP each rank reads its own ``trainer.callback_metrics``, which hold the rank's local value unless
        the metric was logged with ``sync_dist=True``. The ranks then all-reduce ``(value, logged)`` and use the
        **mean over ranks**, as ``sync_dist=True`` would have, so every rank feeds the same number to its own
        plateau and the plateaus, identical since the start (or the same checkpoint), stay identical. The mean is
        preferred to broadcasting rank 0's decision because it uses every rank's validation shard rather than
        one, and equals the logged value when the metric is already synchronized. A metric missing on any rank
        is handled on every rank alike (an error on all of them, not one rank raising while the others wait). A
        value left in ``callback_metrics`` by an earlier validation counts as missing, never as a new observation.

        Raises:
            RuntimeError: If ``monitor`` was not logged (on some rank) and the plateau is strict; the message lists
                the metrics that were.
        """
        name = self.plateau.monitor
        value = trainer.callback_metrics.get(name)
        # `callback_metrics` keeps a metric's last value when a validation does not log it; that stale value is
        # the very object seen last time (each logged value is a new tensor): not an observation of this one
        if value is not None and value is getattr(self, "_last_monitored", None):
            value = None
        else:
            self._last_monitored = value
        local = [0.0, 0.0] if value is None else [float(value), 1.0]
        total = trainer.strategy.reduce(
            torch.tensor(local, dtype=torch.float64, device=trainer.strategy.root_device), reduce_op="sum"
        )
        ranks = trainer.world_size
        logged_on = int(total[1].item())
        if logged_on < ranks:
            available = sorted(k for k in trainer.callback_metrics if not k.startswith("lr-") and k != name)
            where = "" if ranks == 1 else f" on {ranks - logged_on} of {ranks} ranks"
            self.plateau.missing(
                f"ScheduleCallback's plateau monitors `{name}`, which was not logged during validation{where}. "
                f"Available metrics are: {available}. Log it with `self.log({name!r}, ...)` in the LightningModule's "
                f"validation hooks, or set {self._names.plateau_key('monitor')} to one of the available metrics."
            )
            return None
        return float(total[0].item()) / ranks

    def _apply(self, interval: str, t: int) -> None:
        """Writes every value of ``interval`` at time ``t``."""
        for writer in self._writers[interval]:
            writer.write(t)
        if interval == "step":
            self._step_t = t


def _log_scheduled_keys(trainer: pl.Trainer, keys: set[str]) -> None:
    """Turns on ``LearningRateMonitor``'s ``log_weight_decay`` / ``log_momentum`` where those are scheduled, so
    TensorBoard shows every scheduled value at every step (before the monitor's own ``on_train_start``)."""
    from lightning.pytorch.callbacks import LearningRateMonitor

    for callback in trainer.callbacks:
        if isinstance(callback, LearningRateMonitor):
            callback.log_weight_decay = callback.log_weight_decay or WEIGHT_DECAY in keys
            callback.log_momentum = callback.log_momentum or MOMENTUM in keys


def _epochs(trainer: pl.Trainer) -> int:
    # `processed` counts the epoch that is ending already in `on_train_epoch_end` (`current_epoch` only after
    # it), and equals `current_epoch` in `on_train_start`, also after a restore.
    return trainer.fit_loop.epoch_progress.current.processed


def _lengths(trainer: pl.Trainer) -> dict[str, int | None]:
    """The run's length in optimizer steps and in epochs (``None``: unknown or infinite)."""
    steps = trainer.estimated_stepping_batches
    epochs = trainer.max_epochs if trainer.max_epochs not in (None, -1) else None
    return {
        "step": int(steps) if steps is not None and math.isfinite(steps) else None,
        "epoch": int(epochs) if epochs is not None else None,
    }


class _WeakTrainer:
    """A weak reference to the Trainer that is fitting, which pickles and deep-copies as an empty reference."""

    def __init__(self, trainer: pl.Trainer | None = None) -> None:
        self._ref = None if trainer is None else weakref.ref(trainer)

    def __call__(self) -> pl.Trainer | None:
        return None if self._ref is None else self._ref()

    def __reduce__(self) -> tuple[Any, ...]:
        return (_WeakTrainer, ())


def _schedule_classes() -> str:
    from lrsched_pl import compose, schedules

    found = {
        c.__name__
        for module in (schedules, compose)
        for c in vars(module).values()
        if isinstance(c, type) and issubclass(c, Schedule) and c is not Schedule
    }
    return ", ".join(sorted(found))


class _Names:
    """How error messages name a schedule's or plateau's key: as a config override or as a Python argument.

    Args:
        schedule: The config key of the schedule node (``"schedule"``), or ``None`` for Python callers.
        plateau: The config key of the plateau node (``"plateau"``, or ``"schedule"`` for ``schedule=plateau``).
    """

    def __init__(self, schedule: str | None = None, plateau: str | None = None, values: Sequence[str] = ()) -> None:
        self.schedule, self._plateau, self._values = schedule or "schedule", plateau, list(values)
        self._config = schedule is not None

    def values(self, values: Sequence[ScheduledValue]) -> list[str]:
        """How messages name each of ``values``: its config key, or ``values[i]`` (its label) in Python."""
        if self._config and len(self._values) == len(values):
            return list(self._values)
        return [f"values[{i}] ({v.label})" for i, v in enumerate(values)]

    def schedule_key(self, key: str, value: Any) -> str:
        if self._config:
            shown = str(value).lower() if isinstance(value, bool) else value
            return f"`{self.schedule}.{key}={shown}`"
        return f"`ScheduleCallback({key}={value!r})`" if key == "interval" else f"`{key}={value!r}` on the schedule"

    def plateau_key(self, key: str) -> str:
        return f"`{self._plateau}.{key}`" if self._config else f"`ReducePlateau({key}=...)`"
