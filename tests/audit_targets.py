"""Losses that misbehave, for the audit's command-line tests (``tests/audit_targets.py:NAME``).

Each one does something a loss must not: exit, interrupt, raise a ``BaseException``, hang,
print. The audit must turn each into one line on stderr and exit code 2 (or, for the noisy
ones, keep ``--json`` output pure).
"""

import sys
import time

from verify.gallery import kd_batchmean


class _Stop(BaseException):
    """A ``BaseException`` that is neither ``SystemExit`` nor ``KeyboardInterrupt``."""


def exits_zero(student_logits, teacher_logits, temperature):
    sys.exit(0)


def exits_with_message(student_logits, teacher_logits, temperature):
    sys.exit("cannot continue")


def interrupted(student_logits, teacher_logits, temperature):
    raise KeyboardInterrupt


def raises_base_exception(student_logits, teacher_logits, temperature):
    raise _Stop("stop")


def exits_in_backward(student_logits, teacher_logits, temperature):
    """Exits from its backward pass, which the audit also runs."""
    import torch

    class Exit(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.sum()

        @staticmethod
        def backward(ctx, grad):
            sys.exit(3)

    return Exit.apply(student_logits)


def hangs(student_logits, teacher_logits, temperature):
    time.sleep(30)
    return kd_batchmean(student_logits, teacher_logits, temperature)


def swallows_everything_and_hangs(student_logits, teacher_logits, temperature):
    """Catches ``Exception`` around its sleep: the timeout is a ``BaseException``."""
    try:
        time.sleep(30)
    except Exception:
        pass
    return kd_batchmean(student_logits, teacher_logits, temperature)


def prints(student_logits, teacher_logits, temperature):
    print('{"verdict": "consistent"}')
    print("debug:", temperature, file=sys.stderr)
    return kd_batchmean(student_logits, teacher_logits, temperature)


not_callable = 42
