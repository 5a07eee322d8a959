"""Benchmark of running the user's loss in its own process, against calling it in-process.

    python benchmarks/bench_isolation.py [--repeats R] [--quick] [--json]

Rows (each the best of ``repeats`` after a warm-up, both sides in the same process):

* ``process start``: :func:`derive._isolation.run_isolated` of a function that returns at once,
  against calling it (the fork, the pipe, the restricted unpickling, the kill).
* ``transfer, E elements``: a child that returns a float64 tensor of E elements as bytes
  (what the audit sends per gradient), against making the same bytes in-process.
* ``audit B x N``: ``audit("verify.gallery:kd_batchmean")`` (the loss in one child for the
  whole audit; the audit's gradients, about 40 of them, travel back) against
  ``audit(kd_batchmean)`` in-process, trace included.

The ratio is isolated time over in-process time. No number here is asserted by the tests
(timing tests are flaky): read the table.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from derive._isolation import run_isolated
from verify.audit import audit
from verify.gallery import kd_batchmean


def best_time(function, repeats):
    function()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def nothing():
    return None


def gradient_bytes(elements):
    return torch.randn(elements, dtype=torch.float64).numpy().tobytes()


def rows(repeats, quick):
    found = []
    inside = best_time(nothing, repeats)
    outside = best_time(lambda: run_isolated(nothing, timeout=600), repeats)
    found.append(("process start", outside, inside))
    for elements in (10**3, 10**6) if quick else (10**3, 10**6, 2**21):
        inside = best_time(lambda e=elements: gradient_bytes(e), repeats)
        outside = best_time(
            lambda e=elements: run_isolated(gradient_bytes, e, timeout=600), repeats
        )
        found.append((f"transfer, {elements} elements", outside, inside))
    shapes = ((16, 10),) if quick else ((16, 10), (64, 1000))
    for batch, classes in shapes:
        options = dict(batch_size=batch, classes=classes)
        inside = best_time(lambda o=options: audit(kd_batchmean, **o), max(1, repeats // 3))
        outside = best_time(
            lambda o=options: audit("verify.gallery:kd_batchmean", **o), max(1, repeats // 3)
        )
        found.append((f"audit {batch} x {classes}", outside, inside))
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args(argv)
    torch.set_num_threads(1)
    table = rows(arguments.repeats, arguments.quick)
    if arguments.json:
        print(
            json.dumps(
                [
                    {"row": name, "isolated_s": outside, "in_process_s": inside}
                    for name, outside, inside in table
                ],
                indent=1,
            )
        )
        return 0
    print(f"{'benchmark':<28} {'isolated':>12} {'in-process':>12} {'ratio':>8}")
    for name, outside, inside in table:
        ratio = outside / inside if inside > 0 else float("inf")
        print(f"{name:<28} {outside * 1e3:>10.2f}ms {inside * 1e3:>10.3f}ms {ratio:>7.3g}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
