"""Overhead of the KD monitor against the training step it watches, as a ratio within one run.

    python benchmarks/bench_monitor.py [--classes 1000] [--batch 256] [--width 512]
                                       [--repeats 30] [--device cpu|cuda] [--threads 1]
                                       [--every 1] [--json]

The step: a teacher's forward (no grad) and a student's forward, KD's loss at T = 4, the
backward and an SGD step (momentum 0.9), for two-layer MLPs ``width -> 2*width -> classes`` on
a batch ``[batch, width]`` (float32). The monitored step (a second student, the same weights)
adds ``KDMonitor.observe`` with its head watched and the teacher's head hooked; the plain one
has no hook. Both are timed alternately, median of ``repeats`` after warm-up, and the
``observe`` call inside each monitored step is timed as well (on the step's own logits, after
the head moved: the work of a real step); the overhead is the ratio of the medians minus 1.
``--every k`` builds ``KDMonitor(every=k)``. No number here is asserted by a test (timing
tests are flaky): read the table.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from verify.monitor import KDMonitor

TEMPERATURE = 4.0


def _mlp(width, classes):
    return torch.nn.Sequential(
        torch.nn.Linear(width, 2 * width), torch.nn.ReLU(), torch.nn.Linear(2 * width, classes)
    )


def _synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(*, classes, batch, width, repeats, device, every=1):
    torch.manual_seed(0)
    teacher = _mlp(width, classes).to(device)
    students = [_mlp(width, classes).to(device) for _ in range(2)]
    students[1].load_state_dict(students[0].state_dict())
    optimizers = [torch.optim.SGD(s.parameters(), lr=0.01, momentum=0.9) for s in students]
    inputs = torch.randn(batch, width, device=device)
    # The monitored student (index 1) has the monitor's hooks; the plain one (0) has none.
    monitor = KDMonitor(every=every)
    monitor.watch_head(students[1][-1], optimizers[1], teacher_head=teacher[-1])
    inside = []

    def step(observe):
        student, optimizer = students[observe], optimizers[observe]
        with torch.no_grad():
            teacher_logits = teacher(inputs)
        student_logits = student(inputs)
        log_q = torch.log_softmax(student_logits / TEMPERATURE, -1)
        p = torch.softmax(teacher_logits / TEMPERATURE, -1)
        loss = torch.nn.functional.kl_div(log_q, p, reduction="batchmean") * TEMPERATURE**2
        if observe:
            _synchronize(device)
            start = time.perf_counter()
            monitor.observe(student_logits, teacher_logits, TEMPERATURE)
            _synchronize(device)
            inside.append(time.perf_counter() - start)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def timed(function):
        _synchronize(device)
        start = time.perf_counter()
        function()
        _synchronize(device)
        return time.perf_counter() - start

    for _ in range(3):
        step(False)
        step(True)
    plain, monitored = [], []
    inside.clear()
    for _ in range(repeats):
        plain.append(timed(lambda: step(False)))
        monitored.append(timed(lambda: step(True)))
    step_time, monitored_time = statistics.median(plain), statistics.median(monitored)
    return {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "classes": classes,
        "batch": batch,
        "width": width,
        "every": every,
        "step_ms": 1e3 * step_time,
        "monitored_step_ms": 1e3 * monitored_time,
        "observe_ms": 1e3 * statistics.median(inside),
        "overhead": monitored_time / step_time - 1,
        "observe_share": statistics.median(inside) / step_time,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1: steady on a shared CPU)"
    )
    parser.add_argument("--every", type=int, default=1, help="KDMonitor(every=k)")
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args(argv)
    torch.set_num_threads(arguments.threads)
    result = measure(
        classes=arguments.classes,
        batch=arguments.batch,
        width=arguments.width,
        repeats=arguments.repeats,
        device=torch.device(arguments.device),
        every=arguments.every,
    )
    if arguments.json:
        print(json.dumps(result))
        return 0
    print(
        f"N = {result['classes']}, B = {result['batch']}, MLP {result['width']} -> "
        f"{2 * result['width']} -> N, {result['device']}, {result['threads']} threads, "
        f"every {result['every']}"
    )
    print(f"training step (median)             {result['step_ms']:8.2f} ms")
    print(f"training step + observe (median)   {result['monitored_step_ms']:8.2f} ms")
    print(f"observe in the step (median)       {result['observe_ms']:8.2f} ms")
    print(f"overhead (monitored / plain - 1)   {100 * result['overhead']:8.1f} %")
    print(f"observe / training step            {100 * result['observe_share']:8.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
