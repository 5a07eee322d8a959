r"""Audit a user's distillation loss: what it is, and whether it is what it is meant to be.

``audit(fn)`` takes a loss ``fn(student_logits, teacher_logits, T)`` (logits ``[B, N]``, or
``[B, L, N]`` token sequences with an optional padding mask; a fourth argument ``target`` for
objectives that need the label) and judges it from its gradient w.r.t. the student logits,
never from its value. It

1. measures, on seeded random logits, the leading order ([infinite-temperature]): shift
   invariance, the power of :math:`T` of the gradient, and its limit as :math:`T \to \infty`
   against the declared objective's (:mod:`.fitting`);
2. **identifies** the loss: the gradient, per example, on temperatures from :math:`4r` to
   :math:`64r`, is fitted by every registered objective of :data:`derive.OBJECTIVES`, its
   terms :math:`G_0 .. G_4` taken from :func:`derive.expand` and evaluated numerically, with
   its parameters and a weight (:mod:`.candidates`, :mod:`.identification`); failing that, by
   known objectives with known defects (:mod:`.defects`); the declaration it is judged
   against is :mod:`.expectation`;
3. for token sequences, measures how the tokens are weighed (:mod:`.sequences`);
4. names the causes of any departure from the declaration, with their fixes
   (:mod:`.diagnoses`);
5. traces the loss symbolically with :func:`derive.trace` and compares its exact relation and
   leading order with what was measured and identified; a disagreement is reported as a bug
   of the toolkit, the verdict staying the numeric one (:mod:`.symbolic`).

The ``verdict`` is ``"consistent"`` iff the loss is the declared objective (``expect``,
default ``kl``: :math:`T^2\,\mathrm{KL}(p\,\|\,q)` with ``reduction='batchmean'``) with the
declared ``weight`` (default 1). The user's code runs contained (:mod:`.loading`): whatever it
raises or prints, and however long it runs, the audit answers with a result or one
:class:`~verify.VerifyError`. The command line is :mod:`.cli`.

Examples
========

>>> from verify.gallery import kd_batchmean, kd_missing_t_squared, kd_swapped_kl_div
>>> result = audit(kd_batchmean)
>>> result.verdict, result.objective, result.weight
('consistent', 'kl', 1.0)
>>> result.temperature_exponent, result.limit_scale, result.limit_cosine
(0.0, 1.0, 1.0)
>>> result = audit(kd_missing_t_squared)
>>> result.verdict, result.causes
('inconsistent', ('missing-temperature-factor',))
>>> print(result.diagnoses[0])
gradient scales as T^-2: the T**2 factor is missing; multiply the KL term by T**2
>>> result = audit(kd_swapped_kl_div)
>>> result.objective, result.causes
('reverse-kl', ('swapped-kl-arguments',))
>>> audit(kd_swapped_kl_div, expect="reverse-kl").verdict
'consistent'
>>> audit(kd_batchmean, classes=1)
Traceback (most recent call last):
...
verify._errors.VerifyError: classes must be an integer in [2, 65536], got 1
"""

from .cli import add_arguments, main, run
from .core import DEFAULT_BATCH_SIZE, DEFAULT_CLASSES, DEFAULT_TIMEOUT, LIMITS, audit, check_options
from .expectation import Expectation, parse_expectation
from .loading import load_target
from .result import CAUSES, VERDICTS, AuditResult

__all__ = [
    "CAUSES",
    "VERDICTS",
    "AuditResult",
    "audit",
    "load_target",
    "add_arguments",
    "run",
    "main",
    "check_options",
    "parse_expectation",
    "Expectation",
    "LIMITS",
    "DEFAULT_CLASSES",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_TIMEOUT",
]
