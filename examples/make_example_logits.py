"""Make the example logits shipped with the project: ``teacher_logits.npy`` and
``student_logits.npy`` in this directory, arrays ``[16, 10]`` of float64.

A small MLP teacher (8 -> 32 -> 10, tanh) is trained for 200 Adam steps with cross-entropy on
synthetic data (ten Gaussian clusters in 8 dimensions); a linear student is then distilled
from it for 50 SGD steps of KD at T = 4. Both are evaluated on 16 held-out inputs. Everything
is seeded: the files come out the same on every run (on the same torch build).

    python examples/make_example_logits.py            # rewrites the two .npy files
    python -m verify regime --logits examples/teacher_logits.npy \\
        --student examples/student_logits.npy
"""

import os

import numpy
import torch

CLASSES, FEATURES, HELD_OUT = 10, 8, 16


def synthetic_data(count, generator):
    """Ten Gaussian clusters in 8 dimensions (unit spread, centres 2.5 apart on average)."""
    centres = 2.5 * torch.randn(CLASSES, FEATURES, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, CLASSES, (count,), generator=generator)
    inputs = centres[labels] + torch.randn(
        count, FEATURES, generator=generator, dtype=torch.float64
    )
    return inputs, labels


_HERE = os.path.dirname(os.path.abspath(__file__))


def main(directory=_HERE):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only cost time (and order of sums)
    try:
        return _make(directory)
    finally:
        torch.set_num_threads(threads)


def _make(directory):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    inputs, labels = synthetic_data(512 + HELD_OUT, generator)
    train_inputs, train_labels = inputs[:512], labels[:512]
    held_out = inputs[512:]

    teacher = torch.nn.Sequential(
        torch.nn.Linear(FEATURES, 32), torch.nn.Tanh(), torch.nn.Linear(32, CLASSES)
    ).double()
    optimizer = torch.optim.Adam(teacher.parameters(), lr=1e-2)
    for _ in range(200):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(teacher(train_inputs), train_labels).backward()
        optimizer.step()

    student = torch.nn.Linear(FEATURES, CLASSES).double()
    optimizer = torch.optim.SGD(student.parameters(), lr=0.05)
    temperature = 4.0
    with torch.no_grad():
        soft_targets = torch.log_softmax(teacher(train_inputs) / temperature, -1)
    for _ in range(50):
        optimizer.zero_grad()
        log_q = torch.log_softmax(student(train_inputs) / temperature, -1)
        loss = temperature**2 * torch.nn.functional.kl_div(
            log_q, soft_targets, reduction="batchmean", log_target=True
        )
        loss.backward()
        optimizer.step()

    with torch.no_grad():
        teacher_logits = teacher(held_out).numpy()
        student_logits = student(held_out).numpy()
    paths = []
    for name, values in (
        ("teacher_logits.npy", teacher_logits),
        ("student_logits.npy", student_logits),
    ):
        path = os.path.join(directory, name)
        numpy.save(path, values.astype(numpy.float64))
        paths.append(path)
    return paths


if __name__ == "__main__":
    for path in main():
        print(f"wrote {path}")
