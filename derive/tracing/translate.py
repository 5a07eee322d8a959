r"""Translate a captured graph into the engine's expression, node by node.

Every value of the graph is a tensor of the logits' shape ``[B, N]``, one of its reductions, or
a number. Its expression is that of one *generic element*: a per-class element is an
expression in ``z_i, v_i`` (student and teacher logits of class ``i`` of example ``b``), a
per-example value is a class constant (class means), and ``T`` is :math:`1/\epsilon`.

* A reduction over the class dimension is a class mean: a sum is ``N * mean(f)``, a mean
  ``mean(f)`` (:class:`~derive.notation.ClassMean`); softmax along the classes is
  :math:`e^{x_i}/(N\langle e^{x}\rangle)`, as in :mod:`derive.objectives.softmax`.
* A reduction over the batch makes the value a *sum over the examples* of a per-example
  expression, :math:`\sum_b h_b` (``1/B`` folded into ``h`` for a mean). Such a value may be
  added to another, scaled or divided by a number, nothing else: the loss must be a sum of
  per-example losses.
* ``detach()`` keeps the value and stops the gradient (:class:`StopGradient`).

The graph is run once on small real tensors (``[3, 5]``: distinct sizes, so every dimension
of every value is known to be the batch's, the classes' or a broadcast 1) beside the
translation; torch's own errors (shapes that do not broadcast) are reported at the user's line.

Examples
========

>>> import torch.nn.functional as F
>>> from derive.tracing.capture import capture
>>> def loss(student, teacher, T):
...     return F.kl_div(F.log_softmax(student / T, -1), F.softmax(teacher / T, -1),
...                     reduction="batchmean") * T**2
>>> translation = translate(*capture(loss))
>>> translation.operations
('operator /', 'F.log_softmax', 'operator /', 'F.softmax', 'F.kl_div', 'operator **', 'operator *')
>>> from derive.notation import ClassMean, v_i, epsilon
>>> translation.expr.has(ClassMean(exp(epsilon * v_i)))
True
"""

import inspect
import math
import operator
from dataclasses import dataclass

import sympy
import torch
import torch.fx
import torch.nn.functional as F
from sympy import exp, log
from torch.nn import _reduction as _legacy_reduction

from .._errors import DeriveError
from ..notation import ClassMean, N, epsilon, is_class_constant, v_i, z_i
from ._symbols import B, StopGradient
from .capture import one_line, where

__all__ = ["translate", "Translation", "RUN_BATCH", "RUN_CLASSES"]

#: Shape of the real tensors the graph is run on beside the translation.
RUN_BATCH, RUN_CLASSES = 3, 5
_LABELS = {RUN_BATCH: "B", RUN_CLASSES: "N", 1: "1"}
_DIMENSIONS = {"B": B, "N": N, "1": sympy.Integer(1)}


@dataclass(frozen=True)
class Translation:
    """The per-example loss ``expr`` (the function's value is the sum over the examples of it,
    batch weight included; with :class:`StopGradient` where the user detached), and the
    operations translated, in graph order."""

    expr: object
    operations: tuple


class _Unsupported(Exception):
    """Raised by a handler: the message says what, the caller adds where."""


@dataclass
class Value:
    """A value of the graph: the ``real`` one from the run on small tensors, its ``expr``
    (a sympy expression of a generic element, a tuple of dimensions for a size, ``None`` for
    anything else), and whether it is already ``summed`` over the examples."""

    real: object
    expr: object = None
    summed: bool = False
    #: For ``torch.stack([a, b, ...])`` (along a new first dimension): the Values stacked,
    #: which only a reduction over that dimension (``logsumexp``, ``sum``, ``mean``) combines.
    stack: tuple = None


# -- helpers -----------------------------------------------------------------------------------


def _constant(value):
    """A constant that is not a node: numbers become exact rationals (as written: 0.1 is 1/10)."""
    if isinstance(value, Value):
        return value
    if (
        isinstance(value, bool)
        or value is None
        or isinstance(value, (str, torch.dtype, torch.device))
    ):
        return Value(value)
    if isinstance(value, int):
        return Value(value, sympy.Integer(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Unsupported(f"the non-finite constant {value}")
        return Value(value, sympy.Rational(repr(value)))
    if isinstance(value, torch.Tensor):
        if value.ndim == 0 and not value.is_complex():
            return _constant(value.item())
        raise _Unsupported(
            f"a constant tensor of shape {list(value.shape)} (only numbers, the "
            f"logits and T enter the expression)"
        )
    if isinstance(value, (list, tuple)):
        return Value(type(value)(_constant(v) for v in value))
    return Value(value)


def _real(value):
    if isinstance(value, Value):
        value = value.real
    if isinstance(value, (list, tuple)):
        return type(value)(_real(v) for v in value)
    if isinstance(value, dict):
        return {k: _real(v) for k, v in value.items()}
    return value


def _plain(value):
    """A non-tensor argument (a dim, a flag, a reduction name) as a Python value."""
    real = _real(value)
    if isinstance(real, torch.Tensor):
        raise _Unsupported("a tensor where a number or flag was expected")
    return real


def _labels(real):
    """The dimensions of a real tensor as ``'B'``, ``'N'`` or ``'1'``."""
    if not isinstance(real, torch.Tensor):
        return ()
    labels = []
    for size in real.shape:
        if size not in _LABELS:
            raise _Unsupported(
                f"a tensor of shape {list(real.shape)} (when the logits are "
                f"[{RUN_BATCH}, {RUN_CLASSES}]): only the logits' dimensions, "
                f"their reductions and broadcasts are supported"
            )
        labels.append(_LABELS[size])
    return tuple(labels)


def _expr(value, what="this argument"):
    value = _constant(value)
    if value.stack is not None:
        raise _Unsupported(
            "a stacked tensor (torch.stack) used other than reduced over its stacking dimension"
        )
    if not isinstance(value.expr, sympy.Basic):
        raise _Unsupported(f"{what} ({type(value.real).__name__})")
    return value.expr


def _batch_free(value):
    """True for a value that is the same for every example: a number, ``T``, a size."""
    return not value.summed and "B" not in _labels(value.real)


def _result(real, expr, summed=False):
    return Value(real, sympy.sympify(expr), summed)


def _elementwise(real, operand, function, name):
    """A one-argument elementwise function; over a sum over the batch only if linear."""
    operand = _constant(operand)
    if operand.summed:
        raise _Unsupported(
            f"{name} of a sum over the batch: the loss would not be a sum of per-example losses"
        )
    return _result(real, function(_expr(operand)))


def _combine(real, a, b, kind, function, name):
    """Two-argument elementwise arithmetic, with the rule for sums over the batch: they may be
    added together, or to / scaled by / divided by a value that is the same for every example."""
    a, b = _constant(a), _constant(b)
    x, y = _expr(a), _expr(b)
    if not a.summed and not b.summed:
        return _result(real, function(x, y))
    if kind == "add":
        if a.summed and b.summed:
            return _result(real, function(x, y), True)
        if a.summed and _batch_free(b):
            return _result(real, function(x, y / B), True)
        if b.summed and _batch_free(a):
            return _result(real, function(x / B, y), True)
    elif kind == "mul" and (a.summed and _batch_free(b) or b.summed and _batch_free(a)):
        return _result(real, function(x, y), True)
    elif kind == "div" and a.summed and _batch_free(b):
        return _result(real, function(x, y), True)
    elif kind == "pow" and a.summed and y == 1:
        return _result(real, x, True)
    raise _Unsupported(
        f"{name} of a sum over the batch with a value that depends on the "
        f"example: the loss would not be a sum of per-example losses"
    )


def _dims(value, dim):
    """Normalized dimension indices of ``value`` (all of them for ``None``)."""
    ndim = len(_labels(value.real))
    dim = _plain(dim)
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        return list(range(ndim))
    dims = list(dim) if isinstance(dim, (list, tuple)) else [dim]
    if not all(isinstance(d, int) and not isinstance(d, bool) for d in dims):
        raise _Unsupported(f"the dimension argument {dim!r}")
    return sorted({d % max(ndim, 1) for d in dims})


def _reduce(expr, summed, labels, kind):
    """Reduce a generic element over dimensions labelled ``labels`` by ``"sum"`` or ``"mean"``."""
    for label in labels:
        if label == "N":
            expr = N * ClassMean(expr) if kind == "sum" else ClassMean(expr)
        elif label == "B":
            if summed:
                raise _Unsupported("a second reduction over the batch")
            summed = True
            expr = expr if kind == "sum" else expr / B
    return expr, summed


def _reduction(real, value, dim, kind):
    value = _constant(value)
    labels = _labels(value.real)
    chosen = [labels[d] for d in _dims(value, dim)] if labels else []
    expr, summed = _reduce(_expr(value), value.summed, chosen, kind)
    return _result(real, expr, summed)


def _class_dimension(value, dim, name):
    labels = _labels(value.real)
    if dim is None:
        dim = 0 if len(labels) in (0, 1, 3) else 1  # torch's implicit choice
    label = labels[dim % len(labels)] if labels else "1"
    if label == "B":
        raise _Unsupported(
            f"{name} over the batch dimension (dim={dim}); over the classes it would be dim=-1"
        )
    return label


def _softmax_expr(x):
    return exp(x) / (N * ClassMean(exp(x)))


def _log_softmax_expr(x):
    return x - log(N) - log(ClassMean(exp(x)))


def _sigmoid_expr(x):
    return 1 / (1 + exp(-x))


# -- handlers ----------------------------------------------------------------------------------
# Each takes (real result, *arguments as Values or constants, **keyword arguments).


def _binary(kind, function, name):
    def handler(real, a, b, *, alpha=None, rounding_mode=None, out=None):
        if rounding_mode is not None:
            raise _Unsupported(f"{name} with rounding_mode={_plain(rounding_mode)!r}")
        if alpha is not None:
            b = _result(_real(b), _expr(b) * _expr(alpha), _constant(b).summed)
        return _combine(real, a, b, kind, function, name)

    return handler


def _reflected(handler):
    def reflected(real, a, b, **kwargs):
        return handler(real, b, a, **kwargs)

    return reflected


_add = _binary("add", operator.add, "a sum")
_sub = _binary("add", operator.sub, "a difference")
_mul = _binary("mul", operator.mul, "a product")
_div = _binary("div", operator.truediv, "a quotient")
_pow = _binary("pow", operator.pow, "a power")


def _neg(real, x):
    x = _constant(x)
    return _result(real, -_expr(x), x.summed)


def _identity(real, x, *args, **kwargs):
    x = _constant(x)
    return Value(real, x.expr, x.summed)


def _reshape(real, x, *args, **kwargs):
    """Adding or removing dimensions of size 1 only: the elements stay where they are."""
    x = _constant(x)
    before = [label for label in _labels(x.real) if label != "1"]
    after = [label for label in _labels(real) if label != "1"]
    if before != after:
        raise _Unsupported(
            f"a reshape from {list(x.real.shape)} to {list(real.shape)} that "
            f"moves elements between the batch and the classes"
        )
    return Value(real, x.expr, x.summed)


def _detach(real, x, *args):
    x = _constant(x)
    expr = _expr(x)
    return Value(real, StopGradient(expr) if expr.has(z_i) else expr, x.summed)


def _unary(function, name):
    def handler(real, x, *args, **kwargs):
        return _elementwise(real, x, function, name)

    return handler


def _sum(real, x, *args, dim=None, keepdim=False, dtype=None, axis=None):
    if args:
        dim = args[0]
    return _stack_or_reduction(real, x, dim if axis is None else axis, "sum")


def _mean(real, x, *args, dim=None, keepdim=False, dtype=None, axis=None):
    if args:
        dim = args[0]
    return _stack_or_reduction(real, x, dim if axis is None else axis, "mean")


def _stacked(x, dim):
    """The expressions of a stack reduced over its stacking dimension, else ``None``."""
    x = _constant(x)
    if x.stack is None:
        return None
    if _plain(dim) not in (0, -len(x.real.shape)):
        raise _Unsupported(
            "a reduction of a stacked tensor (torch.stack) over another "
            "dimension than the stacking one"
        )
    if any(item.summed for item in x.stack):
        raise _Unsupported("a stack of sums over the batch")
    return [_expr(item) for item in x.stack]


def _stack_or_reduction(real, x, dim, kind):
    items = _stacked(x, dim)
    if items is None:
        return _reduction(real, x, dim, kind)
    total = sympy.Add(*items)
    return _result(real, total if kind == "sum" else total / len(items))


def _stack(real, tensors, dim=0, *, out=None):
    items = tuple(_constant(t) for t in _plain_list(tensors))
    if _plain(dim) != 0:
        raise _Unsupported("torch.stack along another dimension than the first")
    for item in items:
        _expr(item)
    return Value(real, None, False, items)


def _plain_list(values):
    if isinstance(values, Value):
        values = values.real if values.expr is None and values.stack is None else [values]
    if not isinstance(values, (list, tuple)):
        raise _Unsupported("torch.stack of something other than a list of tensors")
    return list(values)


def _logsumexp(real, x, dim, keepdim=False):
    items = _stacked(x, dim)
    if items is not None:
        return _result(real, log(sympy.Add(*[exp(item) for item in items])))
    x = _constant(x)
    if x.summed:
        raise _Unsupported("logsumexp of a sum over the batch")
    labels = _labels(x.real)
    chosen = [labels[d] for d in _dims(x, dim)]
    if "B" in chosen:
        raise _Unsupported(
            "logsumexp over the batch dimension: the loss would not be a sum of per-example losses"
        )
    value = _expr(x)
    return _result(real, log(N * ClassMean(exp(value))) if "N" in chosen else value)


def _norm(real, x, p="fro", dim=None, keepdim=False, dtype=None):
    if _plain(p) not in ("fro", 2, 2.0):
        raise _Unsupported(f"a norm of order {_plain(p)!r} (only the 2-norm)")
    x = _constant(x)
    squares = Value(x.real, _expr(x) ** 2, x.summed)
    if x.summed:
        raise _Unsupported("a norm of a sum over the batch")
    reduced = _reduction(real, squares, dim, "sum")
    if reduced.summed:
        raise _Unsupported("a norm over the batch dimension")
    return _result(real, sympy.sqrt(reduced.expr))


def _tensor(real, data, *args, dtype=None, device=None, requires_grad=False, **kwargs):
    """``torch.tensor(number, dtype=x.dtype)``: a constant."""
    data = _constant(data)
    if not isinstance(data.expr, sympy.Basic) or data.summed or data.expr.free_symbols:
        raise _Unsupported("torch.tensor of something other than a number")
    return Value(real, data.expr)


def _variance(root):
    def handler(real, x, *args, dim=None, unbiased=None, correction=None, keepdim=False):
        rest = [_plain(a) for a in args]
        if rest and isinstance(rest[0], bool):
            unbiased = rest.pop(0)
        else:
            if rest:
                dim = rest.pop(0)
            if rest:
                unbiased = rest.pop(0)
        correction = _plain(correction)
        if correction is None:
            correction = 0 if _plain(unbiased) is False else 1
        x = _constant(x)
        if x.summed:
            raise _Unsupported("a variance of a sum over the batch")
        labels = _labels(x.real)
        chosen = [labels[d] for d in _dims(x, dim)] if labels else []
        if "B" in chosen:
            raise _Unsupported(
                "a variance over the batch dimension: the loss would not be a sum "
                "of per-example losses"
            )
        count = N if "N" in chosen else sympy.Integer(1)
        if (count - correction).is_zero or (count - correction).is_negative:
            raise _Unsupported(f"a variance of {count} element(s) with correction {correction}")
        f = _expr(x)
        mean = ClassMean(f) if "N" in chosen else f
        centred = ClassMean((f - mean) ** 2) if "N" in chosen else (f - mean) ** 2
        variance = count / (count - correction) * centred
        return _result(real, sympy.sqrt(variance) if root else variance)

    return handler


def _softmax(log_form):
    name = "log_softmax" if log_form else "softmax"

    def handler(real, x, dim=None, *args, _stacklevel=3, dtype=None):
        x = _constant(x)
        if x.summed:
            raise _Unsupported(f"{name} of a sum over the batch")
        label = _class_dimension(x, _plain(dim), name)
        value = _expr(x)
        if label == "1":
            return _result(real, 0 if log_form else 1)
        return _result(real, _log_softmax_expr(value) if log_form else _softmax_expr(value))

    return handler


def _reduction_name(size_average, reduce, reduction):
    size_average, reduce = _plain(size_average), _plain(reduce)
    if size_average is not None or reduce is not None:
        return _legacy_reduction.legacy_get_string(size_average, reduce, emit_warning=False)
    return _plain(reduction)


def _loss_reduction(real, elementwise, inputs, reduction, name, *, batchmean=False):
    """Reduce an elementwise loss over every dimension of the broadcast ``inputs``."""
    if any(_constant(v).summed for v in inputs):
        raise _Unsupported(f"{name} of a sum over the batch")
    shape = torch.broadcast_shapes(*[_real(v).shape for v in inputs])
    labels = _labels(torch.empty(shape))
    if reduction == "none":
        return _result(real, elementwise)
    if reduction == "sum" or (reduction == "batchmean" and batchmean):
        expr, summed = _reduce(elementwise, False, labels, "sum")
        first = _labels(_real(inputs[0]))
        if reduction == "batchmean" and first:  # torch: the sum / input.size(0)
            expr = expr / _DIMENSIONS[first[0]]
        return _result(real, expr, summed)
    if reduction == "mean":
        expr, summed = _reduce(elementwise, False, labels, "mean")
        return _result(real, expr, summed)
    raise _Unsupported(f"{name} with reduction={reduction!r}")


def _bind(function, args, kwargs):
    bound = inspect.signature(function).bind(*args, **kwargs)
    bound.apply_defaults()
    return bound.arguments


def _kl_div(real, *args, **kwargs):
    a = _bind(F.kl_div, args, kwargs)
    x, t = _expr(a["input"]), _expr(a["target"])
    pointwise = exp(t) * (t - x) if _plain(a["log_target"]) else t * (log(t) - x)
    reduction = _reduction_name(a["size_average"], a["reduce"], a["reduction"])
    return _loss_reduction(
        real, pointwise, (a["input"], a["target"]), reduction, "F.kl_div", batchmean=True
    )


def _mse_loss(real, *args, **kwargs):
    a = _bind(F.mse_loss, args, kwargs)
    if _plain(a.get("weight")) is not None:
        raise _Unsupported("F.mse_loss with a weight")
    pointwise = (_expr(a["input"]) - _expr(a["target"])) ** 2
    reduction = _reduction_name(a["size_average"], a["reduce"], a["reduction"])
    return _loss_reduction(real, pointwise, (a["input"], a["target"]), reduction, "F.mse_loss")


def _binary_cross_entropy(real, *args, **kwargs):
    a = _bind(F.binary_cross_entropy, args, kwargs)
    if _plain(a["weight"]) is not None:
        raise _Unsupported("F.binary_cross_entropy with a weight")
    x, t = _expr(a["input"]), _expr(a["target"])
    pointwise = -(t * log(x) + (1 - t) * log(1 - x))
    reduction = _reduction_name(a["size_average"], a["reduce"], a["reduction"])
    return _loss_reduction(
        real, pointwise, (a["input"], a["target"]), reduction, "F.binary_cross_entropy"
    )


def _binary_cross_entropy_with_logits(real, *args, **kwargs):
    a = _bind(F.binary_cross_entropy_with_logits, args, kwargs)
    if _plain(a["weight"]) is not None or _plain(a["pos_weight"]) is not None:
        raise _Unsupported("F.binary_cross_entropy_with_logits with a weight or pos_weight")
    x, t = _expr(a["input"]), _expr(a["target"])
    pointwise = (1 - t) * x + log(1 + exp(-x))
    reduction = _reduction_name(a["size_average"], a["reduce"], a["reduction"])
    return _loss_reduction(
        real, pointwise, (a["input"], a["target"]), reduction, "F.binary_cross_entropy_with_logits"
    )


def _cross_entropy(real, *args, **kwargs):
    a = _bind(F.cross_entropy, args, kwargs)
    if _plain(a["weight"]) is not None:
        raise _Unsupported("F.cross_entropy with a class weight")
    inputs, target = _constant(a["input"]), _constant(a["target"])
    if isinstance(target.real, torch.Tensor) and not target.real.is_floating_point():
        raise _Unsupported(
            "F.cross_entropy with class-index (hard) targets: the loss sees only "
            "logits; use soft targets (probabilities)"
        )
    labels = _labels(inputs.real)
    if _labels(target.real) != labels or len(labels) not in (1, 2):
        raise _Unsupported("F.cross_entropy with targets not of the input's shape [B, N]")
    if labels[-1] != "N" or (len(labels) == 2 and labels[0] == "N"):
        raise _Unsupported("F.cross_entropy whose class dimension (dim 1) is not the classes")
    if inputs.summed or target.summed:
        raise _Unsupported("F.cross_entropy of a sum over the batch")
    smoothing = _expr(a["label_smoothing"])
    t = (1 - smoothing) * _expr(target) + smoothing / N
    per_example = -N * ClassMean(t * _log_softmax_expr(_expr(inputs)))
    reduction = _reduction_name(a["size_average"], a["reduce"], a["reduction"])
    if reduction == "none":
        return _result(real, per_example)
    if reduction not in ("sum", "mean"):
        raise _Unsupported(f"F.cross_entropy with reduction={reduction!r}")
    rest = [label for label in labels[:-1]]
    expr, summed = _reduce(per_example, False, rest, reduction)
    return _result(real, expr, summed)


def _like(fill):
    def handler(real, x, *args, **kwargs):
        return _result(real, fill)

    return handler


# -- sizes ---------------------------------------------------------------------------------------


def _size_of(value):
    return tuple(_DIMENSIONS[label] for label in _labels(_constant(value).real))


def _getattr(real, x, name):
    x = _constant(x)
    if name == "shape":
        return Value(real, _size_of(x))
    if name == "ndim":
        return Value(real, sympy.Integer(len(_labels(x.real))))
    if name in ("dtype", "device"):
        return Value(real)
    if name == "data":
        return _detach(real, x)
    raise _Unsupported(f"the attribute .{name}")


def _size(real, x, dim=None):
    sizes = _size_of(x)
    dim = _plain(dim)
    if dim is None:
        return Value(real, sizes)
    return Value(real, sizes[dim])


def _numel(real, x):
    return Value(real, sympy.Mul(*_size_of(x)))


def _dim(real, x):
    return Value(real, sympy.Integer(len(_labels(_constant(x).real))))


def _getitem(real, x, index):
    x = _constant(x)
    if isinstance(x.expr, tuple):
        index = _plain(index)
        return Value(real, x.expr[index])
    raise _Unsupported("indexing a tensor (x[...])")


def _item(real, x):
    return _detach(real, x)


_FUNCTIONS = {
    operator.add: _add,
    operator.sub: _sub,
    operator.mul: _mul,
    operator.truediv: _div,
    operator.pow: _pow,
    operator.neg: _neg,
    operator.pos: _identity,
    operator.getitem: _getitem,
    getattr: _getattr,
    torch.add: _add,
    torch.sub: _sub,
    torch.subtract: _sub,
    torch.mul: _mul,
    torch.multiply: _mul,
    torch.div: _div,
    torch.divide: _div,
    torch.true_divide: _div,
    torch.pow: _pow,
    torch.neg: _neg,
    torch.negative: _neg,
    torch.exp: _unary(exp, "exp"),
    torch.log: _unary(log, "log"),
    torch.log1p: _unary(lambda x: log(1 + x), "log1p"),
    torch.expm1: _unary(lambda x: exp(x) - 1, "expm1"),
    torch.log2: _unary(lambda x: log(x) / log(2), "log2"),
    torch.log10: _unary(lambda x: log(x) / log(10), "log10"),
    torch.sqrt: _unary(sympy.sqrt, "sqrt"),
    torch.rsqrt: _unary(lambda x: 1 / sympy.sqrt(x), "rsqrt"),
    torch.square: _unary(lambda x: x**2, "square"),
    torch.reciprocal: _unary(lambda x: 1 / x, "reciprocal"),
    torch.sigmoid: _unary(_sigmoid_expr, "sigmoid"),
    F.sigmoid: _unary(_sigmoid_expr, "sigmoid"),
    F.logsigmoid: _unary(lambda x: -log(1 + exp(-x)), "logsigmoid"),
    torch.tanh: _unary(lambda x: (1 - exp(-2 * x)) / (1 + exp(-2 * x)), "tanh"),
    math.exp: _unary(exp, "exp"),
    math.log: _unary(log, "log"),
    math.sqrt: _unary(sympy.sqrt, "sqrt"),
    torch.sum: _sum,
    torch.mean: _mean,
    torch.var: _variance(False),
    torch.std: _variance(True),
    torch.softmax: _softmax(False),
    F.softmax: _softmax(False),
    torch.log_softmax: _softmax(True),
    F.log_softmax: _softmax(True),
    F.kl_div: _kl_div,
    F.cross_entropy: _cross_entropy,
    F.mse_loss: _mse_loss,
    F.binary_cross_entropy: _binary_cross_entropy,
    F.binary_cross_entropy_with_logits: _binary_cross_entropy_with_logits,
    torch.detach: _detach,
    torch.numel: _numel,
    torch.stack: _stack,
    torch.logsumexp: _logsumexp,
    torch.norm: _norm,
    torch.tensor: _tensor,
    torch.ones_like: _like(1),
    torch.zeros_like: _like(0),
    torch.squeeze: _reshape,
    torch.unsqueeze: _reshape,
    torch.reshape: _reshape,
    torch.flatten: _reshape,
}

_METHODS = {
    "add": _add,
    "sub": _sub,
    "subtract": _sub,
    "mul": _mul,
    "multiply": _mul,
    "div": _div,
    "divide": _div,
    "true_divide": _div,
    "pow": _pow,
    "neg": _neg,
    "negative": _neg,
    "__add__": _add,
    "__radd__": _reflected(_add),
    "__sub__": _sub,
    "__rsub__": _reflected(_sub),
    "__mul__": _mul,
    "__rmul__": _reflected(_mul),
    "__truediv__": _div,
    "__rtruediv__": _reflected(_div),
    "__pow__": _pow,
    "__rpow__": _reflected(_pow),
    "exp": _FUNCTIONS[torch.exp],
    "log": _FUNCTIONS[torch.log],
    "log1p": _FUNCTIONS[torch.log1p],
    "expm1": _FUNCTIONS[torch.expm1],
    "log2": _FUNCTIONS[torch.log2],
    "log10": _FUNCTIONS[torch.log10],
    "sqrt": _FUNCTIONS[torch.sqrt],
    "rsqrt": _FUNCTIONS[torch.rsqrt],
    "square": _FUNCTIONS[torch.square],
    "reciprocal": _FUNCTIONS[torch.reciprocal],
    "sigmoid": _FUNCTIONS[torch.sigmoid],
    "tanh": _FUNCTIONS[torch.tanh],
    "sum": _sum,
    "mean": _mean,
    "var": _variance(False),
    "std": _variance(True),
    "softmax": _softmax(False),
    "log_softmax": _softmax(True),
    "logsumexp": _logsumexp,
    "norm": _norm,
    "detach": _detach,
    "item": _item,
    "numel": _numel,
    "size": _size,
    "dim": _dim,
    "ndimension": _dim,
    "float": _identity,
    "double": _identity,
    "to": _identity,
    "type_as": _identity,
    "contiguous": _identity,
    "clone": _identity,
    "cpu": _identity,
    "squeeze": _reshape,
    "unsqueeze": _reshape,
    "view": _reshape,
    "reshape": _reshape,
    "view_as": _reshape,
    "reshape_as": _reshape,
    "flatten": _reshape,
}

_OPERATOR_SYMBOLS = {
    operator.add: "+",
    operator.sub: "-",
    operator.mul: "*",
    operator.truediv: "/",
    operator.pow: "**",
    operator.neg: "unary -",
    operator.pos: "unary +",
    operator.floordiv: "//",
    operator.mod: "%",
    operator.matmul: "@",
    operator.getitem: "[...]",
    operator.abs: "abs()",
    operator.lt: "<",
    operator.le: "<=",
    operator.gt: ">",
    operator.ge: ">=",
    operator.eq: "==",
    operator.ne: "!=",
}


def operation_name(node):
    """How the user wrote a node's operation: ``F.kl_div``, ``torch.clamp``, ``Tensor.clamp``,
    ``operator *``, ``attribute .shape``."""
    target = node.target
    if node.op == "call_method":
        return f"Tensor.{target}"
    if node.op == "get_attr":
        return "a constant tensor"
    if node.op != "call_function":
        return node.op
    if target in _OPERATOR_SYMBOLS:
        return f"operator {_OPERATOR_SYMBOLS[target]}"
    if target is getattr:
        return f"attribute .{node.args[1]}"
    name = getattr(target, "__name__", repr(target))
    module = getattr(target, "__module__", "") or ""
    if module.startswith("torch.nn.functional") or module.startswith("torch._C._nn"):
        return f"F.{name}"
    if target is F.sigmoid or target is F.logsigmoid:
        return f"F.{name}"
    if module.startswith("torch") or getattr(torch, name, None) is target:
        return f"torch.{name}"
    return f"{module}.{name}" if module else name


def _handler(node):
    if node.op == "call_method":
        return _METHODS.get(node.target)
    if node.op == "call_function":
        try:
            return _FUNCTIONS.get(node.target)
        except TypeError:  # unhashable target
            return None
    return None


def _fetch(root, target):
    value = root
    for part in target.split("."):
        value = getattr(value, part)
    return value


def translate(graph, root):
    """The :class:`Translation` of a graph captured by :func:`~derive.tracing.capture.capture`.

    Raises :class:`~derive.DeriveError` naming the first unsupported operation and the line of
    the user's code where it occurs.
    """
    generator = torch.Generator().manual_seed(0)
    inputs = {
        "student_logits": Value(
            torch.randn(RUN_BATCH, RUN_CLASSES, generator=generator, dtype=torch.float64), z_i
        ),
        "teacher_logits": Value(
            torch.randn(RUN_BATCH, RUN_CLASSES, generator=generator, dtype=torch.float64), v_i
        ),
        "temperature": Value(torch.tensor(4.0, dtype=torch.float64), 1 / epsilon),
    }
    env, operations, output = {}, [], None
    for node in graph.nodes:
        frame = node.meta.get("user_frame")
        if node.op == "placeholder":
            env[node] = inputs[node.target]
            continue
        if node.op == "output":
            output = node.args[0]
            break
        name = operation_name(node)
        try:
            if node.op == "get_attr":
                env[node] = _constant(_fetch(root, node.target))
                continue
            handler = _handler(node)
            if handler is None:
                raise _Unsupported(name)
            args = torch.fx.node.map_arg(node.args, lambda n: env[n])
            kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: env[n])
            try:
                if node.op == "call_method":
                    self, *rest = _real(args)
                    real = getattr(self, node.target)(*rest, **_real(kwargs))
                else:
                    real = node.target(*_real(args), **_real(kwargs))
            except Exception as error:  # torch's own error, on the user's line
                raise DeriveError(
                    f"{name} raised {type(error).__name__}: {one_line(error)} at {where(frame)}"
                ) from None
            env[node] = handler(real, *args, **kwargs)
            operations.append(name)
        except _Unsupported as error:
            raise DeriveError(f"unsupported: {error} at {where(frame)}") from None
        except (TypeError, ValueError, KeyError, IndexError) as error:
            raise DeriveError(
                f"unsupported: {name} with these arguments ({one_line(error)}) at {where(frame)}"
            ) from None
    if not isinstance(output, torch.fx.Node):
        raise DeriveError(
            f"the function returns {type(output).__name__}, not a tensor computed "
            f"from the logits; expected a scalar tensor"
        )
    try:
        return Translation(_per_example(env[output]), tuple(operations))
    except _Unsupported as error:
        raise DeriveError(f"unsupported: {error} in the returned value") from None


def _per_example(value):
    """The per-example loss ``h``: the function's value is the sum of ``h`` over the examples."""
    if not isinstance(value.real, torch.Tensor):
        raise DeriveError(
            f"the function returns {type(value.real).__name__}, expected a scalar tensor"
        )
    if value.real.ndim != 0:
        shape = ", ".join(_LABELS.get(size, str(size)) for size in value.real.shape)
        raise DeriveError(
            f"the function returns a tensor of shape [{shape}], expected a scalar "
            f"(0-d) tensor; reduce it over the batch (e.g. reduction='batchmean')"
        )
    expr = _expr(value)
    if not value.summed:
        expr = expr / B  # the same for every example: a sum of B copies of expr / B
    if not is_class_constant(expr):
        raise DeriveError("internal: the per-example loss depends on the generic class")
    return expr
