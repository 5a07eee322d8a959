r"""Numeric verification of the theory of knowledge distillation at high temperature.

:mod:`derive` proves the statements of docs/theory.md symbolically; :mod:`verify` checks each one
numerically with torch autograd, on hypothesis-drawn logits and networks trained by real
``torch.optim`` optimizers, on CPU or CUDA, and refutes the false variants with shrunk
counterexamples. Every check returns a :class:`CheckResult` (verdict, worst error,
tolerance, examples, device, dtype, counterexample); tolerances come from the dtype's
machine epsilon and the magnitudes involved (:mod:`verify.tolerances`).

Layout, by concern: :mod:`~verify.strategies` (hypothesis strategies),
:mod:`~verify.devices`, :mod:`~verify.tolerances`, :mod:`~verify.losses`,
:mod:`~verify.networks` (many networks at once with :mod:`torch.func`),
:mod:`~verify.optimizers`, :mod:`~verify.symbolic` (derive's terms as torch functions),
:mod:`~verify.convergence` (orders in 1/T and round-off floors), :mod:`~verify.checks` (one
module per family of statements), :mod:`~verify.registry` and :mod:`~verify.cli`.

Examples
========

>>> import verify
>>> result = verify.CHECKS["mean-preservation/adam"](examples=8)
>>> result.verdict, result.expected
('refuted', 'refuted')
>>> print(result.counterexample)  # doctest: +ELLIPSIS +NORMALIZE_WHITESPACE
Adam(lr=0.1), kl at T=1, Linear(1->3) ... after 1 step the mean bias is off the prediction
by 0.0333 ...
"""

from derive._version import __version__ as __version__

from ._errors import VerifyError, check_argument
from .checks import CHECKS
from .devices import DEVICES, DTYPES, resolve_device, resolve_dtype
from .losses import LOSSES, TWINS, DistillationProblem, Loss
from .networks import NetworkSpec, StackedNetworks
from .optimizers import OptimizerSpec
from .registry import resolve_check, run_check, run_checks
from .results import CheckResult
from .symbolic import SymbolicFunction

__all__ = [
    "VerifyError",
    "check_argument",
    "CHECKS",
    "DEVICES",
    "DTYPES",
    "resolve_device",
    "resolve_dtype",
    "DistillationProblem",
    "Loss",
    "LOSSES",
    "TWINS",
    "NetworkSpec",
    "StackedNetworks",
    "OptimizerSpec",
    "resolve_check",
    "run_check",
    "run_checks",
    "CheckResult",
    "SymbolicFunction",
]
