r"""Symbolic expansion of knowledge distillation in 1/T, with proofs and LaTeX.

The expansion engine (:mod:`derive.series`) turns any objective written as a sympy expression
(:mod:`derive.objectives`) into its power series in :math:`1/T`, for a symbolic number of
classes, by arithmetic on class moments. :data:`STATEMENTS` is the registry of the statements of
docs/theory.md, each with its symbolic proof; :mod:`verify` checks them numerically.

This package never imports torch.

Examples
========

>>> import derive
>>> print(derive.expand("gradient", order=1).terms[0].latex)
\frac{1}{N} \left(z_{i} - v_{i} - \left\langle z \right\rangle + \left\langle v \right\rangle\right)
>>> derive.STATEMENTS["infinite-temperature"].prove().verdict
'holds'
"""

from ._errors import DeriveError
from ._version import __version__ as __version__
from .display import formula
from .expansion import QUANTITIES, Expansion, Term, expand, leading_pieces
from .latex import expression_latex, term_latex
from .latex_parse import parse_latex
from .lowtemp import limit, transseries
from .normal_form import canonical
from .notation import (
    COMPONENTS,
    ClassMean,
    N,
    OtherMean,
    T,
    class_sum,
    concrete,
    epsilon,
    f_derivative,
    logit_symbols,
    moment,
    sigma_v,
    sigma_z,
    v_g,
    v_i,
    vh_i,
    z_g,
    z_i,
    zh_i,
)
from .objectives import FAMILIES, OBJECTIVES, Objective, Parameter
from .parsing import parse
from .report import report_document, write_report
from .series import power_series
from .statements import STATEMENTS, ProofResult, Statement, prove_all
from .tracing import trace  # torch-free to import: tracing imports torch when it is called

__all__ = [
    "DeriveError",
    "QUANTITIES",
    "Expansion",
    "Term",
    "expand",
    "leading_pieces",
    "expression_latex",
    "term_latex",
    "parse_latex",
    "formula",
    "COMPONENTS",
    "N",
    "T",
    "ClassMean",
    "OtherMean",
    "canonical",
    "class_sum",
    "concrete",
    "epsilon",
    "f_derivative",
    "logit_symbols",
    "moment",
    "parse",
    "sigma_v",
    "sigma_z",
    "v_g",
    "v_i",
    "vh_i",
    "z_g",
    "z_i",
    "zh_i",
    "FAMILIES",
    "OBJECTIVES",
    "Objective",
    "Parameter",
    "report_document",
    "write_report",
    "power_series",
    "STATEMENTS",
    "ProofResult",
    "Statement",
    "prove_all",
    "trace",
    "limit",
    "transseries",
]
