#!/usr/bin/env bash
# The benchmarks on a GPU (issue #14, part 4), in at most ~8 minutes; writes benchmarks/results/gpu.md.
#
#     bash benchmarks/gpu.sh          # from the repository root, with the package and its [workloads] extra installed
#
# 1. the per-step overhead benchmark (python -m benchmarks.overhead; the callback is host code, so this measures the
#    GPU machine's CPU side) - its own results file is put back as committed, its text goes into gpu.md;
# 2. the end-to-end A/B/C comparison of benchmarks.end_to_end (ScheduleCallback vs no callback vs torch StepLR
#    stepped by Lightning) with trainer.accelerator=gpu, fewer rounds;
# 3. the LM workload's time to target (python -m benchmarks.time_to_target --quick --workloads lm
#    --accelerator gpu).
# Without a GPU it fails: it says so on stderr, writes nothing and exits 1 (a CPU result must never pass for a GPU
# one). It has never been run: no GPU was lent to the sessions that wrote it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}

if ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    echo "benchmarks/gpu.sh: no GPU found (torch.cuda.is_available() is False for $("$PYTHON" -c 'import torch; print("torch", torch.__version__)' 2>/dev/null || echo "this Python")); nothing measured, benchmarks/results/gpu.md not written. Run it on a machine with a CUDA GPU and a CUDA build of torch." >&2
    exit 1
fi

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
started=$(date +%s)

# 1. overhead (~1 min): keep the committed CPU results, take this run's text
cp benchmarks/results/overhead.md "$OUT/overhead.committed.md"
timeout 150 "$PYTHON" -m benchmarks.overhead > "$OUT/overhead.log" 2>&1 || echo "overhead: failed or timed out (see below)" >> "$OUT/overhead.log"
cp benchmarks/results/overhead.md "$OUT/overhead.gpu-machine.md" 2>/dev/null || true
cp "$OUT/overhead.committed.md" benchmarks/results/overhead.md

# 2. end to end on the GPU (~2 min)
timeout 180 "$PYTHON" - > "$OUT/end_to_end.md" 2> "$OUT/end_to_end.log" <<'EOF' || echo "end to end: failed or timed out" >> "$OUT/end_to_end.md"
import statistics, tempfile
from pathlib import Path
import torch
from hydra import compose, initialize_config_dir
from benchmarks import end_to_end as e2e
from benchmarks._common import ROOT, table

ROUNDS = 6
with tempfile.TemporaryDirectory() as tmp, initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
    cfgs = {name: compose("train", overrides=[f"output_dir={tmp}", *e2e.COMMON, *extra, "trainer.accelerator=gpu"])
            for name, extra in e2e.VARIANTS.items()}
    names = list(cfgs)
    for name in names:
        e2e.run_once(cfgs[name])  # warm-up: CUDA context, kernels
    fits = {name: [] for name in names}
    for r in range(ROUNDS):
        for name in names[r % len(names):] + names[: r % len(names)]:
            fits[name].append(e2e.run_once(cfgs[name])[0])
a, b, c = names[:3]
rows = [[name, f"{statistics.median(fits[name]):.3f}", f"{statistics.median(fits[name]) / e2e.FIT_STEPS[-1] * 1e3:.3f}"]
        for name in names]
print(f"Device: `{torch.cuda.get_device_name(0)}`, {e2e.EPOCHS} epochs of the default digits run "
      f"({e2e.FIT_STEPS[-1]} steps), {ROUNDS} rounds after a warm-up, median fit seconds.\n")
print(table(["variant", "fit s (median)", "ms per step"], rows))
ratio = lambda x, y: statistics.median(p / q for p, q in zip(fits[x], fits[y]))
print(f"\nA/B = {ratio(a, b):.3f}, A/C = {ratio(a, c):.3f} (medians of the per-round ratios; target ≤ 1.01 each).")
EOF

# 3. the LM's time to target on the GPU (~4 min)
timeout 300 "$PYTHON" -m benchmarks.time_to_target --quick --workloads lm --accelerator gpu --out "$OUT/ttt" \
    > "$OUT/ttt.log" 2>&1 || echo "time to target: failed or timed out" >> "$OUT/ttt.log"

{
    echo "# The benchmarks on a GPU (issue #14, part 4)"
    echo
    echo "Re-run: \`bash benchmarks/gpu.sh\` from the repository root ($(( $(date +%s) - started )) s this time)."
    echo
    "$PYTHON" - <<'EOF'
import platform, torch
from importlib import metadata
print(f"- device: `{torch.cuda.get_device_name(0)}` (CUDA {torch.version.cuda}), {torch.cuda.device_count()} visible")
print(f"- Python {platform.python_version()}, torch {torch.__version__}, lightning {metadata.version('lightning')}, "
      f"hydra-core {metadata.version('hydra-core')}")
EOF
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "## 1. Per-step overhead (the callback is host code: this is the GPU machine's CPU)"
    echo
    sed -n '/^## Summary/,/^## /p' "$OUT/overhead.gpu-machine.md" 2>/dev/null | sed '$d' | tail -n +2 || true
    tail -3 "$OUT/overhead.log"
    echo
    echo "## 2. End to end with trainer.accelerator=gpu"
    echo
    cat "$OUT/end_to_end.md"
    echo
    echo "## 3. The LM's time to target with trainer.accelerator=gpu (quick budget)"
    echo
    sed -n '/^\*\*Budget used/p;/^## Scores/,/^## Reading/p' "$OUT/ttt/time_to_target_quick.md" 2>/dev/null | grep -v '^!\[' || tail -20 "$OUT/ttt.log"
} > benchmarks/results/gpu.md
echo "benchmarks/gpu.sh: wrote benchmarks/results/gpu.md in $(( $(date +%s) - started )) s"
