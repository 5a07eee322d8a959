r"""The audit of a ``"MODULE:FUNCTION"`` target, with the loss in its own process.

``verify audit`` (and ``audit("MODULE:FUNCTION")``) imports and calls the loss only in one child
process (:func:`derive._isolation.run_isolated`), for the whole audit: the child imports the
module, calls the loss at every temperature the audit needs (:func:`~.analysis.plan_probes`, the
same plan in both processes) and traces it (:func:`~.symbolic.trace_plainly`); it sends back
the gradients as float64 bytes and the trace as plain data. This process checks every gradient
(shape, size, finiteness) and runs the whole analysis itself on them, with its own copy of the
logits: the verdict and the exit code depend on nothing else the loss can do. Whatever ends the
child otherwise (``os._exit``, a signal, the deadline, memory) is one
:class:`~verify.VerifyError`, and what the loss printed is counted
(:attr:`~.result.AuditResult.printed_lines`), never shown on our stdout or stderr.

Examples
========

>>> from verify.audit import audit
>>> result = audit("verify.gallery:kd_batchmean", expect="kl")
>>> result.verdict, result.function
('consistent', 'verify.gallery:kd_batchmean')
"""

import dataclasses
import math
import time

import torch

from derive._isolation import run_isolated
from derive._targets import check_target, resolve_target

from .._errors import VerifyError
from ..devices import resolve_device, resolve_dtype
from .analysis import analyse, plan_probes
from .calling import call_plan, check_mask_use, described_call, traced_function
from .loading import Sandbox, Signature, describe_function
from .probing import Probe
from .sequences import measure_pattern
from .symbolic import TRACE_ORDER, not_traced, symbolic_check, trace_plainly

__all__ = ["run_audit"]


def run_audit(
    target, expectation, *, timeout, progress, symbolic, call=None, labels_mask=False, **sizes
):
    """The audit's result for a checked ``target`` (called by :func:`~.core.audit`); ``call``
    is the text of a call expression (checked already), resolved in the child with the loss."""
    check_target(target, error=VerifyError)
    started = time.monotonic()
    if progress is not None:
        progress(f"calling the loss at T=... in its own process ({target})")
    run = run_isolated(
        measure,
        target,
        timeout=timeout,
        error=VerifyError,
        what=f"the audit of {target}",
        symbolic=symbolic,
        budget=timeout,
        call=call,
        labels_mask=labels_mask,
        **sizes,
    )
    replay = Replay.of(run.value, printed_lines=run.printed_lines)
    remaining = timeout - (time.monotonic() - started)
    if remaining <= 0:
        raise VerifyError(
            f"the audit of {target} did not finish within its timeout of {timeout:g} s"
        )
    result = analyse(
        None,
        expectation,
        timeout=remaining,
        progress=progress,
        replay=replay,
        **sizes,
    )
    result = dataclasses.replace(result, call=replay.call)
    if not symbolic:
        return result, not_traced("not asked for (--no-trace)")
    return result, symbolic_check(replay.trace, result, expectation)


# -- the child -----------------------------------------------------------------------------------


class _RecordingProbe(Probe):
    """A :class:`~.probing.Probe` that keeps the pattern gradient it computes."""

    recording = None

    def gradient(self, temperature, **logits):
        found = super().gradient(temperature, **logits)
        if self.recording is not None:
            self.recording.append(("pattern", temperature, found))
        return found


def _encoded(kind, temperature, gradient):
    if gradient is None:
        return [kind, float(temperature), None, None]
    gradient = gradient.detach().to("cpu", torch.float64).contiguous()
    return [kind, float(temperature), list(gradient.shape), gradient.numpy().tobytes()]


def measure(
    target,
    *,
    classes,
    batch_size,
    sequence_length,
    mask,
    dtype,
    device,
    seed,
    symbolic,
    budget,
    call=None,
    labels_mask=False,
):
    """In the child: import the loss, call it where the plan says (as ``call`` says, or as
    its signature is recognised), trace it; plain data out.

    The deadline is the parent's; the timeout of the contained calls here is only a bound.
    torch runs on one thread here, as in every child of run_isolated."""
    started = time.monotonic()
    fn = resolve_target(target, error=VerifyError)
    spec, signature = call_plan(fn, call, mask=mask, labels=labels_mask)
    check_mask_use(spec, sequence_length)
    name = describe_function(fn)
    dtype, device = resolve_dtype(dtype), resolve_device(device)
    plan = plan_probes(
        classes=classes,
        batch_size=batch_size,
        sequence_length=sequence_length,
        mask=mask,
        dtype=dtype,
        seed=seed,
        signature=signature,
    )
    sandbox = Sandbox(name, timeout=86400.0)
    probe = _RecordingProbe(fn, plan.inputs, device=device, signature=signature, sandbox=sandbox)
    probe.use_call(spec, labels_mask=labels_mask)
    records = []
    plain = []
    for temperature in plan.temperatures:
        gradient = probe.gradient(temperature)
        plain.append(gradient)
        records.append(_encoded("plain", temperature, gradient))
    for temperature in plan.temperatures:
        gradient = probe.permuted_gradient(temperature, plan.permutation)
        records.append(_encoded("permuted", temperature, gradient))
    # As the analysis reads it: after the plain and permuted gradients, before the others.
    has_gradient = bool(probe.has_gradient)
    nonzero = has_gradient and any(bool(g.abs().amax() > 0) for g in plain)
    if nonzero:
        if plan.inputs.sequence:
            probe.recording = []
            measure_pattern(probe, plan.inputs)
            records += [_encoded(*found) for found in probe.recording]
            probe.recording = None
        for temperature in (plan.temperatures[-1], plan.fit_grid[-1]):
            records.append(_encoded("tensor", temperature, probe.tensor_gradient(temperature)))
    trace = None
    traced = traced_function(fn, spec)
    if symbolic and traced is None:
        trace = {
            "traced": False,
            "reason": f"the call {spec.text} passes a target or a mask: the trace takes "
            "fn(student_logits, teacher_logits, T)",
        }
    elif symbolic:
        trace = trace_plainly(
            traced,
            name=name,
            classes=classes,
            batch_size=batch_size,
            signature=signature,
            sequence_length=sequence_length,
            remaining=budget - (time.monotonic() - started),
            order=TRACE_ORDER,
        )
    return {
        "name": name,
        "signature": [signature.target, signature.mask],
        "call": "" if spec is None else described_call(spec, signature),
        "has_gradient": has_gradient,
        "records": records,
        "trace": trace,
        "seconds": time.monotonic() - started,
        "printed_lines": sandbox.printed_lines,
    }


# -- the parent ----------------------------------------------------------------------------------


class Replay:
    """The child's measurements, validated; :meth:`probe` serves them as a probe would."""

    def __init__(self, *, name, signature, call, has_gradient, records, trace, printed_lines):
        self.name, self.signature, self.has_gradient = name, signature, has_gradient
        self.call = " ".join(call.split())
        self.records, self.trace, self.printed_lines = records, trace, printed_lines

    @classmethod
    def of(cls, value, *, printed_lines):
        """Validate the child's plain data (``VerifyError`` for anything malformed)."""
        keys = {
            "name",
            "signature",
            "call",
            "has_gradient",
            "records",
            "trace",
            "seconds",
            "printed_lines",
        }
        _check(isinstance(value, dict) and set(value) == keys, "a result of an unknown form")
        name = value["name"]
        _check(isinstance(name, str) and 0 < len(name) <= 1000, "a malformed function name")
        name = " ".join(name.split())
        signature = value["signature"]
        _check(
            isinstance(signature, list)
            and len(signature) == 2
            and signature[0] in (None, "positional", "keyword")
            and isinstance(signature[1], bool),
            "a malformed signature",
        )
        _check(isinstance(value["has_gradient"], bool), "a malformed gradient flag")
        _check(isinstance(value["call"], str) and len(value["call"]) <= 1000, "a malformed call")
        _check(
            type(value["printed_lines"]) is int and value["printed_lines"] >= 0,
            "a malformed count of printed lines",
        )
        printed_lines += value["printed_lines"]
        records = {}
        _check(isinstance(value["records"], list), "malformed gradients")
        for record in value["records"]:
            _check(
                isinstance(record, list)
                and len(record) == 4
                and record[0] in ("plain", "permuted", "pattern", "tensor")
                and isinstance(record[1], float),
                "a malformed gradient record",
            )
            kind, temperature, shape, data = record
            if data is None:
                _check(shape is None and kind == "tensor", "a gradient missing")
                records[kind, temperature] = None
                continue
            _check(
                isinstance(shape, list)
                and all(isinstance(s, int) and s >= 0 for s in shape)
                and isinstance(data, bytes)
                and len(data) == 8 * math.prod(shape),
                "a gradient whose size does not match its shape",
            )
            gradient = torch.frombuffer(bytearray(data), dtype=torch.float64).reshape(shape)
            records[kind, temperature] = gradient
        return cls(
            name=name,
            signature=Signature(target=signature[0], mask=signature[1]),
            call=value["call"],
            has_gradient=value["has_gradient"],
            records=records,
            trace=value["trace"],
            printed_lines=printed_lines,
        )

    def probe(self, plan):
        return _ReplayProbe(self, plan)


def _check(condition, what):
    if not condition:
        raise VerifyError(f"the loss's process sent back {what}; nothing was audited")


class _ReplayProbe:
    """The probe interface the analysis uses, answered from the validated measurements."""

    def __init__(self, replay, plan):
        self.replay, self.plan = replay, plan
        self.inputs = plan.inputs
        self.student, self.teacher = plan.inputs.student, plan.inputs.teacher
        self.has_gradient = replay.has_gradient
        self.name = replay.name

    def _get(self, kind, temperature, *, optional=False):
        key = (kind, float(temperature))
        if key not in self.replay.records:
            if optional:
                return None
            raise VerifyError(
                f"the loss's process did not measure the {kind} gradient at T={temperature:g}; "
                f"nothing was audited"
            )
        gradient = self.replay.records[key]
        if gradient is None:
            return None
        _check(tuple(gradient.shape) == tuple(self.plan.shape), "a gradient of another shape")
        return gradient

    def gradient(self, temperature, student=None, teacher=None, labels=None):
        gradient = self._get("plain" if student is None else "pattern", temperature)
        if not bool(torch.isfinite(gradient).all()):
            raise VerifyError(
                f"the gradient of {self.name} w.r.t. the student logits is not finite at "
                f"T={temperature:g}"
            )
        return gradient

    def permuted_gradient(self, temperature, permutation):
        _check(torch.equal(permutation, self.plan.permutation), "another permutation")
        gradient = self._get("permuted", temperature)
        _check(bool(torch.isfinite(gradient).all()), "a gradient that is not finite")
        return gradient

    def tensor_gradient(self, temperature):
        gradient = self._get("tensor", temperature, optional=True)
        if gradient is None or not bool(torch.isfinite(gradient).all()):
            return None
        return gradient
