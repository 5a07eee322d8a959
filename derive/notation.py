r"""Symbols and notation shared by every part of :mod:`derive`.

Notation
========

``N`` classes; student logits ``z``, teacher logits ``v``; temperature ``T`` and its
inverse :math:`\epsilon = 1/T`, in which everything is expanded.

A *symbolic* number of classes is handled without writing one symbol per class:

* ``z_i`` and ``v_i`` stand for the logits of one generic class ``i``;
* :class:`ClassMean` is the class-uniform mean
  :math:`\langle f \rangle = \frac1N\sum_j f(z_j, v_j)`.
  Inside a mean the index is a bound dummy: ``mean(z_i**2*v_i)`` is
  :math:`\langle z^2 v\rangle = \frac1N \sum_j z_j^2 v_j` and prints without the index.
  A mean is the same for every class, and depends on every logit: its derivative is
  :math:`\partial\langle f\rangle/\partial z_i = \frac1N\,\partial f/\partial z_i`.

Objectives that know a label (the target class ``g``) write the label's logits ``z_g, v_g``
apart and average over the other :math:`N - 1` classes with :class:`OtherMean`,
:math:`\langle f\rangle_{\neg g} = \frac{1}{N-1}\sum_{j\ne g} f(z_j, v_j)`; their generic class
``i`` is then one of those others. Normalized objectives use the standardized logits
:math:`\hat z = (z - \langle z\rangle)/\sigma_z` (``zh_i``, ``vh_i``, with ``sigma_z``,
``sigma_v`` the population standard deviations), whose means obey
:math:`\langle \hat z\rangle = 0` and :math:`\langle \hat z^2\rangle = 1`.

Expanded terms are polynomials in these symbols, ``1/N`` and class moments. Their text form,
``mean(z_i**a*v_i**b)``, parses back with :func:`derive.parse` (:mod:`derive.parsing`), which
accepts this notation and nothing else. With a concrete number of classes, :func:`concrete`
writes everything in the explicit symbols ``z1..zN, v1..vN`` (the label is class 1).

Examples
========

>>> from derive.notation import ClassMean, z_i, v_i, N
>>> ClassMean(3*z_i + 2)
3*mean(z_i) + 2
>>> ClassMean(z_i**2).diff(z_i)
2*z_i/N
>>> concrete(ClassMean(z_i*v_i), classes=2)
v1*z1/2 + v2*z2/2
>>> ClassMean(zh_i**2), ClassMean(zh_i)
(1, 0)
"""

from functools import lru_cache
from typing import Any

import sympy
from sympy import Add, Function, Mul, Symbol
from sympy.printing.pretty.stringpict import prettyForm

from ._errors import check_argument, check_classes

__all__ = [
    "T",
    "epsilon",
    "N",
    "z_i",
    "v_i",
    "t_i",
    "w_i",
    "b_i",
    "u_i",
    "c_i",
    "m_i",
    "learning_rate",
    "momentum",
    "dampening",
    "weight_decay",
    "hidden",
    "teacher_hidden",
    "z_g",
    "v_g",
    "zh_i",
    "vh_i",
    "sigma_z",
    "sigma_v",
    "COMPONENTS",
    "PER_CLASS",
    "ClassMean",
    "OtherMean",
    "FDerivative",
    "AmariAlpha",
    "f_derivative",
    "moment",
    "is_class_constant",
    "class_sum",
    "class_total",
    "at_label",
    "concrete",
    "concrete_text",
    "logit_symbols",
    "readable",
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
#: Hyper-parameters of the optimizers, as symbols (the statements on training steps use them).
learning_rate, momentum, dampening, weight_decay = sympy.symbols("eta mu tau lambda", positive=True)
#: Hidden features feeding the student and teacher output layers.
hidden, teacher_hidden = sympy.symbols("h h_t", real=True)
#: Student and teacher logits of the label ``g`` (the target class): class constants.
z_g, v_g = Symbol("z_g", real=True), Symbol("v_g", real=True)
#: Standardized logits of class ``i``: :math:`(z_i - \langle z\rangle)/\sigma_z`, likewise ``v``.
zh_i, vh_i = Symbol("zh_i", real=True), Symbol("vh_i", real=True)
#: Population standard deviations of the logits over the classes.
sigma_z, sigma_v = Symbol("sigma_z", positive=True), Symbol("sigma_v", positive=True)
#: Every per-class symbol: a mean of anything else is the thing itself.
PER_CLASS = COMPONENTS + (zh_i, vh_i, t_i, w_i, b_i, u_i, c_i, m_i)

#: How a per-class symbol prints inside a mean, where its index is a bound dummy.
_BARE_TEXT = {
    z_i: "z",
    v_i: "v",
    zh_i: "zh",
    vh_i: "vh",
    t_i: "t",
    w_i: "w",
    b_i: "b",
    u_i: "u",
    c_i: "c",
    m_i: "m",
}
_BARE_LATEX = {
    z_i: "z",
    v_i: "v",
    zh_i: r"\hat{z}",
    vh_i: r"\hat{v}",
    t_i: "t",
    w_i: "w",
    b_i: "b",
    u_i: "u",
    c_i: "c",
    m_i: "m",
}
#: The per-class symbol each bare name stands for (printing ranks bare symbols like them).
BARE_SYMBOLS = {
    name: symbol for table in (_BARE_TEXT, _BARE_LATEX) for symbol, name in table.items()
}
#: LaTeX names of the other symbols (outside means).
SYMBOL_LATEX = {
    zh_i: r"\hat{z}_{i}",
    vh_i: r"\hat{v}_{i}",
    sigma_z: r"\sigma_{z}",
    sigma_v: r"\sigma_{v}",
    epsilon: r"\epsilon",
}

#: Means the standardized logits obey, whatever the logits: applied when a mean is formed.
_STANDARDIZED_MOMENTS = {zh_i: 0, zh_i**2: 1, vh_i: 0, vh_i**2: 1}


@lru_cache(maxsize=None)
def is_class_constant(expr):
    """True if ``expr`` is the same for every class: per-class symbols only inside means."""
    if isinstance(expr, _Mean):
        return True
    if expr in PER_CLASS:
        return False
    return all(is_class_constant(arg) for arg in expr.args)


class _Mean(Function):
    """What :class:`ClassMean` and :class:`OtherMean` share: linearity and the chain rule."""

    nargs = 1
    #: How many classes the mean runs over.
    _count = N
    _relations: dict[Any, Any] = {}

    @classmethod
    def eval(cls, arg):
        if is_class_constant(arg):
            return arg
        if arg in cls._relations:
            return sympy.sympify(cls._relations[arg])
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
            return type(self)(arg.diff(symbol))
        # d/dz_i (1/n) sum_j f(z_j; C) = (1/n) f_z(z_i; C) + <f_C(z_j; C)> dC/dz_i, for every
        # nested mean C: the inner means are frozen as dummies, then chained.
        nested = sorted(arg.atoms(_Mean), key=sympy.default_sort_key)
        frozen = {mean: sympy.Dummy() for mean in nested}
        thawed = {dummy: mean for mean, dummy in frozen.items()}
        body = arg.xreplace(frozen)
        result = body.diff(symbol).xreplace(thawed) / self._count
        for mean, dummy in frozen.items():
            result += type(self)(body.diff(dummy).xreplace(thawed)) * mean.diff(symbol)
        return result

    def _eval_is_real(self):
        return self.args[0].is_real

    # -- printing: the argument is printed as it is, with the dummy index dropped -----------
    _text_name = "mean"
    _latex_suffix = ""
    _pretty_suffix = ""

    def _latex(self, printer, exp=None):
        inner = _bare_latex(self.args[0], printer)
        body = r"\left\langle %s \right\rangle%s" % (inner, self._latex_suffix)
        return body if exp is None else "%s^{%s}" % (body, exp)

    def _sympystr(self, printer):
        return "%s(%s)" % (self._text_name, printer._print(self.args[0]))

    def _pretty(self, printer):
        inner = printer._print(_bare_tree(self.args[0], "pretty"))
        form = prettyForm(*inner.left("⟨"))
        form = prettyForm(*form.right("⟩" + self._pretty_suffix))
        return form


class ClassMean(_Mean):
    r"""The class-uniform mean :math:`\langle f\rangle = \frac1N \sum_j f(z_j, v_j)`.

    It is linear and evaluates class constants out of itself, so expressions stay canonical:

    >>> from derive.notation import ClassMean, z_i, v_i, epsilon
    >>> ClassMean(epsilon*z_i - v_i)
    epsilon*mean(z_i) - mean(v_i)
    >>> ClassMean(ClassMean(z_i)*v_i)
    mean(v_i)*mean(z_i)
    """

    _relations = _STANDARDIZED_MOMENTS


class OtherMean(_Mean):
    r"""The mean over the classes other than the label ``g``,
    :math:`\langle f\rangle_{\neg g} = \frac{1}{N-1}\sum_{j \ne g} f(z_j, v_j)
    = \frac{N\langle f\rangle - f_g}{N - 1}`. Its generic class ``i`` is one of those classes,
    so
    :math:`\partial\langle f\rangle_{\neg g}/\partial z_i = \frac{1}{N-1}\partial f/\partial z_i`.

    >>> from derive.notation import OtherMean, z_i, z_g
    >>> OtherMean(z_g * z_i).diff(z_i)
    z_g/(N - 1)
    """

    _count = N - 1
    _text_name = "mean_other"
    _latex_suffix = r"_{\neg g}"
    _pretty_suffix = "₋g"


class FDerivative(Function):
    r"""The ``n``-th derivative :math:`f^{(n)}(t)` of the generator ``f`` of an f-divergence,
    an undefined smooth function with :math:`f(1) = 0`: ``FDerivative(n, t)``.

    The expansion engine knows it only through its Taylor series at 1, whose coefficients
    :meth:`taylor_coefficient` gives: the symbols ``f1, f2, ...`` (:func:`f_derivative`:
    :math:`f'(1), f''(1), \dots`). A subclass with a ``formula`` is a concrete generator
    (:class:`AmariAlpha`): the same machinery then expands it with its own coefficients.

    >>> from sympy import Symbol
    >>> t = Symbol("t")
    >>> FDerivative(0, t).diff(t)
    fd(1, t)
    >>> FDerivative.taylor_coefficient(3)
    f3
    """

    nargs = 2
    #: How many arguments after ``(n, t)`` parametrize the generator.
    _parameters = 0

    @classmethod
    def formula(cls, t, *parameters):
        """The generator :math:`f(t)` itself, or ``None`` for the undefined ``f``."""
        return None

    @classmethod
    def taylor_coefficient(cls, order, *parameters):
        r""":math:`f^{(order)}(1)`: ``0`` for ``order = 0``."""
        if order == 0:
            return sympy.Integer(0)
        formula = cls.formula(_TAYLOR_VARIABLE, *parameters)
        if formula is None:
            return f_derivative(order)
        value = sympy.diff(formula, _TAYLOR_VARIABLE, order).subs(_TAYLOR_VARIABLE, 1)
        return sympy.factor(sympy.cancel(sympy.expand_power_base(value, force=True)))

    def fdiff(self, argindex=2):
        check_argument(argindex == 2, "f^(n)(t) is differentiated in t only")
        order, argument, *parameters = self.args
        return type(self)(order + 1, argument, *parameters)

    def _sympystr(self, printer):
        return "%s(%s)" % (self._text_name, ", ".join(printer._print(a) for a in self.args))

    _text_name = "fd"
    _latex_name = "f"

    def _latex(self, printer, exp=None):
        order, argument, *parameters = self.args
        name = self._latex_name
        if parameters:
            name = "%s_{%s}" % (name, ", ".join(printer._print(p) for p in parameters))
        if order != 0:
            name = "%s^{(%s)}" % (name, printer._print(order))
        body = r"%s\left(%s\right)" % (name, printer._print(argument))
        return body if exp is None else r"\left(%s\right)^{%s}" % (body, exp)


class AmariAlpha(FDerivative):
    r"""The generator of Amari's alpha-divergence,
    :math:`f_\alpha(t) = \frac{t^\alpha - \alpha t + \alpha - 1}{\alpha(\alpha - 1)}`
    (``AmariAlpha(n, t, alpha)`` is its ``n``-th derivative), so that
    :math:`D_{f_\alpha}(p\|q) = \frac{\sum_i p_i^\alpha q_i^{1-\alpha} - 1}{\alpha(\alpha-1)}`:
    KL(p||q) at alpha = 1, KL(q||p) at alpha = 0.

    >>> from sympy import Symbol
    >>> alpha = Symbol("alpha")
    >>> AmariAlpha.taylor_coefficient(4, alpha)
    (alpha - 3)*(alpha - 2)
    """

    nargs = 3
    _parameters = 1
    _text_name = "fd_alpha"
    _latex_name = "f"

    @classmethod
    def formula(cls, t, alpha):
        return (t**alpha - alpha * t + alpha - 1) / (alpha * (alpha - 1))

    @classmethod
    def taylor_coefficient(cls, order, alpha):
        # f^(k)(1) = alpha (alpha-1) ... (alpha-k+1) / (alpha (alpha-1)) for k >= 2.
        if order < 2:
            return sympy.Integer(0)
        return sympy.Mul(*[alpha - j for j in range(2, order)])


_TAYLOR_VARIABLE = Symbol("t_taylor", positive=True)


@lru_cache(maxsize=None)
def f_derivative(order: int) -> Symbol:
    r"""The symbol ``f{order}`` for :math:`f^{(order)}(1)` (``order >= 1``; :math:`f(1) = 0`)."""
    check_argument(
        isinstance(order, int) and order >= 1, "f derivatives are numbered from 1, got {!r}", order
    )
    return Symbol(f"f{order}", real=True)


# -- printing means: the argument, as it is, with per-class symbols shown without the index ----


class _InertMean(Function):
    """A mean for display only: no evaluation, so printing never changes the mathematics."""

    nargs = 2  # (argument, suffix flag)

    def _latex(self, printer, exp=None):
        suffix = r"_{\neg g}" if self.args[1] else ""
        body = r"\left\langle %s \right\rangle%s" % (printer._print(self.args[0]), suffix)
        return body if exp is None else "%s^{%s}" % (body, exp)

    def _pretty(self, printer):
        inner = printer._print(self.args[0])
        form = prettyForm(*inner.left("⟨"))
        return prettyForm(*form.right("⟩" + ("₋g" if self.args[1] else "")))

    def _sympystr(self, printer):
        return "⟨%s⟩%s" % (printer._print(self.args[0]), "_¬g" if self.args[1] else "")

    _readable_text = _sympystr


def _bare_tree(expr, style):
    """``expr`` with every mean made inert and, inside means, per-class symbols replaced by
    bare symbols named as the index-free notation prints them."""
    names = _BARE_LATEX if style == "latex" else _BARE_TEXT
    bare = {s: Symbol(names[s]) for s in PER_CLASS}

    def walk(node, inside):
        if isinstance(node, _Mean):
            return _InertMean(walk(node.args[0], True), sympy.Integer(isinstance(node, OtherMean)))
        if inside and node in bare:
            return bare[node]
        if not node.args:
            return node
        return (
            node.func(*[walk(arg, inside) for arg in node.args], evaluate=False)
            if isinstance(node, (Add, Mul, sympy.Pow))
            else node.func(*[walk(a, inside) for a in node.args])
        )

    return walk(expr, True)


def _bare_latex(arg, printer):
    """LaTeX of a mean's argument: a moment prints z before v; anything else as printed by
    ``printer`` with the dummy index dropped."""
    powers = arg.as_powers_dict()
    if arg == Mul(*[s ** powers.get(s, 0) for s in PER_CLASS]):
        parts = [
            _BARE_LATEX[s] if powers[s] == 1 else "%s^{%s}" % (_BARE_LATEX[s], powers[s])
            for s in PER_CLASS
            if s in powers
        ]
        return " ".join(parts)
    return printer._print(_bare_tree(arg, "latex"))


def moment(student_power: int, teacher_power: int) -> Any:
    r"""The class moment :math:`\langle z^a v^b\rangle` (``1`` when both powers are 0)."""
    return ClassMean(z_i**student_power * v_i**teacher_power)


def class_sum(expr: Any) -> Any:
    r""":math:`\sum_i f_i` for a per-class expression ``f_i``: ``N * mean(f)``, linearised."""
    return sympy.expand(N * ClassMean(sympy.expand(expr)))


def at_label(expr):
    """A per-class expression evaluated at the label: ``z_i, v_i`` outside means become
    ``z_g, v_g`` (inside a mean the index is a dummy and stays)."""
    expr = sympy.sympify(expr)
    if isinstance(expr, _Mean):
        return expr
    if expr == z_i:
        return z_g
    if expr == v_i:
        return v_g
    if not expr.args:
        return expr
    return expr.func(*[at_label(arg) for arg in expr.args])


def class_total(expr, *, labelled=False):
    r""":math:`\sum_j f_j` over every class: ``N * mean(f)``, or with a label,
    :math:`f_g + (N - 1)\langle f\rangle_{\neg g}` (``f`` evaluated at ``z_g, v_g`` plus the
    others)."""
    if not labelled:
        return N * ClassMean(expr)
    return at_label(expr) + (N - 1) * OtherMean(expr)


def logit_symbols(classes: int) -> tuple[tuple[Symbol, ...], tuple[Symbol, ...]]:
    """The explicit symbols ``(z1..zN), (v1..vN)`` for a concrete number of classes."""
    check_classes(classes)
    check_argument(classes is not None, "logit_symbols needs a concrete number of classes")
    return _logit_symbols(classes)


@lru_cache(maxsize=64)
def _logit_symbols(classes):
    student = sympy.symbols(f"z1:{classes + 1}", real=True)
    teacher = sympy.symbols(f"v1:{classes + 1}", real=True)
    return student, teacher


def _standardized(values, classes):
    """``(standardized values, population std)`` of explicit per-class values."""
    mean = Add(*values) / classes
    std = sympy.sqrt(Add(*[(x - mean) ** 2 for x in values]) / classes)
    return [(x - mean) / std for x in values], std


def concrete(expr: Any, *, classes: int, component: int = 1) -> Any:
    """Write ``expr`` for ``classes`` explicit classes; ``z_i, v_i`` become those of ``component``.

    Means become explicit sums over ``z1..zN, v1..vN`` (not expanded, so sizes stay linear
    in N) and ``N`` becomes the number. The label is class 1: ``z_g, v_g`` become ``z1, v1``
    and ``mean_other`` runs over classes 2..N. Standardized logits are written out.
    """
    student, teacher = logit_symbols(classes)
    check_argument(
        isinstance(component, int) and 1 <= component <= classes,
        "component must be in 1..{}, got {!r}",
        classes,
        component,
    )
    expr = sympy.sympify(expr)
    standardized = expr.has(zh_i, vh_i, sigma_z, sigma_v)
    if standardized:
        student_hat, std_z = _standardized(student, classes)
        teacher_hat, std_v = _standardized(teacher, classes)
        columns = list(zip(student, teacher, student_hat, teacher_hat))
    else:
        columns = [(zj, vj, zh_i, vh_i) for zj, vj in zip(student, teacher)]

    def at(node, column):
        zj, vj, zhj, vhj = column
        return node.xreplace({z_i: zj, v_i: vj, zh_i: zhj, vh_i: vhj})

    def rewrite(node):
        if isinstance(node, _Mean):
            arg = rewrite(node.args[0])
            chosen = columns[1:] if isinstance(node, OtherMean) else columns
            return Add(*[at(arg, column) for column in chosen]) / len(chosen)
        if not node.args:
            return node
        return node.func(*[rewrite(a) for a in node.args])

    replacements = {N: sympy.Integer(classes), z_g: student[0], v_g: teacher[0]}
    if standardized:
        replacements.update({sigma_z: std_z, sigma_v: std_v})
    return at(rewrite(expr), columns[component - 1]).xreplace(replacements)


_SENTINELS = {z_i: Symbol("ZQXCOMPONENT", real=True), v_i: Symbol("VQXCOMPONENT", real=True)}


def concrete_text(expr, *, classes, component=1, printer=str):
    """``printer(concrete(expr, ...))`` up to term order, fast: ``expr`` is printed once, with
    each mean replaced by its printed explicit sum and ``z_i, v_i`` by those of ``component``.

    Printing the concrete expression directly repeats every sum at every occurrence; this
    prints each distinct mean once per expression, and the expression once for all
    components. The result parses (str) or renders (LaTeX) to :func:`concrete`'s expression.
    Expressions in standardized logits are printed from :func:`concrete` directly.
    """
    check_argument(
        isinstance(component, int) and 1 <= component <= classes,
        "component must be in 1..{}, got {!r}",
        classes,
        component,
    )
    if expr.has(zh_i, vh_i, sigma_z, sigma_v):
        return printer(concrete(expr, classes=classes, component=component))
    template = _concrete_template(expr, classes, printer)
    student, teacher = logit_symbols(classes)
    for symbol, value in ((z_i, student[component - 1]), (v_i, teacher[component - 1])):
        template = template.replace(printer(_SENTINELS[symbol]), printer(value))
    return template


@lru_cache(maxsize=256)
def _concrete_template(expr, classes, printer):
    means = sorted(expr.atoms(_Mean), key=sympy.default_sort_key)
    placeholders = {mean: Symbol(f"MEANQX{k}QX", real=True) for k, mean in enumerate(means)}
    student, teacher = logit_symbols(classes)
    template = printer(
        expr.xreplace(placeholders)
        .xreplace(_SENTINELS)
        .xreplace({N: sympy.Integer(classes), z_g: student[0], v_g: teacher[0]})
    )
    # Longest names first, so that MEANQX1QX never clobbers part of MEANQX12QX.
    for mean, placeholder in sorted(placeholders.items(), key=lambda item: -len(item[1].name)):
        text = printer(concrete(mean, classes=classes))
        text = f"({text})" if printer is str else rf"\left({text}\right)"
        template = template.replace(printer(placeholder), text)
    return template


class _ReadablePrinter(sympy.printing.str.StrPrinter):
    """Plain text for people: class means as ``⟨z**2*v⟩`` (index dropped), the rest as sympy."""

    printmethod = "_readable_text"  # not the means' _sympystr, which prints mean(...)

    def _print_ClassMean(self, expr):
        arg = expr.args[0]
        powers = arg.as_powers_dict()
        if arg == Mul(*[s ** powers.get(s, 0) for s in PER_CLASS]):
            # A moment: z before v, whatever sympy's alphabetical order says.
            inner = "*".join(
                _BARE_TEXT[s] + ("" if powers[s] == 1 else "**%s" % powers[s])
                for s in PER_CLASS
                if s in powers
            )
            suffix = "_¬g" if isinstance(expr, OtherMean) else ""
            return "⟨%s⟩%s" % (inner, suffix)
        return self._print(_bare_tree(expr, "text"))

    _print_OtherMean = _print_ClassMean


def readable(expr):
    """``expr`` as plain text with means written ``⟨...⟩``: for reading, not for parsing.

    >>> readable(moment(2, 1) / N - z_i * ClassMean(v_i))
    '-z_i*⟨v⟩ + ⟨z**2*v⟩/N'
    """
    return _ReadablePrinter({"order": "lex"}).doprint(expr)
