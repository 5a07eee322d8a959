r"""Convergence of the series in :math:`1/T`: its radius, exactness for two classes, and the
algebra behind the certified bounds of :mod:`derive.bounds`.

Notation: :math:`\epsilon = 1/T` complex, :math:`R = \max(\mathrm{range}(z), \mathrm{range}(v))`,
:math:`\tilde x = x - (\max x + \min x)/2` the logits centred at their midrange (KD does not
change when a constant is added to :math:`z` or to :math:`v`), :math:`d = z - v`.

The analytic steps are classical (a quotient and a principal logarithm of functions that do
not vanish on a half-plane are analytic; Cauchy's estimate for the Taylor coefficients of a
function analytic on a closed disk); the proofs check every algebraic step with residuals
that must simplify to 0.

Examples
========

>>> from derive.statements import STATEMENTS
>>> STATEMENTS["radius-tight-two-classes"].prove(order=4).verdict
'holds'
"""

import sympy
from sympy import I, Rational, cos, cosh, exp, log, pi

from ..expansion import expand
from ..notation import ClassMean, concrete, epsilon, v_i, z_i
from ..objectives import kd_loss
from ..objectives.softmax import softmax, softmax_expectation
from ..series import power_series
from ._registry import label, statement

__all__ = ["interpolated_log_sum", "two_class_coefficient"]

_real_part, _imaginary_part, _logit = sympy.symbols("a b x", real=True)
_largest, _smallest = sympy.symbols("x_max x_min", real=True)
_range = sympy.Symbol("R", positive=True)
_path = sympy.Symbol("s", real=True)
_ratio = sympy.Symbol("t", positive=True)


def interpolated_log_sum(s):
    r""":math:`\phi(s) = \log\langle e^{\epsilon(v + s\,d)}\rangle`: the log-partition function
    along the segment from the teacher's logits (:math:`s = 0`) to the student's (:math:`s = 1`).
    """
    return log(ClassMean(exp(epsilon * (v_i + s * (z_i - v_i)))))


def two_class_coefficient(power, logit_range):
    r"""The coefficient of :math:`T^{-k}` of :math:`T^2 \log\cosh(R/2T)`, KD's loss for
    :math:`N = 2`, :math:`v = (0, 0)`, :math:`z = (0, R)`: 0 for odd :math:`k`, and for
    :math:`k = 2n - 2`

    .. math::

        L_{2n-2} = (-1)^{n+1}\,\frac{(1 - 4^{-n})\,\zeta(2n)}{n}\,\frac{R^{2n}}{\pi^{2n}}.

    >>> two_class_coefficient(0, sympy.Symbol("R"))
    R**2/8
    """
    if power % 2:
        return sympy.Integer(0)
    n = power // 2 + 1
    return sympy.expand(
        (-1) ** (n + 1)
        * (1 - Rational(1, 4) ** n)
        * sympy.zeta(2 * n)
        * logit_range ** (2 * n)
        / (n * pi ** (2 * n))
    )


@statement(
    "convergence-radius",
    "The series in 1/T converges for T > R/pi, R the larger range of z and v",
    r"\begin{gathered}\sum_j e^{\epsilon x_j} \ne 0 \text{ for } |\mathrm{Im}\,\epsilon|"
    r"\,R < \pi,\ x = z, v;\\ L_{KD}(\epsilon) = \epsilon^{-2}\mathrm{KL}(p\,\|\,q)"
    r" \text{ and } \nabla L_{KD} \text{ are analytic on } |\epsilon| < \pi/R;\\ "
    r"L_{KD} = \int_0^1 (1-s)\,\mathrm{Var}_{r_s}(z - v)\,ds,\quad "
    r"r_s = \mathrm{softmax}(\epsilon(v + s(z - v)));\\ "
    r"\Big|L_{KD} - \sum_{k<K} \epsilon^k L_k\Big| \le M\,\frac{(|\epsilon|/\rho)^K}"
    r"{1 - |\epsilon|/\rho}\quad (|L_{KD}| \le M \text{ on } |\epsilon| \le \rho < \pi/R)"
    r"\end{gathered}",
)
def _convergence_radius(order):
    a, b, x = _real_part, _imaginary_part, _logit
    middle = (_largest + _smallest) / 2
    spread = _largest - _smallest
    divergence = sympy.expand(kd_loss() * epsilon**2)
    divergence_series = power_series(divergence, order=2)
    gradient_series = power_series(softmax(z_i) - softmax(v_i), order=1)
    residuals = {
        # A term e^{eps x} of a class sum has modulus e^{a x} and argument b x.
        label(
            "Re e^{(a+ib)x} - e^{ax} cos(bx)", r"\mathrm{Re}\,e^{(a+ib)x} - e^{ax}\cos bx"
        ): sympy.re(exp((a + I * b) * x)) - exp(a * x) * cos(b * x),
        # Centred at the midrange, the logits lie in [-R_x/2, R_x/2] ...
        label(
            "x_max - midrange - range/2",
            r"x_{\max} - \tfrac{x_{\max}+x_{\min}}2 - "
            r"\tfrac{R_x}2",
        ): _largest - middle - spread / 2,
        label(
            "midrange - x_min - range/2",
            r"\tfrac{x_{\max}+x_{\min}}2 - x_{\min} - "
            r"\tfrac{R_x}2",
        ): middle - _smallest - spread / 2,
        # ... so |b x| < (pi/R)(R/2) = pi/2 where cos vanishes first: every term has a
        # positive real part, and so has the sum (one open half-plane).
        label("cos((pi/R)(R/2))", r"\cos\left(\tfrac{\pi}{R}\cdot\tfrac{R}{2}\right)"): cos(
            pi / _range * _range / 2
        ),
        # |Im eps| <= |eps|: the disk |eps| < pi/R lies in the strip |Im eps| < pi/R.
        label("|a+ib|^2 - a^2 - b^2", r"|a+ib|^2 - a^2 - b^2"): sympy.Abs(a + I * b) ** 2
        - a**2
        - b**2,
        # KL vanishes to second order at eps = 0, so eps^-2 KL is analytic at 0 too; so is
        # (q - p)/eps.
        label("KL: coefficient of eps^0", r"\mathrm{KL}:\ [\epsilon^0]"): divergence_series[0],
        label("KL: coefficient of eps^1", r"\mathrm{KL}:\ [\epsilon^1]"): divergence_series[1],
        label("q - p: coefficient of eps^0", r"q - p:\ [\epsilon^0]"): gradient_series[0],
        # The uniform bound: KL = phi(1) - phi(0) - phi'(0) = int_0^1 (1 - s) phi''(s) ds,
        # phi'' = eps^2 Var_{r_s}(d).
        label(
            "KL - (phi(1) - phi(0) - phi'(0))",
            r"\mathrm{KL} - (\phi(1) - \phi(0) - "
            r"\phi'(0))",
        ): divergence
        - (
            interpolated_log_sum(1)
            - interpolated_log_sum(0)
            - sympy.diff(interpolated_log_sum(_path), _path).subs(_path, 0)
        ),
        label(
            "phi'' - eps^2 Var_{r_s}(d)", r"\phi'' - \epsilon^2\,\mathrm{Var}_{r_s}(d)"
        ): sympy.diff(interpolated_log_sum(_path), _path, 2)
        - epsilon**2
        * (
            softmax_expectation(v_i + _path * (z_i - v_i), (z_i - v_i) ** 2)
            - softmax_expectation(v_i + _path * (z_i - v_i), z_i - v_i) ** 2
        ),
    }
    # Cauchy: |L_k| <= M rho^-k, so the remainder is at most M sum_{k >= K} t^k, t = |eps|/rho,
    # whose partial sums are (t^K - t^(K+m))/(1 - t) -> t^K/(1 - t).
    k = sympy.Symbol("k", integer=True)
    for first in range(1, order + 1):
        last = first + order - 1
        partial = sympy.summation(_ratio**k, (k, first, last))
        residuals[
            label(
                f"(1 - t) sum_(k={first})^({last}) t^k - (t^{first} - t^{last + 1})",
                rf"(1-t)\sum_{{k={first}}}^{{{last}}} t^k - "
                rf"(t^{{{first}}} - t^{{{last + 1}}})",
            )
        ] = sympy.expand((1 - _ratio) * partial - (_ratio**first - _ratio ** (last + 1)))
    return residuals


def _two_class_logits(expr):
    """``expr`` in ``z1, z2, v1, v2`` at :math:`z = (0, R)`, :math:`v = (0, 0)`."""
    names = {symbol.name: symbol for symbol in expr.free_symbols}
    values = {"z1": 0, "z2": _range, "v1": 0, "v2": 0}
    return expr.subs({names[name]: value for name, value in values.items() if name in names})


@statement(
    "radius-tight-two-classes",
    "For two classes the radius pi/R is exact: a uniform teacher's series diverges "
    "for every T < R/pi",
    r"\begin{gathered}N = 2,\ v = (0, 0),\ z = (0, R):\quad L_{KD} = T^2\log\cosh"
    r"\frac{R}{2T},\\ L_{2n-2} = (-1)^{n+1}\frac{(1-4^{-n})\,\zeta(2n)}{n}\,"
    r"\frac{R^{2n}}{\pi^{2n}},\quad L_{2n-1} = 0;\\ \cosh\frac{\epsilon R}{2} "
    r"\text{ has a simple zero at } \epsilon = i\pi/R,\ |i\pi/R| = \pi/R\end{gathered}",
)
def _radius_tight_two_classes(order):
    loss = _two_class_logits(concrete(kd_loss(), classes=2))
    difference = sympy.expand(epsilon**2 * loss) - log(cosh(epsilon * _range / 2))
    at_pole = I * pi / _range
    residuals = {
        # T^2 KL = T^2 log cosh(R/2T): equal derivatives in eps, and equal at eps = 0.
        label(
            "d/deps [KL - log cosh(eps R/2)]",
            r"\tfrac{d}{d\epsilon}\left[\mathrm{KL} - \log\cosh\tfrac{\epsilon R}{2}\right]",
        ): sympy.simplify(sympy.diff(difference, epsilon).rewrite(exp)),
        label(
            "KL - log cosh(eps R/2) at eps = 0",
            r"\left[\mathrm{KL} - \log\cosh\tfrac{\epsilon R}{2}\right]_{\epsilon=0}",
        ): difference.subs(epsilon, 0),
        # cosh(eps R/2) = 0 at eps = i pi/R, a simple zero: log cosh is singular there, and
        # so is q_2 = 1/(1 + e^(-eps R)) (a pole). The point lies on the circle |eps| = pi/R.
        label("cosh(eps R/2) at eps = i pi/R", r"\cosh\tfrac{\epsilon R}{2}\big|_{i\pi/R}"): cosh(
            at_pole * _range / 2
        ),
        label(
            "d/deps cosh(eps R/2) at i pi/R - i R/2",
            r"\tfrac{d}{d\epsilon}\cosh\tfrac{\epsilon R}{2}\big|_{i\pi/R} - \tfrac{iR}{2}",
        ): sympy.diff(cosh(epsilon * _range / 2), epsilon).subs(epsilon, at_pole) - I * _range / 2,
        label("1 + e^(-eps R) at eps = i pi/R", r"1 + e^{-\epsilon R}\big|_{i\pi/R}"): 1
        + exp(-at_pole * _range),
        label("|i pi/R| - pi/R", r"|i\pi/R| - \pi/R"): sympy.Abs(at_pole) - pi / _range,
    }
    for k, term in enumerate(expand("loss", order=order, classes=2).terms):
        residuals[label(f"L_{k} - closed form", rf"L_{{{k}}} - \text{{closed form}}")] = (
            sympy.expand(_two_class_logits(term.expr) - two_class_coefficient(k, _range))
        )
    return residuals
