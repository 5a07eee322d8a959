"""Distil a small network four ways and let the KD monitor tell the runs apart.

The student and the teacher are the same small token model: a sequence of token ids, the mean
of their embeddings, one tanh layer, a linear head over N classes (the vocabulary). The teacher
is fixed, with equal-mean initialisation (its head's rows centred, zero bias). The four runs:

* ``sgd-equal-mean``: SGD, the student's head initialised with equal means: KD at high T is
  logits matching, the monitor stays quiet [equal-mean];
* ``sgd-default``: SGD with PyTorch's default initialisation: the logit means differ from the
  first step and SGD keeps the gap's source, the head's class means [mean-preservation];
* ``adamw``: AdamW from equal-mean initialisation: the head's class mean moves at the first
  step [atlas-coordinatewise/three-classes];
* ``sgd-tied``: SGD with the head tied to the input embedding: the embedding's gradient has no
  zero class sum, so even SGD moves the class mean [atlas-structure].

``python examples/monitor_kd.py --out DIR [--steps 300] [--plot FILE.png]`` writes one JSON
Lines log per run to DIR and prints ``python -m verify monitor-report``'s summary of each;
:data:`PREDICTED` is what the statements predict the report's first cause to be.
"""

import argparse
import json
import os
import sys

import torch

from verify.monitor import KDMonitor
from verify.monitor.report import plot_run, summarise, summary_text

RUNS = ("sgd-equal-mean", "sgd-default", "adamw", "sgd-tied")
#: The report's first cause and its statement, as the statements predict ("held": none).
PREDICTED = {
    "sgd-equal-mean": ("held", None),
    "sgd-default": ("logit-mean-gap", "equal-mean"),
    "adamw": ("head-mean-drift", "atlas-coordinatewise/three-classes"),
    "sgd-tied": ("head-mean-drift", "atlas-structure"),
}
CLASSES = 10
WIDTH = 16
LENGTH = 6
TEMPERATURE = 4.0


class TokenModel(torch.nn.Module):
    """Mean of token embeddings -> tanh layer -> linear head over the vocabulary."""

    def __init__(self, *, tied=False):
        super().__init__()
        self.embedding = torch.nn.Embedding(CLASSES, WIDTH)
        self.hidden = torch.nn.Linear(WIDTH, WIDTH)
        self.head = torch.nn.Linear(WIDTH, CLASSES)
        if tied:
            self.head.weight = self.embedding.weight

    def forward(self, tokens):
        return self.head(torch.tanh(self.hidden(self.embedding(tokens).mean(1))))


def equal_mean_(head):
    """Centre the head's rows and zero its bias: 1^T W = 0 and mean bias 0."""
    with torch.no_grad():
        head.weight.sub_(head.weight.mean(0, keepdim=True))
        head.bias.zero_()


def kd_loss(student_logits, teacher_logits, temperature):
    log_q = torch.log_softmax(student_logits / temperature, dim=-1)
    p = torch.softmax(teacher_logits / temperature, dim=-1)
    return torch.nn.functional.kl_div(log_q, p, reduction="batchmean") * temperature**2


def distil(run, *, steps=300, seed=0, path=None, batch_size=64):
    """Train the student of ``run`` for ``steps`` steps; returns the monitor's records."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    teacher = TokenModel()
    with torch.no_grad():
        for p in teacher.parameters():
            p.mul_(3.0)  # a teacher with logits of a few units
    equal_mean_(teacher.head)
    torch.manual_seed(seed + 1)
    student = TokenModel(tied=run == "sgd-tied")
    if run != "sgd-default":
        equal_mean_(student.head)
    if run == "adamw":
        optimizer = torch.optim.AdamW(student.parameters(), lr=1e-2)
    else:
        optimizer = torch.optim.SGD(student.parameters(), lr=0.5, momentum=0.9)
    monitor = KDMonitor(path)
    monitor.watch_head(student.head, optimizer, teacher_head=teacher.head)
    records = []
    for step in range(steps):
        tokens = torch.randint(0, CLASSES, (batch_size, LENGTH), generator=generator)
        with torch.no_grad():
            teacher_logits = teacher(tokens)
        student_logits = student(tokens)
        loss = kd_loss(student_logits, teacher_logits, TEMPERATURE)
        records.append(monitor.observe(student_logits, teacher_logits, TEMPERATURE, step=step))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    monitor.close()
    return records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory for the JSON Lines logs")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--plot", help="draw the four runs' curves to this PNG")
    parser.add_argument("--json", action="store_true", help="print the summaries as JSON")
    arguments = parser.parse_args(argv)
    os.makedirs(arguments.out, exist_ok=True)
    results = {}
    for run in RUNS:
        records = distil(
            run, steps=arguments.steps, path=os.path.join(arguments.out, f"{run}.jsonl")
        )
        results[run] = (records, summarise(records))
    if arguments.json:
        print(json.dumps({run: s.to_json() for run, (_, s) in results.items()}, indent=1))
    else:
        for run, (_, summary) in results.items():
            print(summary_text(summary, name=run))
    if arguments.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(2, 2, figsize=(10, 6.6))
        for run, (records, _) in results.items():
            plot_run(records, axes, label=run)
        axes.flat[0].legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(arguments.plot, dpi=100)
        plt.close(figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
