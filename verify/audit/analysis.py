r"""The audit's analysis: where it calls the loss (:func:`plan_probes`, the same plan in the
process that calls the loss and in the one that analyses it) and what it measures, identifies
and judges from the gradients (:func:`analyse`), in process or replayed from
:mod:`.isolated`. :func:`~.core.audit` checks the arguments and calls one or the other.
"""

import dataclasses
import math

import torch

from derive import OBJECTIVES

from ..devices import dtype_name, resolve_device, resolve_dtype
from .candidates import Candidate, Evaluated, raw_logits_candidates
from .defects import correlation_norms, match_defects
from .diagnoses import diagnose
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

__all__ = ["ProbePlan", "analyse", "plan_probes"]

# Rows the identification evaluates derive's terms on: enough to pin the parameters, few
# enough that a large vocabulary stays cheap (about 1024 logits).
_IDENTIFICATION_ELEMENTS = 1024
_IDENTIFICATION_ROWS = 64


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


def analyse(
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
    """The :class:`~.result.AuditResult` of ``fn`` against ``expectation`` (without the symbolic
    check): called in process by :func:`~.core.audit`, or with ``replay``, the loss's values
    sent back from its own process by :mod:`.isolated`."""
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
