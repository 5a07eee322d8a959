r"""The low-temperature end: KD is the perceptron as :math:`T \to 0`, reverse KL goes silent,
the f-divergences' max-plus limits, and the temperature gradient.

Each proof derives the transseries of the objective from its definition at concrete rational
logits (:func:`derive.lowtemp.transseries`: orderings with and without ties, N = 2..4) and
returns the residuals of the stated limit (:func:`derive.lowtemp.closed_form_residuals`),
which are exact numbers.

Examples
========

>>> from derive.statements import STATEMENTS
>>> STATEMENTS["low-temperature-reverse-silent/perceptron-swapped"].prove().verdict
'refuted'
"""

import sympy

from .._errors import DeriveError
from ..expansion import expand
from ..lowtemp import closed_form_residuals, transseries
from ..lowtemp.limits import LOW_TEMPERATURE
from ..lowtemp.tropical import argmax_set, margin, perceptron_loss
from ..normal_form import canonical
from ..notation import epsilon
from ..objectives import OBJECTIVES
from ..series import power_series
from ._registry import label, statement

__all__ = ["CASES", "PROOF_PARAMETERS"]

#: (student, teacher) logits: argmaxes that differ and agree, ties in either, N = 2..4.
CASES = (
    ((0, -1, -2), (-1, 0, -3)),
    ((0, -1, -3), (0, -2, -1)),
    ((0, 0, -2), (-1, 0, -3)),
    ((0, -1, -2), (0, 0, -3)),
    ((-2, 0, -1, -3), (0, -1, -3, -2)),
    ((-1, 0), (0, -2)),
)
#: Concrete parameter values the proofs take (the limits are stated for symbolic ones).
PROOF_PARAMETERS = {
    "jsd": [{"beta": "1/3"}],
    "skew-kl": [{"alpha": "1/3"}],
    "skew-reverse-kl": [{"alpha": "1/2"}],
    "alpha-divergence": [{"alpha": "1/2"}, {"alpha": "1/3"}],
    "ce-mixture": [{"alpha": "1/3"}],
    "two-temperature": [{"r": "2"}],
    "hot-teacher": [{"student_temperature": "1"}, {"student_temperature": "2"}],
    "standardized-kl": [{"std": "population"}],
}


def _labelled(text):
    return label(text, r"\text{" + text.replace("_", r"\_") + "}")


def _residuals(objectives, cases=CASES):
    residuals = {}
    for objective in objectives:
        for parameters in PROOF_PARAMETERS.get(objective, [{}]):
            for quantity in ("loss", "gradient"):
                for student, teacher in cases:
                    found = closed_form_residuals(objective, quantity, student, teacher, parameters)
                    suffix = f" [{parameters}]" if parameters else ""
                    residuals.update({_labelled(k + suffix): v for k, v in found.items()})
    return residuals


@statement(
    "low-temperature-perceptron",
    "Forward KL at T -> 0 is the multiclass perceptron on the teacher's label",
    r"\frac{T^2\mathrm{KL}(p\|q)}{T} \to \max_j z_j - \langle z\rangle_B,\quad "
    r"\frac{\nabla_z T^2\mathrm{KL}(p\|q)}{T} \to \frac{1_A}{|A|} - \frac{1_B}{|B|}",
)
def _perceptron(order):
    return _residuals(["kl"])


@statement(
    "low-temperature-reverse-silent",
    "Reverse KL's gradient vanishes like exp(-gamma_z/T) while its value tends to T (max v - v_a)",
    r"\nabla_z T^2\mathrm{KL}(q\|p) = O(e^{-\gamma_z/T}),\quad "
    r"\frac{T^2\mathrm{KL}(q\|p)}{T} \to \max_j v_j - v_a",
)
def _reverse_silent(order):
    residuals = _residuals(["reverse-kl"])
    for student, teacher in CASES:
        if len(argmax_set(student)) > 1:
            continue
        for component in range(1, len(student) + 1):
            series = transseries("reverse-kl", "gradient", student, teacher, component=component)
            residuals[_labelled(f"P_0 of component {component} at {student}, {teacher}")] = (
                series.polynomial_part
            )
    return residuals


@statement(
    "low-temperature-reverse-silent/perceptron-swapped",
    "Reverse KL is the perceptron with the roles swapped, gradient included",
    r"\frac{\nabla_z T^2\mathrm{KL}(q\|p)}{T} \to e_a - e_b",
    expected="refuted",
)
def _perceptron_swapped(order):
    student, teacher = CASES[0]
    residuals = {}
    for component in range(1, len(student) + 1):
        series = transseries("reverse-kl", "gradient", student, teacher, component=component)
        claim = int(component - 1 in argmax_set(student)) - int(
            component - 1 in argmax_set(teacher)
        )
        residuals[_labelled(f"coefficient of T, component {component}, minus (e_a - e_b)")] = (
            series.coefficient(1) - claim
        )
    return residuals


@statement(
    "low-temperature-f-divergence",
    "The max-plus limits of the f-divergence members (JS, JSD_beta, skew KL, Amari's alpha)",
    r"\frac{T^2 D(p\|q)}{T^2} \to D(u_B, u_A)",
)
def _f_divergence(order):
    members = ["js", "jsd", "skew-kl", "skew-reverse-kl", "alpha-divergence"]
    residuals = _residuals(members, CASES[:3] + CASES[5:])
    # Outside (0, 1) Amari's divergence blows up like e^{c/T}: a term at a negative gap.
    series = transseries("alpha-divergence", "loss", *CASES[0], parameters={"alpha": "2"})
    residuals[_labelled("alpha = 2: no term at a negative gap")] = sympy.Integer(
        0 if not series.exists else 1
    )
    try:
        transseries("f-divergence", "loss", *CASES[0])
        refused = 0
    except DeriveError:
        refused = 1
    residuals[_labelled("generic f: no expansion (f at 0 and infinity undefined)")] = sympy.Integer(
        1 - refused
    )
    return residuals


@statement(
    "low-temperature-limits",
    "The max-plus limits of the other objectives (standardized KD, DIST, hard-label "
    "mixture, DKD, two temperatures, hot teacher)",
    r"\frac{L}{T^k} \to L_0^{\max}",
)
def _other_limits(order):
    done = {"kl", "reverse-kl", "js", "jsd", "skew-kl", "skew-reverse-kl", "alpha-divergence"}
    others = [
        name for name in OBJECTIVES if name not in done and LOW_TEMPERATURE[name]["loss"].exists
    ]
    return _residuals(others, CASES[:4])


@statement(
    "temperature-gradient",
    "The temperature gradient: -sum_k k L_k T^(-k-1) at high T, and the perceptron loss at low T",
    r"\frac{\partial L}{\partial T} = -\sum_k k L_k T^{-k-1},\quad "
    r"\frac{\partial L}{\partial T} \to \max_j z_j - \langle z\rangle_B\ (T \to 0)",
)
def _temperature_gradient(order):
    residuals = {}
    for objective in ("kl", "reverse-kl"):
        loss = OBJECTIVES[objective].loss()
        coefficients = power_series(-(epsilon**2) * loss.diff(epsilon), order=order + 1)
        terms = [term.expr for term in expand("loss", order=order, objective=objective).terms]
        residuals[_labelled(f"{objective}: coefficient of T^0 of dL/dT")] = coefficients[0]
        for k in range(order):
            residuals[_labelled(f"{objective}: coefficient of T^-{k + 1} of dL/dT + {k} L_{k}")] = (
                canonical(coefficients[k + 1] + k * terms[k])
            )
    for student, teacher in CASES:
        series = transseries("kl", "temperature", student, teacher)
        residuals[_labelled(f"dL/dT at T^0 - perceptron loss, {student}, {teacher}")] = (
            sympy.expand(series.coefficient(0) - perceptron_loss(student, teacher))
        )
        residuals[_labelled(f"powers of T below 0, {student}, {teacher}")] = sympy.Integer(
            sum(1 for k in (-3, -2, -1) if series.coefficient(k) != 0)
        )
        if (
            margin(student) is not None
            and len(argmax_set(teacher)) == 1
            and len(argmax_set(student)) == 1
        ):
            residuals[_labelled(f"negative gaps, {student}, {teacher}")] = sympy.Integer(
                0 if series.exists else 1
            )
    return residuals
