#!/usr/bin/env bash
# One call on a CUDA machine: the GPU tests, the batching benchmark on the GPU with its CPU
# baseline in the same run, and the thorough numeric checks on CUDA; writes the GPU table for
# the README to benchmarks/gpu-results.md and prints it.
#
#   bash benchmarks/gpu.sh            # from the repository root (PYTHONPATH is set here)
#
# Each step is timed and bounded; a failing step is recorded and the next one still runs.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
out=benchmarks/gpu-results.md
log=$(mktemp -d)
python - <<'PY' || { echo "torch sees no CUDA device: nothing to measure" >&2; exit 2; }
import sys, torch
sys.exit(0 if torch.cuda.is_available() else 1)
PY
device=$(python -c "import torch; print(torch.cuda.get_device_name(0))")

step() {  # step NAME TIMEOUT COMMAND...
  local name=$1 limit=$2; shift 2
  local start=$SECONDS
  timeout "$limit" "$@" >"$log/$name.out" 2>&1
  local code=$?
  echo "$name: exit $code in $((SECONDS - start)) s" | tee -a "$log/summary"
}

step gpu-tests 600 python -m pytest -q -m gpu tests/test_verify_gpu.py -p no:cacheprovider
step bench-cpu 600 python benchmarks/bench_verify.py --device cpu --json --quick \
  --repeats 2
step bench-cuda 600 python benchmarks/bench_verify.py --device cuda --json \
  --vectors 4194304 --networks 4096 --repeats 3
step check-cuda 900 python -m verify check --device cuda --thorough --json

python - "$log" "$device" >"$out" <<'PY'
import json, sys
from pathlib import Path
log, device = Path(sys.argv[1]), sys.argv[2]
def load(name):
    try:
        return json.loads((log / f"{name}.out").read_text())
    except (OSError, ValueError):
        return None
print(f"GPU measurements on {device} (benchmarks/gpu.sh):\n")
print("| benchmark | CPU (same run) | CUDA | CUDA vs CPU |")
print("|---|---|---|---|")
cpu, cuda = load("bench-cpu"), load("bench-cuda")
if cpu and cuda:
    for row in cuda["results"]:
        match = next((r for r in cpu["results"] if r["benchmark"] == row["benchmark"]), None)
        if match:
            ratio = row["batched_per_s"] / match["batched_per_s"]
            print(f"| {row['benchmark']} ({row['unit']}) | {match['batched_per_s']:.3g}/s | "
                  f"{row['batched_per_s']:.3g}/s | {ratio:.1f}x |")
check = load("check-cuda")
if check:
    results = check["results"]
    as_expected = sum(r["verdict"] == r["expected"] for r in results)
    print(f"\n`verify check --device cuda --thorough`: {as_expected} of {len(results)} "
          f"verdicts as expected.")
print("\n" + (log / "summary").read_text())
PY
cat "$out"
