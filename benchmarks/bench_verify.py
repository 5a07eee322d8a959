"""Benchmark of verify's batching: batched against one-at-a-time, as ratios within one run.

    python benchmarks/bench_verify.py [--device auto|cpu|cuda] [--dtype float64|float32]
                                      [--repeats R] [--vectors B] [--networks M] [--quick]
                                      [--json]

Rows (each timed best-of-``repeats`` after a warm-up, both sides in the same process):

* ``zero-mean, logits``: the logit-level [zero-mean-gradient] measurement on B logit vectors
  of N = 100 classes under L_KD: one autograd call over ``[B, N]`` against a Python loop of
  B autograd calls over ``[1, N]`` (the target: at least 10x on the CPU).
* ``SGD training, networks``: M MLPs trained for 20 SGD steps, stacked with torch.func
  (one vmapped forward, one backward, one optimizer per step) against a loop over M networks
  with their own optimizers.
* ``parameter gradients, T grid``: the [infinite-temperature] measurement (all parameter
  gradients at 7 temperatures and the limit) for M networks in one call against a loop.
* ``default check run``: the wall time of ``python -m verify check``'s work (all statements,
  default sizes), without interpreter start, for the record.

Throughputs are per second of the batched and looped code; the ratio is looped time over
batched time. No number here is asserted by the tests (timing tests are flaky): read the table.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from verify.checks.temperature import TEMPERATURES, parameter_gradient_differences
from verify.checks.zero_mean import logit_gradient_sums
from verify.devices import dtype_name, resolve_device, resolve_dtype
from verify.losses import LOSSES, DistillationProblem
from verify.networks import NetworkSpec, StackedNetworks
from verify.optimizers import OptimizerSpec


def _synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(function, device, repeats):
    """Best wall time of ``repeats`` calls, after one warm-up call."""
    function()
    _synchronize(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        _synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best


def zero_mean_logits(device, dtype, repeats, vectors, classes=100):
    generator = torch.Generator().manual_seed(0)

    def tensor(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64).to(device, dtype)

    problem = DistillationProblem(
        tensor(vectors, classes),
        3 * tensor(vectors, classes),
        torch.zeros(vectors, dtype=torch.long, device=device),
        torch.softmax(tensor(vectors, classes), -1),
        torch.full((vectors,), 4.0, dtype=dtype, device=device),
    )
    rows = [
        DistillationProblem(
            problem.student[i : i + 1],
            problem.teacher[i : i + 1],
            problem.labels[i : i + 1],
            problem.targets[i : i + 1],
            problem.temperature[i : i + 1],
        )
        for i in range(vectors)
    ]
    kd = LOSSES["kl"]

    def batched():
        errors, tolerances = logit_gradient_sums(kd, problem)
        assert bool((errors <= tolerances).all())

    def looped():
        for row in rows:
            errors, tolerances = logit_gradient_sums(kd, row)
            assert bool((errors <= tolerances).all())

    return (
        f"zero-mean, logits (N={classes})",
        vectors,
        "logit vectors",
        best_time(batched, device, repeats),
        best_time(looped, device, 1 if repeats < 3 else 2),
    )


SPEC = NetworkSpec(
    kind="mlp",
    input_shape=(16,),
    widths=(32, 32),
    activation="gelu",
    bias=True,
    normalization="none",
    classes=10,
)


def _batches(count, dtype, device, steps=20, batch=16):
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randn(steps, count, batch, 16, generator=generator, dtype=torch.float64)
    teacher = 2 * torch.randn(steps, count, batch, 10, generator=generator, dtype=torch.float64)
    return inputs.to(device, dtype), teacher.to(device, dtype)


def sgd_training(device, dtype, repeats, networks, steps=20):
    optimizer = OptimizerSpec("sgd", (("lr", 0.05), ("momentum", 0.9)))
    kd = LOSSES["kl"]
    inputs, teacher = _batches(networks, dtype, device, steps)
    temperature = torch.full(teacher.shape[1:3], 4.0, dtype=dtype, device=device)
    labels = torch.zeros(teacher.shape[1:3], dtype=torch.long, device=device)

    def problem(step, logits, index=None):
        target = teacher[step] if index is None else teacher[step, index : index + 1]
        t = temperature if index is None else temperature[index : index + 1]
        l = labels if index is None else labels[index : index + 1]
        return DistillationProblem(logits, target, l, target, t)

    def batched():
        stacked = StackedNetworks.build(SPEC, count=networks, seed=0, dtype=dtype, device=device)
        built = optimizer.build(stacked.leaves())
        for step in range(steps):
            _, logits = stacked.forward(inputs[step])
            built.zero_grad()
            kd(problem(step, logits)).mean(-1).sum().backward()
            built.step()

    def looped():
        for index in range(networks):
            network = SPEC.build(seed=index, dtype=dtype, device=device)
            built = optimizer.build(network.parameters())
            for step in range(steps):
                _, logits = network(inputs[step, index])
                built.zero_grad()
                kd(problem(step, logits.unsqueeze(0), index)).mean().backward()
                built.step()

    return (
        f"SGD training, {steps} steps",
        networks,
        "networks",
        best_time(batched, device, repeats),
        best_time(looped, device, 1),
    )


def parameter_gradients(device, dtype, repeats, networks):
    generator = torch.Generator().manual_seed(2)
    inputs = torch.randn(networks, 8, 16, generator=generator, dtype=torch.float64).to(
        device, dtype
    )
    teacher = torch.randn(networks, 8, 10, generator=generator, dtype=torch.float64).to(
        device, dtype
    )
    stacked = StackedNetworks.build(SPEC, count=networks, seed=0, dtype=dtype, device=device)
    singles = [
        StackedNetworks.build(SPEC, count=1, seed=k, dtype=dtype, device=device)
        for k in range(networks)
    ]

    def batched():
        parameter_gradient_differences(stacked, inputs, teacher, TEMPERATURES)

    def looped():
        for k, single in enumerate(singles):
            parameter_gradient_differences(
                single, inputs[k : k + 1], teacher[k : k + 1], TEMPERATURES
            )

    return (
        f"parameter gradients, {len(TEMPERATURES)} temperatures",
        networks,
        "networks",
        best_time(batched, device, repeats),
        best_time(looped, device, 1),
    )


def default_check_run(device, dtype):
    from verify.registry import run_checks

    start = time.perf_counter()
    results = run_checks(device=device, dtype=dtype)
    elapsed = time.perf_counter() - start
    assert all(result.as_expected for result in results)
    return elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python benchmarks/bench_verify.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--vectors",
        type=int,
        default=None,
        help="logit vectors for the first row (default 4096; try 2**22 on a GPU)",
    )
    parser.add_argument(
        "--networks", type=int, default=None, help="networks for the other rows (default 64)"
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, no default run")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    arguments = parser.parse_args(argv)
    device, dtype = resolve_device(arguments.device), resolve_dtype(arguments.dtype)
    torch.manual_seed(0)

    vectors = arguments.vectors or (1024 if arguments.quick else 4096)
    networks = arguments.networks or (16 if arguments.quick else 64)
    rows = [
        zero_mean_logits(device, dtype, arguments.repeats, vectors),
        sgd_training(device, dtype, arguments.repeats, networks),
        parameter_gradients(device, dtype, arguments.repeats, networks),
    ]
    records = []
    for name, count, unit, batched, looped in rows:
        records.append(
            {
                "benchmark": name,
                "count": count,
                "unit": unit,
                "batched_s": batched,
                "looped_s": looped,
                "batched_per_s": count / batched,
                "looped_per_s": count / looped,
                "ratio": looped / batched,
            }
        )
    default_run = None if arguments.quick else default_check_run(device, dtype)

    header = {
        "device": str(device),
        "dtype": dtype_name(dtype),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    if arguments.json:
        print(
            json.dumps({**header, "results": records, "default_check_run_s": default_run}, indent=2)
        )
        return 0
    print(
        f"bench_verify: device {header['device']}, dtype {header['dtype']}, torch "
        f"{header['torch']}, {header['threads']} threads"
    )
    columns = ("benchmark", "count", "batched /s", "looped /s", "batched s", "looped s", "ratio")
    table = [
        (
            r["benchmark"],
            f"{r['count']} {r['unit']}",
            f"{r['batched_per_s']:.3g}",
            f"{r['looped_per_s']:.3g}",
            f"{r['batched_s']:.4f}",
            f"{r['looped_s']:.4f}",
            f"{r['ratio']:.1f}x",
        )
        for r in records
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(columns, *table)]
    for row in [columns, tuple("-" * w for w in widths), *table]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
    if default_run is not None:
        print(
            f"\ndefault `python -m verify check` work: {default_run:.1f} s "
            f"(without interpreter start)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
