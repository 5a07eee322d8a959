r"""Derive the user's own loss: trace PyTorch code into the expansion engine.

:func:`trace` takes a loss ``fn(student_logits, teacher_logits, T)`` (logits ``[B, N]``, a
scalar tensor out) as written, captures it with :mod:`torch.fx`
(:mod:`~derive.tracing.capture` says why fx), translates every operation into the engine's
expression (:mod:`~derive.tracing.translate`): the class dimension becomes class means, the
batch dimension a per-example loss :math:`\ell` with a batch weight (the function's value is
:math:`w\sum_b \ell(z_b, v_b)`, :math:`w = 1/B` for a mean over the batch, 1 for a sum), ``T``
stays the temperature. It then

* checks the translation against the function itself: value and autograd gradient at
  ``T = 2, 10, 100`` in float64 on random logits, within a counted rounding bound
  (:mod:`~derive.tracing.numeric`); a disagreement refuses the trace;
* expands :math:`\ell` in :math:`1/T` with the engine, term by term, as ``derive expand``
  does for the registry's objectives;
* proves a relation to the registry when one holds exactly
  (:mod:`~derive.tracing.relations`): ``= (1/N)*KD`` means every term computed is
  :math:`1/N` times KD's, with residual exactly 0.

Only the capture, the translation and the numeric check import torch, when :func:`trace`
runs: importing this package (and ``import derive``, which exposes :func:`trace`) does not.

Examples
========

>>> from verify.gallery import kd_mean_reduction
>>> result = trace(kd_mean_reduction, order=2)
>>> result.relation.text, str(result.batch_weight)
('= (1/N)*KD', '1/B')
>>> from derive import N, expand
>>> kd = expand("loss", order=2).terms
>>> [sympy.expand(ours.symbolic - theirs.symbolic / N) for ours, theirs in zip(result.terms, kd)]
[0, 0]
"""

import inspect
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sympy

from .._errors import DeriveError, check_order
from ..calls import CallSpec, bind, resolve_call
from ..expansion import Term, expand
from ..normal_form import canonical
from ..notation import N, epsilon, z_i
from ..polynomial import Polynomial
from ..series import Algebra
from ._symbols import B, has_stops, strip_stops
from .relations import (
    LeadingSeries,
    Relation,
    batch_exponent,
    find_relation,
    limit_relation,
    shift_invariant,
)

__all__ = ["trace", "TraceResult", "Relation", "DEFAULT_ORDER", "MAX_TRACE_ORDER"]

# The call of a loss without --call or a recognised signature (not shown in the reports).
_DEFAULT_CALL = "fn(student, teacher, T)"

#: Terms computed when no order is given.
DEFAULT_ORDER = 4
#: The most terms a trace computes (every registry objective is compared at that order).
MAX_TRACE_ORDER = 8


@dataclass(frozen=True)
class TraceResult:
    r"""What :func:`trace` found.

    Parameters
    ==========

    function : str
        ``module:name`` of the traced callable.
    order : int
        Number of terms.
    terms : tuple of :class:`~derive.Term`
        The per-example loss :math:`\ell`, term by term: ``terms[k]`` is the coefficient of
        :math:`T^{-(valuation + k)}` (``power``), printed as ``derive expand`` prints terms.
    valuation : int or None
        The first power with a nonzero term (``-2``: the loss grows like :math:`T^2`);
        ``None`` if the loss is 0.
    batch_weight : sympy expression
        :math:`w` in :math:`w\sum_b \ell_b`: ``1/B`` (a mean over the batch), ``1`` (a sum).
    relation : :class:`~derive.tracing.relations.Relation` or None
        The exact relation to a registry objective, if one holds at every term computed.
    limit : dict or None
        The gradient's leading term against KD's limit
        (:func:`~derive.tracing.relations.limit_relation`);
        ``None`` without a gradient.
    shift_invariant : bool
        Whether the gradient sums to 0 over the classes at every term computed.
    temperature_ignored : bool
        Whether the gradient does not depend on ``T`` at all (exactly).
    no_gradient : bool
        Whether the gradient w.r.t. the student logits is exactly 0.
    stopped : bool
        Whether the student's gradient is stopped somewhere (``detach``).
    kd_terms : tuple of :class:`~derive.Term`
        KD's terms :math:`T^{-0}..T^{-(order-1)}`, printed beside.
    operations : tuple of str
        The operations translated, in order.
    per_example, gradient : sympy expressions
        The exact :math:`\ell` (value) and :math:`\partial\ell/\partial z_i` (with the stopped
        gradients), batch weight included.
    seconds : float
        Time the trace took.
    """

    function: str
    order: int
    terms: tuple
    valuation: int | None
    batch_weight: Any
    relation: Relation | None
    limit: dict[str, Any] | None
    shift_invariant: bool
    temperature_ignored: bool
    no_gradient: bool
    stopped: bool
    kd_terms: tuple = field(repr=False)
    operations: tuple = ()
    per_example: Any = field(default=None, repr=False)
    gradient: Any = field(default=None, repr=False)
    seconds: float = 0.0
    #: The call traced, in words (``--call``, recognised from the signature, or the default).
    call: str = _DEFAULT_CALL

    # -- what the numeric audit measures, predicted ------------------------------------------
    def leading_order(self, *, classes, batch_size):
        r"""What a numeric audit measures at high temperature on logits ``[batch_size, classes]``,
        predicted exactly from the terms, under the audit's JSON names: ``shift_invariant``
        (the gradient sums to 0 over the classes), ``temperature_exponent`` :math:`a` and
        ``limit_scale`` :math:`c` in :math:`g \approx c\,T^a G` (:math:`G` the gradient of KD's
        limit averaged over the batch, so the batch weight is in :math:`c`; for an uncentred
        limit, :math:`c` is the projection on :math:`G`), and ``limit_cosine_is_one``. ``None``
        where there is nothing to measure (no gradient)."""
        numbers = {N: classes, B: batch_size}
        weight = float(self.batch_weight.subs(numbers)) * batch_size
        found = {
            "shift_invariant": self.shift_invariant,
            "temperature_exponent": None,
            "limit_scale": None,
            "limit_cosine_is_one": None,
        }
        if self.no_gradient or self.limit is None:
            return found
        found["temperature_exponent"] = float(self.limit["exponent"])
        found["limit_cosine_is_one"] = False
        for key in ("kd_scale", "uncentred_scale"):
            if key in self.limit:
                found["limit_scale"] = float(self.limit[key].subs(numbers)) * weight
                found["limit_cosine_is_one"] = key == "kd_scale" and found["limit_scale"] > 0
        return found

    def identification(self, *, classes, batch_size):
        """The exact relation as a numeric audit identifies a loss: ``{"objective",
        "parameters", "weight", "temperature_exponent", "via"}``, the weight being the relation's
        factor without its power of ``T``, times the batch weight times ``B``, at this shape (1
        for ``T**2 * KL`` averaged over the batch); ``None`` without an exact relation or
        without a gradient."""
        relation = self.relation
        if relation is None or self.no_gradient:
            return None
        numbers = {N: classes, B: batch_size}
        weight = float((relation.coefficient * self.batch_weight * B).subs(numbers))
        return {
            "objective": relation.objective,
            "parameters": tuple(
                (name, value if isinstance(value, str) else float(value))
                for name, value in relation.parameters
            ),
            "weight": weight,
            "temperature_exponent": relation.temperature_power,
            "via": relation.via,
        }

    # -- output ------------------------------------------------------------------------------
    def relation_text(self):
        """One line: the relation, or why there is none."""
        if self.no_gradient:
            prefix = "no gradient reaches the student logits (detached)"
            if self.relation is not None and self.relation.via == "loss":
                return (
                    f"{prefix}; the value is {self.relation.text[2:]} but training on it "
                    f"does nothing"
                )
            return prefix
        if self.relation is None:
            return "no exact relation to a registry objective at the terms computed"
        powers = self.relation.powers
        span = (
            f"T^{_power(powers[0])}..T^{_power(powers[-1])}"
            if len(powers) > 1
            else f"T^{_power(powers[0])}"
        )
        text = f"ℓ {self.relation.text}, exactly, at every term computed ({span})"
        return text + (
            "; gradient only: the values differ by terms free of z"
            if self.relation.via == "gradient"
            else ""
        )

    def advice(self):
        """Plain-English consequences of the relation and the batch weight."""
        lines = []
        weight = self.batch_weight
        if weight == 1:
            lines.append(
                "batch weight 1: the loss adds the examples; divide by the batch size "
                "(reduction='batchmean') to average them"
            )
        elif weight == 1 / B**2:
            lines.append("batch weight 1/B^2: the batch size divides the loss twice; divide once")
        relation = self.relation
        if relation is None or relation.objective != "kl" or self.no_gradient:
            return lines
        coefficient, power = relation.coefficient, relation.temperature_power
        if coefficient == 1 / N:
            lines.append(
                "factor 1/N: reduction='mean' averages over the classes too; use "
                "reduction='batchmean'"
            )
        elif coefficient != 1:
            lines.append(
                f"factor {coefficient}: a constant factor; harmless if it is your loss weight"
            )
        if power == -2:
            lines.append("factor T^-2: the T**2 factor is missing; multiply the KL term by T**2")
        elif power != 0:
            lines.append(
                f"factor T^{power}: multiply the loss by T**{-power} (KD's gradient "
                f"stays O(1) as T grows)"
            )
        return lines

    def to_json(self) -> dict[str, Any]:
        """The ``derive expand`` JSON shape for the per-example loss, plus ``batch_weight``,
        ``relation`` and what was traced."""
        return {
            "objective": "traced",
            "function": self.function,
            "quantity": "loss",
            "classes": "N",
            "order": self.order,
            "parameters": {},
            "terms": [term.to_json() for term in self.terms],
            "batch_weight": str(self.batch_weight),
            "relation": None if self.relation is None else self.relation.to_json(),
            "limit": None
            if self.limit is None
            else {k: str(v) if k != "exponent" else v for k, v in self.limit.items()},
            "shift_invariant": self.shift_invariant,
            "temperature_ignored": self.temperature_ignored,
            "no_gradient": self.no_gradient,
            "capture": "torch.fx",
            "operations": list(self.operations),
            **({"call": self.call} if self.call != _DEFAULT_CALL else {}),
        }

    def to_text(self) -> str:
        """The report ``python -m derive trace`` prints."""
        weight = (
            "1/B (a mean over the batch)"
            if self.batch_weight == 1 / B
            else "1 (a sum over the batch)"
            if self.batch_weight == 1
            else str(self.batch_weight)
        )
        lines = [
            f"traced {self.function} with torch.fx: {len(self.operations)} operations "
            f"({', '.join(_unique(self.operations))})",
            *([f"called as {self.call}"] if self.call != _DEFAULT_CALL else []),
            f"loss = w * sum_b ℓ(z_b, v_b), batch weight w = {weight}",
            f"relation: {self.relation_text()}",
        ]
        lines += [f"  - {line}" for line in self.advice()]
        lines.append(
            "notation: ⟨f⟩ = (1/N) sum_j f(z_j, v_j), the class mean; z_i, v_i = logits of class i"
        )
        if self.valuation is None:
            lines.append("ℓ = 0 at every term computed")
            return "\n".join(lines)
        for term, kd in zip(self.terms, self.kd_terms):
            lines.append(f"T^{_power(term.power)}:")
            lines.append(f"    ℓ_{term.power} = {term.readable or 0}")
            lines.append(f"    KD_{kd.power} = {kd.readable or 0}")
        return "\n".join(lines)

    def to_latex(self):
        """LaTeX lines: the relation, then each term of :math:`\\ell` and of KD."""
        lines = []
        if self.relation is not None:
            lines.append(self.relation.latex)
        lines.append(r"w = %s" % sympy.latex(self.batch_weight))
        for term, kd in zip(self.terms, self.kd_terms):
            lines.append(r"\ell_{%d} = %s" % (term.power, term.latex or "0"))
            lines.append(r"L_{\mathrm{KD},%d} = %s" % (kd.power, kd.latex or "0"))
        return "\n".join(lines)


def _power(power):
    """The exponent of ``T`` in the coefficient of :math:`T^{-power}`: ``-0``, ``-1``, ``2``."""
    return f"-{power}" if power >= 0 else f"{-power}"


def _unique(items):
    return list(dict.fromkeys(items))


# -- the trace ----------------------------------------------------------------------------------


def trace(
    fn: Callable[..., Any] | str,
    *,
    order: int = DEFAULT_ORDER,
    call: str | CallSpec | None = None,
) -> TraceResult:
    r"""Trace ``fn(student_logits, teacher_logits, T)`` and expand it in :math:`1/T`.

    Parameters
    ==========

    fn : callable or str
        The loss, as written for PyTorch, or ``"MODULE:FUNCTION"``.
    order : int
        Number of terms of the per-example loss, from its first nonzero one
        (``1..MAX_TRACE_ORDER``).
    call : str or :class:`derive.calls.CallSpec`, optional
        How to call ``fn``: a call expression over ``fn``, ``student``, ``teacher``, ``T`` and
        literals (:mod:`derive.calls`, never evaluated as Python). Default: recognised from
        the signature (a ``temperature``/``tau``/``T``/``temp`` keyword; an ``nn.Module``
        class built with the temperature), else ``fn(student, teacher, T)``; the result's
        ``call`` says which.

    Returns
    =======

    TraceResult

    Raises
    ======

    DeriveError
        One line: an unsupported operation and the line of the user's code where it occurs;
        Python control flow that symbolic tracing cannot follow; an error raised by ``fn``; a
        translation that disagrees with ``fn``'s own values or gradients; a loss the engine
        cannot expand.
    """
    _check_torch_installed()
    # lazy: capture imports torch, the optional [verify] extra
    from .capture import capture, describe, load_target

    # lazy: translate imports torch, the optional [verify] extra
    from .translate import translate

    started = time.perf_counter()
    check_order(order, maximum=MAX_TRACE_ORDER, why=" for a trace")
    spec = None if call is None else resolve_call(None, call)  # checked before any import
    if isinstance(fn, str):
        fn = load_target(fn)
    spec = resolve_call(fn, spec)
    if spec is not None:
        fn = bind(fn, spec)
    name = describe(fn)
    _check_signature(fn, name)
    with warnings.catch_warnings():  # the user's code warns for the user, not for us
        warnings.simplefilter("ignore")
        graph, root = capture(fn)
        translation = translate(graph, root)
        with_stops = translation.expr
        gradient_with_stops = with_stops.diff(z_i)
        # Checked as traced: a detached copy minus the original is rounding noise in the
        # function, and exactly 0 once the stops are stripped.
        _check_against_function(fn, name, with_stops, gradient_with_stops)
    per_example, gradient = strip_stops(with_stops), strip_stops(gradient_with_stops)

    algebra = Algebra()
    try:
        loss_series = LeadingSeries.of(per_example, order=order, algebra=algebra)
        gradient_series = LeadingSeries.of(gradient, order=order, algebra=algebra)
    except DeriveError as error:
        raise DeriveError(
            f"the traced loss of {name} has no expansion in 1/T that the engine computes: {error}"
        ) from None
    exponent = batch_exponent(loss_series.polynomials + gradient_series.polynomials, algebra)
    weight = B**exponent if exponent is not None else sympy.Integer(1)
    if exponent:
        loss_series = loss_series.scaled(B**-exponent)
        gradient_series = gradient_series.scaled(B**-exponent)
    relation = find_relation(loss_series, gradient_series, order=order)
    no_gradient = gradient == 0 or gradient_series.zero
    terms = tuple(
        Term(power, (("loss", Polynomial(algebra, polynomial)),), "loss", None)
        for power, polynomial in zip(loss_series.powers, loss_series.polynomials)
    )
    return TraceResult(
        function=name,
        order=order,
        terms=terms,
        valuation=loss_series.valuation,
        batch_weight=weight,
        relation=relation,
        limit=None if no_gradient else limit_relation(gradient_series),
        shift_invariant=shift_invariant(gradient_series),
        temperature_ignored=not no_gradient
        and _independent_of_temperature(gradient, gradient_series),
        no_gradient=no_gradient,
        stopped=has_stops(with_stops),
        kd_terms=_kd_terms(order),
        operations=translation.operations,
        per_example=per_example,
        gradient=gradient,
        seconds=time.perf_counter() - started,
        call=_DEFAULT_CALL if spec is None else spec.describe(),
    )


def _check_signature(fn, name):
    """Refuse, in one line, a function that cannot be called as ``fn(student, teacher, T)``."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # a builtin or an odd callable: tracing will tell
    try:
        signature.bind(None, None, None)
    except TypeError as error:
        raise DeriveError(
            f"trace needs fn(student_logits, teacher_logits, T); {name}{signature} "
            f"cannot be called so ({error})"
        ) from None


def _independent_of_temperature(gradient, series):
    r"""Whether the exact gradient does not depend on ``T``: free of it, or rational in
    :math:`\epsilon` with derivative exactly 0 (tried only when a single term of the series is
    nonzero). A gradient with ``exp`` or ``log`` of :math:`\epsilon` counts as depending on
    ``T``: proving otherwise would need a general simplifier."""
    if not gradient.has(epsilon):
        return True
    if sum(1 for polynomial in series.polynomials if polynomial) != 1:
        return False
    if any(function.has(epsilon) for function in gradient.atoms(sympy.exp, sympy.log)):
        return False
    return canonical(gradient.diff(epsilon)) == 0


def _check_torch_installed():
    """Tracing captures PyTorch code: without torch (``pip install kd-theorems`` without the
    ``[verify]`` extra) it is one line naming the extra, not an ImportError."""
    try:
        # lazy: torch is the optional [verify] extra; this asks whether it is installed
        import torch  # noqa: F401
    except ImportError:
        raise DeriveError("tracing needs torch: pip install 'kd-theorems[verify]'") from None


def _kd_terms(order):
    return expand("loss", order=order).terms


def _check_against_function(fn, name, per_example, gradient):
    """Refuse a translation that disagrees with the function (see :mod:`.numeric`)."""
    # lazy: torch is the optional [verify] extra; derive never imports it at module level
    import torch

    # lazy: capture imports torch, the optional [verify] extra
    from .capture import one_line

    # lazy: numeric imports torch, the optional [verify] extra
    from .numeric import self_check

    def caller(tensor_temperature):
        def call(student, teacher, temperature):
            student = student.detach().clone().requires_grad_(True)
            shown = f"T={temperature:g}" + (" as a 0-d tensor" if tensor_temperature else "")
            if tensor_temperature:
                temperature = torch.tensor(temperature, dtype=torch.float64)
            try:
                value = fn(student, teacher.detach().clone(), temperature)
            except KeyboardInterrupt:
                raise
            except BaseException as error:  # the user's code, contained
                raise DeriveError(
                    f"{name} raised {type(error).__name__}: {one_line(error)} "
                    f"(called with logits {list(student.shape)}, float64, "
                    f"{shown})"
                ) from None
            if not isinstance(value, torch.Tensor) or value.ndim != 0:
                raise DeriveError(
                    f"{name} returned {type(value).__name__}"
                    f"{'' if not isinstance(value, torch.Tensor) else list(value.shape)}"
                    f", expected a scalar tensor ({shown})"
                )
            if not value.requires_grad:
                return value.detach(), torch.zeros_like(student)
            (found,) = torch.autograd.grad(value, student, allow_unused=True)
            return value.detach(), torch.zeros_like(student) if found is None else found

        return call

    mismatch = self_check(caller(False), per_example, gradient)
    if mismatch is None:
        return
    temperature, what, found, expected, tolerance = mismatch
    try:
        tensor_path = self_check(caller(True), per_example, gradient)
    except DeriveError:
        tensor_path = mismatch
    if tensor_path is None:
        raise DeriveError(
            f"unsupported: {name} computes another {what} when T is a Python number than when "
            f"it is a tensor (at T={temperature:g}: {found:.6g}, the traced tensor path "
            f"{expected:.6g}): data-dependent control flow on T, such as isinstance(T, float), "
            f"which symbolic tracing cannot follow; use python -m verify audit"
        )
    raise DeriveError(
        f"the traced expression disagrees with {name} at T={temperature:g}: {what} "
        f"{found:.17g} from the function, {expected:.17g} traced (tolerance {tolerance:.2g}); "
        f"the translation is wrong (a torch.no_grad() block or a custom autograd function "
        f"changes the gradient without changing the graph), so no expansion is given; "
        f"python -m verify audit measures the loss numerically"
    )
