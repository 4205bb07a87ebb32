"""The ``__init__`` parameters of a ``_target_`` class, read from its source file without importing it.

Importing a user's LightningModule imports Lightning (seconds); reading its source with :mod:`ast` takes
milliseconds, so a config with an unknown or a missing model key is refused before anything heavy loads, and the
module is imported once, by Hydra, when the run starts.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path


@dataclass(frozen=True)
class Params:
    """What ``__init__`` takes (``self`` excluded).

    Attributes:
        names: Every named parameter.
        required: The parameters without a default.
        any_keyword: ``__init__`` has ``**kwargs``: any key is accepted.
        annotations: The plain annotation of a parameter where it is a single builtin (``int``, ``float``,
            ``bool``, ``str``), for a type check.
    """

    names: tuple[str, ...]
    required: tuple[str, ...]
    any_keyword: bool
    annotations: dict[str, str]


def locate(module: str) -> Path | None:
    """The source file of ``module`` found on ``sys.path`` the way ``import`` would, importing nothing."""
    top, *rest = module.split(".")
    try:
        spec = importlib.util.find_spec(top)  # a top-level name: found, not imported
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if not rest:
        return Path(spec.origin) if spec.origin and spec.origin.endswith(".py") else None
    folders = [Path(p) for p in (spec.submodule_search_locations or [])]
    for i, part in enumerate(rest):
        last = i == len(rest) - 1
        found = None
        for folder in folders:
            if (folder / part / "__init__.py").is_file() or (folder / part).is_dir():
                found = folder / part
                break
            if last and (folder / f"{part}.py").is_file():
                return folder / f"{part}.py"
        if found is None:
            return None
        if last:
            init = found / "__init__.py"
            return init if init.is_file() else None
        folders = [found]
    return None


@cache
def init_params(target: str) -> Params | None:
    """The parameters of ``target``'s ``__init__`` (``"pkg.module.Class"``), or ``None`` when they cannot be read
    from source (not found, defined elsewhere, inherited, or not a plain class)."""
    module, _, name = target.rpartition(".")
    path = locate(module) if module else None
    if path is None:
        return None
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name), None)
    init = None if cls is None else next(
        (n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None
    )
    if init is None:
        return None
    args = init.args
    positional = [*args.posonlyargs, *args.args][1:]  # without self
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    required = [a.arg for a, d in zip(positional, defaults) if d is None]
    required += [a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is None]
    every = [*positional, *args.kwonlyargs]
    annotations = {
        a.arg: a.annotation.id
        for a in every
        if isinstance(a.annotation, ast.Name) and a.annotation.id in ("int", "float", "bool", "str")
    }
    return Params(tuple(a.arg for a in every), tuple(required), args.kwarg is not None, annotations)
