r"""The low-temperature end of the axis: max-plus limits and exponentially small corrections.

As :math:`T \to 0`, :math:`T \log\sum_j e^{x_j/T} \to \max_j x_j`: the limits of the
objectives are max-plus (tropical) expressions, and the corrections are powers of
:math:`e^{-\mathrm{gap}/T}` with coefficients polynomial in :math:`T` (a transseries), where
the high-temperature side is a power series in :math:`1/T`.

* :mod:`~derive.lowtemp.engine` derives the transseries of any registered objective at
  concrete logits from its definition (:func:`transseries`);
* :mod:`~derive.lowtemp.limits` states every objective's limit in max-plus form
  (:func:`limit`, :data:`LOW_TEMPERATURE`), proved against the engine by
  :mod:`derive.statements.low_temperature`;
* :mod:`~derive.lowtemp.reference` measures the limits against 50-digit mpmath.

Examples
========

>>> from derive.lowtemp import limit, transseries
>>> limit("kl", quantity="gradient").limit
'1_A/|A| - 1_B/|B| (the perceptron update e_a - e_b)'
>>> transseries("reverse-kl", "gradient", [0, -1], [-1, 0]).polynomial_part
0
"""

from .engine import TEMPERATURE, Transseries, transseries
from .limits import LOW_TEMPERATURE, Limit, LimitForm, limit
from .proofs import closed_form_residuals

__all__ = [
    "TEMPERATURE",
    "Transseries",
    "transseries",
    "LOW_TEMPERATURE",
    "Limit",
    "LimitForm",
    "limit",
    "closed_form_residuals",
]
