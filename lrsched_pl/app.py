"""The training command: ``lrsched-train``, ``python -m lrsched_pl`` and the repository's ``train.py``.

    lrsched-train schedule=step                       # one run, under ./outputs/runs/
    lrsched-train -m schedule=constant,step,cosine    # a sweep, one TensorBoard run per job
    lrsched-train --cfg job                           # print the composed config
    lrsched-train --help                              # the groups, every schedule with its formula

The configs are the package's own (``conf/`` in a checkout, ``lrsched_pl/conf`` in a wheel); outputs go under the
current folder. The config is validated before Lightning is imported, so a bad value is refused in well under a
second.
"""

from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from lrsched_pl.config import discard_unstarted_run, validate
from lrsched_pl.errors import ConfigValueError
from lrsched_pl.launch import check_launch
from lrsched_pl.paths import conf_dir


def _train(cfg: DictConfig) -> float | None:
    """One Hydra job: validate, then import Lightning and fit; returns the objective for sweepers."""
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        validate(cfg)  # before Lightning is imported: config errors answer in well under a second
        check_launch(cfg, multirun=multirun, launcher=HydraConfig.get().get("launcher"))
        from lrsched_pl.run import train

        return train(cfg, sweep=multirun)
    except ConfigValueError as error:  # refused before any step: leave no half-started run
        discard_unstarted_run(HydraConfig.get().runtime.output_dir)
        if multirun:
            raise  # Hydra records the job as failed; the sweep goes on
        print(f"Error: {error}", file=sys.stderr)
        sys.exit(1)


_hydra_train = hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="train")(_train)


def main() -> None:
    """Console entry point of ``lrsched-train`` (and ``python -m lrsched_pl``): Hydra's command line."""
    _hydra_train()
