"""An Optuna study that outlives its sweep: the storage made ready, and a continued study that samples new points.

``conf/hparams_search/*.yaml`` keep each study in a SQLite file (``hydra.sweeper.storage``, any SQLAlchemy URL) and
add :class:`StudyStorage` to ``hydra.callbacks``; Hydra's Optuna sweeper opens the study with
``load_if_exists=True``, so rerunning a search with the same ``study_name`` and storage adds trials to it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict, read_write

log = logging.getLogger(__name__)

# Distinct (seed, trials so far) pairs never share a sampler seed while seeds stay below the stride.
SEED_STRIDE = 1_000_003


def sqlite_file(storage: str) -> Path | None:
    """The database file of a ``sqlite:///<path>`` storage URL; ``None`` for other databases and in-memory SQLite."""
    from sqlalchemy.engine import make_url

    url = make_url(storage)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def trials_so_far(storage: str, study_name: str | None) -> int:
    """How many trials (of any state) the study ``study_name`` already holds in ``storage``; 0 if there is none."""
    import optuna

    if study_name is None:
        return 0
    try:
        return len(optuna.load_study(study_name=study_name, storage=storage).get_trials(deepcopy=False))
    except KeyError:  # optuna 2.10: "Record does not exist." for a study not in the storage yet
        return 0


class StudyStorage(Callback):
    """Gets the sweeper's storage ready before the sweeper opens it, and moves a fixed sampler seed past the trials
    a continued study already has.

    * SQLite cannot create a missing directory, and Hydra creates the sweep directory only when the first batch of
      trials is launched, after the sweeper has opened the study: the file's directory is created here.
    * ``hydra.sweeper.sampler.seed`` makes a search reproducible, but a continued study sampled with the same seed
      asks for the points it asked for the first time (TPE's random start-up trials are drawn from the seed alone).
      The seed is therefore moved by the number of trials already in the study: ``seed + n * SEED_STRIDE`` (a new
      study, ``n = 0``, keeps its seed, and a continuation is as reproducible as the first run). The stride keeps
      workers with nearby seeds apart: ``seed + n`` gave seed 1 after 1 trial the seed 2 of another worker. Several
      processes that start at the same moment on one study see the same ``n``: give each its own
      ``hydra.sweeper.sampler.seed``.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweeper = config.hydra.sweeper
        storage = sweeper.get("storage")
        if not storage:  # in memory: nothing persists, nothing to continue
            return
        database = sqlite_file(str(storage))
        if database is not None:
            database.parent.mkdir(parents=True, exist_ok=True)
        seed = sweeper.get("sampler", {}).get("seed")
        done = trials_so_far(str(storage), sweeper.get("study_name"))
        if seed is None or done == 0:
            return
        moved = int(seed) + SEED_STRIDE * done
        with read_write(sweeper), open_dict(sweeper):
            sweeper.sampler.seed = moved
        log.info(f"Study {sweeper.study_name!r} has {done} trials: sampler seed {seed} + {done} x {SEED_STRIDE} = {moved}")
