r"""The f-divergence family and separate temperatures: their high-temperature limits, the first
correction that tells forward and reverse KL apart, and the hot-teacher limit.

Notation: :math:`d = z - v`; a hat is the centred quantity, :math:`\hat d = d - \langle d\rangle`;
``f2, f3, ...`` are :math:`f''(1), f'''(1), \dots` of the generic generator.

Examples
========

>>> from derive.statements import STATEMENTS
>>> STATEMENTS["jsd-limit"].prove(order=2).verdict
'holds'
"""

import sympy
from sympy import Rational

from .._errors import check_argument
from ..normal_form import canonical
from ..notation import AmariAlpha, ClassMean, N, f_derivative, v_i, z_i
from ..objectives import OBJECTIVES, half_variance
from ..objectives.softmax import ratio, softmax_expectation
from ..objectives.temperature import student_log_softmax
from ._common import leading, terms
from ._registry import label, statement

__all__ = ["first_correction", "KL_GENERATOR", "REVERSE_KL_GENERATOR"]

_t = sympy.Symbol("t", positive=True)
#: Generators of forward and reverse KL: their derivatives at 1 substituted into the generic
#: f-divergence must give the kl and reverse-kl terms.
KL_GENERATOR = _t * sympy.log(_t)
REVERSE_KL_GENERATOR = -sympy.log(_t)


def _centred(x):
    return x - ClassMean(x)


def first_correction(second, third):
    r"""The :math:`T^{-1}` term of :math:`T^2 D_f`:
    :math:`\frac{f''(1)}{2}\langle\hat v\hat d^2\rangle - \frac{f'''(1)}{6}\langle\hat d^3\rangle`
    (centred teacher logits :math:`\hat v`, centred difference :math:`\hat d`)."""
    d, v = _centred(z_i - v_i), _centred(v_i)
    return second * ClassMean(v * d**2) / 2 - third * ClassMean(d**3) / 6


def f_divergence_coefficients(objective, **parameters):
    r"""``(f''(1), f'''(1))`` of an f-divergence objective, read off its first two terms:
    :math:`L_0 = f''(1)\,\tfrac12\mathrm{Var}(d)` and :math:`L_1` = :func:`first_correction`.
    A :class:`~derive.DeriveError` if the terms have another form.

    >>> f_divergence_coefficients("jsd")
    (-beta**2 + beta, beta**3 - beta)
    """
    loss = terms("loss", 2, objective, **parameters)
    second, third = sympy.symbols("second third")
    residual = sympy.expand(canonical(loss[1] - first_correction(second, third)))
    means = sorted(residual.atoms(ClassMean), key=sympy.default_sort_key)
    solutions = sympy.solve(sympy.Poly(residual, *means).coeffs(), [second, third], dict=True)
    check_argument(
        len(solutions) == 1 and set(solutions[0]) == {second, third},
        "{} has no f-divergence form at order T^-1",
        objective,
    )
    value = solutions[0][second], solutions[0][third]
    check_argument(
        canonical(loss[0] - value[0] * half_variance(z_i - v_i)) == 0,
        "{} has no f-divergence form at order T^0",
        objective,
    )
    return tuple(sympy.expand(v) for v in value)


def member_coefficients():
    """``{name: f_derivatives}``: every objective registered with ``f_derivatives``, the
    closed-form ``(f''(1), f'''(1))`` that the first-correction statement proves."""
    return {o.name: o.f_derivatives for o in OBJECTIVES.values() if o.f_derivatives is not None}


def _derivatives(generator, order):
    """``{f_k: f^(k)(1)}`` for k = 1 .. order + 2 of a concrete generator."""
    return {f_derivative(k): sympy.diff(generator, _t, k).subs(_t, 1) for k in range(1, order + 3)}


def _terms_match(residuals, order, name, first, second, latex_first, latex_second, **parameters):
    for quantity, symbol in (("loss", "L"), ("gradient", "G")):
        for k, (a, b) in enumerate(zip(first(quantity), second(quantity))):
            residuals[
                label(
                    f"{symbol}_{k}: {name}", rf"{symbol}_{{{k}}}:\ {latex_first} - {latex_second}"
                )
            ] = a - b


def _f_terms(quantity, order, substitution):
    return [
        sympy.expand(term.xreplace(substitution)) for term in terms(quantity, order, "f-divergence")
    ]


@statement(
    "f-divergence-limit",
    "Every f-divergence tends to f''(1) times half the variance of z - v",
    r"T^2 D_f(p\,\|\,q) = f''(1)\,\tfrac12\mathrm{Var}(z - v) + O(T^{-1})\ "
    r"\text{for every smooth } f \text{ with } f(1) = 0",
)
def _f_divergence_limit(order):
    f1, f2 = f_derivative(1), f_derivative(2)
    residuals = {
        label("L_0 - f''(1) Var(z - v)/2", r"L_0 - f''(1)\,\tfrac12\mathrm{Var}(z - v)"): leading(
            "loss", "f-divergence"
        )
        - f2 * half_variance(z_i - v_i),
        # f'(1) multiplies sum_i q_i (p_i/q_i - 1) = sum_i (p_i - q_i) = 0.
        label(
            "sum_i q_i (p_i/q_i - 1)", r"\textstyle\sum_i q_i\,(p_i/q_i - 1)"
        ): _first_order_part(),
    }
    for quantity, symbol in (("loss", "L"), ("gradient", "G")):
        for k, term in enumerate(terms(quantity, order, "f-divergence")):
            residuals[
                label(f"df'(1)/ of {symbol}_{k}", rf"\partial {symbol}_{{{k}}}/\partial f'(1)")
            ] = term.diff(f1)
    # Each member's closed-form limit: the objectives registered with this limit_statement
    # (Statement.prove adds them).
    for name, generator, latex in (
        ("kl", KL_GENERATOR, r"t\log t"),
        ("reverse-kl", REVERSE_KL_GENERATOR, r"-\log t"),
    ):
        substitution = _derivatives(generator, order)
        _terms_match(
            residuals,
            order,
            f"f = {generator} vs {name}",
            lambda quantity, substitution=substitution: _f_terms(quantity, order, substitution),
            lambda quantity, name=name: terms(quantity, order, name),
            rf"D_{{f = {latex}}}",
            rf"\text{{{name}}}",
        )
    alpha = OBJECTIVES["alpha-divergence"].parameters[0].symbol
    substitution = {
        f_derivative(k): AmariAlpha.taylor_coefficient(k, alpha) for k in range(1, order + 3)
    }
    _terms_match(
        residuals,
        order,
        "f = Amari alpha vs alpha-divergence",
        lambda quantity: _f_terms(quantity, order, substitution),
        lambda quantity: terms(quantity, order, "alpha-divergence"),
        r"D_{f_\alpha}",
        r"\text{alpha-divergence}",
    )
    return residuals


def _first_order_part():
    r"""The exact :math:`\sum_i q_i (p_i/q_i - 1)` written with class means: 0 after
    simplification."""
    return softmax_expectation(z_i, ratio(v_i, z_i) - 1)


@statement(
    "f-divergence-first-correction",
    "The T^-1 term of every f-divergence, in closed form; forward and reverse KL differ there",
    r"L_1 = \frac{f''(1)}{2}\langle\hat v\,\hat d^2\rangle"
    r" - \frac{f'''(1)}{6}\langle\hat d^3\rangle,"
    r"\ L_1^{KL(p\|q)} - L_1^{KL(q\|p)} = -\tfrac16\langle\hat d^3\rangle",
)
def _f_divergence_first_correction(order):
    f2, f3 = f_derivative(2), f_derivative(3)
    second = terms("loss", 2, "f-divergence")[1]
    forward, reverse = terms("loss", 2, "kl"), terms("loss", 2, "reverse-kl")
    d = _centred(z_i - v_i)
    residuals = {
        label(
            "L_1 - closed form in f''(1), f'''(1)",
            r"L_1 - \left(\tfrac{f''(1)}{2}\langle\hat v\hat d^2\rangle - "
            r"\tfrac{f'''(1)}{6}\langle\hat d^3\rangle\right)",
        ): second - first_correction(f2, f3),
        label("L_0(KL(p||q)) - L_0(KL(q||p))", r"L_0^{KL(p\|q)} - L_0^{KL(q\|p)}"): forward[0]
        - reverse[0],
        label(
            "L_1(KL(p||q)) - L_1(KL(q||p)) + <d^3>/6",
            r"L_1^{KL(p\|q)} - L_1^{KL(q\|p)} + \tfrac16\langle\hat d^3\rangle",
        ): forward[1] - reverse[1] + ClassMean(d**3) / 6,
    }
    for name, coefficients in member_coefficients().items():
        symbols = [p.symbol for p in OBJECTIVES[name].parameters]
        member_second, member_third = coefficients(*symbols)
        loss = terms("loss", 2, name)
        residuals[
            label(
                f"L_0 - f''(1) Var(d)/2, {name}",
                rf"L_0 - f''(1)\tfrac12\mathrm{{Var}}(d),\ \text{{{name}}}",
            )
        ] = loss[0] - member_second * half_variance(z_i - v_i)
        residuals[
            label(f"L_1 - closed form, {name}", rf"L_1 - \text{{closed form}},\ \text{{{name}}}")
        ] = loss[1] - first_correction(member_second, member_third)
    return residuals


@statement(
    "f-divergence-first-correction/forward-equals-reverse",
    "Forward and reverse KL do not agree at order T^-1",
    r"L_1^{KL(p\|q)} = L_1^{KL(q\|p)}",
    expected="refuted",
)
def _forward_equals_reverse(order):
    forward, reverse = terms("loss", 2, "kl"), terms("loss", 2, "reverse-kl")
    return {
        label("L_1(KL(p||q)) - L_1(KL(q||p))", r"L_1^{KL(p\|q)} - L_1^{KL(q\|p)}"): forward[1]
        - reverse[1]
    }


@statement(
    "jsd-limit",
    "JSD_beta tends to beta (1 - beta) times half the variance of z - v",
    r"T^2\,\mathrm{JSD}_\beta \to \beta(1-\beta)\,\tfrac12\mathrm{Var}(z - v);\ "
    r"\mathrm{JSD}_0 = \mathrm{JSD}_1 = 0;\ \mathrm{JSD}_{1/2} = \mathrm{JS}",
)
def _jsd_limit(order):
    beta = OBJECTIVES["jsd"].parameters[0].symbol
    residuals = {
        label(
            "L_0 - beta(1 - beta) Var(z - v)/2",
            r"L_0 - \beta(1-\beta)\,\tfrac12\mathrm{Var}(z - v)",
        ): leading("loss", "jsd") - beta * (1 - beta) * half_variance(z_i - v_i),
        label("JSD_0 (exact)", r"\mathrm{JSD}_0"): OBJECTIVES["jsd"].loss(beta=0),
        label("JSD_1 (exact)", r"\mathrm{JSD}_1"): OBJECTIVES["jsd"].loss(beta=1),
    }
    _terms_match(
        residuals,
        order,
        "jsd(1/2) vs js",
        lambda quantity: terms(quantity, order, "jsd", beta=Rational(1, 2)),
        lambda quantity: terms(quantity, order, "js"),
        r"\mathrm{JSD}_{1/2}",
        r"\mathrm{JS}",
    )
    return residuals


@statement(
    "jsd-limit/beta-free",
    "JSD_beta's limit depends on beta (as a loss weight)",
    r"\frac{\partial}{\partial\beta}\lim_{T\to\infty} T^2\,\mathrm{JSD}_\beta = 0",
    expected="refuted",
)
def _jsd_beta_free(order):
    beta = OBJECTIVES["jsd"].parameters[0].symbol
    return {label("dL_0/dbeta", r"\partial L_0/\partial\beta"): leading("loss", "jsd").diff(beta)}


@statement(
    "skew-limit",
    "Skew KL and skew reverse KL tend to (1 - alpha)^2 times half the variance",
    r"T^2\,\mathrm{SKL}_\alpha,\ T^2\,\mathrm{SRKL}_\alpha"
    r" \to (1-\alpha)^2\,\tfrac12\mathrm{Var}(z - v);"
    r"\ \alpha = 0 \text{ gives KL and reverse KL}",
)
def _skew_limit(order):
    residuals = {}
    for name, plain in (("skew-kl", "kl"), ("skew-reverse-kl", "reverse-kl")):
        alpha = OBJECTIVES[name].parameters[0].symbol
        residuals[
            label(
                f"L_0 - (1 - alpha)^2 Var(z - v)/2, {name}",
                rf"L_0 - (1-\alpha)^2\tfrac12\mathrm{{Var}}(z - v),\ \text{{{name}}}",
            )
        ] = leading("loss", name) - (1 - alpha) ** 2 * half_variance(z_i - v_i)
        _terms_match(
            residuals,
            order,
            f"{name}(0) vs {plain}",
            lambda quantity, name=name: terms(quantity, order, name, alpha=0),
            lambda quantity, plain=plain: terms(quantity, order, plain),
            rf"\text{{{name}}}_{{\alpha=0}}",
            rf"\text{{{plain}}}",
        )
    return residuals


@statement(
    "two-temperature-limit",
    "With the student at r T, KD tends to half the variance of z/r - v",
    r"T^2\,\mathrm{KL}(\mathrm{softmax}(v/T)\,\|\,\mathrm{softmax}(z/(rT))) \to "
    r"\tfrac12\mathrm{Var}(z/r - v);\ r = 1 \text{ is KD}",
)
def _two_temperature_limit(order):
    r = OBJECTIVES["two-temperature"].parameters[0].symbol
    residuals = {
        label("L_0 - Var(z/r - v)/2", r"L_0 - \tfrac12\mathrm{Var}(z/r - v)"): leading(
            "loss", "two-temperature"
        )
        - half_variance(z_i / r - v_i)
    }
    _terms_match(
        residuals,
        order,
        "two-temperature(1) vs kl",
        lambda quantity: terms(quantity, order, "two-temperature", r=1),
        lambda quantity: terms(quantity, order, "kl"),
        r"\text{two-temperature}_{r=1}",
        r"\text{kl}",
    )
    return residuals


@statement(
    "hot-teacher-label-smoothing",
    "A hot teacher is label smoothing with weight 1, then a covariance correction",
    r"\mathrm{KL}(p\,\|\,q) = \mathrm{KL}(u\,\|\,q) - \frac{\mathrm{Cov}(v, z)}{T\,T_s}"
    r" + O(T^{-2}),"
    r"\ \mathrm{KL}(u\,\|\,q) = \mathrm{CE}(u, q) - \log N",
)
def _hot_teacher(order):
    student_temperature = OBJECTIVES["hot-teacher"].parameters[0].symbol
    symbolic = {"student_temperature": student_temperature}
    loss = terms("loss", 2, "hot-teacher", **symbolic)
    uniform_cross_entropy = -ClassMean(student_log_softmax(student_temperature))
    covariance = ClassMean(v_i * z_i) - ClassMean(v_i) * ClassMean(z_i)
    return {
        label("L_0 - (CE(u, q) - log N)", r"L_0 - (\mathrm{CE}(u, q) - \log N)"): loss[0]
        - (uniform_cross_entropy - sympy.log(N)),
        label("L_0 - limit", r"L_0 - \text{limit}"): loss[0]
        - OBJECTIVES["hot-teacher"].closed_form_limit(**symbolic),
        label("L_1 + Cov(v, z)/T_s", r"L_1 + \mathrm{Cov}(v, z)/T_s"): loss[1]
        + covariance / student_temperature,
    }
