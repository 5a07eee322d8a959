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

from derive import DeriveError
from derive._validate import check_flag, is_integer
from derive.calls import parse_call

from .._errors import MAX_SEED, VerifyError, check_argument
from ..devices import dtype_name, resolve_dtype
from .analysis import analyse
from .calling import call_plan, check_mask_use, described_call, traced_function
from .expectation import _is_real, parse_expectation
from .isolated import run_audit
from .result import AuditResult
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


def _is_integer(value):
    return is_integer(value)


def _checked_call_text(call):
    """The parsed ``call`` (``None`` for none), refused before anything is imported."""
    if call is None:
        return None
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
        result = analyse(
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
