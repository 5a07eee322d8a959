r"""Capture a user's loss ``fn(student_logits, teacher_logits, T)`` as a :mod:`torch.fx` graph.

Why :func:`torch.fx` (symbolic tracing) and not :func:`torch.export`: fx records the calls as
the user wrote them, ``F.kl_div(..., reduction='batchmean', log_target=True)`` with its
arguments, so each node translates to the engine's expression by its documented meaning;
it runs the Python once, with proxies, in milliseconds, and needs no example shapes. The
temperature is a proxy too, so ``T**2`` and ``x / T`` are nodes of the graph.
:func:`torch.export` would specialize a Python-float ``T`` into a constant (``T**2`` becomes a
number), decompose the losses into ATen operations (``reduction='batchmean'`` becomes a sum and
a division by a size) and compile through Dynamo, seconds per function.

fx cannot follow Python control flow that depends on a traced value (``if T > 1``,
``min(T, 1000.)``): that is reported with the line of the user's code, as is any other error
raised while tracing. Comparisons of sizes with numbers that hold for every size
(``max(x.size(0), 1)``) are settled while tracing (:mod:`.sizes`). A branch on the *type* of
``T`` (``isinstance(T, float)``) silently takes the tensor path; the numeric self-check of
:func:`derive.trace` catches it.

Loss modules instantiated inline (``nn.KLDivLoss(reduction='batchmean')(...)``) are traced
through their ``forward``, which calls the functional form.
"""

import math
import os
import traceback

import torch
import torch.fx

from .._errors import DeriveError, check_argument
from .._targets import resolve_target
from .sizes import is_size_comparison, resolve, size_expression

__all__ = ["capture", "load_target", "describe", "user_frame", "where", "one_line", "PLACEHOLDERS"]

#: The names of the three inputs in the captured graph.
PLACEHOLDERS = ("student_logits", "teacher_logits", "temperature")

_TORCH_DIRECTORY = os.path.dirname(torch.__file__)
_TRACING_DIRECTORY = os.path.dirname(os.path.abspath(__file__))


def _is_internal(filename):
    filename = os.path.abspath(filename)
    return (
        filename.startswith(_TORCH_DIRECTORY + os.sep)
        or filename.startswith(_TRACING_DIRECTORY + os.sep)
        or filename.startswith("<frozen ")
    )


def user_frame(frames):
    """The innermost frame of ``frames`` (a list of :class:`traceback.FrameSummary`) that is
    the user's code: not torch's, not this package's."""
    for frame in reversed(frames):
        if not _is_internal(frame.filename):
            return frame
    return None


def where(frame):
    """``'path/to/file.py:12 (function): source line'`` for a frame, paths relative to the
    current directory when below it."""
    if frame is None:
        return "an unknown place"
    path = frame.filename
    try:
        relative = os.path.relpath(path)
        if not relative.startswith(".."):
            path = relative
    except ValueError:
        pass
    line = (frame.line or "").strip()
    return f"{path}:{frame.lineno} ({frame.name})" + (f": {line}" if line else "")


def one_line(error):
    """An exception's message on one line (its type when it has none)."""
    text = " ".join(str(error).split())
    return text or type(error).__name__


def describe(fn):
    """A short name for a callable: ``module:qualname``."""
    module = getattr(fn, "__module__", None) or type(fn).__module__
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}:{name}"


class _Tracer(torch.fx.Tracer):
    """Traces through every module (inline loss modules included) and remembers, for each
    node, the innermost frame of the user's code that created it."""

    def __init__(self):
        super().__init__(autowrap_modules=(math,))

    def is_leaf_module(self, module, qualified_name):
        return False

    def path_of_module(self, module):
        try:
            return super().path_of_module(module)
        except NameError:  # a module created inside the loss function
            return type(module).__name__

    def create_node(self, *args, **kwargs):
        node = super().create_node(*args, **kwargs)
        node.meta["user_frame"] = user_frame(traceback.extract_stack()[:-1])
        size_expression(node)
        return node

    def to_bool(self, obj):
        """A comparison of sizes with numbers is settled here (:mod:`.sizes`); any other
        truth value of a traced value is data-dependent control flow."""
        truth = resolve(self, obj)
        if truth is None and is_size_comparison(obj):
            self.undecided_size = True
        return super().to_bool(obj) if truth is None else truth


def capture(fn):
    """The :class:`torch.fx.Graph` of ``fn(student_logits, teacher_logits, temperature)`` and
    the module holding its constants: ``(graph, root)``.

    Raises :class:`~derive.DeriveError` with one line: the user's line where tracing stopped,
    and why.
    """
    check_argument(
        callable(fn), "trace needs a callable fn(student_logits, teacher_logits, T), got {!r}", fn
    )

    def loss(student_logits, teacher_logits, temperature):
        return fn(student_logits, teacher_logits, temperature)

    tracer = _Tracer()
    try:
        graph = tracer.trace(loss)
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # the user's code: contained, reported on one line
        frame = user_frame(traceback.extract_tb(error.__traceback__))
        if getattr(tracer, "undecided_size", False):
            raise DeriveError(
                f"unsupported: a comparison of sizes at {where(frame)} that depends on the "
                f"batch size or the number of classes (the trace is symbolic in B and N; "
                f"comparisons that hold for every size, such as max(x.size(0), 1), are "
                f"settled); use python -m verify audit, which measures the loss numerically"
            ) from None
        if isinstance(error, torch.fx.proxy.TraceError) and "control flow" in str(error):
            raise DeriveError(
                f"unsupported: Python control flow on a traced value at {where(frame)} "
                f"(symbolic tracing cannot follow a branch, min/max or comparison that depends "
                f"on the logits or on T); use python -m verify audit, which measures the "
                f"loss numerically"
            ) from None
        raise DeriveError(
            f"cannot trace {describe(fn)}: {type(error).__name__}: "
            f"{one_line(error)} at {where(frame)}"
        ) from None
    return graph, tracer.root


def load_target(target):
    """The callable named by ``"MODULE:FUNCTION"`` (``FUNCTION`` may be dotted): the one
    loader, :func:`derive._targets.resolve_target`.

    >>> load_target("verify.gallery:kd_batchmean").__name__
    'kd_batchmean'
    >>> load_target("verify.gallery")  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    derive._errors.DeriveError: target must be MODULE:FUNCTION (e.g. verify.gallery:kd_batchmean),
    got 'verify.gallery'
    """
    return resolve_target(target)
