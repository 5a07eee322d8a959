r"""Numbers from a traced expression, with a rounding bound, for the self-check of the trace.

:func:`evaluate` computes a per-example expression (``z_i``, ``v_i``, class means, ``N``,
``B``, :math:`\epsilon`) on explicit logits in float64, together with a first-order bound on
its rounding error, counted operation by operation: the computed value is within
``machine epsilon * bound`` of the exact one. Class means are means over the last axis.

:func:`self_check` compares the traced expression with the user's function at
``T = 2, 10, 100``, value and gradient w.r.t. the student logits (autograd's), on seeded random
logits. The function computed the same mathematics with its own rounding, which the same
counting bounds, so the two may differ by twice the bound; anything more is a translation that
disagrees with the function, and the trace is refused.

Examples
========

>>> import torch
>>> from derive.notation import ClassMean, z_i, epsilon
>>> logits = torch.tensor([[0.0, 1.0, 2.0]], dtype=torch.float64)
>>> value, bound = evaluate(ClassMean(z_i) / epsilon, logits, logits, temperature=2.0)
>>> float(value), bool(bound > 0)
(2.0, True)
"""

import math

import sympy
import torch

from .._errors import DeriveError
from ..notation import ClassMean, N, T, epsilon, v_i, z_i
from ._symbols import B, StopGradient

__all__ = ["evaluate", "self_check", "CHECK_TEMPERATURES", "FLOAT64_EPSILON"]

#: Temperatures at which every trace is checked against the function itself.
CHECK_TEMPERATURES = (2.0, 10.0, 100.0)
#: float64's machine epsilon (unit roundoff is half of it).
FLOAT64_EPSILON = torch.finfo(torch.float64).eps
#: Shape of the logits of the self-check (distinct from those of the shape run).
CHECK_BATCH, CHECK_CLASSES = 4, 6


def evaluate(expr, student, teacher, *, temperature):
    """``(value, bound)`` of ``expr`` for logits ``[R, C]``: tensors broadcastable to
    ``[R, C]`` (``[R, 1]`` for a class constant). The rounding error is at most
    ``FLOAT64_EPSILON * bound``, to first order."""
    rows, classes = student.shape
    leaves = {
        z_i: student,
        v_i: teacher,
        epsilon: 1.0 / temperature,
        T: float(temperature),
        N: float(classes),
        B: float(rows),
    }
    return _Evaluator(leaves).value(sympy.sympify(expr))


class _Evaluator:
    def __init__(self, leaves):
        self.leaves = {k: _as_tensor(v) for k, v in leaves.items()}
        self.memo = {}

    def value(self, expr):
        cached = self.memo.get(expr)
        if cached is None:
            cached = self._value(expr)
            self.memo[expr] = cached
        return cached

    def _value(self, expr):
        if expr in self.leaves:
            x = self.leaves[expr]
            return x, x.abs()
        if expr.is_Number or expr.is_NumberSymbol:
            x = _as_tensor(float(expr))
            return x, x.abs()
        if expr.is_Add:
            parts = [self.value(a) for a in expr.args]
            x = sum(p[0] for p in parts)
            absolute = sum(p[0].abs() for p in parts)
            return x, sum(p[1] for p in parts) + (len(parts) - 1) * absolute
        if expr.is_Mul:
            parts = [self.value(a) for a in expr.args]
            x = math.prod(p[0] for p in parts)
            # d(prod) = sum_k err_k prod_{j != k} |x_j|, plus one rounding per product.
            bound = 0
            for k, (_, b_k) in enumerate(parts):
                others = math.prod(parts[j][0].abs() for j in range(len(parts)) if j != k)
                bound = bound + b_k * others
            return x, bound + (len(parts) - 1) * x.abs()
        if expr.is_Pow:
            base, exponent = expr.args
            if exponent.is_Number:
                b, b_bound = self.value(base)
                p = float(exponent)
                x = b**p
                return x, abs(p) * b.abs() ** (p - 1) * b_bound + x.abs()
            return self.value(sympy.exp(exponent * sympy.log(base), evaluate=False))
        if isinstance(expr, sympy.exp):
            a, a_bound = self.value(expr.args[0])
            x = torch.exp(a)
            return x, x * (a_bound + 1)
        if isinstance(expr, sympy.log):
            a, a_bound = self.value(expr.args[0])
            x = torch.log(a)
            return x, a_bound / a.abs() + x.abs()
        if isinstance(expr, ClassMean):
            f, f_bound = self.value(expr.args[0])
            classes = self.leaves[N]
            f, f_bound = _broadcast_classes(f, f_bound, self.leaves[z_i].shape)
            x = f.mean(-1, keepdim=True)
            spread = (classes - 1) * f.abs().mean(-1, keepdim=True)
            return x, f_bound.mean(-1, keepdim=True) + spread + x.abs()
        if isinstance(expr, StopGradient):
            return self.value(expr.args[0])
        raise DeriveError(f"internal: cannot evaluate {type(expr).__name__} in a traced expression")


def _as_tensor(value):
    if isinstance(value, torch.Tensor):
        return value.to(torch.float64)
    return torch.tensor(float(value), dtype=torch.float64)


def _broadcast_classes(f, bound, shape):
    shape = torch.broadcast_shapes(f.shape, bound.shape, shape)
    return f.expand(shape), bound.expand(shape)


# -- the self-check ------------------------------------------------------------------------------


def check_logits(seed=0):
    """Seeded float64 logits ``[CHECK_BATCH, CHECK_CLASSES]``: standard normal plus a row offset
    of scale 3, for the student and the teacher (so that their class means differ)."""
    generator = torch.Generator().manual_seed(seed)

    def draw():
        logits = torch.randn(CHECK_BATCH, CHECK_CLASSES, generator=generator, dtype=torch.float64)
        return logits + 3.0 * torch.randn(CHECK_BATCH, 1, generator=generator, dtype=torch.float64)

    return draw(), draw()


def self_check(call, loss, gradient, *, seed=0):
    """Compare the traced per-example ``loss`` (summed over the rows gives the function's value)
    and its ``gradient`` w.r.t. ``z_i`` with ``call(student, teacher, T)``, which returns the
    function's ``(value, gradient)`` as float64 tensors.

    Returns ``None`` when they agree at every temperature of :data:`CHECK_TEMPERATURES`, else
    ``(T, what, found, expected, tolerance)`` for the first disagreement.
    """
    student, teacher = check_logits(seed)
    for temperature in CHECK_TEMPERATURES:
        value, value_bound = evaluate(loss, student, teacher, temperature=temperature)
        value = value.expand(student.shape[0], 1)
        value_bound = value_bound.expand(student.shape[0], 1)
        total = value.sum()
        total_bound = value_bound.sum() + (student.shape[0] - 1) * value.abs().sum()
        found_value, found_gradient = call(student, teacher, temperature)
        tolerance = 2 * FLOAT64_EPSILON * float(total_bound)
        if not abs(float(found_value) - float(total)) <= tolerance:
            return temperature, "value", float(found_value), float(total), tolerance
        expected, bound = evaluate(gradient, student, teacher, temperature=temperature)
        expected, bound = _broadcast_classes(expected, bound, student.shape)
        error = (found_gradient - expected).abs()
        tolerance = 2 * FLOAT64_EPSILON * bound
        if not bool((error <= tolerance).all()):
            worst = int(torch.argmax(error - tolerance))
            row, column = divmod(worst, student.shape[1])
            return (
                temperature,
                f"gradient w.r.t. student logit [{row}, {column}]",
                float(found_gradient[row, column]),
                float(expected[row, column]),
                float(tolerance[row, column]),
            )
    return None
