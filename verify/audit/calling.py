"""How the audit calls the loss: ``--call``, a recognised signature, or ``fn(student, teacher,
T)`` with the optional ``target`` and ``mask`` of :func:`~.loading.inspect_signature`.

The call expression is :mod:`derive.calls`'s (parsed with an AST whitelist, never evaluated);
this module turns its errors into :class:`~verify.VerifyError` and says what the probe must
supply.

Examples
========

>>> spec, signature = call_plan(lambda s, t, beta=0.5, temperature=1.0: 0, None)
>>> spec.describe()
'fn(student, teacher, temperature=T) (recognised from the signature)'
>>> signature
Signature(target=None, mask=False)
>>> call_plan(lambda s, t, T: 0, "fn(student, teacher, T).real")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
verify._errors.VerifyError: --call must be a call of fn, e.g. ... got 'fn(student, teacher, T).real'
"""

from derive import DeriveError
from derive.calls import bind, resolve_call

from .._errors import VerifyError, check_argument
from .loading import Signature, inspect_signature

__all__ = ["call_plan", "check_mask_use", "described_call", "traced_function"]


def call_plan(fn, call, *, mask=False, labels=False):
    """``(spec, signature)``: the :class:`derive.calls.CallSpec` (``None`` for the default
    call) and the :class:`~.loading.Signature` it implies (whether labels and a mask are
    passed)."""
    try:
        spec = resolve_call(fn, call, mask=mask, labels=labels)
    except DeriveError as error:
        raise VerifyError(str(error)) from None
    if spec is None:
        return None, inspect_signature(fn)
    return spec, Signature(
        target="keyword" if spec.uses("target") else None, mask=spec.uses("mask")
    )


def check_mask_use(spec, sequence_length):
    """A call that passes ``mask`` needs token sequences (``--shape B,L,N``)."""
    check_argument(
        spec is None or not spec.uses("mask") or sequence_length is not None,
        "the call {} uses mask: audit token sequences (--shape B,L,N, with --mask or "
        "--mask labels)",
        None if spec is None else spec.text,
    )


def described_call(spec, signature):
    """The call in words, as the report shows it."""
    if spec is not None:
        return spec.describe()
    arguments = ["student", "teacher", "T"]
    if signature.target == "positional":
        arguments.append("target")
    elif signature.target == "keyword":
        arguments.append("target=target")
    if signature.mask:
        arguments.append("mask=mask")
    return f"fn({', '.join(arguments)})"


def traced_function(fn, spec):
    """What :func:`derive.trace` gets: ``fn``, or ``fn`` bound to the call (``None`` if the
    call passes a target or a mask, which a trace does not take)."""
    if spec is None:
        return fn
    if spec.uses("target") or spec.uses("mask"):
        return None
    return bind(fn, spec)
