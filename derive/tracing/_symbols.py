r"""What a traced loss adds to the notation: the batch size ``B`` and a stopped gradient.

Torch-free: the relations (:mod:`derive.tracing.relations`) use these without torch.

Examples
========

>>> from derive.notation import z_i, v_i
>>> loss = StopGradient(z_i) * z_i + v_i
>>> loss.diff(z_i)
StopGradient(z_i)
>>> strip_stops(loss.diff(z_i)), strip_stops(loss)
(z_i, v_i + z_i**2)
"""

import sympy

__all__ = ["B", "StopGradient", "strip_stops", "has_stops"]

#: The batch size: a class constant, as the engine sees it.
B = sympy.Symbol("B", positive=True, integer=True)


class StopGradient(sympy.Function):
    r"""``x.detach()``: the value of ``x``, with derivative 0. Differentiating a loss that
    contains it gives the gradient autograd computes; :func:`strip_stops` then gives the value
    (the expansion engine never sees it)."""

    nargs = 1

    def fdiff(self, argindex=1):
        return sympy.Integer(0)


def has_stops(expr):
    """True if ``expr`` contains a :class:`StopGradient`."""
    return bool(expr.atoms(StopGradient))


def strip_stops(expr):
    """``expr`` with every :class:`StopGradient` replaced by its argument (its value)."""
    if not has_stops(expr):
        return expr
    return expr.replace(lambda node: isinstance(node, StopGradient), lambda node: node.args[0])
