r"""Round-off and the class sums: Muon's internal precision, Newton–Schulz's amplification, and
plain SGD in low precision.

* :func:`newton_schulz_precision` runs ``torch.optim.Muon`` with its Newton–Schulz iteration
  in a chosen dtype (the shipped one is bfloat16; :func:`newton_schulz_in` swaps the private
  function torch calls for the same iteration in another dtype), optionally re-centred
  (:func:`recentred`: the orthogonalised update minus its class mean, the mean-preserving
  variant).
* :func:`newton_schulz_amplification` measures, iteration by iteration, how much the class
  mean of the iterate grows from a planted error along :math:`1`: the factor tends to Muon's
  slope at 0, :math:`a = 3.4445` ([atlas-left-invariant]).
* :func:`sgd_precision_drift` trains the reference head with plain SGD in float32, in bfloat16
  or float16 autocast with float32 master weights, and in pure bfloat16, and returns
  :math:`\max|1^T W|` after 1, 10 and 100 steps.

Examples
========

>>> factors = newton_schulz_amplification(iterations=3)
>>> [round(f, 2) for f in factors]
[3.44, 3.44, 3.44]
"""

import contextlib
import math

import torch

from .drift import ReferenceModel, _loss
from .timm_optimizers import import_timm

__all__ = [
    "newton_schulz_in",
    "recentred",
    "timm_newton_schulz_in",
    "newton_schulz_amplification",
    "sgd_precision_drift",
    "growth_exponent",
    "PRECISIONS",
]


def _newton_schulz(dtype, *, centre=False):
    def iterate(grad, ns_coefficients, ns_steps, eps):
        a, b, c = ns_coefficients
        work = grad.to(dtype)
        transposed = grad.size(0) > grad.size(1)
        if transposed:
            work = work.T
        work = work / work.norm().clamp(min=eps)
        for _ in range(ns_steps):
            gram = work @ work.T
            work = a * work + (b * gram + c * gram @ gram) @ work
        if transposed:
            work = work.T
        if centre:  # in the parameter's dtype: a bfloat16 subtraction would round again
            work = work.to(grad.dtype)
            work = work - work.mean(0, keepdim=True)
        return work

    return iterate


@contextlib.contextmanager
def newton_schulz_in(dtype, *, centre=False):
    """Within the block, ``torch.optim.Muon`` iterates Newton–Schulz in ``dtype`` (and, with
    ``centre``, subtracts the class mean of the orthogonalised update of each matrix)."""
    # lazy: torch.optim._muon exists only in torch releases with Muon; verify allows torch>=2.1
    from torch.optim import _muon

    shipped = _muon._zeropower_via_newtonschulz
    _muon._zeropower_via_newtonschulz = _newton_schulz(dtype, centre=centre)
    try:
        yield
    finally:
        _muon._zeropower_via_newtonschulz = shipped


@contextlib.contextmanager
def timm_newton_schulz_in(dtype):
    """Within the block, ``timm``'s Muon family iterates Newton–Schulz in ``dtype`` (it
    ships with bfloat16)."""
    import_timm()
    # lazy: timm is the optional atlas extra, imported only when its Muon is asked for
    import timm.optim.muon as muon

    shipped = muon.zeropower_via_newtonschulz

    def raised(*args, **kwargs):
        return shipped(*args, **dict(kwargs, dtype=dtype))

    muon.zeropower_via_newtonschulz = raised
    try:
        yield
    finally:
        muon.zeropower_via_newtonschulz = shipped


def recentred(dtype=torch.bfloat16):
    """The mean-preserving variant of Muon's update: Newton–Schulz in ``dtype``, then minus
    its class mean (a context manager, as :func:`newton_schulz_in`)."""
    return newton_schulz_in(dtype, centre=True)


def newton_schulz_amplification(*, iterations=5, error=1e-12, seed=0):
    r"""``[|1^T X_k| / |1^T X_{k-1}|, ...]`` for ``X_0 = Y + error 1 r^T`` with ``1^T Y = 0``
    and ``r`` in the null space of ``Y^T Y`` (a 4x6 zero-sum Y has rank <= 3), in float64."""
    a, b, c = 3.4445, -4.7750, 2.0315
    generator = torch.Generator().manual_seed(seed)
    y = torch.randn(4, 6, generator=generator, dtype=torch.float64)
    y = y - y.mean(0)
    y = y / y.norm()
    _, _, vh = torch.linalg.svd(y)
    r = vh[-1]  # a right singular vector with singular value 0
    x = y + error * torch.ones(4, 1, dtype=torch.float64) * r
    factors, previous = [], float((x.sum(0) @ r).abs())
    for _ in range(iterations):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
        current = float((x.sum(0) @ r).abs())
        factors.append(current / previous)
        previous = current
    return factors


#: The precisions of :func:`sgd_precision_drift`: (parameter dtype, autocast dtype or None).
PRECISIONS = {
    "float32": (torch.float32, None),
    "bfloat16 autocast": (torch.float32, torch.bfloat16),
    "float16 autocast": (torch.float32, torch.float16),
    "pure bfloat16": (torch.bfloat16, None),
}


def sgd_precision_drift(precision, *, steps=(1, 10, 100), learning_rate=0.1, classes=4, seed=0):
    r"""``{step: max|1^T W|}`` for plain SGD on the reference model in ``precision`` (a key of
    :data:`PRECISIONS`); also ``"magnitude"`` and ``"gradient"`` (the largest :math:`|W|` and
    :math:`|\nabla W|` seen) and ``"predicted"``, the tolerance model's ``{step: drift}``:
    a random walk of the roundings, :math:`\sqrt{N t}\,\tfrac12(\varepsilon_p |W| +
    \eta\,\varepsilon_c |\nabla W|)`, with :math:`\varepsilon_p` the parameters' epsilon
    (the update's rounding) and :math:`\varepsilon_c` the computing dtype's (the gradient's
    class sum is zero only up to it)."""
    parameter_dtype, autocast = PRECISIONS[precision]
    model = ReferenceModel(classes=classes, seed=seed, dtype=torch.float64)
    with torch.no_grad():
        # Re-centre in the working dtype, so that step 0 starts at that dtype's round-off.
        model.to(parameter_dtype)
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    drift, largest, gradient = {}, 0.0, 0.0
    for step in range(1, max(steps) + 1):
        inputs = torch.randn(16, 6, generator=generator).to(parameter_dtype)
        teacher = 2 * torch.randn(16, classes, generator=generator)
        labels = torch.randint(classes, (16,), generator=generator)
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=autocast, enabled=autocast is not None):
            logits = model(inputs)
        _loss(logits.float(), teacher, labels).backward()
        gradient = max(gradient, float(model.head.weight.grad.abs().max()))
        optimizer.step()
        weight = model.head.weight.detach()
        largest = max(largest, float(weight.abs().max()))
        if step in steps:
            drift[step] = float(weight.double().sum(0).abs().max())
    drift["magnitude"], drift["gradient"] = largest, gradient
    compute = autocast or parameter_dtype
    per_step = (classes**0.5 / 2) * (
        torch.finfo(parameter_dtype).eps * largest
        + learning_rate * torch.finfo(compute).eps * gradient
    )
    drift["predicted"] = {t: per_step * t**0.5 for t in steps}
    return drift


def growth_exponent(drift, first=1, last=100):
    """The log-log slope of the drift between steps ``first`` and ``last``."""
    return math.log(drift[last] / drift[first]) / math.log(last / first)
