"""Hydra's way for a library to ship configs: every Hydra app of an environment with lrsched_pl installed finds
the `schedule`, `plateau` and `callbacks/lr_schedule` options, after its own config folder.

    # the app's train.yaml                      # the app's callbacks/default.yaml
    defaults:                                    defaults:
      - schedule: cosine                           - lr_schedule
      - plateau: null                              - _self_
      - callbacks: default

Hydra discovers this class by scanning the ``hydra_plugins`` namespace package (no ``__init__.py`` in
``hydra_plugins/``) when an app starts.
"""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class LrschedPlSearchPathPlugin(SearchPathPlugin):
    """Appends the package's config folder (:func:`lrsched_pl.paths.conf_dir`) to every app's search path."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        from lrsched_pl.paths import conf_dir

        search_path.append(provider="lrsched_pl", path=f"file://{conf_dir()}")
