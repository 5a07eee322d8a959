r"""Comparisons on sizes, resolved while tracing.

Symbolic tracing records ``x.size(0)`` as a node, so ``max(jsd.size(0), 1)`` (TRL's batch mean)
compares a proxy with a number and asks for its truth: plain :mod:`torch.fx` stops there, as
for a branch on the logits. A size does not depend on the logits: whatever the shape, it is a
positive integer. Every size node gets an expression in positive integer symbols (its
arithmetic with numbers follows), and a comparison of such an expression with a number is
decided by sympy's assumptions when it holds, or fails, for *every* positive integer size:
``size >= 1`` is true and ``size < 1`` false at trace time (so ``max(size, 1)`` is the size),
while ``size > 1`` depends on the batch and stays refused. Comparisons on the logits or on
``T`` are data-dependent and stay refused too.

Examples
========

>>> import operator
>>> size = sympy.Symbol("size_0", integer=True, positive=True)
>>> decide(sympy.Lt(size, 1)), decide(sympy.Ge(size * 2, 2)), decide(sympy.Gt(size, 1))
(False, True, None)
"""

import operator

import sympy

__all__ = ["size_expression", "decide", "resolve", "is_size_comparison", "SIZE_METHODS"]

#: Methods whose result is a size (a positive integer whatever the logits).
SIZE_METHODS = ("size", "dim", "numel")
_ARITHMETIC = {
    operator.add: operator.add,
    operator.mul: operator.mul,
    operator.sub: operator.sub,
    operator.floordiv: lambda a, b: sympy.floor(a / b),
    operator.truediv: operator.truediv,
}
_COMPARISONS = {
    operator.lt: sympy.Lt,
    operator.le: sympy.Le,
    operator.gt: sympy.Gt,
    operator.ge: sympy.Ge,
    operator.eq: sympy.Eq,
    operator.ne: sympy.Ne,
}
_KEY = "size_expression"


def _value(argument):
    """The sympy value of an argument of a node: a number, or a size node's expression."""
    meta = getattr(argument, "meta", None)
    if meta is not None:
        return meta.get(_KEY)
    if isinstance(argument, bool):
        return None
    if isinstance(argument, (int, float)):
        return sympy.nsimplify(argument) if isinstance(argument, float) else sympy.Integer(argument)
    return None


def size_expression(node):
    """Tag ``node`` (a :class:`torch.fx.Node` just created) with its expression if it is a
    size, arithmetic of sizes and numbers, or a comparison of those."""
    kind, target, args = node.op, node.target, node.args
    expression = None
    if kind == "call_method" and target in SIZE_METHODS:
        if target == "size" and len(args) == 1 and not node.kwargs:
            expression = ("shape", node.name)  # a torch.Size: its elements are sizes
        else:
            expression = sympy.Symbol(f"size_{node.name}", integer=True, positive=True)
    elif kind == "call_function" and target is getattr and args[1:] == ("shape",):
        expression = ("shape", node.name)
    elif kind == "call_function" and target is operator.getitem:
        shape = getattr(args[0], "meta", {}).get(_KEY)
        if isinstance(shape, tuple) and isinstance(args[1], int):
            expression = sympy.Symbol(f"size_{node.name}", integer=True, positive=True)
    elif kind == "call_function" and (target in _ARITHMETIC or target in _COMPARISONS):
        values = [_value(argument) for argument in args]
        if len(values) == 2 and all(isinstance(v, sympy.Basic) for v in values):
            if any(getattr(argument, "meta", None) is not None for argument in args):
                combine = _ARITHMETIC.get(target) or _COMPARISONS[target]
                expression = combine(*values)
    if expression is not None:
        node.meta[_KEY] = expression


def decide(expression):
    """``True``/``False`` when a comparison of sizes holds, or fails, for every positive integer
    size; ``None`` otherwise (and for anything that is not such a comparison)."""
    if expression is sympy.true or expression is sympy.false:
        return bool(expression)
    if not isinstance(expression, sympy.core.relational.Relational):
        return None
    truth = sympy.ask(expression)
    return None if truth is None else bool(truth)


def resolve(tracer, proxy):
    """The truth of ``proxy`` if it is a comparison of sizes that :func:`decide` settles (its
    node, used by nothing else, leaves the graph), else ``None``."""
    node = proxy.node
    truth = decide(node.meta.get(_KEY))
    if truth is not None and not node.users:
        tracer.graph.erase_node(node)
    return truth


def is_size_comparison(proxy):
    """Whether ``proxy`` is a comparison of sizes (settled or not)."""
    return isinstance(proxy.node.meta.get(_KEY), sympy.core.relational.Relational)
