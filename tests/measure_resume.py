"""``python tests/measure_resume.py [out_dir]``: the README's real-training resume figures (about 8 minutes).

For each case, three ``train.py`` processes: the uninterrupted run; the same run killed with SIGKILL once a given
checkpoint exists (plus a second, so the kill lands mid-epoch); and a run resumed from the killed run's
``last.ckpt``. Prints, per TensorBoard tag, how many of the resumed run's steps differ from the uninterrupted run's.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

ROOT = Path(__file__).resolve().parents[1]
COMMON = ["data=digits_noisy", "optimizer.lr=0.3", "plateau=val_loss", "trainer.enable_progress_bar=false"]
CASES = {  # name: (overrides, the checkpoint after which the run is killed)
    "plateau, epoch-end checkpoint": ([], "epoch=2-step=69.ckpt"),
    "plateau, mid-epoch checkpoint": (["callbacks.model_checkpoint.every_n_train_steps=10"], "epoch=3-step=80.ckpt"),
    "cosine + plateau": (["schedule=cosine"], "epoch=2-step=69.ckpt"),
}


def scalars(run_dir: Path) -> dict[str, dict[int, float]]:
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in acc.Tags()["scalars"]}


def run(run_dir: Path, *overrides: str, kill_after: str | None = None) -> int:
    cmd = [sys.executable, "train.py", *COMMON, *overrides, f"hydra.run.dir={run_dir}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if kill_after is not None:
        while not (run_dir / "checkpoints" / kill_after).exists() and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(1.0)
        proc.send_signal(signal.SIGKILL)
    return proc.wait()


def main(out: Path) -> None:
    for name, (overrides, kill_after) in CASES.items():
        case = out / name.replace(" ", "_").replace(",", "").replace("+", "and")
        assert run(case / "full", *overrides) == 0
        assert run(case / "killed", *overrides, kill_after=kill_after) == -signal.SIGKILL
        ckpt = case / "killed" / "checkpoints" / "last.ckpt"
        start = torch.load(ckpt, weights_only=True)["global_step"]
        assert run(case / "resumed", *overrides, f"ckpt_path='{ckpt}'") == 0
        full, resumed = scalars(case / "full"), scalars(case / "resumed")
        print(f"{name}: resumed from step {start}")
        for tag in ("lr-SGD", "train/loss", "val/loss", "val/acc"):
            steps = [s for s in full[tag] if s >= start]
            differ = sum(full[tag][s] != resumed[tag].get(s) for s in steps)
            extra = sorted(set(resumed[tag]) - set(full[tag]))
            last = resumed[tag][max(resumed[tag])]
            print(f"  {tag}: {differ} of {len(steps)} differ, {len(extra)} extra; last {last}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="measure_resume_")))
