r"""The symbolic side of an audit: :func:`derive.trace` on the same loss, beside the numbers.

After the numeric run, the audit traces the loss with :func:`derive.trace` (``torch.fx``, then
the expansion engine) and compares what the trace *predicts* the audit measures and
identifies (:meth:`derive.tracing.TraceResult.leading_order` and
:meth:`~derive.tracing.TraceResult.identification`, exact) with what the audit measured:

* whether a gradient reaches the student logits;
* shift invariance, the power of :math:`T` of the gradient, and (when the declared objective
  is KD, whose limit the audit measures against) the limit scale and whether the limit is
  KD's direction;
* the identification: the objective, its parameters, its weight and its power of :math:`T`.
  An exact relation must be what the numeric identification found (or one of its accepted
  alternatives); a numeric identification of an objective the trace compares with must have
  an exact relation.

Both sides are the toolkit's own computations on the same loss, so any disagreement is a bug
of the toolkit (of the trace, or of the numeric audit), reported as such; it does not change
the verdict or the exit code (docs/audit.md).

The trace runs the user's code (the ``torch.fx`` capture and its numeric self-check) contained
like the audit's own calls (:class:`~.loading.Sandbox`: every ``BaseException``, a deadline,
output captured). Anything that stops it, an unsupported operation, Python control flow on
``T``, an error, the time running out, is reported as *not traced* with its one-line reason;
the audit's result stands.

Examples
========

>>> from verify.gallery import kd_mean_reduction
>>> from verify.audit import audit
>>> check = audit(kd_mean_reduction).symbolic
>>> check.relation_text
'ℓ = (1/N)*KD, exactly, at every term computed (T^-0..T^-4)'
>>> check.batch_weight, check.agrees
('1/B', True)
>>> check.predicted["weight"], check.predicted["limit_scale"]
(0.1, 0.1)
"""

import math
import time
from dataclasses import dataclass

import derive

from .._errors import VerifyError
from .candidates import TERMS
from .loading import Sandbox
from .result import describe, one_line

__all__ = [
    "SymbolicCheck",
    "check_symbolically",
    "trace_plainly",
    "symbolic_check",
    "compare",
    "TRACE_ORDER",
    "TRACE_TIMEOUT",
]

#: Terms of the per-example loss the audit traces: as many as the gradient terms the numeric
#: identification fits (:data:`~.candidates.TERMS`), so that both see the same orders.
TRACE_ORDER = TERMS
#: The most seconds the trace may take (less when less of the audit's ``timeout`` is left).
TRACE_TIMEOUT = 60.0
#: Fitted parameters against the exact ones: the numeric search's own resolution.
PARAMETER_TOLERANCE = 0.05
#: A numeric weight against the exact one: relative, at least this, else the match's own
#: tolerance (both fits resolve the weight to about their residual).
WEIGHT_TOLERANCE = 1e-3
#: The numeric exponents are half-integers when they are a power law; the exact ones integers.
_EXPONENT_TOLERANCE = 1e-9

_BUG = (
    "TOOLKIT BUG: the symbolic and numeric results disagree ({}); please report this as a "
    "bug of the toolkit, with this report and the loss's code (the verdict above is the "
    "numeric one, and may be wrong)"
)


@dataclass(frozen=True)
class SymbolicCheck:
    """The trace of the audited loss and its comparison with the numeric result.

    Parameters
    ==========

    traced : bool
        Whether :func:`derive.trace` succeeded.
    reason : str or None
        Why it was not traced (one line); ``None`` when traced.
    order : int or None
        Terms of the per-example loss traced.
    relation : dict or None
        The exact relation (:meth:`derive.tracing.Relation.to_json` plus ``text``), or
        ``None``.
    relation_text : str or None
        The relation in words, as ``derive trace`` prints it.
    batch_weight : str or None
        :math:`w` in :math:`w\\sum_b \\ell_b`: ``'1/B'`` for a mean over the batch.
    predicted : dict or None
        What the trace predicts the audit measures and identifies, at the audited shape.
    disagreements : tuple of str
        Each disagreement between the symbolic and the numeric result, one line each.
    seconds : float
        Time the trace took (not in the JSON, which is deterministic).
    """

    traced: bool
    reason: str | None = None
    order: int | None = None
    relation: dict | None = None
    relation_text: str | None = None
    batch_weight: str | None = None
    predicted: dict | None = None
    disagreements: tuple = ()
    seconds: float = 0.0

    @property
    def agrees(self):
        """``True``/``False`` when traced; ``None`` when there is nothing to compare."""
        return None if not self.traced else not self.disagreements

    @property
    def bug_report(self):
        """The line asking for a bug report, or ``None``."""
        return _BUG.format("; ".join(self.disagreements)) if self.disagreements else None

    def to_json(self):
        return {
            "traced": self.traced,
            "order": self.order,
            "relation": self.relation,
            "relation_text": self.relation_text,
            "batch_weight": self.batch_weight,
            "predicted": self.predicted,
            "agrees": self.agrees,
            "disagreements": list(self.disagreements),
            "reason": self.reason,
        }

    def text_lines(self):
        """The report's lines: ``symbolic ...`` and, on a disagreement, the bug report."""
        if not self.traced:
            return [f"  symbolic              not traced ({self.reason})"]
        line = f"  symbolic              {self.relation_text}, batch weight {self.batch_weight}"
        identified = (self.predicted or {}).get("objective")
        if identified is not None:
            predicted = self.predicted
            line += ": " + describe(
                identified, predicted["parameters"].items(), predicted["weight"]
            )
            if predicted["temperature_exponent"]:
                line += f", times T^{predicted['temperature_exponent']}"
        lines = [
            line
            + (
                "; agrees with the numeric results"
                if self.agrees
                else "; DISAGREES with the numeric results"
            )
        ]
        if self.disagreements:
            lines.append(f"  {self.bug_report}")
        return lines


def not_traced(reason):
    return SymbolicCheck(traced=False, reason=reason)


def check_symbolically(
    fn, result, *, expectation, signature, sequence_length, remaining, order=TRACE_ORDER
):
    """Trace ``fn`` and compare with the numeric ``result`` (an :class:`~.result.AuditResult`);
    ``remaining`` is the seconds left of the audit's timeout. Never raises for the loss's
    sake: whatever stops the trace is the returned check's ``reason``."""
    traced = trace_plainly(
        fn,
        name=result.function,
        classes=result.classes,
        batch_size=result.batch_size,
        signature=signature,
        sequence_length=sequence_length,
        remaining=remaining,
        order=order,
    )
    return symbolic_check(traced, result, expectation)


def trace_plainly(
    fn, *, name, classes, batch_size, signature, sequence_length, remaining, order=TRACE_ORDER
):
    """The trace of ``fn`` and its predictions at the audited shape as plain data (a dict of
    strings, numbers, booleans, ``None``), so that it can come back from the loss's own
    process: ``{"traced": False, "reason": ...}``, or ``traced``, ``order``, ``relation``,
    ``relation_text``, ``batch_weight``, ``predicted``, ``seconds``."""
    if sequence_length is not None:
        return {
            "traced": False,
            "reason": "token sequences [B, L, N]: the trace takes logits [B, N]",
        }
    if signature.target is not None:
        return {
            "traced": False,
            "reason": "the loss takes a target (labels): the trace takes "
            "fn(student_logits, teacher_logits, T)",
        }
    budget = min(TRACE_TIMEOUT, remaining)
    if budget <= 0:
        return {"traced": False, "reason": "no time left of the audit's --timeout"}
    sandbox = Sandbox(name, timeout=budget, exit_hint="")
    started = time.perf_counter()
    try:
        traced = sandbox.call(derive.trace, fn, order=order, context="while traced")
    except VerifyError as error:
        cause = error.__cause__
        if sandbox.remaining() <= 0:
            # The deadline interrupts the user's code or the engine; the trace may have turned
            # the interruption into an error of the loss: the deadline is the reason.
            reason = (
                f"the trace did not finish within {budget:.3g} s (at most "
                f"{TRACE_TIMEOUT:g} s, and within the audit's --timeout)"
            )
        elif isinstance(cause, derive.DeriveError):
            reason = one_line(cause)
        else:
            reason = one_line(error)
        return {"traced": False, "reason": reason}
    found = {
        "traced": True,
        "order": order,
        "relation_text": traced.relation_text(),
        "batch_weight": str(traced.batch_weight),
        "seconds": time.perf_counter() - started,
    }
    relation = traced.relation
    found["relation"] = (
        None if relation is None else _plain(dict(relation.to_json(), text=relation.text))
    )
    try:
        found["predicted"] = _plain(predict(traced, classes=classes, batch_size=batch_size))
    except Exception as error:  # our own prediction: a bug, reported as one
        found["predicted"] = None
        found["failure"] = f"{type(error).__name__}: {one_line(error)}"
    return found


def _plain(value):
    """``value`` with every number a Python ``float``/``int`` and every container a dict or
    list (sympy numbers become floats, other objects their text)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


_PREDICTED = {
    "no_gradient",
    "shift_invariant",
    "gradient_exponent",
    "limit_scale",
    "limit_cosine_is_one",
    "objective",
    "parameters",
    "weight",
    "temperature_exponent",
    "via",
}


def symbolic_check(traced, result, expectation):
    """The :class:`SymbolicCheck` from :func:`trace_plainly`'s data (validated: a malformed
    one is *not traced*, with the reason) and the numeric ``result``."""
    if not isinstance(traced, dict) or not isinstance(traced.get("traced"), bool):
        return not_traced("the trace sent back a malformed result")
    if not traced["traced"]:
        reason = traced.get("reason")
        return not_traced(reason if isinstance(reason, str) else "the trace failed")
    predicted = traced.get("predicted")
    text_fields = ("relation_text", "batch_weight")
    if not (
        all(isinstance(traced.get(key), str) for key in text_fields)
        and isinstance(traced.get("order"), int)
        and isinstance(traced.get("seconds"), float)
        and (traced.get("relation") is None or isinstance(traced.get("relation"), dict))
        and (predicted is None or isinstance(predicted, dict) and set(predicted) == _PREDICTED)
    ):
        return not_traced("the trace sent back a malformed result")
    common = dict(
        traced=True,
        order=traced["order"],
        relation_text=traced["relation_text"],
        batch_weight=traced["batch_weight"],
        seconds=traced["seconds"],
    )
    failure = traced.get("failure")
    try:
        if predicted is None:
            raise ValueError(failure if isinstance(failure, str) else "no prediction")
        disagreements = tuple(compare(predicted, result, expectation))
    except Exception as error:  # our own comparison: a bug, reported as one
        return SymbolicCheck(
            **common,
            disagreements=(
                f"the comparison itself failed: {type(error).__name__}: {one_line(error)}",
            ),
        )
    return SymbolicCheck(
        **common, relation=traced["relation"], predicted=predicted, disagreements=disagreements
    )


def predict(traced, *, classes, batch_size):
    """What the audit must measure and identify, from a :class:`derive.tracing.TraceResult`:
    :meth:`~derive.tracing.TraceResult.leading_order` and
    :meth:`~derive.tracing.TraceResult.identification` at the audited shape, as one JSON
    object (``objective``, ``parameters``, ``weight``, ``temperature_exponent`` of the
    identification; ``None`` without an exact relation)."""
    found = {"no_gradient": bool(traced.no_gradient)}
    leading = traced.leading_order(classes=classes, batch_size=batch_size)
    found.update(
        shift_invariant=leading["shift_invariant"],
        gradient_exponent=leading["temperature_exponent"],
        limit_scale=leading["limit_scale"],
        limit_cosine_is_one=leading["limit_cosine_is_one"],
    )
    identified = traced.identification(classes=classes, batch_size=batch_size)
    found.update(objective=None, parameters={}, weight=None, temperature_exponent=None, via=None)
    if identified is not None:
        found.update(
            objective=identified["objective"],
            parameters=dict(identified["parameters"]),
            weight=_rounded(identified["weight"]),
            temperature_exponent=identified["temperature_exponent"],
            via=identified["via"],
        )
    found["limit_scale"] = _rounded(found["limit_scale"])
    return found


def _rounded(value):
    return None if value is None else float(f"{value:.12g}") + 0.0


# -- the comparison ---------------------------------------------------------------------------


def _compared(name):
    """Whether a trace compares ``name`` (not written with a label or in standardized logits):
    a numeric identification of another says nothing against a trace without a relation."""
    definition = derive.OBJECTIVES.get(name)
    return definition is not None and not definition.labelled and definition.coordinates == "logits"


def compare(predicted, result, expectation):
    """The disagreements, one line each, between ``predicted`` (:func:`predict`) and the
    numeric ``result``; ``expectation`` is the declaration the audit measured against."""
    numeric_no_gradient = "no-gradient" in result.causes
    if predicted["no_gradient"] != numeric_no_gradient:
        return [
            f"gradient: symbolic {'none' if predicted['no_gradient'] else 'nonzero'}, "
            f"numeric {'none' if numeric_no_gradient else 'nonzero'}"
        ]
    if numeric_no_gradient:
        return []
    found = []
    if predicted["shift_invariant"] != result.shift_invariant:
        found.append(
            f"shift invariance: symbolic {_yes(predicted['shift_invariant'])}, "
            f"numeric {_yes(result.shift_invariant)}"
        )
    found += _leading_order(predicted, result, expectation)
    found += _identification(predicted, result)
    return found


def _yes(flag):
    return "yes" if flag else "no"


def _leading_order(predicted, result, expectation):
    exponent = predicted["gradient_exponent"]
    if exponent is None:
        return []
    power_law = result.limit_scale is not None
    if not power_law:
        return [
            f"temperature exponent: symbolic {exponent:g} (a power law with 1/T "
            f"corrections), numeric not a power law (fitted {_shown(result.exponent_fit)})"
        ]
    if abs(result.temperature_exponent - exponent) > _EXPONENT_TOLERANCE:
        return [
            f"temperature exponent: symbolic {exponent:g}, numeric {result.temperature_exponent:g}"
        ]
    # The scale and the direction are measured against the declared objective's limit; the
    # trace predicts them against KD's.
    if expectation.objective != "kl" or not result.limit_established:
        return []
    found, tolerance = [], result.scale_tolerance
    scale = predicted["limit_scale"]
    if scale is not None and abs(result.limit_scale - scale) > tolerance * abs(scale):
        found.append(
            f"limit scale: symbolic {scale:.6g}, numeric {result.limit_scale:.6g} "
            f"(tolerance {tolerance:.2g})"
        )
    cosine = result.limit_cosine
    measured_one = cosine is not None and cosine >= 1.0 - tolerance
    kd_direction = predicted["limit_cosine_is_one"]
    if kd_direction is not None and measured_one != kd_direction:
        found.append(
            f"limit direction: symbolic {'' if kd_direction else 'not '}KD's, numeric "
            f"cosine {_shown(cosine)} (tolerance {tolerance:.2g})"
        )
    return found


def _identification(predicted, result):
    objective = predicted["objective"]
    if not result.shift_invariant:
        return []  # the numeric identification did not run
    numeric = _matches(result)
    if objective is None:
        shown = [m for m in numeric if m["defect"] is None and _compared(m["objective"])]
        if not shown:
            return []
        return [
            f"identification: symbolic no exact relation at the terms computed, numeric "
            f"{_numeric_text(shown[0])}"
        ]
    for match in numeric:
        if match["defect"] is None and match["objective"] == objective and _same(predicted, match):
            return []
    exact = describe(objective, predicted["parameters"].items(), predicted["weight"])
    if predicted["temperature_exponent"]:
        exact += f", times T^{predicted['temperature_exponent']}"
    seen = (
        "; ".join(_numeric_text(m) for m in numeric)
        if numeric
        else "unknown"
        + ("" if result.match_error is None else f" (closest match error {result.match_error:.2g})")
    )
    return [f"identification: symbolic {exact} (exact), numeric {seen}"]


def _matches(result):
    """The numeric identification and its accepted alternatives, as dicts."""
    matches = []
    if result.objective != "unknown":
        matches.append(
            {
                "objective": result.objective,
                "parameters": dict(result.parameters),
                "weight": result.weight,
                "tolerance": result.match_tolerance,
                "exponent": result.identification_exponent,
                "defect": result.defect,
            }
        )
    for alternative in result.alternatives:
        matches.append(
            {
                "objective": alternative["objective"],
                "parameters": dict(alternative["parameters"]),
                "weight": alternative["weight"],
                "tolerance": alternative["tolerance"],
                "exponent": result.identification_exponent,
                "defect": None,
            }
        )
    return matches


def _same(predicted, match):
    """Whether a numeric match is the exact relation: the same power of ``T``, the weight
    within the match's tolerance (at least :data:`WEIGHT_TOLERANCE`), every parameter both
    report within :data:`PARAMETER_TOLERANCE` (a choice exactly)."""
    if (
        match["exponent"] is not None
        and abs(match["exponent"] - predicted["temperature_exponent"]) > 1e-9
    ):
        return False
    weight, exact = match["weight"], predicted["weight"]
    tolerance = max(WEIGHT_TOLERANCE, match["tolerance"] or 0.0)
    if weight is None or not math.isclose(weight, exact, rel_tol=tolerance):
        return False
    for name, value in predicted["parameters"].items():
        if name not in match["parameters"]:
            continue
        found = match["parameters"][name]
        if isinstance(value, str) or isinstance(found, str):
            if value != found:
                return False
        elif not math.isclose(
            found, value, rel_tol=PARAMETER_TOLERANCE, abs_tol=PARAMETER_TOLERANCE * 1e-3
        ):
            return False
    return True


def _numeric_text(match):
    text = describe(match["objective"], match["parameters"].items(), match["weight"])
    if match["exponent"]:
        text += f", times T^{match['exponent']:g}"
    if match["defect"] is not None:
        text += f", with the defect {match['defect']}"
    return text


def _shown(value):
    return "undefined" if value is None else f"{value:.6g}"
