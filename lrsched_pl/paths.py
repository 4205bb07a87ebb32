"""Where the packaged configs are: inside the installed package, or at the top of a source checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def conf_dir() -> Path:
    """The folder holding ``train.yaml`` and the config groups.

    A built wheel carries the repository's top-level ``conf/`` as ``lrsched_pl/conf`` (mapped in ``pyproject.toml``,
    not copied in the repository); a source checkout or an editable install reads ``conf/`` beside the package.
    """
    packaged = _PACKAGE / "conf"
    return packaged if packaged.is_dir() else _PACKAGE.parent / "conf"
