r"""[equal-mean/bias-decay]: weight decay on the output bias breaks equal logit means.

[equal-mean] needs the output bias to have no weight decay, or :math:`\bar b = 0`: SGD with
weight decay :math:`\lambda` multiplies the student's bias mean by :math:`(1 - \eta\lambda)`
each step (plain SGD; with momentum, by its own recursion, [mean-preservation]) while the
fixed teacher's stays put, so after equal-mean initialization with
:math:`\bar b_s = \bar b_t = \bar b \ne 0` the gap is
:math:`\langle z_t\rangle - \langle v\rangle = \bar b((1 - \eta\lambda)^t - 1)`: at
SGD(lr=0.1, weight_decay=0.1) and :math:`\bar b = 0.5`, :math:`0.5(0.99^t - 1)`
(:func:`derive.statements.core.bias_decay_gap` derives it).

The check is [equal-mean]'s, with every architecture given a bias, both bias means set to
0.5 after equal-mean initialization, and SGD always with weight decay. Its negative control
is the same setup with the weight decay kept off the biases (:class:`SGDWithoutBiasDecay`,
the usual practice), where the means stay equal.

Examples
========

>>> gaps, tolerances = bias_decay_point_gaps(steps=2)
>>> [round(float(gap), 6) for gap in gaps]
[0.0, 0.005, 0.00995]
"""

import dataclasses

import torch
from hypothesis import strategies as st

from ..losses import LOSSES
from ..optimizers import OptimizerSpec
from ..strategies import network_specs, sgd_optimizers
from ._common import CheckContext, numeric_check
from .equal_mean import _run_small_case, equal_mean_initialization, run_equal_mean_check

__all__ = [
    "BIAS_MEAN",
    "SGDWithoutBiasDecay",
    "decaying_sgd_optimizers",
    "equal_mean_initialization_with_bias_means",
    "bias_decay_point_gaps",
    "run_bias_decay_check",
    "check_equal_mean_bias_decay",
]

#: The bias means both networks get after equal-mean initialization.
BIAS_MEAN = 0.5


class SGDWithoutBiasDecay(torch.optim.SGD):
    """SGD whose weight decay applies to the weight matrices and kernels only, not to biases
    or normalization parameters (the stacked tensors of at most 2 dimensions, ``[M, n]``)."""

    def __init__(self, parameters, *, weight_decay=0.0, **options):
        parameters = list(parameters)
        groups = [
            {"params": [p for p in parameters if p.ndim > 2], "weight_decay": weight_decay},
            {"params": [p for p in parameters if p.ndim <= 2], "weight_decay": 0.0},
        ]
        super().__init__([group for group in groups if group["params"]], **options)


def decaying_sgd_optimizers(*, factory=None, label=None):
    """SGD configurations (momentum, dampening, Nesterov as drawn), always with weight decay
    0.01 or 0.1; ``factory`` and ``label`` as in :class:`~verify.optimizers.OptimizerSpec`."""

    def with_decay(spec, decay):
        options = spec.hyperparameters + (("weight_decay", decay),)
        return OptimizerSpec("sgd", options, factory=factory, label=label)

    return st.builds(
        with_decay,
        sgd_optimizers(min_learning_rate=0.01, max_learning_rate=0.1, weight_decay=False),
        st.sampled_from([0.01, 0.1]),
    )


@torch.no_grad()
def _set_bias_mean(networks, mean):
    bias = networks.output_bias
    if bias is not None:
        bias.sub_(bias.mean(1, keepdim=True) - mean)


def equal_mean_initialization_with_bias_means(bias_mean=BIAS_MEAN):
    """Equal-mean initialization (rows centred, the student given the teacher's bias mean)
    with the teacher's bias mean first set to ``bias_mean``; weight decay does not zero it."""

    def initialization(student, teacher, *, zero_bias=False):
        _set_bias_mean(teacher, bias_mean)
        return equal_mean_initialization(student, teacher, zero_bias=False)

    initialization.__name__ = f"equal_mean_initialization_with_bias_means_{bias_mean:g}"
    return initialization


def _with_bias(spec):
    return dataclasses.replace(spec, bias=True)


def run_bias_decay_check(statement_id, context, *, optimizers=None):
    """[equal-mean]'s check from bias means :data:`BIAS_MEAN`, with ``optimizers`` (default
    :func:`decaying_sgd_optimizers`) for the sweep and the search."""
    if optimizers is None:
        optimizers = decaying_sgd_optimizers()
    return run_equal_mean_check(
        statement_id,
        equal_mean_initialization_with_bias_means(),
        context,
        optimizers=optimizers,
        search_optimizers=optimizers,
        specs=network_specs(max_classes=10).map(_with_bias),
    )


def bias_decay_point_gaps(*, steps=20, dtype=torch.float64, device="cpu"):
    r"""``(gaps, tolerances)``, shape ``[steps + 1]``: :math:`|\langle z_t(x)\rangle -
    \langle v(x)\rangle|` of one linear student (2 features, 3 classes) distilled by KD at
    ``T = 4`` with SGD(lr=0.1, weight_decay=0.1) from a fixed teacher, after equal-mean
    initialization with bias means 0.5, at a fresh input; and the check's rounding bound on
    each gap. The derivation says :math:`0.5(1 - 0.99^t)`."""
    context = CheckContext.create(device=device, dtype=dtype, examples=1, seed=0)
    case = (
        OptimizerSpec("sgd", (("lr", 0.1), ("weight_decay", 0.1))),
        LOSSES["kl"],
        ([[1.0, -0.5], [0.25, 2.0], [-1.5, 0.75]], [0.5, -1.0, 2.0]),
        ([[0.5, 1.0], [-2.0, 0.25], [1.0, -1.25]], [1.0, 0.75, -0.25]),
        [1.5, -0.5],
        [-2.0, 3.0],
        0,
        4.0,
        steps,
    )
    gaps, tolerances, _ = _run_small_case(
        case, equal_mean_initialization_with_bias_means(), context
    )
    return gaps, tolerances


@numeric_check("equal-mean/bias-decay")
def check_equal_mean_bias_decay(
    *, device="cpu", dtype=torch.float64, examples=8, seed=0, search_examples=None
):
    """Refutes [equal-mean] with weight decay on output biases of mean 0.5."""
    context = CheckContext.create(
        device=device, dtype=dtype, examples=examples, seed=seed, search_examples=search_examples
    )
    return run_bias_decay_check("equal-mean/bias-decay", context)
