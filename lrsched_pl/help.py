"""``lrsched-train --help``: the groups a user chooses, every option with the comment at the top of its file.

Built from the config folder itself (each option file opens with a comment: the formula of a schedule, what an
optimizer or an experiment is), so the page lists exactly the options there are. It reads text files only: no
Hydra, torch or Lightning is imported, and the page prints in about the time of ``import hydra``.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import textwrap
from pathlib import Path

from lrsched_pl.paths import conf_dir

# The groups a user picks from, in the order of the page, with what the group is for.
GROUPS = {
    "schedule": "the learning-rate schedule; lr0 is each param group's optimizer.lr, t counts optimizer steps or "
    "epochs (schedule.interval)",
    "plateau": "reduce on a plateau of a validation metric, on top of any schedule",
    "wd_schedule": "the weight decay on a schedule: every schedule= option but plateau, the same keys plus `start` "
    "(null: optimizer.weight_decay) and `groups` (null: every group with weight decay); min_lr is the end value",
    "momentum_schedule": "SGD's momentum or Adam's beta1 on a schedule: the options and keys of wd_schedule",
    "optimizer": "the optimizer (any schedule scales its LR)",
    "param_groups": "the optimizer's param groups, built from the model (every group keeps its own lr0)",
    "model": "the LightningModule",
    "data": "the LightningDataModule",
    "experiment": "a ready-made sweep (no -m needed)",
    "hparams_search": "an Optuna search (needs lrsched_pl[sweeps])",
}
SAME_OPTIONS = ("wd_schedule", "momentum_schedule")
LAUNCHERS = {
    "joblib": "hydra_plugins.hydra_joblib_launcher",
    "submitit_local": "hydra_plugins.hydra_submitit_launcher",
    "submitit_slurm": "hydra_plugins.hydra_submitit_launcher",
}
COMMON_KEYS = {
    "optimizer.lr": "lr0 of every param group, > 0",
    "schedule.interval": "step | epoch: the unit of t",
    "schedule.warmup": "linear warmup first: intervals, or a fraction of the run (0.1dur)",
    "trainer.max_epochs": "the run's length (every lightning.Trainer argument is a trainer.<key>)",
    "callbacks.model_checkpoint.every_n_train_steps": "checkpoints within an epoch",
}


def _comment(path: Path) -> str:
    """The comment block that opens an option file, as one paragraph (``@package`` lines and usage lines dropped)."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        if text.startswith("@package") or text.startswith("python ") or text.startswith("lrsched-"):
            continue
        lines.append(text)
    return " ".join(lines).strip()


def _defaults(train_yaml: Path) -> dict[str, str]:
    """``group -> default option`` from the defaults list of ``train.yaml``."""
    found = {}
    for match in re.finditer(r"^\s+-\s+(\w+):\s*(\S+)", train_yaml.read_text(encoding="utf-8"), flags=re.M):
        found[match.group(1)] = match.group(2)
    return found


def _top_keys(train_yaml: Path) -> dict[str, str]:
    """The top-level ``key: value  # comment`` lines of ``train.yaml`` (``seed``, ``ckpt_path``, ...)."""
    found = {}
    for match in re.finditer(r"^(\w+):\s*([^#\n]*?)\s*#\s*(.*)$", train_yaml.read_text(encoding="utf-8"), flags=re.M):
        if match.group(1) not in ("defaults", "output_dir", "hydra"):
            found[match.group(1)] = f"{match.group(3)} (default {match.group(2)})"
    return found


def _launcher_installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _entry(name: str, text: str, width: int, indent: int = 22) -> str:
    """``  name   text...`` with the text wrapped at ``width`` and aligned at column ``indent``."""
    head = f"  {name}".ljust(indent)
    if len(f"  {name} ") > indent:  # a long name gets a line of its own
        return head.rstrip() + "\n" + textwrap.fill(text or "-", width, initial_indent=" " * indent,
                                                    subsequent_indent=" " * indent)  # fmt: skip
    return textwrap.fill(text or "-", width, initial_indent=head, subsequent_indent=" " * indent)


def help_text(prog: str = "lrsched-train", width: int | None = None) -> str:
    """The help page of the training command."""
    width = width or min(shutil.get_terminal_size((100, 20)).columns, 120)
    root = conf_dir()
    defaults = _defaults(root / "train.yaml")
    out = [
        f"{prog}: train a Lightning model under a learning-rate schedule chosen from Hydra configs.",
        "",
        f"usage: {prog} [group=option ...] [key=value ...]      one run, under ./outputs/runs/",
        f"       {prog} -m schedule=constant,step,cosine       a sweep: one job (and TensorBoard run) per value",
        f"       {prog} --cfg job                             the composed config, every key and its value",
        "       (python train.py in a clone and python -m lrsched_pl are the same command)",
    ]
    for group, what in GROUPS.items():
        folder = root / group
        if not folder.is_dir():
            continue
        default = defaults.get(group, "null")
        title = f"{group}=<option>: {what} (default: {'none' if default == 'null' else default})"
        out += ["", textwrap.fill(title, width, subsequent_indent="  ")]
        if group not in SAME_OPTIONS:  # those list the schedule= options again
            out += [_entry(path.stem, _comment(path), width) for path in sorted(folder.glob("*.yaml"))]
    out += ["", "hydra/launcher=<option>: how a sweep's jobs run (default: one after another in this process)"]
    for name, module in LAUNCHERS.items():
        note = "" if _launcher_installed(module) else "  [not installed: pip install 'lrsched_pl[sweeps]']"
        out.append(_entry(name, {"joblib": "parallel processes on this machine (hydra.launcher.n_jobs)",
                                 "submitit_local": "submitit on this machine",
                                 "submitit_slurm": "a SLURM job array (hydra.launcher.partition, ...)"}[name] + note,
                          width))  # fmt: skip
    out += ["", "common keys:"]
    out += [_entry(k, v, width, indent=26) for k, v in {**_top_keys(root / "train.yaml"), **COMMON_KEYS}.items()]
    out += [
        "",
        "more: lrsched-preview <overrides> (the LR curve without training), lrsched-report <sweep dir>,",
        "      lrsched-branch <run dir> cooldown.steps=N (a cooldown branch from a checkpoint of a run),",
        "      --hydra-help (Hydra's own options), HYDRA_FULL_ERROR=1 (a traceback with any error).",
    ]
    return "\n".join(out)
