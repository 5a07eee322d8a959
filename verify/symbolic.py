r"""Turn :mod:`derive`'s symbolic-N terms into batched numeric functions.

A term of :func:`derive.expand` with ``classes=None`` is a sympy expression in the generic
class's logits ``z_i, v_i``, the number of classes ``N`` and class means
``ClassMean(f)`` (printed ``mean(f)``). :class:`SymbolicFunction` evaluates it on a batch of
logit vectors by walking the expression tree:

* ``z_i`` and ``v_i`` become the student and teacher logits, shape ``[B, N]``;
* ``N`` becomes the number of classes ``N`` (the last dimension);
* ``ClassMean(f)`` evaluates ``f`` elementwise, then averages over the classes,
  ``.mean(-1, keepdim=True)``, shape ``[B, 1]``;
* sums, products, rational powers, ``exp`` and ``log`` map to their elementwise counterparts;
  ``T`` and ``epsilon = 1/T`` to a temperature given at call time.

A gradient term thus becomes a ``[B, N]`` tensor (component ``i`` in column ``i``) and a loss
term a ``[B, 1]`` tensor. Each distinct subexpression is evaluated once per call.

The same walk runs on numpy object arrays of :class:`mpmath.mpf` (:func:`evaluate_mpmath`),
which the expansion check uses as a high-precision reference.

Examples
========

>>> import torch
>>> from derive import ClassMean, N, v_i, z_i
>>> gradient_term = (z_i - v_i - ClassMean(z_i) + ClassMean(v_i)) / N
>>> function = SymbolicFunction(gradient_term)
>>> student = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
>>> teacher = torch.zeros(1, 3, dtype=torch.float64)
>>> function(student, teacher)
tensor([[-0.3333,  0.0000,  0.3333]], dtype=torch.float64)
>>> SymbolicFunction(ClassMean(z_i**2) / 2)(student, teacher)
tensor([[2.3333]], dtype=torch.float64)
>>> SymbolicFunction(z_i * sympy.Symbol("w"))  # doctest: +NORMALIZE_WHITESPACE
Traceback (most recent call last):
...
verify._errors.VerifyError: cannot evaluate symbol w: expected only z_i, v_i, N, T, epsilon, z_g,
v_g, zh_i, vh_i, sigma_z, sigma_v (substitute parameters first)
"""

import math
from functools import lru_cache
from typing import Any

import mpmath
import numpy
import sympy
import torch

from derive import (
    ClassMean,
    N,
    OtherMean,
    T,
    epsilon,
    parse,
    sigma_v,
    sigma_z,
    v_g,
    v_i,
    vh_i,
    z_g,
    z_i,
    zh_i,
)

from ._errors import check_argument

__all__ = ["SymbolicFunction", "evaluate_mpmath", "gradient_values"]

_KNOWN = (z_i, v_i, N, T, epsilon, z_g, v_g, zh_i, vh_i, sigma_z, sigma_v)
_LABELLED = (z_g, v_g)


class _TorchBackend:
    @staticmethod
    def constant(value):
        return float(value)

    @staticmethod
    def mean(values):
        return values.mean(-1, keepdim=True)

    @staticmethod
    def other_mean(values, label_mask):
        """The mean over the classes other than the label (``label_mask`` is one-hot)."""
        values = values.expand_as(label_mask) if values.shape != label_mask.shape else values
        return (values * (1 - label_mask)).sum(-1, keepdim=True) / (label_mask.shape[-1] - 1)

    @staticmethod
    def exp(value):
        return torch.exp(value) if isinstance(value, torch.Tensor) else math.exp(value)

    @staticmethod
    def log(value):
        return torch.log(value) if isinstance(value, torch.Tensor) else math.log(value)


class _MpmathBackend:
    @staticmethod
    def constant(value):
        value = sympy.Rational(value)
        return mpmath.mpf(int(value.p)) / int(value.q)

    @staticmethod
    def mean(values):
        values = numpy.asarray(values, dtype=object)
        return values.sum(axis=-1, keepdims=True) / values.shape[-1]

    @staticmethod
    def other_mean(values, label_mask):
        values = numpy.asarray(values, dtype=object)
        values = numpy.broadcast_to(values, label_mask.shape)
        return (values * (1 - label_mask)).sum(axis=-1, keepdims=True) / (label_mask.shape[-1] - 1)

    exp = staticmethod(numpy.vectorize(mpmath.exp, otypes=[object]))
    log = staticmethod(numpy.vectorize(mpmath.log, otypes=[object]))


def _evaluate(expr, environment, backend, memo):
    if expr in memo:
        return memo[expr]
    if expr in environment:
        value = environment[expr]
    elif expr.is_Rational:
        value = backend.constant(expr)
    elif expr.is_Add:
        value = _sum(_evaluate(arg, environment, backend, memo) for arg in expr.args)
    elif expr.is_Mul:
        value = _product(_evaluate(arg, environment, backend, memo) for arg in expr.args)
    elif expr.is_Pow:
        base, exponent = expr.args
        base_value = _evaluate(base, environment, backend, memo)
        if exponent.is_Integer:
            value = base_value ** int(exponent)
        else:
            value = base_value ** backend.constant(exponent)
    elif isinstance(expr, ClassMean):
        value = backend.mean(_evaluate(expr.args[0], environment, backend, memo))
    elif isinstance(expr, OtherMean):
        check_argument(
            "label_mask" in environment,
            "the term {} averages over the classes other than the label: give labels",
            expr,
        )
        value = backend.other_mean(
            _evaluate(expr.args[0], environment, backend, memo), environment["label_mask"]
        )
    elif isinstance(expr, sympy.exp):
        value = backend.exp(_evaluate(expr.args[0], environment, backend, memo))
    elif isinstance(expr, sympy.log):
        value = backend.log(_evaluate(expr.args[0], environment, backend, memo))
    else:
        raise AssertionError(f"unsupported node {expr!r}")  # excluded by _validate
    memo[expr] = value
    return value


def _sum(values):
    values = iter(values)
    total = next(values)
    for value in values:
        total = total + value
    return total


def _product(values):
    values = iter(values)
    total = next(values)
    for value in values:
        total = total * value
    return total


@lru_cache(maxsize=None)
def _validate(expr):
    for symbol in expr.free_symbols:
        check_argument(
            symbol in _KNOWN,
            "cannot evaluate symbol {}: expected only {} (substitute parameters first)",
            symbol,
            ", ".join(map(str, _KNOWN)),
        )
    for node in sympy.preorder_traversal(expr):
        supported = (
            node.is_Symbol
            or node.is_Rational
            or node.is_Add
            or node.is_Mul
            or node.is_Pow
            or isinstance(node, (ClassMean, OtherMean, sympy.exp, sympy.log))
        )
        check_argument(
            supported,
            "cannot evaluate {} (a {}): supported are rationals, z_i, v_i, "
            "N, T, epsilon, +, *, rational powers, exp, log and mean(...)",
            node,
            type(node).__name__,
        )


def _environment(student, teacher, temperature, classes, labels=None, *, torch_backend=True):
    environment = {z_i: student, v_i: teacher, N: classes}
    if temperature is not None:
        environment[T] = temperature
        environment[epsilon] = 1 / temperature
    if torch_backend:
        for logits, hat, std in ((student, zh_i, sigma_z), (teacher, vh_i, sigma_v)):
            centred = logits - logits.mean(-1, keepdim=True)
            deviation = centred.pow(2).mean(-1, keepdim=True).sqrt()
            environment[hat], environment[std] = centred / deviation, deviation
        if labels is not None:
            mask = torch.nn.functional.one_hot(labels, classes).to(student)
            environment["label_mask"] = mask
            environment[z_g] = (student * mask).sum(-1, keepdim=True)
            environment[v_g] = (teacher * mask).sum(-1, keepdim=True)
    elif labels is not None:
        mask = numpy.zeros(student.shape, dtype=object)
        for index, label in numpy.ndenumerate(numpy.asarray(labels)):
            mask[index + (int(label),)] = 1
        environment["label_mask"] = mask
        environment[z_g] = (student * mask).sum(axis=-1, keepdims=True)
        environment[v_g] = (teacher * mask).sum(axis=-1, keepdims=True)
    return environment


def _absolute(expr):
    """The same tree with every coefficient replaced by its absolute value: evaluated at
    :math:`|z|, |v|` it bounds every intermediate of the evaluation of ``expr``."""
    if expr.is_Rational:
        return abs(expr)
    if not expr.args:
        return expr
    if expr.is_Pow:
        return sympy.Pow(_absolute(expr.args[0]), expr.args[1], evaluate=False)
    if expr.is_Add or expr.is_Mul:
        return expr.func(*[_absolute(arg) for arg in expr.args], evaluate=False)
    return expr.func(*[_absolute(arg) for arg in expr.args])


class SymbolicFunction:
    """A sympy term of :mod:`derive` as a batched torch function of the logits.

    Parameters
    ==========

    expr : sympy.Expr or str
        A term in ``z_i, v_i, N, mean(...)`` (strings are parsed with :func:`derive.parse`).

    Calling it with student and teacher logits of shape ``[B, N]`` (and a temperature of
    shape ``[B, 1]`` or a number, if the term has ``T`` or ``epsilon``) returns ``[B, N]`` for
    a per-class term and ``[B, 1]`` for a class constant; a constant term broadcasts.
    """

    def __init__(self, expr: Any) -> None:
        if isinstance(expr, str):
            expr = parse(expr)
        self.expr = sympy.sympify(expr)
        _validate(self.expr)

    def __repr__(self) -> str:
        return f"SymbolicFunction({self.expr})"

    @property
    def operations(self) -> int:
        """Nodes of the expression tree: an upper bound on the roundings along any chain of
        its evaluation, besides the class sums inside means."""
        return sum(1 for _ in sympy.preorder_traversal(self.expr))

    def magnitude(
        self,
        student: torch.Tensor,
        teacher: torch.Tensor,
        temperature: float | torch.Tensor | None = None,
    ) -> torch.Tensor:
        r"""The term with absolute coefficients evaluated at :math:`|z|, |v|`: a bound on every
        intermediate quantity of its evaluation, as rounding-error bounds need
        (:mod:`verify.tolerances`).

        >>> import torch
        >>> from derive import ClassMean, z_i
        >>> function = SymbolicFunction(z_i - ClassMean(z_i))
        >>> function.magnitude(torch.tensor([[1.0, -3.0]]), torch.zeros(1, 2))
        tensor([[3., 5.]])
        """
        if not hasattr(self, "_absolute_function"):
            self._absolute_function = SymbolicFunction.__new__(SymbolicFunction)
            self._absolute_function.expr = _absolute(self.expr)
        absolute: Any = None if temperature is None else abs(temperature)
        return self._absolute_function(student.abs(), teacher.abs(), absolute)

    def __call__(
        self,
        student: torch.Tensor,
        teacher: torch.Tensor,
        temperature: float | torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        check_argument(
            student.shape == teacher.shape and student.ndim >= 1,
            "student and teacher logits must have the same shape [..., N], got {} and {}",
            tuple(student.shape),
            tuple(teacher.shape),
        )
        needs_temperature = bool(self.expr.free_symbols & {T, epsilon})
        check_argument(
            temperature is not None or not needs_temperature,
            "the term {} needs a temperature",
            self.expr,
        )
        check_argument(
            labels is not None or not (self.expr.free_symbols & set(_LABELLED)),
            "the term {} has the label's logits: give labels",
            self.expr,
        )
        classes = student.shape[-1]
        environment = _environment(student, teacher, temperature, classes, labels)
        value = _evaluate(self.expr, environment, _TorchBackend, {})
        if not isinstance(value, torch.Tensor):
            value = torch.full(
                (*student.shape[:-1], 1), float(value), dtype=student.dtype, device=student.device
            )
        return value


def evaluate_mpmath(expr, student, teacher, temperature=None, labels=None):
    """Evaluate a term in high precision on nested lists (or object arrays) of numbers.

    Inputs are converted exactly to :class:`mpmath.mpf` (floats are binary, so exactly), and
    the result is a numpy object array of shape ``[B, N]`` or ``[B, 1]`` at the working
    precision of :mod:`mpmath` (``mpmath.mp.dps``).

    >>> from derive import ClassMean, z_i
    >>> evaluate_mpmath(ClassMean(z_i) ** 2, [[1.0, 2.0]], [[0.0, 0.0]])
    array([[mpf('2.25')]], dtype=object)
    """
    expr = sympy.sympify(expr)
    _validate(expr)
    to_mpf = numpy.vectorize(
        lambda x: mpmath.mpf(x) if not isinstance(x, mpmath.mpf) else x, otypes=[object]
    )
    student = to_mpf(numpy.asarray(student, dtype=object))
    teacher = to_mpf(numpy.asarray(teacher, dtype=object))
    if temperature is not None:
        temperature = to_mpf(numpy.asarray(temperature, dtype=object))
    environment = _environment(
        student, teacher, temperature, student.shape[-1], labels, torch_backend=False
    )
    value = _evaluate(expr, environment, _MpmathBackend, {})
    if not isinstance(value, numpy.ndarray):
        value = numpy.full((*student.shape[:-1], 1), value, dtype=object)
    return value


def gradient_values(term, student, teacher, temperature=None, labels=None):
    """A gradient term of :func:`derive.expand` (an expression, or ``{"g": ..., "i": ...}``
    for an objective with a label) evaluated on logits ``[..., N]``: shape ``[..., N]``, the
    label's column from ``"g"`` and the others from ``"i"``."""
    if not isinstance(term, dict):
        return _function(term)(student, teacher, temperature, labels).expand_as(student)
    check_argument(labels is not None, "a gradient with a label component needs labels")
    mask = torch.nn.functional.one_hot(labels, student.shape[-1]).to(student)
    other = _function(term["i"])(student, teacher, temperature, labels).expand_as(student)
    label = _function(term["g"])(student, teacher, temperature, labels).expand_as(student)
    return other * (1 - mask) + label * mask


@lru_cache(maxsize=None)
def _function(expr):
    return SymbolicFunction(expr)
