r"""Hypothesis strategies for the checks and the tests, in hypothesis's own style.

Strategies are plural nouns, arguments are keyword-only, bounds are spelled
``min_value/max_value`` (numbers) and ``min_size/max_size`` (lengths), and bad arguments
raise :class:`~verify.VerifyError` at once, not an error from deep inside a draw.

Strategy objects are cached by their arguments (as hypothesis caches its own), so composite
strategies that build sub-strategies inside a draw stay fast.

Large tensors are not drawn element by element (hypothesis's buffer is a few kilobytes):
:func:`logits` draws the structure (scale, offset, a seed) and fills the tensor from a seeded
``torch.Generator``, so it still shrinks, towards seed 0, scale 1 and no offset.
:func:`logit_vectors` draws small explicit vectors instead, on a grid of quarters, which
shrink to readable counterexamples such as ``[1.0, 0.0]``.

Examples
========

>>> from hypothesis import find
>>> find(class_counts(min_value=3), lambda classes: classes > 4)
5
>>> find(logit_vectors(min_size=2, max_size=3), lambda vector: sum(vector) > 1)
[0.0, 1.25]
>>> temperatures(min_value=0)
Traceback (most recent call last):
...
verify._errors.VerifyError: min_value must be a positive number, got 0
"""

import math
from functools import lru_cache

import torch
from hypothesis import strategies as st

from ._errors import check_argument
from .devices import resolve_device, resolve_dtype
from .losses import CONTROL_LOSSES, LOSSES, DistillationProblem
from .networks import ACTIVATIONS, KINDS, NORMALIZATIONS, NetworkSpec
from .optimizers import ADAPTIVE, OPTIMIZERS, OptimizerSpec

__all__ = [
    "batch_sizes",
    "class_counts",
    "temperatures",
    "scales",
    "logit_vectors",
    "logits",
    "hard_targets",
    "soft_targets",
    "distillation_problems",
    "losses",
    "network_specs",
    "sgd_optimizers",
    "adaptive_optimizers",
    "optimizers",
]


def _check_integer(value, *, lowest, name):
    check_argument(
        isinstance(value, int) and not isinstance(value, bool) and value >= lowest,
        "{} must be an integer >= {}, got {!r}",
        name,
        lowest,
        value,
    )


def _check_integer_range(min_value, max_value, *, lowest, names=("min_value", "max_value")):
    _check_integer(min_value, lowest=lowest, name=names[0])
    _check_integer(max_value, lowest=lowest, name=names[1])
    check_argument(
        min_value <= max_value, "{}={} must be <= {}={}", names[0], min_value, names[1], max_value
    )


def _check_positive_range(min_value, max_value, *, names=("min_value", "max_value")):
    for name, value in zip(names, (min_value, max_value)):
        check_argument(
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isfinite(value)
            and value > 0,
            "{} must be a positive number, got {!r}",
            name,
            value,
        )
    check_argument(
        min_value <= max_value, "{}={} must be <= {}={}", names[0], min_value, names[1], max_value
    )


def _round(value, digits=3):
    return float(f"{value:.{digits}g}")


def _log_uniform(min_value, max_value):
    """Floats spread evenly in log scale, rounded to 3 significant digits, shrinking to the
    value nearest 1."""
    low, high = math.log10(min_value), math.log10(max_value)
    return st.floats(low, high).map(
        lambda exponent: min(max(_round(10.0**exponent), min_value), max_value)
    )


@lru_cache(maxsize=None)
def batch_sizes(*, min_value=1, max_value=64):
    """Numbers of logit vectors in one batch."""
    _check_integer_range(min_value, max_value, lowest=1)
    return st.integers(min_value, max_value)


@lru_cache(maxsize=None)
def class_counts(*, min_value=2, max_value=1000):
    """Numbers of classes ``N``."""
    _check_integer_range(min_value, max_value, lowest=2)
    return st.integers(min_value, max_value)


@lru_cache(maxsize=None)
def temperatures(*, min_value=0.1, max_value=1e4):
    """Temperatures ``T``, log-uniform, shrinking towards 1."""
    _check_positive_range(min_value, max_value)
    return _log_uniform(min_value, max_value)


@lru_cache(maxsize=None)
def scales(*, min_value=1e-3, max_value=1e3):
    """Logit scales (standard deviations), log-uniform, shrinking towards 1."""
    _check_positive_range(min_value, max_value)
    return _log_uniform(min_value, max_value)


@lru_cache(maxsize=None)
def logit_vectors(*, min_size=2, max_size=6, min_value=-4.0, max_value=4.0):
    """Small explicit logit vectors (lists of floats on a grid of quarters), for readable
    counterexamples."""
    _check_integer_range(min_size, max_size, lowest=1, names=("min_size", "max_size"))
    check_argument(
        min_value <= max_value, "min_value={} must be <= max_value={}", min_value, max_value
    )
    quarter = st.integers(math.ceil(4 * min_value), math.floor(4 * max_value)).map(lambda k: k / 4)
    return st.lists(quarter, min_size=min_size, max_size=max_size)


def _seeds():
    return st.integers(0, 2**32 - 1)


@st.composite
def _logits(draw, batch_size, classes, min_scale, max_scale, max_offset, dtype, device, salt=0):
    seed = 2 * draw(_seeds()) + salt
    scale = draw(scales(min_value=min_scale, max_value=max_scale))
    offset = draw(
        st.just(0.0) | (_log_uniform(1.0, max_offset) if max_offset >= 1 else st.just(0.0))
    )
    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(batch_size, classes, generator=generator, dtype=torch.float64) * scale
    if offset:
        values += offset * (
            2 * torch.rand(batch_size, 1, generator=generator, dtype=torch.float64) - 1
        )
    return values.to(dtype=dtype, device=device)


@lru_cache(maxsize=None)
def logits(
    *,
    batch_size,
    classes,
    min_scale=1e-3,
    max_scale=1e3,
    max_offset=1e4,
    dtype=torch.float64,
    device="cpu",
    salt=0,
):
    """Logit tensors ``[batch_size, classes]``: Gaussian with a log-uniform scale, plus, as an
    option, a large common offset per vector (up to ``max_offset`` in size). Draws with
    different ``salt`` (0 or 1) never coincide, even at hypothesis's minimal example."""
    check_argument(salt in (0, 1), "salt must be 0 or 1, got {!r}", salt)
    _check_integer(batch_size, lowest=1, name="batch_size")
    _check_integer(classes, lowest=2, name="classes")
    _check_positive_range(min_scale, max_scale, names=("min_scale", "max_scale"))
    check_argument(max_offset >= 0, "max_offset must be >= 0, got {!r}", max_offset)
    return _logits(
        batch_size,
        classes,
        min_scale,
        max_scale,
        max_offset,
        resolve_dtype(dtype),
        resolve_device(device),
        salt,
    )


@lru_cache(maxsize=None)
def hard_targets(*, batch_size, classes, device="cpu"):
    """Integer labels ``[batch_size]`` in ``0 .. classes-1``."""
    _check_integer(batch_size, lowest=1, name="batch_size")
    _check_integer(classes, lowest=2, name="classes")
    device = resolve_device(device)
    return _seeds().map(
        lambda seed: torch.randint(
            classes, (batch_size,), generator=torch.Generator().manual_seed(seed)
        ).to(device)
    )


@lru_cache(maxsize=None)
def soft_targets(*, batch_size, classes, dtype=torch.float64, device="cpu"):
    """Probability vectors ``[batch_size, classes]`` (softmax of Gaussian scores of a drawn
    sharpness), rows summing to one."""
    _check_integer(batch_size, lowest=1, name="batch_size")
    _check_integer(classes, lowest=2, name="classes")

    def build(seed_and_sharpness):
        seed, sharpness = seed_and_sharpness
        scores = torch.randn(
            batch_size, classes, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
        )
        return torch.softmax(sharpness * scores, -1).to(
            dtype=resolve_dtype(dtype), device=resolve_device(device)
        )

    return st.tuples(_seeds(), scales(min_value=0.1, max_value=10.0)).map(build)


@st.composite
def _problems(
    draw,
    min_classes,
    max_classes,
    min_batch_size,
    max_batch_size,
    min_scale,
    max_scale,
    max_offset,
    min_temperature,
    max_temperature,
    dtype,
    device,
):
    classes = draw(class_counts(min_value=min_classes, max_value=max_classes))
    batch_size = draw(batch_sizes(min_value=min_batch_size, max_value=max_batch_size))
    shape = {"batch_size": batch_size, "classes": classes}
    student = draw(
        logits(
            **shape,
            min_scale=min_scale,
            max_scale=max_scale,
            max_offset=max_offset,
            dtype=dtype,
            device=device,
        )
    )
    teacher = draw(
        logits(
            **shape,
            min_scale=min_scale,
            max_scale=max_scale,
            max_offset=max_offset,
            dtype=dtype,
            device=device,
            salt=1,
        )
    )
    labels = draw(hard_targets(**shape, device=device))
    targets = draw(soft_targets(**shape, dtype=dtype, device=device))
    temperature = draw(temperatures(min_value=min_temperature, max_value=max_temperature))
    return DistillationProblem(
        student,
        teacher,
        labels,
        targets,
        torch.full((batch_size,), temperature, dtype=dtype, device=device),
    )


@lru_cache(maxsize=None)
def distillation_problems(
    *,
    min_classes=2,
    max_classes=1000,
    min_batch_size=1,
    max_batch_size=64,
    min_scale=1e-3,
    max_scale=1e3,
    max_offset=1e4,
    min_temperature=0.1,
    max_temperature=1e4,
    dtype=torch.float64,
    device="cpu",
):
    """Batches of everything a distillation loss sees, as a
    :class:`~verify.losses.DistillationProblem`: student and teacher logits (:func:`logits`),
    hard labels, soft targets and a temperature."""
    _check_integer_range(min_classes, max_classes, lowest=2, names=("min_classes", "max_classes"))
    _check_integer_range(
        min_batch_size, max_batch_size, lowest=1, names=("min_batch_size", "max_batch_size")
    )
    _check_positive_range(min_scale, max_scale, names=("min_scale", "max_scale"))
    _check_positive_range(
        min_temperature, max_temperature, names=("min_temperature", "max_temperature")
    )
    return _problems(
        min_classes,
        max_classes,
        min_batch_size,
        max_batch_size,
        min_scale,
        max_scale,
        max_offset,
        min_temperature,
        max_temperature,
        resolve_dtype(dtype),
        resolve_device(device),
    )


@lru_cache(maxsize=None)
def losses(*, shift_invariant=True):
    """Losses of a :class:`~verify.losses.DistillationProblem`: the shift invariant ones (the
    twins of every objective, hard and soft CE, label smoothing), or with
    ``shift_invariant=False`` the controls (sigmoid/BCE distillation, logits matching), or with
    ``None`` all of them."""
    check_argument(
        shift_invariant in (True, False, None),
        "shift_invariant must be True, False or None, got {!r}",
        shift_invariant,
    )
    chosen = {True: LOSSES, False: CONTROL_LOSSES, None: {**LOSSES, **CONTROL_LOSSES}}[
        shift_invariant
    ]
    return st.sampled_from(list(chosen.values()))


@st.composite
def _network_specs(
    draw,
    kinds,
    min_depth,
    max_depth,
    min_width,
    max_width,
    min_classes,
    max_classes,
    activations,
    normalizations,
):
    kind = draw(st.sampled_from(kinds))
    depth = draw(st.integers(min_depth, max_depth))
    if kind == "mlp":
        input_shape = (draw(st.integers(1, 16)),)
        widths = tuple(draw(st.integers(min_width, max_width)) for _ in range(depth - 1))
    else:
        side = draw(st.integers(3, 6))
        input_shape = (draw(st.integers(1, 3)), side, side)
        widths = tuple(draw(st.integers(min_width, min(max_width, 8))) for _ in range(depth - 1))
    return NetworkSpec(
        kind=kind,
        input_shape=input_shape,
        widths=widths,
        activation=draw(st.sampled_from(activations)),
        bias=draw(st.booleans()),
        normalization=draw(st.sampled_from(normalizations)) if depth > 1 else "none",
        classes=draw(class_counts(min_value=min_classes, max_value=max_classes)),
    )


@lru_cache(maxsize=None)
def network_specs(
    *,
    kinds=KINDS,
    min_depth=1,
    max_depth=4,
    min_width=2,
    max_width=32,
    min_classes=2,
    max_classes=10,
    activations=tuple(ACTIVATIONS),
    normalizations=NORMALIZATIONS,
):
    """Architectures (:class:`~verify.networks.NetworkSpec`) ending in ``nn.Linear``: MLPs and
    small convnets of depth ``min_depth..max_depth``, varied widths and activations, with and
    without bias, with and without normalization layers."""
    check_argument(
        set(kinds) <= set(KINDS) and kinds,
        "kinds must be a nonempty subset of {}, got {!r}",
        KINDS,
        kinds,
    )
    check_argument(
        set(normalizations) <= set(NORMALIZATIONS) and normalizations,
        "normalizations must be a nonempty subset of {}, got {!r}",
        NORMALIZATIONS,
        normalizations,
    )
    check_argument(
        set(activations) <= set(ACTIVATIONS) and activations,
        "activations must be a nonempty subset of {}, got {!r}",
        tuple(ACTIVATIONS),
        activations,
    )
    _check_integer_range(min_depth, max_depth, lowest=1, names=("min_depth", "max_depth"))
    _check_integer_range(min_width, max_width, lowest=1, names=("min_width", "max_width"))
    _check_integer_range(min_classes, max_classes, lowest=2, names=("min_classes", "max_classes"))
    return _network_specs(
        tuple(kinds),
        min_depth,
        max_depth,
        min_width,
        max_width,
        min_classes,
        max_classes,
        tuple(activations),
        tuple(normalizations),
    )


def _learning_rates(min_value, max_value):
    _check_positive_range(min_value, max_value, names=("min_learning_rate", "max_learning_rate"))
    return _log_uniform(min_value, max_value)


@st.composite
def _sgd(draw, min_learning_rate, max_learning_rate, momentum, weight_decay):
    options = [("lr", draw(_learning_rates(min_learning_rate, max_learning_rate)))]
    if momentum and draw(st.booleans()):
        options.append(("momentum", draw(st.sampled_from([0.5, 0.9, 0.99]))))
        if draw(st.booleans()):
            options.append(("nesterov", True))
        else:
            options.append(("dampening", draw(st.sampled_from([0.0, 0.1, 0.5]))))
    if weight_decay and draw(st.booleans()):
        options.append(("weight_decay", draw(_log_uniform(1e-4, 1e-1))))
    return OptimizerSpec("sgd", tuple(options))


@lru_cache(maxsize=None)
def sgd_optimizers(
    *, min_learning_rate=1e-3, max_learning_rate=1e-1, momentum=True, weight_decay=True
):
    """SGD configurations: plain, with momentum and dampening, with Nesterov momentum, and
    with weight decay."""
    _check_positive_range(
        min_learning_rate, max_learning_rate, names=("min_learning_rate", "max_learning_rate")
    )
    return _sgd(min_learning_rate, max_learning_rate, bool(momentum), bool(weight_decay))


@st.composite
def _adaptive(draw, names, min_learning_rate, max_learning_rate):
    name = draw(st.sampled_from(names))
    options = [("lr", draw(_learning_rates(min_learning_rate, max_learning_rate)))]
    if name in ("adam", "adamw") and draw(st.booleans()):
        options.append(("amsgrad", True))
    if name == "adamw":
        options.append(("weight_decay", draw(_log_uniform(1e-4, 1e-1))))
    if name == "rmsprop":
        if draw(st.booleans()):
            options.append(("momentum", draw(st.sampled_from([0.5, 0.9]))))
        if draw(st.booleans()):
            options.append(("centered", True))
    return OptimizerSpec(name, tuple(options))


@lru_cache(maxsize=None)
def adaptive_optimizers(*, names=ADAPTIVE, min_learning_rate=1e-3, max_learning_rate=1e-1):
    """Adam (with and without AMSGrad), AdamW (decoupled weight decay), RMSprop (with momentum,
    centred) and Adagrad configurations."""
    check_argument(
        set(names) <= set(ADAPTIVE) and names,
        "names must be a nonempty subset of {}, got {!r}",
        ADAPTIVE,
        names,
    )
    _check_positive_range(
        min_learning_rate, max_learning_rate, names=("min_learning_rate", "max_learning_rate")
    )
    return _adaptive(tuple(names), min_learning_rate, max_learning_rate)


@lru_cache(maxsize=None)
def optimizers(*, names=tuple(OPTIMIZERS), min_learning_rate=1e-3, max_learning_rate=1e-1):
    """Any optimizer configuration of :data:`verify.optimizers.OPTIMIZERS`."""
    check_argument(
        set(names) <= set(OPTIMIZERS) and names,
        "names must be a nonempty subset of {}, got {!r}",
        tuple(OPTIMIZERS),
        names,
    )
    parts = []
    if "sgd" in names:
        parts.append(
            sgd_optimizers(min_learning_rate=min_learning_rate, max_learning_rate=max_learning_rate)
        )
    adaptive = tuple(name for name in names if name != "sgd")
    if adaptive:
        parts.append(
            adaptive_optimizers(
                names=adaptive,
                min_learning_rate=min_learning_rate,
                max_learning_rate=max_learning_rate,
            )
        )
    return st.one_of(parts)
