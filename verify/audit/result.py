r"""What an audit returns: :class:`AuditResult`, the codes of its causes, and how numbers are shown.

Examples
========

>>> _number(10000.0), _number(0.5), _number(-2)
('1e4', '0.5', '-2')
>>> _significant(1.0000000004)
1.0
"""

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._errors import check_argument

if TYPE_CHECKING:  # audit.symbolic imports this module
    from .symbolic import SymbolicCheck

__all__ = ["VERDICTS", "CAUSES", "AuditResult"]

#: The two verdicts of an audit.
VERDICTS = ("consistent", "inconsistent")

#: Every cause the audit can name (``AuditResult.causes``), with what it means.
CAUSES = {
    "no-gradient": "the loss has no gradient w.r.t. the student logits (detached)",
    "not-shift-invariant": "the gradient does not sum to zero over the classes",
    "not-a-power-law": "the gradient does not scale as one power of T",
    "missing-temperature-factor": "the gradient scales as T^-2: the T**2 factor is missing",
    "temperature-power": "the gradient scales as T^a with a not in {0, -2} (not P, --power P)",
    "limit-not-established": "the extrapolation to T = infinity leaves too large a residual",
    "mean-reduction": "limit scale 1/N: reduction='mean' over classes too",
    "sum-reduction": "limit scale B: reduction='sum' over the batch",
    "double-batch-average": "limit scale 1/B: divided by the batch size twice",
    "constant-factor": "limit scale c != the declared weight with no known cause",
    "negated": "the gradient points away from the teacher: the loss is negated",
    "uncentred-limit": "the high-T limit is uncentred logits matching, z - v",
    "wrong-limit": "the high-T limit of the gradient is not the declared objective's",
    "other-objective": "the loss is another registered objective than the declared one",
    "other-parameters": "the loss is the declared objective with other parameter values",
    "swapped-kl-arguments": "reverse KL where KD was declared: F.kl_div's arguments swapped",
    "one-sided-temperature": "the temperature divides the logits of one side only",
    "kl-div-probabilities": "F.kl_div given probabilities where it expects log-probabilities",
    "log-target-probabilities": "log_target=True with a target of probabilities",
    "top-k-teacher": "the teacher's distribution is truncated to its top k classes",
    "eps-denominator": "an eps in a denominator takes over at high temperature",
    "unidentified": "agrees with the declared objective's limit but not at order 1/T",
    "ambiguous": "several registered objectives fit equally well",
    "temperature-ignored": "the gradient does not depend on T",
    "tensor-temperature-path": "a tensor T gives another gradient than a float T",
    "padding-included": "padded positions of a token sequence get a gradient",
    "sequence-mean": "tokens are averaged per sequence, then over the batch",
    "batch-normalized": "tokens are summed and divided by the batch size only",
    "token-sum": "tokens are summed without any normalization",
    "position-mean": "tokens are divided by every position, padding included",
    "uneven-token-weights": "real tokens weigh unequally, neither uniform nor per sequence",
}


@dataclass(frozen=True)
class AuditResult:
    """What :func:`verify.audit.audit` found about one loss.

    The first eight fields are the original JSON contract; :meth:`to_json` adds what the loss
    was identified as. The others say how it was measured.

    Parameters
    ==========

    shift_invariant : bool
        Whether every row's gradient sums to zero over the classes within its rounding bound.
    temperature_exponent : float or None
        :math:`a` in :math:`g(T) \\approx c\\,T^a G`, rounded to a half-integer when it is one.
    limit_scale, limit_cosine : float or None
        :math:`c`, and the cosine between :math:`g(T)/T^a` extrapolated to :math:`T = \\infty`
        and the declared objective's limit :math:`G` (KD's by default); 6 significant digits.
    classes, batch_size : int
        The shape of the audited logits, ``[B, N]`` or ``[B, L, N]``.
    verdict : str
        ``"consistent"`` iff the loss is the declared objective with the declared weight.
    diagnoses, causes : tuple of str
        Plain-English causes and fixes, and their codes in :data:`CAUSES`.
    objective, parameters, weight, match_error, match_tolerance
        What the loss was identified as (a name of :data:`derive.OBJECTIVES` or
        ``"unknown"``), with the fitted parameters, the weight and the relative residual of the
        match over the identification temperatures, and the tolerance it was accepted within.
    alternatives : tuple of dict
        Other objectives that fit within their tolerance (an ambiguity), as JSON objects.
    symbolic : :class:`~verify.audit.symbolic.SymbolicCheck` or None
        The loss traced by :func:`derive.trace`, its exact relation and whether it agrees with
        the numeric result (``None``: not asked for, as by a result built by hand).
    limit_established : bool or None
        Whether the extrapolation to :math:`T = \\infty` established the limit (its scale and
        cosine mean something).
    """

    shift_invariant: bool
    temperature_exponent: float | None
    limit_scale: float | None
    limit_cosine: float | None
    classes: int
    batch_size: int
    verdict: str
    diagnoses: tuple = ()
    causes: tuple = ()
    objective: str = "unknown"
    parameters: tuple = ()
    weight: float | None = None
    match_error: float | None = None
    match_tolerance: float | None = None
    defect: str | None = None
    defect_parameters: tuple = ()
    alternatives: tuple = ()
    expected: tuple = ("kl", (), 1.0)
    sequence_length: int | None = None
    normalization: str | None = None
    normalization_scale: float | None = None
    labels: str = "teacher-argmax"
    shift_worst_error: float = 0.0
    shift_tolerance: float = 0.0
    shift_temperature: float = 1.0
    exponent_fit: float | None = None
    identification_exponent: float | None = None
    fit_residual: float | None = None
    scale_tolerance: float | None = None
    temperatures: tuple = ()
    identification_temperatures: tuple = ()
    tensor_temperature: str = "unsupported"
    function: str = ""
    dtype: str = "float64"
    device: str = "cpu"
    seed: int = 0
    printed_lines: int = 0
    notes: tuple = field(default=())
    symbolic: "SymbolicCheck | None" = None
    limit_established: bool | None = None
    #: The call made, in words, when it is not the default ``fn(student, teacher, T)``
    #: (``--call``, or recognised from the signature); ``""`` for the default.
    call: str = ""
    #: The declared power of T (``--power``).
    power: float = 0.0

    def __post_init__(self):
        check_argument(
            self.verdict in VERDICTS,
            "verdict must be one of {}, got {!r}",
            ", ".join(VERDICTS),
            self.verdict,
        )

    @property
    def consistent(self) -> bool:
        """True if the verdict is ``"consistent"``."""
        return self.verdict == "consistent"

    def to_json(self) -> dict[str, Any]:
        """The fields of the CLI's ``--json`` output (a stable contract)."""
        name, parameters, weight = self.expected
        return {
            "shift_invariant": self.shift_invariant,
            "temperature_exponent": self.temperature_exponent,
            "limit_scale": self.limit_scale,
            "limit_cosine": self.limit_cosine,
            "classes": self.classes,
            "batch_size": self.batch_size,
            "verdict": self.verdict,
            "diagnoses": list(self.diagnoses),
            "causes": list(self.causes),
            "objective": self.objective,
            "parameters": dict(self.parameters),
            "weight": self.weight,
            "match_error": self.match_error,
            "match_tolerance": self.match_tolerance,
            "defect": None
            if self.defect is None
            else {"cause": self.defect, "parameters": dict(self.defect_parameters)},
            "alternatives": list(self.alternatives),
            "expected": {"objective": name, "parameters": dict(parameters), "weight": weight},
            "sequence_length": self.sequence_length,
            "normalization": None
            if self.normalization is None
            else {"name": self.normalization, "scale": self.normalization_scale},
            "labels": self.labels,
            "symbolic": None if self.symbolic is None else self.symbolic.to_json(),
            **({"call": self.call} if self.call else {}),
            **({"power": self.power} if self.power else {}),
        }

    def to_text(self) -> str:
        """A human-readable report, as the CLI prints it without ``--json``."""
        low, high = (self.temperatures[0], self.temperatures[-1]) if self.temperatures else (0, 0)
        exponent = _optional(self.temperature_exponent)
        if self.exponent_fit is not None:
            exponent += f" (fitted {self.exponent_fit:.4g}, residual {self.fit_residual:.2g})"
        shape = (
            f"{self.batch_size} x {self.classes}"
            if self.sequence_length is None
            else f"{self.batch_size} x {self.sequence_length} x {self.classes}"
        )
        name, parameters, weight = self.expected
        lines = [
            f"audit of {self.function}: {shape} logits, {self.dtype}, {self.device}, seed "
            f"{self.seed}, T = {_number(low)}..{_number(high)}",
            f"  declared              {describe(name, parameters, weight)}"
            + (f", times T^{_number(self.power)}" if self.power else ""),
            f"  identified as         {self.identified}",
        ]
        if self.symbolic is not None:
            lines += self.symbolic.text_lines()
        if self.call:
            lines.append(f"  call                  {self.call}")
        lines += [
            f"  shift invariant       {'yes' if self.shift_invariant else 'no'} (worst class sum "
            f"{self.shift_worst_error:.2g}, tolerance {self.shift_tolerance:.2g}, at "
            f"T={_number(self.shift_temperature)})",
            f"  temperature exponent  {exponent}",
            f"  limit scale           {_optional(self.limit_scale)}"
            + ("" if self.scale_tolerance is None else f" (tolerance {self.scale_tolerance:.2g})"),
            f"  limit cosine          {_optional(self.limit_cosine)}",
            f"  tensor temperature    {self.tensor_temperature}",
            f"  labels                {self.labels}",
        ]
        if self.normalization is not None:
            lines.append(
                f"  normalization         {self.normalization} (scale "
                f"{_optional(self.normalization_scale)} of the mean over real tokens)"
            )
        lines.append(f"  verdict               {self.verdict}")
        lines += [f"  - {diagnosis}" for diagnosis in self.diagnoses]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    @property
    def identified(self) -> str:
        """The identification in words: ``'reverse-kl, weight 1 (match error 2e-07)'``."""
        if self.objective == "unknown":
            return (
                "unknown"
                if self.match_error is None
                else f"unknown (closest match error {self.match_error:.2g})"
            )
        text = describe(self.objective, self.parameters, self.weight)
        if self.identification_exponent not in (None, 0.0):
            text += f", times T^{_number(self.identification_exponent)}"
        if self.defect is not None:
            text += f", with the defect {self.defect}" + "".join(
                f" ({k} = {v:.3g})" for k, v in self.defect_parameters
            )
        if self.match_error is not None:
            text += f" (match error {self.match_error:.2g}, tolerance {self.match_tolerance:.2g})"
        return text


def describe(name, parameters, weight):
    """``'jsd, beta ~ 0.3, weight 1'``: an objective with its parameters and weight in words.

    >>> describe("jsd", (("beta", 0.30001),), 1.0)
    'jsd, beta ~ 0.3, weight 1'
    >>> describe("standardized-kl", (("std", "unbiased"),), 0.5)
    'standardized-kl, std = unbiased, weight 0.5'
    """
    parts = [name]
    for key, value in parameters:
        parts.append(f"{key} = {value}" if isinstance(value, str) else f"{key} ~ {value:.4g}")
    if weight is not None:
        parts.append(f"weight {weight:.4g}")
    return ", ".join(parts)


# -- numbers as the reports show them ------------------------------------------------------------


def _significant(value, digits=6):
    """``value`` to ``digits`` significant digits (what the tolerances resolve), or ``None``."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}") + 0.0


def _optional(value):
    return "n/a" if value is None else f"{value:.6g}"  # 6 digits: what the tolerances resolve


def _number(value):
    """A short form of a number: ``1e4``, ``0.5``, ``-2``."""
    text = f"{float(value):.4g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def one_line(error):
    """An exception's message on one line (its type name if it has none)."""
    return " ".join(str(error).split()) or type(error).__name__
