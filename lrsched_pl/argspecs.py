"""What each argument of the classes the configs instantiate accepts, without importing them.

One table per ``_target_``: every argument of its ``__init__`` (a test compares the keys with the real signatures of
Lightning and torch) and the rule its value must pass, taken from the class's own annotations, docs and checks
(Lightning's Trainer, ModelCheckpoint, LearningRateMonitor and TensorBoardLogger; torch's optimizers; our default
model and data). A ``_target_`` of the user's own is checked against its signature instead
(:mod:`lrsched_pl.signatures`).
"""

from __future__ import annotations

import re

from lrsched_pl.rules import (
    ANY,
    BOOL,
    INT_LIST,
    NAME,
    NODE,
    STRING,
    Rule,
    choice,
    integer,
    list_of,
    number,
    optional,
    pair,
)

Spec = dict[str, Rule]

_TIME = Rule(lambda v: isinstance(v, str) and re.fullmatch(r"\d+:\d{2}:\d{2}:\d{2}", v) is not None, '"DD:HH:MM:SS"')
_DURATION = Rule(
    lambda v: isinstance(v, dict) and all(k in ("days", "hours", "minutes", "seconds") for k in v),
    "a mapping of days/hours/minutes/seconds",
)
_BATCHES = integer(0) | number(0, 1)  # a count, or a share of the batches
_DEVICES = (
    Rule(lambda v: isinstance(v, int) and not isinstance(v, bool) and (v == -1 or v >= 1), "an int >= 1 or -1")
    | Rule(lambda v: isinstance(v, str) and re.fullmatch(r"auto|-1|\d+|(\d+\s*,\s*)+\d*", v.strip()) is not None,
           '"auto" or device ids such as "0,1"')  # fmt: skip
    | INT_LIST
)
PRECISIONS = (64, 32, 16, "64", "32", "16", "bf16", "transformer-engine", "transformer-engine-float16", "16-true",
              "16-mixed", "bf16-true", "bf16-mixed", "32-true", "64-true")  # fmt: skip

TRAINER: Spec = {
    "accelerator": choice("cpu", "gpu", "cuda", "mps", "tpu", "hpu", "auto") | NODE,
    "strategy": NAME | NODE,
    "devices": _DEVICES,
    "num_nodes": integer(1),
    "precision": optional(choice(*PRECISIONS)),
    "logger": ANY,
    "callbacks": ANY,
    "fast_dev_run": BOOL | integer(0),
    "max_epochs": optional(integer(-1)),
    "min_epochs": optional(integer(0)),
    "max_steps": integer(-1),
    "min_steps": optional(integer(0)),
    "max_time": optional(_TIME | _DURATION),
    "limit_train_batches": optional(_BATCHES),
    "limit_val_batches": optional(_BATCHES),
    "limit_test_batches": optional(_BATCHES),
    "limit_predict_batches": optional(_BATCHES),
    "overfit_batches": _BATCHES,
    "val_check_interval": optional(integer(1) | number(0, 1, low_open=True) | _TIME | _DURATION),
    "check_val_every_n_epoch": optional(integer(1)),
    "num_sanity_val_steps": optional(integer(-1)),
    "log_every_n_steps": optional(integer(0)),
    "enable_checkpointing": optional(BOOL),
    "enable_progress_bar": optional(BOOL),
    "enable_model_summary": optional(BOOL),
    "accumulate_grad_batches": integer(1),
    "gradient_clip_val": optional(number(0)),
    "gradient_clip_algorithm": optional(choice("norm", "value")),
    "deterministic": optional(BOOL | choice("warn")),
    "benchmark": optional(BOOL),
    "inference_mode": BOOL,
    "use_distributed_sampler": BOOL,
    "profiler": optional(choice("simple", "advanced", "pytorch", "xla") | NODE),
    "detect_anomaly": BOOL,
    "barebones": BOOL,
    "plugins": ANY,
    "sync_batchnorm": BOOL,
    "reload_dataloaders_every_n_epochs": integer(0),
    "default_root_dir": optional(STRING),
    "enable_autolog_hparams": BOOL,
    "model_registry": optional(STRING),
}

MODEL_CHECKPOINT: Spec = {
    "dirpath": optional(STRING),
    "filename": optional(STRING),
    "monitor": optional(NAME),
    "verbose": BOOL,
    "save_last": optional(BOOL | choice("link")),
    "save_top_k": integer(-1),
    "save_on_exception": BOOL,
    "save_weights_only": BOOL,
    "mode": choice("min", "max"),
    "auto_insert_metric_name": BOOL,
    "every_n_train_steps": optional(integer(0)),
    "train_time_interval": optional(NODE),
    "every_n_epochs": optional(integer(0)),
    "save_on_train_epoch_end": optional(BOOL),
    "enable_version_counter": BOOL,
}

LEARNING_RATE_MONITOR: Spec = {
    "logging_interval": optional(choice("step", "epoch")),
    "log_momentum": BOOL,
    "log_weight_decay": BOOL,
}

TENSORBOARD_LOGGER: Spec = {
    "save_dir": STRING,
    "name": optional(STRING),
    "version": optional(integer(0) | STRING),
    "log_graph": BOOL,
    "default_hp_metric": BOOL,
    "prefix": STRING,
    "sub_dir": optional(STRING),
    # **kwargs, passed on to torch's SummaryWriter
    "comment": STRING,
    "purge_step": optional(integer(0)),
    "max_queue": integer(1),
    "flush_secs": number(0, low_open=True),
    "filename_suffix": STRING,
}

# torch.optim: the ranges torch itself checks in each optimizer's __init__ ("Invalid momentum value: -1" ...).
_LR = number(0, low_open=True)
_COMMON_OPT: Spec = {"lr": _LR, "weight_decay": number(0), "maximize": BOOL, "foreach": optional(BOOL),
                     "differentiable": BOOL}  # fmt: skip
_ADAM: Spec = {**_COMMON_OPT, "betas": pair(number(0, 1, high_open=True)), "eps": number(0), "amsgrad": BOOL,
               "capturable": BOOL, "fused": optional(BOOL)}  # fmt: skip
OPTIMIZERS: dict[str, Spec] = {
    "torch.optim.SGD": {**_COMMON_OPT, "momentum": number(0), "dampening": number(), "nesterov": BOOL,
                        "fused": optional(BOOL)},  # fmt: skip
    "torch.optim.Adam": {**_ADAM, "decoupled_weight_decay": BOOL},
    "torch.optim.AdamW": _ADAM,
    "torch.optim.RMSprop": {**_COMMON_OPT, "alpha": number(0), "eps": number(0), "momentum": number(0),
                            "centered": BOOL, "capturable": BOOL},  # fmt: skip
    "torch.optim.Adagrad": {**_COMMON_OPT, "lr_decay": number(0), "initial_accumulator_value": number(0),
                            "eps": number(0), "fused": optional(BOOL)},  # fmt: skip
}
# Optimizers whose param groups carry `momentum` or `betas`, the keys a momentum-cycling schedule writes.
WITH_MOMENTUM = {"torch.optim.SGD", "torch.optim.Adam", "torch.optim.AdamW", "torch.optim.RMSprop",
                 "torch.optim.NAdam", "torch.optim.RAdam", "torch.optim.Adamax"}  # fmt: skip

CLASSIFIER: Spec = {
    "num_features": integer(1),
    "num_classes": integer(2),
    "hidden": list_of(integer(1)),
    "dropout": number(0, 1, high_open=True),
}
DIGITS: Spec = {
    "batch_size": integer(1),
    "val_fraction": number(0, 1, low_open=True, high_open=True),
    "split_seed": integer(0),
    "num_workers": integer(0),
    "label_noise": number(0, 1, high_open=True),
}

# The `param_groups` builders (lrsched_pl.param_groups): the same ranges their own __post_init__ checks.
_PATTERNS = list_of(NAME)
PARAM_GROUPS: dict[str, Spec] = {
    "lrsched_pl.param_groups.NoDecay": {"patterns": _PATTERNS},
    "lrsched_pl.param_groups.LayerDecay": {
        "decay": number(0, 1, low_open=True),
        "layers": optional(Rule(lambda v: isinstance(v, list) and len(v) > 0 and all(NAME.test(x) for x in v),
                                "a non-empty list of module-name patterns, from the input up")),
        "no_decay": BOOL,
        "patterns": _PATTERNS,
    },
    "lrsched_pl.param_groups.Modules": {
        "groups": Rule(lambda v: isinstance(v, dict) and len(v) > 0 and all(
            NAME.test(k) and isinstance(x, list) and len(x) > 0 and all(NAME.test(y) for y in x) for k, x in v.items()),
            "a map {group name: [module-name patterns]}, e.g. {head: [net.4]}"),
        "rest": NAME,
        "lr_scale": optional(Rule(lambda v: isinstance(v, dict) and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 for x in v.values()),
            "a map {group name: factor > 0}, e.g. {head: 10}")),
    },
}

# `_target_` -> its spec; keys given to the class by the run itself (the model's `optimizer`) are not in the config.
KNOWN: dict[str, Spec] = {
    "lightning.pytorch.Trainer": TRAINER,
    "lightning.pytorch.callbacks.ModelCheckpoint": MODEL_CHECKPOINT,
    "lightning.pytorch.callbacks.LearningRateMonitor": LEARNING_RATE_MONITOR,
    "lightning.pytorch.loggers.TensorBoardLogger": TENSORBOARD_LOGGER,
    "lrsched_pl.models.Classifier": CLASSIFIER,
    "lrsched_pl.data.DigitsDataModule": DIGITS,
    **OPTIMIZERS,
    **PARAM_GROUPS,
}
