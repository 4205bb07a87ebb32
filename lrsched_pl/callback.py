"""The Lightning callback: the only code that touches the Trainer and the optimizers.

When it sets the LR: the LR for optimizer step ``k + 1`` is written right after optimizer step ``k``
(``on_train_batch_end`` once ``global_step`` has advanced; accumulation micro-batches change nothing), and the
first one in ``on_train_start``, which runs after a checkpoint is restored. ``LearningRateMonitor`` reads the live
``param_group["lr"]`` in ``on_train_batch_start``, so it logs at step ``k`` the LR that step ``k`` uses whatever
order the callbacks are listed in.
"""

from __future__ import annotations

import math
import weakref
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from typing_extensions import override

from lrsched_pl.checkpoint import check_schedule_state
from lrsched_pl.errors import ConfigValueError, check_choice
from lrsched_pl.plateau import ReducePlateau
from lrsched_pl.schedules import Constant, Schedule


class ScheduleCallback(Callback):
    """Sets every param group's learning rate from a pure schedule, optionally reduced on a plateau.

    ``lr = max(schedule(t, lr0) * plateau.scale, plateau.min_lr)`` (without a plateau: ``schedule(t, lr0)``),
    where ``lr0`` is the group's LR as configured and ``t`` counts optimizer steps (``trainer.global_step``, so
    gradient accumulation counts steps, not batches) or completed epochs.

    Args:
        schedule: A :class:`~lrsched_pl.schedules.Schedule`; default :class:`~lrsched_pl.schedules.Constant`.
        interval: ``"step"`` or ``"epoch"``: the unit of ``t`` and when the LR changes.
        plateau: Optional :class:`~lrsched_pl.plateau.ReducePlateau`, decided once after each real validation
            (never on the sanity check); the new LR applies from the next optimizer step. Under DDP the monitored
            value is averaged over ranks first, so every rank takes the same decision.

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
        self.base_lrs: list[list[float]] | None = None
        self._bound: Schedule | None = None
        self._applied: tuple[int, float] | None = None
        self._groups: list[tuple[dict[str, Any], float]] = []
        self._names = _Names()

    def __repr__(self) -> str:
        return f"ScheduleCallback(schedule={self.schedule!r}, interval={self.interval!r}, plateau={self.plateau!r})"

    def use_config_names(self, schedule: str = "schedule", plateau: str = "plateau") -> ScheduleCallback:
        """Makes error messages name config keys (``schedule.monitor``) rather than Python arguments.

        Called by the Hydra target :func:`lrsched_pl.config.schedule_callback`; ``plateau`` is ``"schedule"`` for
        ``schedule=plateau``, whose keys are the plateau's.
        """
        self._names = _Names(schedule, plateau)
        return self

    @property
    @override
    def state_key(self) -> str:
        # one fixed key: a resume under another schedule still finds the base LRs and reports the change
        # (load_state_dict); Lightning reads this on every hook call, so it is a constant, not built each time
        return "ScheduleCallback"

    # ---- hooks: guard, then delegate -------------------------------------------------------------------------

    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
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
        if self.interval == "step" and not pl_module.automatic_optimization and len(trainer.optimizers) > 1:
            raise RuntimeError(
                f"{self._names.schedule_key('interval', 'step')} counts optimizer steps with `trainer.global_step`, "
                "which under manual optimization counts every `optimizer.step()` call of each of the "
                f"{len(trainer.optimizers)} optimizers. Use {self._names.schedule_key('interval', 'epoch')}, or step "
                "a single optimizer."
            )
        self._bind(trainer)
        self._check_restored(trainer)
        check_momentum(trainer.optimizers, self._bound, self._length, self._names.schedule_key("cycle_momentum", False))
        self._groups = [  # (param group, its lr0), walked on every write
            (group, lr0) for opt, lr0s in zip(trainer.optimizers, self.base_lrs) for group, lr0 in zip(opt.param_groups, lr0s)
        ]
        self._applied = None
        self._apply(self._time(trainer))

    @override
    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any, **kwargs: Any) -> None:
        if self.interval == "step" and self._applied is not None:
            t = trainer.global_step  # unchanged on accumulation micro-batches: then there is nothing to do
            if t != self._applied[0]:
                self._apply(t)

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.interval == "epoch":
            self._apply(self._time(trainer))

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.plateau is None or trainer.sanity_checking or trainer.state.fn != "fit":
            return
        metric = self._read_monitor(trainer)
        if metric is None:  # not logged, and the plateau is not strict: this validation is skipped
            return
        t = self._time(trainer)
        lrs = [self._bound(t, lr0) for group in self.base_lrs for lr0 in group]
        if self.plateau.step(metric, lrs):
            self._apply(t)

    # ---- checkpointing ---------------------------------------------------------------------------------------

    @override
    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs to continue the same LR curve, as plain Python values (``weights_only`` loads).

        ``base_lrs`` and ``plateau`` are the state. ``schedule``, ``bound`` (the schedule resolved against the run's
        length), ``interval`` and ``plateau_settings`` record the config it was written under, so that a resume
        with another config is reported (:meth:`load_state_dict`). ``validation_pending`` is true for a checkpoint
        written between a training batch and the validation due right after it (:meth:`_validation_pending`).
        """
        bound = getattr(self, "_bound", None)
        if bound is None:  # not trained since a load_state_dict: hand back what was loaded
            restored = getattr(self, "_restored", None) or {}
            bound_repr, pending = restored.get("bound"), bool(restored.get("validation_pending"))
        else:
            bound_repr, pending = repr(bound), self._validation_pending()
        return {
            "base_lrs": self.base_lrs,
            "schedule": repr(self.schedule),
            "bound": bound_repr,
            "interval": self.interval,
            "plateau": self.plateau.state_dict() if self.plateau is not None else None,
            "plateau_settings": self.plateau.settings() if self.plateau is not None else None,
            "validation_pending": pending,
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restores the base LRs and the plateau; every difference from the checkpoint's config is warned about.

        What happens (never a silent half-restore):

        - Same schedule, interval and plateau settings: all is restored, the LR curve continues exactly.
        - Another schedule or interval: the base LRs and the plateau state are restored and the new schedule is
          evaluated at the restored time, so the LR may jump at the first step (warning). A schedule of another
          class, or another interval, changes this callback's ``state_key``: its state is then not found at all,
          which :meth:`_check_restored` reports when training starts.
        - Other plateau settings: the state is restored and continues under the new settings (warning); with
          another ``monitor`` or ``mode`` the old best means nothing, so only the plateau's ``scale`` (the
          reductions so far) is kept and the best and counters start afresh (warning).
        - A plateau in the checkpoint, none now: its reductions are dropped (warning). A plateau now, none in the
          checkpoint: it starts afresh (warning).
        - ``validation_pending``: Lightning will not run that validation, so the plateau misses it (warning).

        Raises:
            CheckpointError: On a state that cannot be resumed (:func:`lrsched_pl.checkpoint.check_schedule_state`).
        """
        check_schedule_state(state_dict)  # NaN or negative LRs, a scale outside (0, 1]...: refused, never trained on
        self.base_lrs = state_dict.get("base_lrs")
        self._restored = state_dict
        old = (state_dict.get("schedule"), state_dict.get("interval"))
        if None not in old and old != (repr(self.schedule), self.interval):
            rank_zero_warn(
                f"ScheduleCallback: the checkpoint was written with schedule {old[0]} (interval {old[1]}), this run "
                f"uses {self.schedule!r} (interval {self.interval}). The base LRs {self.base_lrs} and the plateau "
                "state are restored and the new schedule is evaluated at the restored step/epoch, so the LR may jump "
                "at the first step. Start a new run without `ckpt_path` to begin the new schedule at t = 0."
            )
        self._load_plateau(state_dict.get("plateau"), state_dict.get("plateau_settings"))
        if state_dict.get("validation_pending") and self.plateau is not None:
            rank_zero_warn(
                "ScheduleCallback: this checkpoint was written after a training batch and before the validation due "
                "right after it (e.g. by `ModelCheckpoint(every_n_train_steps=...)` on the last batch of an epoch). "
                "Lightning does not run that validation when resuming, so the plateau on "
                f"`{self.plateau.monitor}` misses one observation and the LR may differ from an uninterrupted run's "
                "from here on. For exact resumes, resume from checkpoints written at the end of a validation "
                "(`ModelCheckpoint` with `every_n_epochs`, or an `every_n_train_steps` that falls between validations)."
            )

    # ---- the work --------------------------------------------------------------------------------------------

    def _time(self, trainer: pl.Trainer) -> int:
        if self.interval == "step":
            return trainer.global_step
        # `processed` counts the epoch that is ending already in `on_train_epoch_end` (`current_epoch` only
        # after it), and equals `current_epoch` in `on_train_start`, also after a restore.
        return trainer.fit_loop.epoch_progress.current.processed

    def _bind(self, trainer: pl.Trainer) -> None:
        if self.interval == "step":
            length = trainer.estimated_stepping_batches
        else:
            length = trainer.max_epochs if trainer.max_epochs not in (None, -1) else None
        if length is not None and not math.isfinite(length):
            length = None
        self._length = None if length is None else int(length)
        try:
            self._bound = self.schedule.bind(self._length)
            for group in self.base_lrs:
                for lr0 in group:
                    self._bound.check_lr(lr0)
                    if self.plateau is not None:
                        self.plateau.check_lr(lr0)
        except ConfigValueError as err:
            raise err.under(self._names.schedule) from None

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

    def _apply(self, t: int) -> None:
        """Writes the LR (and momentum, where the schedule cycles it) of time ``t`` into every param group."""
        plateau = self.plateau
        key = (t, plateau.scale if plateau is not None else 1.0)
        if key == self._applied:
            return
        scale, shift = self._bound.affine(t)
        if plateau is None:
            for group, lr0 in self._groups:
                group["lr"] = scale * lr0 + shift
        else:  # max(lr * plateau.scale, plateau.min_lr), folded into the affine map
            p, floor = plateau.scale, plateau.min_lr
            scale, shift = scale * p, shift * p
            for group, lr0 in self._groups:
                lr = scale * lr0 + shift
                group["lr"] = lr if lr > floor else floor
        momentum = self._bound.momentum(t)
        if momentum is not None:
            for group, _ in self._groups:
                set_momentum(group, momentum)
        self._applied = key

    # ---- resume checks (private helpers) ---------------------------------------------------------------------

    def _load_plateau(self, state: dict[str, Any] | None, settings: dict[str, Any] | None) -> None:
        """Restores the plateau state, by the policy of :meth:`load_state_dict`."""
        if self.plateau is None:
            if state is not None and state.get("scale", 1.0) != 1.0:
                rank_zero_warn(
                    f"ScheduleCallback: the checkpoint has a plateau that had reduced the LR by a factor of "
                    f"{state['scale']}, this run has no plateau: that reduction is dropped and the LR returns to the "
                    "schedule's own value."
                )
            return
        if state is None:
            rank_zero_warn(
                f"ScheduleCallback: the checkpoint has no plateau state; the plateau on `{self.plateau.monitor}` "
                "starts afresh (no best value, no reduction)."
            )
            return
        now = self.plateau.settings()
        changed = {k: (v, now[k]) for k, v in (settings or {}).items() if k in now and k != "strict" and now[k] != v}
        if "monitor" in changed or "mode" in changed:
            self.plateau.load_state_dict({**type(self.plateau)(**now).state_dict(), "scale": state["scale"]})
            what = "; ".join(f"`{k}` {a!r} -> {b!r}" for k, (a, b) in changed.items())
            rank_zero_warn(
                f"ScheduleCallback: the plateau's settings changed since the checkpoint ({what}). Its best value "
                f"{state['best']} cannot be compared with the new metric, so only its reductions so far (scale "
                f"{state['scale']}) are kept; the best value and the counters start afresh."
            )
            return
        self.plateau.load_state_dict(state)
        if changed:
            what = "; ".join(f"`{k}` {a!r} -> {b!r}" for k, (a, b) in changed.items())
            rank_zero_warn(
                f"ScheduleCallback: the plateau's settings changed since the checkpoint ({what}). Its state (best "
                f"{state['best']}, {state['num_bad']} bad validations, cooldown {state['cooldown_counter']}, scale "
                f"{state['scale']}) is restored and continues under the new settings."
            )

    def _check_restored(self, trainer: pl.Trainer) -> None:
        """Resume checks that need the Trainer; ``on_train_start`` calls it right after ``self._bind(trainer)``.

        Keeps a weak reference to the Trainer for :meth:`_validation_pending`, and warns when resuming from a
        checkpoint that holds no state of this callback (written without it, or under another ``state_key``), or
        whose schedule resolved differently against the run's length (e.g. ``cosine`` with ``total: null`` after
        ``trainer.max_epochs`` changed).
        """
        self._fitting = _WeakTrainer(trainer)
        restored, self._restored = getattr(self, "_restored", None), None
        if trainer.ckpt_path is None:
            return
        t = self._time(trainer)
        if restored is None or restored.get("base_lrs") is None:
            rank_zero_warn(
                f"ScheduleCallback: resuming from {trainer.ckpt_path}, which holds no state of this callback (it was "
                "written without a ScheduleCallback, or with another schedule class or interval, which are part of "
                "the callback's `state_key`). The LR of each param group as restored from the checkpoint's "
                f"optimizer, {self.base_lrs}, is taken as lr0, the schedule continues at the restored t = {t}, and "
                "the plateau, if any, starts afresh. Start a new run without `ckpt_path` to begin the schedule at "
                "t = 0."
            )
            return
        old, new = restored.get("bound"), repr(self._bound)
        if old is not None and restored.get("schedule") == repr(self.schedule) and old != new:
            rank_zero_warn(
                f"ScheduleCallback: the schedule resolves against this run's length as {new}, but as {old} in the "
                f"run that wrote the checkpoint (the run's length changed: `max_epochs`, `max_steps`, batches or "
                f"devices). The LR follows the new curve from the restored t = {t}, so it may jump there."
            )

    def _validation_pending(self) -> bool:
        """Whether a checkpoint written now falls between a training batch and the validation due after it.

        That is a checkpoint written in ``on_train_batch_end`` (``ModelCheckpoint(every_n_train_steps=...)``) on a
        batch that validation follows. Lightning 2.6 does not run that validation when it resumes from such a
        checkpoint (``_TrainingEpochLoop`` skips it), so a plateau cannot observe it.
        """
        fitting = getattr(self, "_fitting", None)
        trainer = fitting() if fitting is not None else None
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


def set_momentum(group: dict[str, Any], value: float) -> None:
    """Writes SGD-style ``momentum`` or Adam-style ``betas[0]`` (as torch's OneCycleLR and CyclicLR do)."""
    if "betas" in group:
        group["betas"] = (value, *group["betas"][1:])
    else:
        group["momentum"] = value


def check_momentum(
    optimizers: list[torch.optim.Optimizer], schedule: Schedule, length: int | None, fix: str = "cycle_momentum=False"
) -> None:
    """Refuses a schedule that cycles momentum (at the start or the end: a warmup sets none) on an optimizer that
    has none; ``fix`` is how the caller turns the cycling off (a config override or a Python argument)."""
    if schedule.momentum(0) is None and (not length or schedule.momentum(length - 1) is None):
        return
    for opt in optimizers:
        for group in opt.param_groups:
            if "betas" not in group and "momentum" not in group:
                raise RuntimeError(
                    f"The schedule cycles momentum, but {type(opt).__name__} has neither `momentum` nor `betas`. "
                    f"Set {fix}, or use an optimizer with momentum (SGD, RMSprop, Adam...)."
                )


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

    def __init__(self, schedule: str | None = None, plateau: str | None = None) -> None:
        self.schedule, self._plateau = schedule or "schedule", plateau
        self._config = schedule is not None

    def schedule_key(self, key: str, value: Any) -> str:
        if self._config:
            shown = str(value).lower() if isinstance(value, bool) else value
            return f"`{self.schedule}.{key}={shown}`"
        return f"`ScheduleCallback({key}={value!r})`" if key == "interval" else f"`{key}={value!r}` on the schedule"

    def plateau_key(self, key: str) -> str:
        return f"`{self._plateau}.{key}`" if self._config else f"`ReducePlateau({key}=...)`"
