"""``python tests/cli_batch.py < rows.json``: ``python train.py <args>`` once per row, each row in a process of its own,
forked from this one after the imports every row shares (Hydra, OmegaConf, ``lrsched_pl.app``; never Lightning), so
a table of refusals pays for Python's start-up and those imports once instead of once per row.

Each child runs ``train.py`` as ``__main__`` with ``sys.argv = ["train.py", *args]`` and exits as the interpreter
would: ``sys.exit`` codes kept, an uncaught exception printed by ``sys.excepthook`` with status 1. Its stdout and
stderr go to files of its own. Prints ``[{"returncode": ..., "stdout": ..., "stderr": ...}, ...]`` in row order.
Not a test module: pytest does not collect it.
"""

from __future__ import annotations

import json
import logging
import os
import runpy
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARALLEL = 3  # children at a time


def _child(args: list[str], out: Path, err: Path) -> None:
    """In the forked child: run ``train.py`` with ``args``; never returns."""
    code = 1
    try:
        for fd, path in ((1, out), (2, err)):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
        sys.argv = ["train.py", *args]
        try:
            runpy.run_path(str(ROOT / "train.py"), run_name="__main__")
            code = 0
        except SystemExit as stop:  # what the interpreter does with it
            if stop.code is None or isinstance(stop.code, int):
                code = stop.code or 0
            else:
                print(stop.code, file=sys.stderr)
        except BaseException:  # noqa: BLE001 - printed like an uncaught exception
            sys.excepthook(*sys.exc_info())
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def main() -> None:
    rows: list[list[str]] = json.load(sys.stdin)
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    import hydra  # noqa: F401 - imported once, before the forks
    import omegaconf  # noqa: F401

    import lrsched_pl.app  # noqa: F401

    assert "lightning" not in sys.modules and "torch" not in sys.modules
    out_dir = Path(tempfile.mkdtemp(prefix="cli_batch."))
    pending = list(enumerate(rows))
    running: dict[int, int] = {}
    codes: dict[int, int] = {}
    while pending or running:
        while pending and len(running) < PARALLEL:
            index, args = pending.pop(0)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _child(args, out_dir / f"{index}.out", out_dir / f"{index}.err")
            running[pid] = index
        pid, status = os.wait()
        codes[running.pop(pid)] = os.waitstatus_to_exitcode(status)
    results = [{"returncode": codes[i], "stdout": (out_dir / f"{i}.out").read_text(),
                "stderr": (out_dir / f"{i}.err").read_text()} for i in range(len(rows))]  # fmt: skip
    for path in out_dir.iterdir():
        path.unlink()
    out_dir.rmdir()
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
