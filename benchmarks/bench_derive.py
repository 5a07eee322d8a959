"""Speed of the expansion engine, as ratios against the hand-written sympy.series baseline,
both measured in this run, each as a cold process (interpreter start and imports included).

    python benchmarks/bench_derive.py [--classes 10] [--order 5] [--repeats 1]

The baseline is what a sympy user writes by hand: N explicit exponentials and one
``sympy.series`` call per gradient component of T (q_i - p_i). It is timed for component 1
alone and for all N components, which is what ``derive expand --classes N`` outputs.
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BASELINE = """
import sympy as sp
n, order = {classes}, {order}
eps = sp.Symbol('eps', positive=True)
z = sp.symbols('z1:%d' % (n + 1)); v = sp.symbols('v1:%d' % (n + 1))
for i in range({components}):
    q = sp.exp(eps * z[i]) / sum(sp.exp(eps * zj) for zj in z)
    p = sp.exp(eps * v[i]) / sum(sp.exp(eps * vj) for vj in v)
    print(sp.series((q - p) / eps, eps, 0, order))
"""


def _cold(argv, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--order", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    python = sys.executable
    derive = [python, "-m", "derive", "expand"]
    rows = []
    baseline_one = _cold(
        [python, "-c", BASELINE.format(classes=args.classes, order=args.order, components=1)], 1
    )
    rows.append(
        (f"baseline: sympy.series, 1 component, N={args.classes}, {args.order} terms", baseline_one)
    )
    baseline = _cold(
        [
            python,
            "-c",
            BASELINE.format(classes=args.classes, order=args.order, components=args.classes),
        ],
        1,
    )
    rows.append((f"baseline: sympy.series, all {args.classes} components", baseline))
    ours = _cold(
        derive
        + [
            "--quantity",
            "gradient",
            "--order",
            str(args.order),
            "--classes",
            str(args.classes),
            "--format",
            "json",
        ],
        args.repeats,
    )
    rows.append(
        (f"derive: all {args.classes} components, N={args.classes}, {args.order} terms", ours)
    )
    for quantity in ("gradient", "loss"):
        for order in (6, 8):
            rows.append(
                (
                    f"derive: {quantity}, symbolic N, {order} terms",
                    _cold(derive + ["--quantity", quantity, "--order", str(order)], args.repeats),
                )
            )
    rows.append(
        (
            "derive: generic f-divergence, loss, symbolic N and f, 6 terms",
            _cold(
                derive
                + [
                    "--quantity",
                    "loss",
                    "--order",
                    "6",
                    "--objective",
                    "f-divergence",
                    "--format",
                    "json",
                ],
                args.repeats,
            ),
        )
    )
    for objective in ("kl", "js"):
        rows.append(
            (
                f"derive: {objective}, gradient, symbolic N, 12 terms (JSON)",
                _cold(
                    derive
                    + [
                        "--quantity",
                        "gradient",
                        "--order",
                        "12",
                        "--objective",
                        objective,
                        "--format",
                        "json",
                    ],
                    args.repeats,
                ),
            )
        )
    startup = _cold([python, "-c", "import derive"], args.repeats)
    rows.append(("python -c 'import derive' (start-up floor)", startup))
    width = max(len(name) for name, _ in rows)
    print(f"{'cold process':<{width}}  seconds")
    for name, seconds in rows:
        print(f"{name:<{width}}  {seconds:7.2f}")
    print(
        f"\nspeed-up, same output (all {args.classes} components, {args.order} terms): "
        f"{baseline / ours:.1f}x; against one baseline component: {baseline_one / ours:.1f}x"
    )


if __name__ == "__main__":
    main()
