r"""The :math:`T \to 0` limits of every registered objective, in max-plus form, and the
:math:`T \to \infty` terms beside them.

Each entry of :data:`LOW_TEMPERATURE` states, for the loss and for the gradient, the power
:math:`k` with :math:`Q/T^k \to` the limit, the limit (text, LaTeX, and an evaluator on
explicit logits), its hypotheses, the exponential rate of the first correction and, where no
finite limit exists, why. The statements of :mod:`derive.statements.low_temperature` prove
every evaluator against the transseries that :mod:`derive.lowtemp.engine` derives from the
objective's definition at concrete logits (orderings with and without ties). Standardized
objectives are stated in standardized coordinates :math:`\hat z, \hat v` (the chain rule to
the raw logits is exact and temperature-free).

Notation: :math:`A = \arg\max_j z_j`, :math:`B = \arg\max_j v_j` (sets: ties are means over
them), :math:`u_S` the uniform distribution on :math:`S`, :math:`\gamma_z, \gamma_v` the
margins (the max minus the largest value below it), :math:`g` the label (class 1 in concrete
form), :math:`M_x = \max_{j\ne g} x_j`.

Examples
========

>>> limit("kl", temperature="0").limit
'max_j z_j - <z>_B'
>>> limit("f-divergence", temperature="0").exists
False
"""

import math
from dataclasses import dataclass, field
from typing import Any

import sympy

from .._errors import check_argument
from ..expansion import expand
from ..objectives import OBJECTIVES
from .tropical import argmax_set, divergence, margin, mean_over, perceptron_loss, uniform_on

__all__ = ["LimitForm", "Limit", "LOW_TEMPERATURE", "limit", "TEMPERATURES", "QUANTITIES"]

TEMPERATURES = ("0", "inf")
QUANTITIES = ("loss", "gradient")


@dataclass(frozen=True)
class LimitForm:
    """One quantity's low-temperature limit (see the module docstring)."""

    power: int | None
    text: str
    latex: str
    hypotheses: tuple = ()
    rate: str | None = None
    reason: str | None = None
    #: ``value(student, teacher, parameters, component, log)`` -> the limit (component 0-based).
    value: object = field(default=None, repr=False)
    #: ``gap(student, teacher, parameters)`` -> the gap of the first correction, at logits with
    #: unique argmaxes.
    gap: object = field(default=None, repr=False)
    #: Whether the first correction is polynomial in T rather than exponential.
    polynomial_correction: bool = False
    #: Whose argmax the stated limit needs unique: ``("student",)``, ``("student", "teacher")``.
    unique: tuple = ()

    @property
    def exists(self):
        return self.reason is None


@dataclass(frozen=True)
class Limit:
    """What ``derive limit`` prints: one objective, one quantity, one end of the axis."""

    objective: str
    quantity: str
    temperature: str
    exists: bool
    power: int | None
    limit: str | None
    latex: str | None
    hypotheses: tuple
    rate: str | None
    reason: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "quantity": self.quantity,
            "temperature": self.temperature,
            "exists": self.exists,
            "power": self.power,
            "limit": self.limit,
            "latex": self.latex,
            "hypotheses": list(self.hypotheses),
            "rate": self.rate,
            "reason": self.reason,
        }

    def to_text(self) -> str:
        end = "T -> 0" if self.temperature == "0" else "T -> infinity"
        head = f"{self.objective}, {self.quantity}, {end}: "
        if not self.exists:
            return head + f"no finite limit: {self.reason}"
        lines = [head + f"{self.quantity} / T^{self.power} -> {self.limit}"]
        lines += [f"  if {h}" for h in self.hypotheses]
        if self.rate:
            lines.append(f"  first correction: {self.rate}")
        return "\n".join(lines)


def _uniform_gap(student, teacher, parameters):
    return min(x for x in (margin(student), margin(teacher)) if x is not None)


def _student_gap(student, teacher, parameters):
    return margin(student)


def _teacher_gap(student, teacher, parameters):
    return margin(teacher)


def _limits(student, teacher):
    classes = len(student)
    return uniform_on(argmax_set(teacher), classes), uniform_on(argmax_set(student), classes)


def _kl_gradient(student, teacher, parameters, component, log):
    a, b = argmax_set(student), argmax_set(teacher)
    return sympy.Integer(component in a) / len(a) - sympy.Integer(component in b) / len(b)


def _reverse_gradient(student, teacher, parameters, component, log):
    a = argmax_set(student)
    if component not in a:
        return 0
    return (mean_over(teacher, a) - teacher[component]) / len(a)


def _mean(values):
    return sympy.Add(*[sympy.sympify(x) for x in values]) / len(values)


def _variance(values):
    mean = _mean(values)
    return _mean([(x - mean) ** 2 for x in values])


def _zero(*arguments):
    return 0


def _mixture(beta, log):
    def value(student, teacher, parameters, component, log=log):
        p, q = _limits(student, teacher)
        b = parameters.get("beta", beta)
        m = [b * x + (1 - b) * y for x, y in zip(p, q)]
        return b * divergence(p, m, log) + (1 - b) * divergence(q, m, log)

    return value


def _skew(student, teacher, parameters, component, log):
    p, q = _limits(student, teacher)
    a = parameters["alpha"]
    return divergence(p, [a * x + (1 - a) * y for x, y in zip(p, q)], log)


def _skew_reverse(student, teacher, parameters, component, log):
    p, q = _limits(student, teacher)
    a = parameters["alpha"]
    return divergence(q, [(1 - a) * x + a * y for x, y in zip(p, q)], log)


def _amari(student, teacher, parameters, component, log):
    a = parameters["alpha"]
    shared = len(set(argmax_set(student)) & set(argmax_set(teacher)))
    size_a, size_b = len(argmax_set(student)), len(argmax_set(teacher))
    overlap = shared / (size_a ** (1 - a) * size_b**a)
    return (1 - overlap) / (a * (1 - a))


def _pearson_loss(student, teacher, parameters, component, log):
    p, q = _limits(student, teacher)
    classes = len(p)
    mp, mq = sum(p) / classes, sum(q) / classes
    covariance = sum((x - mp) * (y - mq) for x, y in zip(p, q))
    variances = sum((x - mp) ** 2 for x in p) * sum((y - mq) ** 2 for y in q)
    return 1 - covariance / variances ** sympy.Rational(1, 2)


def _pearson_gap(student, teacher, parameters):
    gap = _uniform_gap(student, teacher, parameters)
    return 2 * gap if argmax_set(student) == argmax_set(teacher) else gap


def _standardized_scale(parameters):
    return 1 if parameters.get("std", "population") == "population" else None


def _pair(values):
    """The label's logit and the best other logit: the binary problem TCKD sees."""
    return [values[0], max(values[1:])]


def _tckd_loss(student, teacher, parameters, component, log):
    return perceptron_loss(_pair(student), _pair(teacher))


def _tckd_gradient(student, teacher, parameters, component, log):
    pair_student, pair_teacher = _pair(student), _pair(teacher)
    a, b = argmax_set(pair_student), argmax_set(pair_teacher)
    binary = [sympy.Integer(k in a) / len(a) - sympy.Integer(k in b) / len(b) for k in (0, 1)]
    if component == 0:
        return binary[0]
    others = argmax_set(student[1:])
    return binary[1] * sympy.Integer((component - 1) in others) / len(others)


def _nckd_loss(student, teacher, parameters, component, log):
    return perceptron_loss(student[1:], teacher[1:])


def _nckd_gradient(student, teacher, parameters, component, log):
    if component == 0:
        return 0
    return _kl_gradient(student[1:], teacher[1:], parameters, component - 1, log)


def _dkd(loss_part, nckd_part):
    def value(student, teacher, parameters, component, log):
        alpha, beta = parameters.get("alpha", 1), parameters.get("beta", 8)
        return alpha * loss_part(student, teacher, parameters, component, log) + beta * nckd_part(
            student, teacher, parameters, component, log
        )

    return value


def _softmax(values, exp):
    weights = [exp(x - max(values)) for x in values]
    return [w / sum(weights) for w in weights]


_UNIQUE = "unique argmaxes (ties: the exponential rate gives way to powers of T)"
_F_GENERIC = (
    "f is left undefined; the limit depends on f(0) and lim f(t)/t as t -> infinity, which "
    "take any value"
)

#: objective -> {"loss": LimitForm, "gradient": LimitForm}.
LOW_TEMPERATURE = {
    "kl": {
        "loss": LimitForm(
            1,
            "max_j z_j - <z>_B",
            r"\max_j z_j - \langle z\rangle_B",
            ("ties in v: the mean over the tied argmaxes B",),
            "e^{-min(gamma_z, gamma_v)/T}, gamma the student's and teacher's margins ("
            + _UNIQUE
            + ")",
            value=lambda z, v, p, c, log: perceptron_loss(z, v),
            gap=_uniform_gap,
        ),
        "gradient": LimitForm(
            1,
            "1_A/|A| - 1_B/|B| (the perceptron update e_a - e_b)",
            r"\frac{1_A}{|A|} - \frac{1_B}{|B|}",
            ("ties: means over the tied argmaxes",),
            "e^{-min(gamma_z, gamma_v)/T}",
            value=_kl_gradient,
            gap=_uniform_gap,
        ),
    },
    "reverse-kl": {
        "loss": LimitForm(
            1,
            "max_j v_j - <v>_A",
            r"\max_j v_j - \langle v\rangle_A",
            ("ties in z: the mean over the tied argmaxes A",),
            "e^{-min(gamma_z, gamma_v)/T} (" + _UNIQUE + ")",
            value=lambda z, v, p, c, log: perceptron_loss(v, z),
            gap=_uniform_gap,
        ),
        "gradient": LimitForm(
            0,
            "1_A(i) (<v>_A - v_i)/|A|: 0 when the student's argmax is unique",
            r"1_A(i)\,\frac{\langle v\rangle_A - v_i}{|A|}",
            ("a unique student argmax makes the limit 0, whatever the teacher",),
            "e^{-gamma_z/T}, gamma_z the student's own margin",
            value=_reverse_gradient,
            gap=_student_gap,
        ),
    },
    "js": {
        "loss": LimitForm(
            2,
            "JS(u_B, u_A): log 2 when A and B are disjoint, 0 when A = B",
            r"\mathrm{JS}(u_B, u_A)",
            (),
            "e^{-min(gamma_z, gamma_v)/T} (" + _UNIQUE + ")",
            value=_mixture(sympy.Rational(1, 2), math.log),
            gap=_uniform_gap,
        ),
        "gradient": LimitForm(
            1,
            "0",
            "0",
            ("a unique student argmax",),
            "e^{-min(gamma_z, gamma_v)/T}",
            value=_zero,
            unique=("student",),
        ),
    },
    "f-divergence": {
        "loss": LimitForm(None, "", "", reason=_F_GENERIC),
        "gradient": LimitForm(None, "", "", reason=_F_GENERIC),
    },
    "jsd": {
        "loss": LimitForm(
            2,
            "beta KL(u_B || m) + (1 - beta) KL(u_A || m), m = beta u_B + (1 - beta) u_A",
            r"\beta\,\mathrm{KL}(u_B\|m) + (1-\beta)\,\mathrm{KL}(u_A\|m)",
            ("0 < beta < 1 (beta = 0, 1: identically 0)",),
            "e^{-min(gamma_z, gamma_v)/T} (" + _UNIQUE + ")",
            value=_mixture(None, math.log),
            gap=_uniform_gap,
        ),
        "gradient": LimitForm(
            1,
            "0",
            "0",
            ("a unique student argmax", "0 < beta < 1"),
            "e^{-min(gamma_z, gamma_v)/T}",
            value=_zero,
            unique=("student",),
        ),
    },
    "skew-kl": {
        "loss": LimitForm(
            2,
            "KL(u_B || alpha u_B + (1 - alpha) u_A): log(1/alpha) when A, B are disjoint",
            r"\mathrm{KL}(u_B\,\|\,\alpha u_B + (1-\alpha) u_A)",
            ("0 < alpha <= 1 (alpha = 0 is kl, of power 1)",),
            "e^{-min(gamma_z, gamma_v)/T} (" + _UNIQUE + ")",
            value=_skew,
            gap=_uniform_gap,
        ),
        "gradient": LimitForm(
            1,
            "0",
            "0",
            ("a unique student argmax", "0 < alpha <= 1"),
            "e^{-min(gamma_z, gamma_v)/T}",
            value=_zero,
            unique=("student",),
        ),
    },
    "skew-reverse-kl": {
        "loss": LimitForm(
            2,
            "KL(u_A || (1 - alpha) u_B + alpha u_A): log(1/alpha) when A, B are disjoint",
            r"\mathrm{KL}(u_A\,\|\,(1-\alpha) u_B + \alpha u_A)",
            ("0 < alpha <= 1 (alpha = 0 is reverse-kl, of power 1)",),
            "e^{-min(gamma_z, gamma_v)/T} (" + _UNIQUE + ")",
            value=_skew_reverse,
            gap=_uniform_gap,
        ),
        "gradient": LimitForm(
            1,
            "0",
            "0",
            ("a unique student argmax", "0 < alpha <= 1"),
            "e^{-min(gamma_z, gamma_v)/T}",
            value=_zero,
            unique=("student",),
        ),
    },
    "alpha-divergence": {
        "loss": LimitForm(
            2,
            "(1 - |A & B| / (|A|^(1 - alpha) |B|^alpha)) / (alpha (1 - alpha))",
            r"\frac{1 - |A\cap B|\,|A|^{\alpha-1}|B|^{-\alpha}}{\alpha(1-\alpha)}",
            ("0 < alpha < 1 (alpha < 0 or > 1: sum p^alpha q^(1-alpha) grows like e^{c/T})",),
            "e^{-g/T}, g = min_i [alpha (max v - v_i) + (1 - alpha)(max z - z_i)] > 0 when "
            "A and B are disjoint",
            value=_amari,
        ),
        "gradient": LimitForm(
            1,
            "0",
            "0",
            ("a unique student argmax", "0 < alpha < 1"),
            "exponential",
            value=_zero,
            unique=("student",),
        ),
    },
    "standardized-kl": {
        "loss": LimitForm(
            1,
            "s (max_j z^_j - <z^>_B), s = 1 (population std) or sqrt((N-1)/N) (unbiased)",
            r"s\,(\max_j \hat z_j - \langle \hat z\rangle_B)",
            ("in standardized coordinates; B = argmax v",),
            "e^{-s min(gamma_z^, gamma_v^)/T}",
            value=lambda z, v, p, c, log: perceptron_loss(z, v),
            gap=_uniform_gap,
        ),
        "gradient": LimitForm(
            1,
            "w.r.t. z^: s (1_A/|A| - 1_B/|B|); w.r.t. z: P x = (x - <x> - z^ <z^ x>)/sigma_z of it",
            r"\frac{\partial}{\partial \hat z}: s\left(\frac{1_A}{|A|} - \frac{1_B}{|B|}\right)",
            ("in standardized coordinates; the chain rule to z is exact",),
            "e^{-s min(gamma_z^, gamma_v^)/T}",
            value=_kl_gradient,
            gap=_uniform_gap,
        ),
    },
    "dist": {
        "loss": LimitForm(
            0,
            "1 - rho(u_A, u_B): 0 when A = B, N/(N - 1) when unique argmaxes differ",
            r"1 - \rho(u_A, u_B)",
            (),
            "e^{-min(gamma_z, gamma_v)/T} when the argmaxes differ, e^{-2 min(gamma_z, gamma_v)/T} "
            "when they agree (1 - rho is quadratic there) (" + _UNIQUE + ")",
            value=_pearson_loss,
            gap=_pearson_gap,
        ),
        "gradient": LimitForm(
            0,
            "0",
            "0",
            (_UNIQUE,),
            "e^{-min(gamma_z, gamma_v)/T} with a 1/T coefficient",
            value=_zero,
            unique=("student", "teacher"),
        ),
    },
    "logits-matching": {
        "loss": LimitForm(
            0,
            "1/2 <(z - v)^2>, at every T (the objective is free of T)",
            r"\tfrac12\left\langle (z - v)^2\right\rangle",
            value=lambda z, v, p, c, log: _mean([(a - b) ** 2 for a, b in zip(z, v)]) / 2,
        ),
        "gradient": LimitForm(
            0,
            "(z_i - v_i)/N, at every T",
            r"\tfrac1N (z_i - v_i)",
            value=lambda z, v, p, c, log: sympy.Integer(z[c] - v[c]) / len(z),
        ),
    },
    "centred-logits-matching": {
        "loss": LimitForm(
            0,
            "1/2 Var(z - v), at every T (the objective is free of T)",
            r"\tfrac12\mathrm{Var}(z - v)",
            value=lambda z, v, p, c, log: _variance([a - b for a, b in zip(z, v)]) / 2,
        ),
        "gradient": LimitForm(
            0,
            "((z_i - v_i) - (<z> - <v>))/N, at every T",
            r"\tfrac1N \left((z_i - v_i) - (\langle z\rangle - \langle v\rangle)\right)",
            value=lambda z, v, p, c, log: (
                ((z[c] - v[c]) - _mean([a - b for a, b in zip(z, v)])) / len(z)
            ),
        ),
    },
    "ce-mixture": {
        "loss": LimitForm(
            0,
            "alpha CE(y, softmax(z)) = alpha (log sum_j e^{z_j} - z_g)",
            r"\alpha\,\mathrm{CE}(y, \mathrm{softmax}(z))",
            ("alpha > 0 (alpha = 0 is kl)",),
            "polynomial: (1 - alpha) T (max_j z_j - <z>_B)",
            value=lambda z, v, p, c, log: p["alpha"] * (log(sum(sympy.exp(x) for x in z)) - z[0]),
            polynomial_correction=True,
        ),
        "gradient": LimitForm(
            0,
            "alpha (softmax(z) - e_g)",
            r"\alpha\,(\mathrm{softmax}(z) - e_g)",
            ("alpha > 0",),
            "polynomial: (1 - alpha) T (1_A/|A| - 1_B/|B|)",
            value=lambda z, v, p, c, log: (
                p["alpha"] * (_softmax(z, sympy.exp)[c] - sympy.Integer(c == 0))
            ),
            polynomial_correction=True,
        ),
    },
    "dkd-tckd": {
        "loss": LimitForm(
            1,
            "max(z_g, M_z) - <(z_g, M_z)>_B', B' = argmax of (v_g, M_v): the binary perceptron",
            r"\max(z_g, M_z) - \langle (z_g, M_z)\rangle_{B'}",
            ("M_x = max_{j != g} x_j",),
            "exponential (" + _UNIQUE + ")",
            value=_tckd_loss,
        ),
        "gradient": LimitForm(
            1,
            "the binary perceptron update on (z_g, M_z), M_z's share on argmax_{j != g} z",
            r"\nabla_z[\max(z_g, M_z) - \langle (z_g, M_z)\rangle_{B'}]",
            (_UNIQUE,),
            "exponential",
            value=_tckd_gradient,
            unique=("student", "teacher"),
        ),
    },
    "dkd-nckd": {
        "loss": LimitForm(
            1,
            "max_{j != g} z_j - <z>_{B_-g}: the perceptron on the classes other than g",
            r"\max_{j\ne g} z_j - \langle z\rangle_{B_{\neg g}}",
            ("B_-g = argmax_{j != g} v_j",),
            "exponential (" + _UNIQUE + ")",
            value=_nckd_loss,
        ),
        "gradient": LimitForm(
            1,
            "1_{A_-g}/|A_-g| - 1_{B_-g}/|B_-g| on the classes other than g, 0 at g",
            r"\frac{1_{A_{\neg g}}}{|A_{\neg g}|} - \frac{1_{B_{\neg g}}}{|B_{\neg g}|}",
            (),
            "exponential",
            value=_nckd_gradient,
        ),
    },
    "dkd": {
        "loss": LimitForm(
            1,
            "alpha (TCKD's binary perceptron) + beta (NCKD's perceptron on the other classes)",
            r"\alpha\,\mathrm{TCKD}_0 + \beta\,\mathrm{NCKD}_0",
            ("the limits of dkd-tckd and dkd-nckd",),
            "exponential (" + _UNIQUE + ")",
            value=_dkd(_tckd_loss, _nckd_loss),
        ),
        "gradient": LimitForm(
            1,
            "alpha (TCKD's update) + beta (NCKD's update)",
            r"\alpha\,\nabla\mathrm{TCKD}_0 + \beta\,\nabla\mathrm{NCKD}_0",
            (_UNIQUE,),
            "exponential",
            value=_dkd(_tckd_gradient, _nckd_gradient),
            unique=("student", "teacher"),
        ),
    },
    "two-temperature": {
        "loss": LimitForm(
            1,
            "(max_j z_j - <z>_B) / r",
            r"\frac{\max_j z_j - \langle z\rangle_B}{r}",
            ("ties in v: the mean over B",),
            "e^{-min(gamma_z / r, gamma_v)/T} (" + _UNIQUE + ")",
            value=lambda z, v, p, c, log: perceptron_loss(z, v) / p["r"],
            gap=lambda z, v, p: min(margin(z) / p["r"], margin(v)),
        ),
        "gradient": LimitForm(
            1,
            "(1_A/|A| - 1_B/|B|) / r",
            r"\frac{1}{r}\left(\frac{1_A}{|A|} - \frac{1_B}{|B|}\right)",
            (),
            "e^{-min(gamma_z / r, gamma_v)/T}",
            value=lambda z, v, p, c, log: _kl_gradient(z, v, p, c, log) / p["r"],
            gap=lambda z, v, p: min(margin(z) / p["r"], margin(v)),
        ),
    },
    "hot-teacher": {
        "loss": LimitForm(
            0,
            "KL(u_B || softmax(z/T_s)) = <-log softmax(z/T_s)>_B - log|B|: cross-entropy at T_s "
            "on the teacher's label",
            r"\mathrm{KL}(u_B\,\|\,\mathrm{softmax}(z/T_s))",
            ("ties in v: u_B uniform on the tied argmaxes B",),
            "e^{-gamma_v/T}, the teacher's margin, with a 1/T coefficient",
            value=lambda z, v, p, c, log: (
                mean_over(
                    [
                        -log(x)
                        for x in _softmax([x / p["student_temperature"] for x in z], sympy.exp)
                    ],
                    argmax_set(v),
                )
                - log(len(argmax_set(v)))
            ),
            gap=_teacher_gap,
        ),
        "gradient": LimitForm(
            0,
            "(softmax(z/T_s) - 1_B/|B|) / T_s",
            r"\frac{\mathrm{softmax}(z/T_s) - 1_B/|B|}{T_s}",
            (),
            "e^{-gamma_v/T}",
            value=lambda z, v, p, c, log: (
                (
                    _softmax([x / p["student_temperature"] for x in z], sympy.exp)[c]
                    - sympy.Integer(c in argmax_set(v)) / len(argmax_set(v))
                )
                / p["student_temperature"]
            ),
            gap=_teacher_gap,
        ),
    },
}


def _outside(objective, values):
    """A reason when concrete parameter values leave the stated range, else ``None``."""
    alpha, beta = values.get("alpha"), values.get("beta")
    if objective == "alpha-divergence" and isinstance(alpha, sympy.Rational):
        if not 0 < alpha < 1:
            return (
                f"alpha = {alpha} is outside (0, 1): sum_i p_i^alpha q_i^(1 - alpha) grows like "
                "e^{c/T} with c = max_i [alpha v_i + (1 - alpha) z_i] - alpha max v - "
                "(1 - alpha) max z > 0 whenever the argmaxes differ"
            )
    if objective in ("skew-kl", "skew-reverse-kl") and alpha == 0:
        return None
    if objective == "jsd" and beta in (0, 1):
        return None
    return None


def limit(
    objective: str,
    *,
    temperature: str = "0",
    quantity: str = "loss",
    parameters: dict[str, Any] | None = None,
) -> Limit:
    r"""The limit of ``objective``'s ``quantity`` at one end of the temperature axis.

    ``temperature="0"``: the max-plus limit (:data:`LOW_TEMPERATURE`); ``"inf"``: the
    :math:`T^0` term of the expansion in :math:`1/T` (:func:`derive.expand`).

    >>> limit("reverse-kl", quantity="gradient").power
    0
    >>> limit("kl", temperature="inf").limit
    '⟨z**2⟩/2 - ⟨z*v⟩ + ⟨v**2⟩/2 - ⟨z⟩**2/2 + ⟨z⟩*⟨v⟩ - ⟨v⟩**2/2'
    >>> limit("kl", temperature="1")
    Traceback (most recent call last):
    ...
    derive._errors.DeriveError: temperature must be one of 0, inf, got '1'
    """
    check_argument(
        temperature in TEMPERATURES,
        "temperature must be one of {}, got {!r}",
        ", ".join(TEMPERATURES),
        temperature,
    )
    check_argument(
        quantity in QUANTITIES,
        "quantity must be one of {}, got {!r}",
        ", ".join(QUANTITIES),
        quantity,
    )
    check_argument(
        objective in OBJECTIVES,
        "objective must be one of {}, got {!r}",
        ", ".join(OBJECTIVES),
        objective,
    )
    definition = OBJECTIVES[objective]
    # A categorical parameter without a default (the std of standardized-kl) takes its first
    # choice: the limits are stated for both.
    chosen = {
        p.name: p.choices[0] for p in definition.parameters if p.choices and p.default is None
    }
    parameters = {**chosen, **(parameters or {})}
    values = dict(definition.resolve(parameters))
    if temperature == "inf":
        term = expand(quantity, order=1, objective=objective, parameters=parameters).terms[0]
        text: Any = term.readable  # a dict of components for a labelled gradient
        latex: Any = term.latex
        if isinstance(text, dict):
            text = "; ".join(f"[{k}] {t}" for k, t in text.items())
            latex = r",\quad ".join(f"[{k}]\\ {t}" for k, t in latex.items())
        return Limit(
            objective, quantity, temperature, True, 0, text, latex, (), "T^-1 (the next term)", None
        )
    form = LOW_TEMPERATURE[objective][quantity]
    reason = form.reason or _outside(objective, values)
    if reason is not None:
        return Limit(objective, quantity, temperature, False, None, None, None, (), None, reason)
    return Limit(
        objective,
        quantity,
        temperature,
        True,
        form.power,
        form.text,
        form.latex,
        form.hypotheses,
        form.rate,
        None,
    )
