"""A user's own Hydra app: its own config folder; lrsched_pl only contributes `schedule`, `plateau` and
`callbacks/lr_schedule` through its Hydra search-path plugin."""

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="app_conf", config_name="train")
def main(cfg: DictConfig) -> None:
    import lightning.pytorch as pl

    callbacks = [instantiate(node) for node in cfg.callbacks.values()]
    print("CALLBACKS", [type(c).__name__ for c in callbacks])
    trainer = instantiate(cfg.trainer, callbacks=callbacks)
    trainer.fit(instantiate(cfg.model), datamodule=instantiate(cfg.data))


if __name__ == "__main__":
    main()
