"""Shared pieces of the monitor tests: a fake optimizer atlas and a tiny distillation setup."""

import torch

#: What verify.atlas.recognise answers for the optimizers the tests use (the real atlas'
#: contract: name, verdict, statement, fix).
FAKE_ATLAS = {
    "SGD": {"name": "SGD", "verdict": "preserves", "statement": "atlas-linear", "fix": None},
    "AdamW": {
        "name": "AdamW",
        "verdict": "breaks",
        "statement": "atlas-coordinatewise",
        "fix": "train the head with SGD",
    },
}


def install_fake_atlas(monkeypatch):
    """Make the monitor's :func:`verify.atlas.recognise` answer from :data:`FAKE_ATLAS`."""

    def recognise(optimizer):
        return FAKE_ATLAS.get(type(optimizer).__name__)

    monkeypatch.setattr("verify.monitor.monitor.recognise", recognise)
    return recognise


def block_atlas(monkeypatch):
    """Make the monitor's atlas recognise no optimizer (its entry is ``None``)."""
    monkeypatch.setattr("verify.monitor.monitor.recognise", lambda optimizer: None)


class Student(torch.nn.Module):
    def __init__(self, *, inputs=6, width=8, classes=5, dtype=torch.float64):
        super().__init__()
        self.body = torch.nn.Linear(inputs, width, dtype=dtype)
        self.head = torch.nn.Linear(width, classes, dtype=dtype)

    def forward(self, x):
        return self.head(torch.tanh(self.body(x)))


def equal_mean_(head):
    with torch.no_grad():
        head.weight.sub_(head.weight.mean(0, keepdim=True))
        head.bias.zero_()


def kd_loss(student_logits, teacher_logits, temperature):
    log_q = torch.log_softmax(student_logits / temperature, -1)
    p = torch.softmax(teacher_logits / temperature, -1)
    return torch.nn.functional.kl_div(log_q, p, reduction="batchmean") * temperature**2


def setup(*, seed=0, dtype=torch.float64, equal_means=True, classes=5):
    torch.manual_seed(seed)
    teacher = Student(dtype=dtype, classes=classes)
    equal_mean_(teacher.head)
    student = Student(dtype=dtype, classes=classes)
    if equal_means:
        equal_mean_(student.head)
    return teacher, student


def train(student, teacher, optimizer, *, steps, monitor=None, temperature=4.0, seed=1):
    """A plain loop; the monitor (if any) observes before the backward. Returns the losses."""
    generator = torch.Generator().manual_seed(seed)
    losses = []
    dtype = next(student.parameters()).dtype
    for step in range(steps):
        x = torch.randn(16, 6, generator=generator, dtype=dtype)
        with torch.no_grad():
            teacher_logits = teacher(x)
        student_logits = student(x)
        loss = kd_loss(student_logits, teacher_logits, temperature)
        if monitor is not None:
            monitor.observe(student_logits, teacher_logits, temperature, step=step)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.detach().clone())
    return losses
