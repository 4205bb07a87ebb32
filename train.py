"""Train a Lightning model under a learning-rate schedule chosen from the Hydra config.

    python train.py schedule=step                      # one run, events under outputs/runs/
    python train.py -m schedule=constant,step,cosine   # a sweep, one TensorBoard run per job
    python train.py --cfg job                          # print the composed config
"""

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from lrsched_pl.checkpoint import check_file
from lrsched_pl.config import discard_unstarted_run, register_configs, validate
from lrsched_pl.errors import ConfigValueError
from lrsched_pl.interrupt import exit_on_signals
from lrsched_pl.launch import check_launch

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
@exit_on_signals  # SIGTERM / SIGINT: exit code 143 / 130 after the last checkpoint; no run dir before the first step
def main(cfg: DictConfig) -> float | None:
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        validate(cfg)  # before Lightning is imported: config errors answer in well under a second
        check_launch(cfg, multirun=multirun, launcher=HydraConfig.get().get("launcher"))
        check_file(cfg.ckpt_path)  # missing, empty, truncated or damaged: refused before Lightning is imported
    except ConfigValueError:
        discard_unstarted_run(HydraConfig.get().runtime.output_dir)
        raise
    from lrsched_pl.run import train

    try:
        return train(cfg, sweep=multirun)
    except ConfigValueError:  # refused when training started, before any step: leave no half-started run
        discard_unstarted_run(HydraConfig.get().runtime.output_dir)
        raise


if __name__ == "__main__":
    main()
