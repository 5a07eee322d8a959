r"""Symbols and notation shared by every part of :mod:`derive`.

Notation (THEORY.md)
====================

``N`` classes; student logits ``z``, teacher logits ``v``; temperature ``T`` and its
inverse :math:`\epsilon = 1/T`, in which everything is expanded.

A *symbolic* number of classes is handled without writing one symbol per class:

* ``z_i`` and ``v_i`` stand for the logits of one generic class ``i``;
* :class:`ClassMean` is the class-uniform mean :math:`\langle f \rangle = \frac1N\sum_j f(z_j, v_j)`.
  Inside a mean the index is a bound dummy: ``mean(z_i**2*v_i)`` is
  :math:`\langle z^2 v\rangle = \frac1N \sum_j z_j^2 v_j` and prints without the index.
  A mean is the same for every class, and depends on every logit: its derivative is
  :math:`\partial\langle f\rangle/\partial z_i = \frac1N\,\partial f/\partial z_i`.

Expanded terms are polynomials in ``z_i``, ``v_i``, ``1/N`` and the class moments
:math:`\langle z^a v^b\rangle`. Their text form, ``mean(z_i**a*v_i**b)``, parses back with
:func:`parse`. With a concrete number of classes, :func:`concrete` writes everything in the
explicit symbols ``z1..zN, v1..vN``.

Examples
========

>>> from derive.notation import ClassMean, z_i, v_i, N
>>> ClassMean(3*z_i + 2)
3*mean(z_i) + 2
>>> ClassMean(z_i**2).diff(z_i)
2*z_i/N
>>> concrete(ClassMean(z_i*v_i), classes=2)
v1*z1/2 + v2*z2/2
"""

from functools import lru_cache

import sympy
from sympy import Add, Function, Mul, Symbol

from ._errors import check_argument, check_classes

__all__ = [
    "T", "epsilon", "N", "z_i", "v_i", "t_i", "w_i", "b_i", "u_i", "c_i", "m_i",
    "COMPONENTS", "PER_CLASS", "ClassMean", "moment", "canonical",
    "is_class_constant", "class_sum", "concrete", "concrete_text", "logit_symbols", "readable",
    "parse",
]

#: Temperature.
T = Symbol("T", positive=True)
#: Inverse temperature, the expansion variable: ``epsilon = 1/T``.
epsilon = Symbol("epsilon", positive=True)
#: Symbolic number of classes.
N = Symbol("N", positive=True, integer=True)
#: Student logit of a generic class ``i``.
z_i = Symbol("z_i", real=True)
#: Teacher logit of a generic class ``i``.
v_i = Symbol("v_i", real=True)
#: The per-class logits, which the expansion engine knows.
COMPONENTS = (z_i, v_i)
#: Target probability of class ``i`` (hard labels, label smoothing, soft targets).
t_i = Symbol("t_i", real=True)
#: Student output layer of class ``i``: its weight on one hidden feature ``h``, and its bias.
w_i, b_i = Symbol("w_i", real=True), Symbol("b_i", real=True)
#: Teacher output layer of class ``i``: weight on its hidden feature ``h_t``, and bias.
u_i, c_i = Symbol("u_i", real=True), Symbol("c_i", real=True)
#: An optimizer's per-class state (a momentum buffer).
m_i = Symbol("m_i", real=True)
#: Every per-class symbol: a mean of anything else is the thing itself.
PER_CLASS = COMPONENTS + (t_i, w_i, b_i, u_i, c_i, m_i)

_PLAIN = {s: Symbol(s.name[0], real=True) for s in PER_CLASS}


@lru_cache(maxsize=None)
def is_class_constant(expr):
    """True if ``expr`` is the same for every class: per-class symbols only inside means."""
    if isinstance(expr, ClassMean):
        return True
    if expr in PER_CLASS:
        return False
    return all(is_class_constant(arg) for arg in expr.args)


class ClassMean(Function):
    r"""The class-uniform mean :math:`\langle f\rangle = \frac1N \sum_j f(z_j, v_j)`.

    It is linear and evaluates class constants out of itself, so expressions stay canonical:

    >>> from derive.notation import ClassMean, z_i, v_i, epsilon
    >>> ClassMean(epsilon*z_i - v_i)
    epsilon*mean(z_i) - mean(v_i)
    >>> ClassMean(ClassMean(z_i)*v_i)
    mean(v_i)*mean(z_i)
    """

    nargs = 1

    @classmethod
    def eval(cls, arg):
        if is_class_constant(arg):
            return arg
        if arg.is_Add:
            return Add(*[cls(term) for term in arg.args])
        if arg.is_Mul:
            constant = [f for f in arg.args if is_class_constant(f)]
            if constant:
                varying = [f for f in arg.args if not is_class_constant(f)]
                return Mul(*constant) * cls(Mul(*varying))
        return None

    def _eval_derivative(self, symbol):
        (arg,) = self.args
        if symbol not in PER_CLASS:
            # Differentiating under the mean is exact for a symbol shared by every class.
            return ClassMean(arg.diff(symbol))
        # d/dz_i (1/N) sum_j f(z_j; C) = (1/N) f_z(z_i; C) + <f_C(z_j; C)> dC/dz_i, for every
        # nested mean C: the inner means are frozen as dummies, then chained.
        nested = sorted(arg.atoms(ClassMean), key=sympy.default_sort_key)
        frozen = {mean: sympy.Dummy() for mean in nested}
        thawed = {dummy: mean for mean, dummy in frozen.items()}
        body = arg.xreplace(frozen)
        result = body.diff(symbol).xreplace(thawed) / N
        for mean, dummy in frozen.items():
            result += ClassMean(body.diff(dummy).xreplace(thawed)) * mean.diff(symbol)
        return result

    def _eval_is_real(self):
        return self.args[0].is_real

    def _latex(self, printer, exp=None):
        (arg,) = self.args
        powers = arg.as_powers_dict()
        if arg == Mul(*[s**powers.get(s, 0) for s in PER_CLASS]):
            # A moment: print z before v, whatever sympy's alphabetical order says.
            inner = " ".join(printer._print(_PLAIN[s] ** powers[s]) for s in PER_CLASS if s in powers)
        else:
            inner = printer._print(arg.xreplace(_PLAIN))
        body = r"\left\langle %s \right\rangle" % inner
        return body if exp is None else "%s^{%s}" % (body, exp)

    def _sympystr(self, printer):
        return "mean(%s)" % printer._print(self.args[0])

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm

        inner = printer._print(self.args[0].xreplace(_PLAIN))
        return prettyForm(*inner.parens("⟨", "⟩"))


def moment(student_power, teacher_power):
    r"""The class moment :math:`\langle z^a v^b\rangle` (``1`` when both powers are 0)."""
    return ClassMean(z_i**student_power * v_i**teacher_power)


def canonical(expr):
    """A normal form for residuals: means linearised, their arguments in one normal form,
    logarithms of products split, then cancelled. Equal expressions give equal results;
    a residual that is zero comes out as exactly ``0``."""
    def normal_mean(node):
        return ClassMean(sympy.factor(sympy.cancel(sympy.expand(node.args[0]))))

    expr = sympy.expand(sympy.sympify(expr))
    expr = expr.replace(lambda node: isinstance(node, ClassMean), normal_mean)
    expr = sympy.expand_log(sympy.expand(expr), force=True)
    return sympy.cancel(sympy.expand(expr))


def class_sum(expr):
    r""":math:`\sum_i f_i` for a per-class expression ``f_i``: ``N * mean(f)``, linearised."""
    return sympy.expand(N * ClassMean(sympy.expand(expr)))


def logit_symbols(classes):
    """The explicit symbols ``(z1..zN), (v1..vN)`` for a concrete number of classes."""
    check_classes(classes)
    check_argument(classes is not None, "logit_symbols needs a concrete number of classes")
    student = sympy.symbols(f"z1:{classes + 1}", real=True)
    teacher = sympy.symbols(f"v1:{classes + 1}", real=True)
    return student, teacher


def concrete(expr, *, classes, component=1):
    """Write ``expr`` for ``classes`` explicit classes; ``z_i, v_i`` become those of ``component``.

    Means become explicit sums over ``z1..zN, v1..vN`` (not expanded, so sizes stay linear
    in N) and ``N`` becomes the number.
    """
    student, teacher = logit_symbols(classes)
    check_argument(isinstance(component, int) and 1 <= component <= classes,
                   "component must be in 1..{}, got {!r}", classes, component)

    def rewrite(node):
        if isinstance(node, ClassMean):
            (arg,) = node.args
            arg = rewrite(arg)
            total = Add(*[arg.xreplace({z_i: zj, v_i: vj}) for zj, vj in zip(student, teacher)])
            return total / classes
        if not node.args:
            return node
        return node.func(*[rewrite(a) for a in node.args])

    return rewrite(sympy.sympify(expr)).xreplace(
        {z_i: student[component - 1], v_i: teacher[component - 1], N: classes})


_SENTINELS = {z_i: Symbol("ZQXCOMPONENT", real=True), v_i: Symbol("VQXCOMPONENT", real=True)}


def concrete_text(expr, *, classes, component=1, printer=str):
    """``printer(concrete(expr, ...))`` up to term order, fast: ``expr`` is printed once, with
    each mean replaced by its printed explicit sum and ``z_i, v_i`` by those of ``component``.

    Printing the concrete expression directly repeats every sum at every occurrence; this
    prints each distinct mean once per expression, and the expression once for all
    components. The result parses (str) or renders (LaTeX) to :func:`concrete`'s expression.
    """
    check_argument(isinstance(component, int) and 1 <= component <= classes,
                   "component must be in 1..{}, got {!r}", classes, component)
    template = _concrete_template(expr, classes, printer)
    student, teacher = logit_symbols(classes)
    for symbol, value in ((z_i, student[component - 1]), (v_i, teacher[component - 1])):
        template = template.replace(printer(_SENTINELS[symbol]), printer(value))
    return template


@lru_cache(maxsize=256)
def _concrete_template(expr, classes, printer):
    means = sorted(expr.atoms(ClassMean), key=sympy.default_sort_key)
    placeholders = {mean: Symbol(f"MEANQX{k}QX", real=True) for k, mean in enumerate(means)}
    template = printer(expr.xreplace(placeholders).xreplace(_SENTINELS).xreplace({N: sympy.Integer(classes)}))
    # Longest names first, so that MEANQX1QX never clobbers part of MEANQX12QX.
    for mean, placeholder in sorted(placeholders.items(), key=lambda item: -len(item[1].name)):
        text = printer(concrete(mean, classes=classes))
        text = f"({text})" if printer is str else rf"\left({text}\right)"
        template = template.replace(printer(placeholder), text)
    return template


class _ReadablePrinter(sympy.printing.str.StrPrinter):
    """Plain text for people: class means as ``⟨z**2*v⟩`` (index dropped), the rest as sympy."""

    printmethod = "_readable_text"   # not ClassMean's _sympystr, which prints mean(...)

    def _print_ClassMean(self, expr):
        return "⟨%s⟩" % self._print(expr.args[0].xreplace(_PLAIN))


def readable(expr):
    """``expr`` as plain text with means written ``⟨...⟩``: for reading, not for parsing.

    >>> readable(moment(2, 1) / N - z_i * ClassMean(v_i))
    '-z_i*⟨v⟩ + ⟨v*z**2⟩/N'
    """
    return _ReadablePrinter({"order": "lex"}).doprint(expr)


def parse(text):
    """Parse a term printed in this notation (``mean(z_i**2*v_i)/N`` and the like)."""
    names = {"mean": ClassMean, "N": N, "T": T, "epsilon": epsilon}
    names.update({symbol.name: symbol for symbol in PER_CLASS})
    return sympy.sympify(text, locals=names)
