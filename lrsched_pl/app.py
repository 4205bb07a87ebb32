"""The training command: ``lrsched-train``, ``python -m lrsched_pl`` and the repository's ``train.py``.

    lrsched-train schedule=step                       # one run, under ./outputs/runs/
    lrsched-train -m schedule=constant,step,cosine    # a sweep, one TensorBoard run per job
    lrsched-train --cfg job                           # print the composed config
    lrsched-train --help                              # the groups, every schedule with its formula

The configs are the package's own (``conf/`` in a checkout, ``lrsched_pl/conf`` in a wheel); outputs go under the
current folder. The config is validated before Lightning is imported, so a bad value is refused in well under a
second, with one line (and a hint where there is one) and exit status 1; ``HYDRA_FULL_ERROR=1`` shows the
traceback instead.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from lrsched_pl.errors import USER_FULL_ERROR, ConfigValueError, full_error


def _train(cfg: Any) -> float | None:
    """One Hydra job: validate, then import Lightning and fit; returns the objective for sweepers."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from lrsched_pl.config import discard_unstarted_run, validate
    from lrsched_pl.launch import check_launch

    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        validate(cfg)  # before Lightning is imported: config errors answer in well under a second
        check_launch(cfg, multirun=multirun, launcher=HydraConfig.get().get("launcher"))
        if multirun:  # a sweep run again in its own dir: keep its finished jobs, resume its interrupted ones
            from lrsched_pl.sweep import continue_job

            kept = continue_job(cfg)
            if kept is not None:
                return kept.value
        from lrsched_pl.run import train

        return train(cfg, sweep=multirun)
    except ConfigValueError as error:  # refused before any step: leave no half-started run
        discard_unstarted_run(HydraConfig.get().runtime.output_dir)
        if multirun or full_error():
            raise  # a sweep records the job as failed and goes on
        print(f"Error: {error}", file=sys.stderr)  # Hydra would add "Error executing job with overrides: ..."
        raise SystemExit(1) from None


def main() -> None:
    """Console entry point of ``lrsched-train`` (and ``python -m lrsched_pl``): Hydra's command line."""
    args = sys.argv[1:]
    if "--help" in args or "-h" in args:
        from lrsched_pl.help import help_text

        print(help_text(os.path.basename(sys.argv[0]) if sys.argv[0].endswith("lrsched-train") else "lrsched-train"))
        return
    os.environ.setdefault(USER_FULL_ERROR, os.environ.get("HYDRA_FULL_ERROR", ""))  # read by full_error()
    os.environ["HYDRA_FULL_ERROR"] = "1"  # errors reach us unprinted; we print them in one line
    import hydra

    from lrsched_pl.paths import conf_dir
    from lrsched_pl.rundir import register_resolvers

    register_resolvers()  # the run and sweep directory names of conf/train.yaml

    from lrsched_pl.interrupt import exit_on_signals

    # SIGTERM / SIGINT: exit status 143 / 130 after the last checkpoint; no run dir before the first step
    run = hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="train")(exit_on_signals(_train))
    try:
        run()
    except Exception as error:  # noqa: BLE001 - sorted below: config errors in one line, the rest re-raised
        explained = explain(error)
        if full_error() or explained is None:
            raise
        print("Error: " + explained[0], file=sys.stderr)
        if explained[1]:
            print("hint: " + explained[1], file=sys.stderr)
        sys.exit(1)


def explain(error: BaseException) -> tuple[str, str | None] | None:
    """``(one line, hint or None)`` for a refused config, or ``None`` for an error that is not about the config
    (a failure during training keeps its traceback)."""
    from hydra.errors import HydraException, MissingConfigException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(error, ConfigValueError):
        return str(error), None
    text = str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if isinstance(error, OverrideParseException):
        return (
            f"cannot parse the overrides: {lines[0] if lines else text}",
            "quote a value that holds `=`, spaces or brackets, e.g. 'ckpt_path=\"outputs/multirun/.../schedule=step/"
            "checkpoints/last.ckpt\"'",
        )
    if isinstance(error, MissingConfigException) and "Could not find" in text:
        missing = text.split("Could not find '", 1)[1].split("'", 1)[0]
        group, _, option = missing.rpartition("/")
        options = list(getattr(error, "options", None) or [])
        if group and options:
            import difflib

            close = difflib.get_close_matches(option, options, n=1)
            return (
                f"`{group}={option}` is not an option of `{group}`; the options are: {', '.join(options)}",
                f"did you mean `{group}={close[0]}`?" if close else None,
            )
        return f"no config `{missing}` was found", f"see {os.path.basename(sys.argv[0])} --help for the options"
    if isinstance(error, (HydraException, OmegaConfBaseException)):
        cause = error.__cause__
        if "is not in struct" in text or (cause is not None and "is not in struct" in str(cause)):
            key = text.split("Could not override '", 1)[1].split("'", 1)[0] if "Could not override '" in text else ""
            return (
                f"Unknown key `{key}`" if key else (lines[0] if lines else text),
                f"list the keys with `--cfg job`; add a key of your own with `+{key}=...`" if key else None,
            )
        if "Could not append to config. An item is already at" in text:
            key = text.split("already at '", 1)[1].split("'", 1)[0]
            return f"`+{key}` adds a key, but `{key}` exists already", f"set it without the `+`: {key}=..."
        detail = next((l for l in str(cause).splitlines() if l.strip()), "") if cause is not None else ""
        first = lines[0] if lines else type(error).__name__
        return (first + (f" ({detail.strip()})" if detail and detail.strip() not in first else ""), None)
    return None
