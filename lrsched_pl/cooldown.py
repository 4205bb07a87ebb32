"""Cooldown branches: continue a run from one of its checkpoints with the LR cooled down to ``min_lr``.

A constant-LR run (or the stable phase of ``wsd``) can be finished at any length by a short cooldown from one of its
checkpoints (MiniCPM; Hägele et al. 2024: a 1-sqrt cooldown over 10-20 % of the run matches cosine). A branch is a
new run resumed from the parent's checkpoint (``ckpt_path``), so its curves continue at the parent's step and the
parent's files are only read. :class:`CooldownCallback`, listed after the ``lr_schedule`` callback, takes over the
LR from the checkpoint's step ``t0`` to the branch's last step ``until`` (or ``t0 + steps``), and ends the branch
there with a validation (also mid-epoch)::

    lr(t) = min_lr + (lr_t0 - min_lr) * shape((t - t0) / (until - t0)),   t0 <= t < until

with ``shape`` ``linear`` ``1 - p``, ``cosine`` ``(1 + cos(pi * p)) / 2`` or ``1-sqrt`` ``1 - sqrt(p)`` (the decay
phase of :class:`~lrsched_pl.schedules.WarmupStableDecay`), ``lr_t0`` each param group's LR at ``t0`` as saved in
the checkpoint. ``lrsched-branch`` (:mod:`lrsched_pl.branch`) starts a branch with it in one command.

The callback's settings are part of its ``state_key``: resuming from a checkpoint of the same cooldown continues that
cooldown (a stopped branch), while a checkpoint of another cooldown (a branch of a branch) starts a new one from the
LR it holds.
"""

from __future__ import annotations

from typing import Any, Literal

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from typing_extensions import override

from lrsched_pl.callback import ScheduleCallback
from lrsched_pl.errors import ConfigValueError, check_choice, check_float, check_int
from lrsched_pl.schedules import WarmupStableDecay


class CooldownCallback(Callback):
    """Cools the LR down from its value at the start (or the resumed checkpoint) to ``min_lr`` at step ``until``.

    Args:
        until: The optimizer step at which the branch ends (the run's ``max_steps``), > the resumed step.
        shape: ``linear``, ``cosine`` or ``1-sqrt``.
        min_lr: The absolute LR reached at ``until``, >= 0.
        steps: Instead of ``until``: the cooldown's length, ``until = t0 + steps``; the callback then sets the
            Trainer's ``max_steps`` itself when the checkpoint loads (``trainer.max_steps=-1`` in the config), as
            ``lrsched-branch`` (:mod:`lrsched_pl.branch`) does.

    Example:
        >>> # lrsched-branch <parent> --ckpt step=300 cooldown.steps=100 writes, for the training command:
        >>> # ckpt_path=<parent>/checkpoints/step=300.ckpt trainer.max_steps=-1 trainer.max_epochs=-1
        >>> #   +callbacks.cooldown._target_=lrsched_pl.cooldown.CooldownCallback +callbacks.cooldown.steps=100
    """

    def __init__(
        self,
        until: int | None = None,
        shape: Literal["linear", "cosine", "1-sqrt"] = "1-sqrt",
        min_lr: float = 0.0,
        steps: int | None = None,
    ) -> None:
        if (until is None) == (steps is None):
            raise ConfigValueError("callbacks.cooldown.steps", steps, f"set when `until` is not, and only then "
                                   f"(`until` is {until!r}): the cooldown's length, or the step it ends at")
        if until is not None:
            check_int("cooldown.until", until, low=1)
        if steps is not None:
            check_int("cooldown.steps", steps, low=1)
        check_choice("cooldown.shape", shape, ("linear", "cosine", "1-sqrt"))
        check_float("cooldown.min_lr", min_lr, low=0.0)
        self.until, self.steps, self.shape, self.min_lr = until, steps, shape, min_lr
        self._settings = {"until": until, "steps": steps, "shape": shape, "min_lr": min_lr}
        self.start: int | None = None
        self.from_lrs: list[list[float]] | None = None
        self._loaded_lrs: list[list[float]] | None = None

    @property
    @override
    def state_key(self) -> str:
        # The settings are part of the key: a checkpoint of this same cooldown resumes it, while a branch from a
        # checkpoint of another cooldown (a branch of a branch) starts its own.
        return self._generate_state_key(**self._settings)

    @override
    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # the parent's LR at the checkpoint's step, before the lr_schedule callback rewrites it in on_train_start
        states = checkpoint.get("optimizer_states") or []
        self._loaded_lrs = [[float(g["lr"]) for g in s["param_groups"]] for s in states] or None
        mine = (checkpoint.get("callbacks") or {}).get(self.state_key) or {}
        if self.steps is not None:  # a branch resumed from its own checkpoint keeps the `until` it started with
            self.until = mine.get("until") or int(checkpoint.get("global_step", 0)) + self.steps
        # before the lr_schedule callback binds its schedule to the run's length in on_train_start
        trainer.fit_loop.epoch_loop.max_steps = self.until

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        mine = trainer.callbacks.index(self)
        if any(isinstance(c, ScheduleCallback) for c in trainer.callbacks[mine + 1 :]):
            raise RuntimeError(
                "CooldownCallback must come after the ScheduleCallback (`callbacks.lr_schedule`), which would "
                "otherwise overwrite the cooled-down LR: add it as a new entry, `+callbacks.cooldown...`."
            )
        if self.start is None:  # a new branch (a resumed branch has its state from load_state_dict)
            self.start = trainer.global_step
            if self.steps is not None:
                self.until = self.start + self.steps
            live = [[float(g["lr"]) for g in opt.param_groups] for opt in trainer.optimizers]
            self.from_lrs = self._loaded_lrs or live
        if self.until <= self.start:
            raise ConfigValueError("callbacks.cooldown.until", self.until, f"> the resumed step {self.start}")
        for lrs in self.from_lrs:
            for lr in lrs:
                if self.min_lr > lr:
                    raise ConfigValueError(
                        "callbacks.cooldown.min_lr", self.min_lr, f"at most the LR at the branch point ({lr})"
                    )
        length = self.until - self.start
        self._shape = WarmupStableDecay(decay=length, decay_type=self.shape, total=length)
        trainer.fit_loop.epoch_loop.max_steps = self.until  # the branch ends with its cooldown
        self._apply(trainer)

    @override
    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self._apply(trainer)
        if trainer.global_step >= self.until:
            trainer.should_stop = True  # unlike reaching max_steps mid-epoch, this runs a last validation

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._apply(trainer)  # after an epoch-interval schedule's write

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking and self.start is not None:
            self._apply(trainer)  # after a plateau's write

    def lr(self, t: int, lr_t0: float) -> float:
        """The branch's LR at step ``t`` for a param group whose LR was ``lr_t0`` at the branch point."""
        return self.min_lr + (lr_t0 - self.min_lr) * self._shape.factor(t - self.start)

    def _apply(self, trainer: pl.Trainer) -> None:
        t = trainer.global_step
        for opt, lrs in zip(trainer.optimizers, self.from_lrs):
            for group, lr_t0 in zip(opt.param_groups, lrs):
                group["lr"] = self.lr(t, lr_t0)

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"start": self.start, "from_lrs": self.from_lrs, "until": self.until, "shape": self.shape}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.start, self.from_lrs = state_dict.get("start"), state_dict.get("from_lrs")
        if self.steps is not None and state_dict.get("until") is not None:
            self.until = state_dict["until"]
