r"""The audit: run the loss, measure its gradient, identify it, and judge it against the
declaration.

See :mod:`verify.audit` for what is measured; this module validates the arguments (every
size has a maximum, :data:`LIMITS`, checked before any work) and runs the steps in order.
"""

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import torch

from derive import OBJECTIVES
from derive._validate import check_flag, is_integer

from .._errors import MAX_SEED, VerifyError, check_argument
from ..devices import dtype_name, resolve_device, resolve_dtype
from .calling import call_plan, check_mask_use, described_call, traced_function
from .candidates import Candidate, Evaluated, raw_logits_candidates
from .defects import correlation_norms, match_defects
from .diagnoses import diagnose
from .expectation import _is_real, parse_expectation
from .fitting import (
    extrapolate,
    ignores_temperature,
    power_law,
    shift_invariance,
    tensor_temperature,
)
from .identification import Fitter, Identification, identify
from .loading import Sandbox, describe_function, inspect_signature
from .probing import (
    MODERATE_TEMPERATURES,
    Probe,
    RoundingModel,
    draw_inputs,
    fit_temperatures,
    identification_temperatures,
)
from .result import AuditResult, _significant
from .sequences import classify, measure_pattern, pattern_tolerance
from .symbolic import TRACE_ORDER, check_symbolically, not_traced

__all__ = [
    "audit",
    "check_options",
    "DEFAULT_CLASSES",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_TIMEOUT",
    "LIMITS",
]

#: Defaults of :func:`audit` (and of the CLI).
DEFAULT_CLASSES = 10
DEFAULT_BATCH_SIZE = 16
DEFAULT_TIMEOUT = 300.0

#: The largest value of each size, checked before any work: classes (a large vocabulary; the
#: identification's memory grows as about 45 kB per class, 3 GB at 2**16 classes, measured on
#: 2 CPU cores), batch size, sequence length, their product (the elements of one logits tensor;
#: the audit keeps about 30 gradients of that size in float64), and the timeout in seconds.
LIMITS = {
    "classes": 2**16,
    "batch_size": 2**12,
    "sequence_length": 2**12,
    "elements": 2**21,
    "timeout": 86400.0,
    "seed": MAX_SEED + 1,
}

# Rows the identification evaluates derive's terms on: enough to pin the parameters, few
# enough that a large vocabulary stays cheap (about 1024 logits).
_IDENTIFICATION_ELEMENTS = 1024
_IDENTIFICATION_ROWS = 64


def _is_integer(value):
    return is_integer(value)


def _checked_call_text(call):
    """The parsed ``call`` (``None`` for none), refused before anything is imported."""
    if call is None:
        return None
    from derive import DeriveError
    from derive.calls import parse_call

    try:
        return parse_call(call)
    except DeriveError as error:
        raise VerifyError(str(error)) from None


def check_options(
    *,
    classes=DEFAULT_CLASSES,
    batch_size=DEFAULT_BATCH_SIZE,
    sequence_length=None,
    mask=False,
    seed=0,
    dtype=torch.float64,
    device="cpu",
    timeout=DEFAULT_TIMEOUT,
):
    """Check :func:`audit`'s options, every size against :data:`LIMITS`, before any work."""
    check_argument(
        _is_integer(classes) and 2 <= classes <= LIMITS["classes"],
        "classes must be an integer in [2, {}], got {!r}",
        LIMITS["classes"],
        classes,
    )
    check_argument(
        _is_integer(batch_size) and 2 <= batch_size <= LIMITS["batch_size"],
        "batch_size must be an integer in [2, {}] (with one example 'sum' and "
        "'batchmean' coincide), got {!r}",
        LIMITS["batch_size"],
        batch_size,
    )
    check_argument(
        sequence_length is None
        or _is_integer(sequence_length)
        and 1 <= sequence_length <= LIMITS["sequence_length"],
        "sequence_length must be None or an integer in [1, {}], got {!r}",
        LIMITS["sequence_length"],
        sequence_length,
    )
    elements = classes * batch_size * (sequence_length or 1)
    check_argument(
        elements <= LIMITS["elements"],
        "the logits would have {} elements (batch x length x classes); at most {} "
        "(2**21) are audited: reduce the classes, batch size or sequence length",
        elements,
        LIMITS["elements"],
    )
    check_argument(
        isinstance(mask, bool),
        "mask must be True or False, got {!r} (or 'labels' for Hugging Face labels)",
        mask,
    )
    check_argument(
        not mask or sequence_length is not None,
        "mask=True needs token sequences (a sequence_length; --shape B,L,N)",
    )
    check_argument(
        _is_integer(seed) and 0 <= seed < LIMITS["seed"],
        "seed must be an integer in [0, {}], got {!r}",
        MAX_SEED,
        seed,
    )
    check_argument(
        isinstance(dtype, (str, torch.dtype)),
        "dtype must be one of float64, float32, got {!r}",
        dtype,
    )
    check_argument(
        isinstance(device, (str, torch.device)),
        "device must be one of auto, cpu, cuda, got {!r}",
        device,
    )
    check_argument(
        _is_real(timeout) and 0 < timeout <= LIMITS["timeout"],
        "timeout must be a number of seconds in (0, {:g}], got {!r}",
        LIMITS["timeout"],
        timeout,
    )


def audit(
    fn: Callable[..., Any] | str,
    *,
    classes: int = DEFAULT_CLASSES,
    batch_size: int = DEFAULT_BATCH_SIZE,
    sequence_length: int | None = None,
    mask: bool | str = False,
    dtype: str | torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
    seed: int = 0,
    expect: str | None = None,
    weight: float = 1.0,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Callable[[str], object] | None = None,
    symbolic: bool = True,
    call: Any = None,
    power: float = 0.0,
) -> AuditResult:
    r"""Audit a distillation loss ``fn(student_logits, teacher_logits, T) -> scalar tensor``.

    Parameters
    ==========

    fn : callable or str
        The loss, or ``"MODULE:FUNCTION"``: then it is imported and called only in a child
        process (:mod:`verify.audit.isolated`), which nothing it does can escape. Called
        with student logits ``[batch_size, classes]`` (or
        ``[batch_size, sequence_length, classes]``) that require grad, teacher logits of the
        same shape, and ``T`` as a Python float (once more as a 0-d tensor); with class
        indices as its fourth argument ``target`` if it takes one, and with ``mask=``
        (``[B, L]`` bool, True for real tokens) if it takes a ``mask`` and the logits are
        sequences.
    classes, batch_size, sequence_length : int
        The shape; ``sequence_length=None`` audits ``[B, N]`` logits.
    mask : bool or "labels"
        Pad the sequences at random (the first stays full); ``"labels"`` passes Hugging Face
        labels ``[B, L]`` instead of the boolean mask: class indices, -100 at padded positions.
    dtype, device, seed
        ``float64`` (default) or ``float32``; ``"cpu"``, ``"cuda"`` or ``"auto"``; the seed of
        the random logits (the same seed gives the same result).
    expect : str, optional
        The declared objective, ``"NAME[:k=v,...]"`` with NAME in :data:`derive.OBJECTIVES`;
        default ``kl`` (Hinton's KD).
    weight : float
        The declared weight of that objective in the loss (default 1).
    call : str, optional
        How to call ``fn``: a call expression over ``fn``, ``student``, ``teacher``, ``T``,
        ``target``, ``mask`` and literals (:mod:`derive.calls`, never evaluated as Python),
        e.g. ``"fn(student, teacher, beta=0.5, temperature=T)"``. Default: recognised from
        the signature (a ``temperature``/``tau``/``T``/``temp`` keyword; an ``nn.Module``
        class built with the temperature), else ``fn(student, teacher, T)``. The result's
        ``call`` says which call was made.
    power : float
        The declared power of ``T`` multiplying the objective (default 0): ``-2`` for a loss
        written without the ``T**2`` factor (e.g. an MSE of ``logits / T``).
    timeout : float
        Seconds the audit may take (default 300).
    progress : callable, optional
        Called with a short message before each step (the CLI shows it on a terminal).
    symbolic : bool
        Also trace the loss with :func:`derive.trace` (default) and compare its exact relation
        with the numeric identification (:mod:`.symbolic`): the result's ``symbolic``. A loss
        that cannot be traced is audited all the same (``symbolic.reason`` says why); a
        disagreement is reported in ``symbolic.disagreements``, the verdict stays the numeric
        one. ``False`` skips the trace.

    Raises
    ======

    VerifyError
        On bad arguments, or when ``fn`` raises (anything, ``SystemExit`` included), exceeds
        the timeout, returns something other than a finite scalar floating tensor, or has a
        non-finite gradient.

    The audit runs torch with one intra-op thread (restored afterwards): its tensors are
    small, and on a busy machine extra threads only wait on each other (an audit measured 9
    times slower with two threads on two loaded cores).
    """
    check_argument(
        callable(fn) or isinstance(fn, str),
        "fn must be callable as fn(student_logits, teacher_logits, T), or MODULE:FUNCTION, "
        "got {!r}",
        fn,
    )
    labels_mask = isinstance(mask, str) and mask == "labels"
    check_options(
        classes=classes,
        batch_size=batch_size,
        sequence_length=sequence_length,
        mask=bool(mask) if labels_mask else mask,
        seed=seed,
        dtype=dtype,
        device=device,
        timeout=timeout,
    )
    check_argument(
        progress is None or callable(progress),
        "progress must be None or callable, got {!r}",
        progress,
    )
    check_flag(symbolic, name="symbolic", error=VerifyError)
    mask = bool(mask)
    check_argument(
        _is_real(power) and math.isfinite(power),
        "power must be a finite number (the declared power of T), got {!r}",
        power,
    )
    if isinstance(fn, str):  # the call is resolved against the loss in its own process
        spec, signature = _checked_call_text(call), None
    else:
        spec, signature = call_plan(fn, call, mask=mask, labels=labels_mask)
    check_mask_use(spec, sequence_length)
    expectation = dataclasses.replace(parse_expectation(expect, weight), power=float(power))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    started = time.monotonic()
    try:
        if isinstance(fn, str):  # the loss runs in its own process (:mod:`.isolated`)
            from .isolated import run_audit

            result, check = run_audit(
                fn,
                expectation,
                timeout=timeout,
                progress=progress,
                symbolic=symbolic,
                classes=classes,
                batch_size=batch_size,
                sequence_length=sequence_length,
                mask=mask,
                dtype=dtype_name(resolve_dtype(dtype)),
                device=str(device),
                seed=seed,
                call=None if spec is None else spec.text,
                labels_mask=labels_mask,
            )
            return dataclasses.replace(result, symbolic=check, power=float(power))
        result = _audit(
            fn,
            expectation,
            classes=classes,
            batch_size=batch_size,
            sequence_length=sequence_length,
            mask=mask,
            dtype=dtype,
            device=device,
            seed=seed,
            timeout=timeout,
            progress=progress,
            plan=(spec, signature, labels_mask),
        )
        traced = traced_function(fn, spec)
        if not symbolic:
            check = not_traced("not asked for (--no-trace)")
        elif traced is None:
            check = not_traced(
                f"the call {spec.text} passes a target or a mask: the trace takes "
                "fn(student_logits, teacher_logits, T)"
            )
        else:
            if progress is not None:
                progress("tracing the loss symbolically")
            check = check_symbolically(
                traced,
                result,
                expectation=expectation,
                signature=signature,
                sequence_length=sequence_length,
                order=TRACE_ORDER,
                remaining=timeout - (time.monotonic() - started),
            )
        return dataclasses.replace(
            result,
            symbolic=check,
            call="" if spec is None else described_call(spec, signature),
            power=float(power),
        )
    finally:
        torch.set_num_threads(threads)


@dataclasses.dataclass(frozen=True)
class ProbePlan:
    """Where the audit calls the loss, computed from the options and the loss's signature
    alone (the same in the process that calls the loss and in the one that analyses it):
    the logits, the identification rows, the temperature grids and the class permutation."""

    shape: tuple
    inputs: object
    count: int
    rows: tuple
    fit_grid: tuple
    id_grid: tuple
    temperatures: tuple
    permutation: torch.Tensor


def plan_probes(*, classes, batch_size, sequence_length, mask, dtype, seed, signature):
    """The :class:`ProbePlan` of an audit (``dtype`` a torch dtype)."""
    shape = (
        (batch_size, classes) if sequence_length is None else (batch_size, sequence_length, classes)
    )
    inputs = draw_inputs(
        shape, seed=seed, dtype=dtype, mask=mask, random_labels=signature.target is not None
    )
    student, teacher, labels = (
        inputs.rows(inputs.student),
        inputs.rows(inputs.teacher),
        inputs.row_labels,
    )
    count = min(student.shape[0], _IDENTIFICATION_ROWS, max(2, _IDENTIFICATION_ELEMENTS // classes))
    rows = (student[:count], teacher[:count], labels[:count])
    fit_grid = fit_temperatures(dtype)
    id_grid = identification_temperatures(rows[0], rows[1])
    return ProbePlan(
        shape=shape,
        inputs=inputs,
        count=count,
        rows=rows,
        fit_grid=fit_grid,
        id_grid=id_grid,
        temperatures=fit_grid + id_grid + MODERATE_TEMPERATURES,
        permutation=torch.randperm(classes, generator=torch.Generator().manual_seed(seed)),
    )


def _audit(
    fn,
    expectation,
    *,
    classes,
    batch_size,
    sequence_length,
    mask,
    dtype,
    device,
    seed,
    timeout,
    progress,
    replay=None,
    plan=(None, None, False),
):
    dtype, device = resolve_dtype(dtype), resolve_device(device)
    spec, signature, labels_mask = plan
    if replay is None:
        sandbox = Sandbox(describe_function(fn), timeout=timeout)
        signature = inspect_signature(fn) if signature is None else signature
    else:  # the loss ran in its own process; only the analysis's deadline is checked here
        sandbox = Sandbox(replay.name, timeout=timeout)
        signature = replay.signature
    plan = plan_probes(
        classes=classes,
        batch_size=batch_size,
        sequence_length=sequence_length,
        mask=mask,
        dtype=dtype,
        seed=seed,
        signature=signature,
    )
    shape, inputs = plan.shape, plan.inputs
    if replay is None:
        probe = Probe(
            fn, inputs, device=device, signature=signature, sandbox=sandbox, progress=progress
        )
        probe.use_call(spec, labels_mask=labels_mask)
    else:
        probe = replay.probe(plan)
    student, teacher, labels = (
        inputs.rows(inputs.student),
        inputs.rows(inputs.teacher),
        inputs.row_labels,
    )
    count, rows = plan.count, plan.rows
    fit_grid, id_grid, temperatures = plan.fit_grid, plan.id_grid, plan.temperatures
    raw = torch.stack([probe.gradient(t).reshape(-1, classes) for t in temperatures])
    permutation = plan.permutation
    # Round-off measured per temperature, the largest over the rows (one row's sample can
    # happen to be exact), for every row.
    noise = {
        t: (probe.permuted_gradient(t, permutation).reshape(-1, classes) - gradient)
        .abs()
        .sum(-1)
        .amax()
        .expand(gradient.shape[0])
        for t, gradient in zip(temperatures, raw)
    }
    flat = (
        inputs.student.reshape(-1, classes).double(),
        inputs.teacher.reshape(-1, classes).double(),
    )
    shift = shift_invariance(raw, temperatures, RoundingModel(*flat, dtype=dtype, noise=noise))
    real = raw[:, inputs.real]
    findings = {
        "shift": shift,
        "grid": fit_grid,
        "expected": expectation.to_tuple(),
        "expectation": expectation,
        "classes": classes,
        "batch_size": batch_size,
        "sequence": inputs.sequence,
        "signature": signature,
        "notes": [],
    }
    base = dict(
        shift_invariant=shift["invariant"],
        classes=classes,
        batch_size=batch_size,
        sequence_length=sequence_length,
        labels=inputs.label_source,
        shift_worst_error=shift["error"],
        shift_tolerance=shift["tolerance"],
        shift_temperature=shift["temperature"],
        temperatures=fit_grid,
        identification_temperatures=id_grid,
        function=sandbox.name,
        dtype=dtype_name(dtype),
        device=str(device),
        seed=seed,
        expected=expectation.to_tuple(),
    )
    if not probe.has_gradient or not bool(raw.abs().amax() > 0):
        findings["no_gradient"] = True
        causes, diagnoses, notes, verdict = diagnose(findings)
        return AuditResult(
            temperature_exponent=None,
            limit_scale=None,
            limit_cosine=None,
            verdict=verdict,
            diagnoses=tuple(diagnoses),
            causes=tuple(causes),
            printed_lines=sandbox.printed_lines if replay is None else replay.printed_lines,
            **base,
        )
    findings["no_gradient"] = False

    # Row weights: 1/B per example; for tokens, the measured pattern over the real ones.
    tokens = student.shape[0]
    if inputs.sequence:
        weights, _ = measure_pattern(probe, inputs)
        pattern = weights.reshape(-1)[inputs.real]
        tolerance = pattern_tolerance(shape, dtype)
        usable = bool((pattern > tolerance).all())
        row_weights = (pattern if usable else torch.ones(tokens, dtype=torch.float64)) / tokens
    else:
        row_weights = torch.full((tokens,), 1.0 / batch_size, dtype=torch.float64)
    per_example = _declared_limit(expectation, student, teacher, labels)
    reference = per_example * row_weights[:, None]
    uncentred = (student - teacher) * row_weights[:, None]
    rounding = RoundingModel(
        student, teacher, dtype=dtype, noise={t: value[inputs.real] for t, value in noise.items()}
    )
    fit = power_law(real[: len(fit_grid)], fit_grid, reference)
    logit_scale = float(
        torch.cat(
            [student - student.mean(-1, keepdim=True), teacher - teacher.mean(-1, keepdim=True)]
        )
        .abs()
        .amax()
    )
    limit = extrapolate(
        real[: len(fit_grid)],
        fit_grid,
        fit["used"],
        reference,
        uncentred,
        logit_scale=logit_scale,
        dtype=dtype,
    )
    findings.update(
        fit=fit,
        limit=limit,
        scale_tolerance=limit["scale_tolerance"],
        ignored=ignores_temperature(real, temperatures, rounding),
    )
    if progress is not None:
        progress("comparing a tensor temperature with a float one")
    findings["tensor"] = tensor_temperature(
        probe,
        (real[-1], real[len(fit_grid) - 1]),
        (temperatures[-1], fit_grid[-1]),
        rounding,
        inputs.rows,
    )

    # Identification on the first rows, per example, rescaled by the measured power of T.
    identification, declared, defect, exponent = Identification((), ()), None, None, None
    if shift["invariant"] or raw_logits_candidates():
        if progress is not None:
            progress("identifying the objective")
        scaled = {t: rounding.noise[t][:count] / row_weights[:count] for t in temperatures}
        identification, declared, defect, exponent = _identify(
            real,
            rows,
            row_weights[:count, None],
            per_example[:count],
            temperatures,
            len(fit_grid),
            id_grid,
            dtype,
            sandbox,
            progress,
            findings,
            scaled,
        )
        if not shift["invariant"]:
            findings["notes"].append(
                "the loss is not shift invariant: only the objectives that see the raw logits "
                "were fitted (" + ", ".join(c.label for c in raw_logits_candidates()) + ")"
            )
    else:
        findings["notes"].append(
            "no registered objective was fitted: they are all functions "
            "of the two softmaxes, so their gradients sum to zero"
        )
    findings.update(
        expected=expectation.to_tuple(),
        identification=identification,
        declared=declared,
        defect=defect,
    )
    shown = (
        declared if declared is not None and declared.accepted else identification.best or defect
    )
    if inputs.sequence:
        scale = (shown.weight if shown is not None else limit["scale"]) / expectation.weight
        scale_tolerance = shown.tolerance if shown is not None else limit["scale_tolerance"]
        resolution = pattern_tolerance(shape, dtype)
        padded_positions = (
            ~inputs.mask if inputs.mask is not None else torch.zeros(shape[:2], dtype=torch.bool)
        )
        findings["normalization"] = classify(
            weights,
            padded_positions,
            inputs.lengths,
            scale,
            tolerance=resolution,
            scale_tolerance=max(scale_tolerance, resolution),
        )
    if (
        shown is not None
        and OBJECTIVES[shown.objective].labelled
        and inputs.label_source == "teacher-argmax"
    ):
        findings["notes"].append(
            "the loss takes no target: labelled objectives were fitted "
            "with the teacher's argmax as the target"
        )
    causes, diagnoses, notes, verdict = diagnose(findings)
    closest = identification.closest
    normalization = findings.get("normalization")
    return AuditResult(
        temperature_exponent=fit["exponent"],
        limit_scale=_significant(limit["scale"]) if fit["power_law"] else None,
        limit_cosine=_significant(limit["cosine"]),
        verdict=verdict,
        diagnoses=tuple(diagnoses),
        causes=tuple(causes),
        objective=shown.objective if shown is not None else "unknown",
        parameters=_reported(shown),
        weight=_significant(shown.weight) if shown is not None else None,
        match_error=_significant(
            shown.error if shown is not None else closest.error if closest is not None else None, 3
        ),
        match_tolerance=_significant(
            shown.tolerance
            if shown is not None
            else closest.tolerance
            if closest is not None
            else None,
            3,
        ),
        defect=None if defect is None or shown is not defect else defect.defect,
        defect_parameters=() if defect is None or shown is not defect else defect.parameters,
        alternatives=tuple(
            m.to_json() for m in identification.accepted if shown is None or m.label != shown.label
        ),
        normalization=None if normalization is None else (normalization.name or "other"),
        normalization_scale=None if normalization is None else _significant(normalization.scale),
        exponent_fit=fit["exponent_fit"],
        fit_residual=fit["fit_residual"],
        scale_tolerance=limit["scale_tolerance"],
        identification_exponent=exponent,
        tensor_temperature=findings["tensor"][0],
        printed_lines=sandbox.printed_lines if replay is None else replay.printed_lines,
        notes=tuple(notes),
        limit_established=limit["established"],
        **base,
    )


def _identify(
    real,
    rows,
    weights,
    limit,
    temperatures,
    fits,
    id_grid,
    dtype,
    sandbox,
    progress,
    findings,
    noise,
):
    """Identification, the declared objective's fit, and the known defects when neither
    fits: ``(identification, declared, defect, exponent)``."""
    y_id = real[fits : fits + len(id_grid), : weights.shape[0]] / weights
    id_fit = power_law(y_id, id_grid, limit)
    exponent = (
        round(2.0 * id_fit["exponent_fit"]) / 2.0 + 0.0
        if id_fit["exponent_fit"] is not None
        else 0.0
    )
    model = RoundingModel(rows[0], rows[1], dtype=dtype, noise=noise)
    id_rounding = model.relative(y_id, id_grid)
    grid = torch.tensor(id_grid, dtype=torch.float64)
    fitter = Fitter(
        y_id / grid[:, None, None] ** exponent,
        id_grid,
        id_rounding,
        exponent=exponent,
        student=rows[0],
        teacher=rows[1],
        labels=rows[2],
    )
    invariant = findings["shift"]["invariant"]
    identification = identify(
        fitter,
        candidates=None if invariant else raw_logits_candidates(),
        check_time=sandbox.check_time,
    )
    expectation = findings["expectation"]
    declared = fitter.fit(expectation.candidate, fixed=dict(expectation.fixed))

    def weight_fits(match, weight):
        """Whether ``match``'s objective fits as well with its weight fixed at ``weight``."""
        if match.defect is not None:
            return abs(match.weight / weight - 1.0) <= match.tolerance
        choices = tuple((k, v) for k, v in match.parameters if isinstance(v, str))
        fixed = dict(expectation.fixed) if match is declared else {}
        return fitter.fit(Candidate(match.objective, choices), fixed=fixed, weight=weight).accepted

    findings["weight_fits"] = weight_fits
    defect = None
    if identification.best is None and not declared.accepted and invariant:
        if progress is not None:
            progress("comparing with known defects")
        order = sorted(range(fits + len(id_grid)), key=lambda i: temperatures[i])
        chosen = [temperatures[i] for i in order]
        y_all = real[order, : weights.shape[0]] / weights
        all_rounding = model.relative(y_all, chosen)
        defect = match_defects(
            y_all,
            chosen,
            all_rounding,
            student=rows[0],
            teacher=rows[1],
            check_time=sandbox.check_time,
        )
        if defect is not None and defect.defect == "eps-denominator":
            eps = dict(defect.parameters)["eps"]
            norms = correlation_norms(rows[0], rows[1], id_grid[0]) * id_grid[0] ** 2
            findings["eps_takeover"] = math.sqrt(norms / eps)
    return identification, declared, defect, exponent


def _reported(match):
    """The objective's own parameters of a match (a defect's parameter is reported apart)."""
    if match is None or match.defect is not None:
        return ()
    return tuple(
        (name, value if isinstance(value, str) else _significant(value))
        for name, value in match.parameters
    )


def _declared_limit(expectation, student, teacher, labels):
    r"""The declared objective's :math:`G_0` per example (weight 1): for KD
    :math:`\frac1N[(z - v) - (\langle z\rangle - \langle v\rangle)]`; otherwise derive's leading
    term at the declared parameters (a free one at the middle of its range)."""
    if expectation.objective == "kl" or not student.shape[0]:
        difference = student - teacher
        return (difference - difference.mean(-1, keepdim=True)) / student.shape[-1]
    leaf = student.detach().clone().requires_grad_(True)
    evaluated = Evaluated(expectation.candidate, leaf, teacher, labels)
    fixed = dict(expectation.fixed)
    values = tuple(
        fixed.get(name, _middle(parameter))
        for name, parameter in zip(evaluated.shape.names, evaluated.shape.parameters)
    )
    return evaluated.terms(values)[0]


def _middle(parameter):
    """A parameter's value for the reference limit when the declaration leaves it free."""
    if parameter is None:
        return 1.0
    low = None if parameter.low is None else float(parameter.low)
    high = None if parameter.high is None else float(parameter.high)
    if low is not None and high is not None:
        return (low + high) / 2.0
    return 1.0 if low is None or low < 1.0 else low + 1.0
