r"""The leading-order measurements: shift invariance, the power of :math:`T`, the limit.

* :func:`shift_invariance`: [zero-mean-gradient], :math:`|\sum_i g_{ri}|` within the rounding
  bound of :class:`~.probing.RoundingModel` for every row, at every temperature.
* :func:`power_law`: the exponent :math:`a` of :math:`g(T) \approx c\,T^a G` is the log-log slope
  of the projection :math:`s(T) = \langle g(T), G\rangle/\langle G, G\rangle` by least squares on
  :math:`\log|s| = \log|c| + a\log T + \beta_1 T_{lo}/T + \beta_2 (T_{lo}/T)^2` (the correction
  columns absorb the first two orders of the expansion). It is rounded to the nearest
  half-integer when within :data:`~verify.tolerances.SLOPE_TOLERANCE` of it and the rms residual
  is at most ``SLOPE_TOLERANCE`` times the standard deviation of :math:`\log T`; otherwise the
  gradient is *not a power law*. If the projection is too small to carry a slope
  (:math:`|\cos| < 10^{-3}` at some temperature, or a sign change) the norm is fitted instead.
* :func:`extrapolate`: :math:`g(T)/T^a` is extrapolated elementwise to :math:`T = \infty` by
  least squares on :math:`1, T_{lo}/T, (T_{lo}/T)^2`; the scale :math:`c` and the cosine with
  :math:`G` are compared with their expected values within :math:`(r/T_{lo})^3 + 10\rho`:
  :math:`r` is the largest centred logit (the first order the extrapolation leaves out) and
  :math:`\rho` the rms residual of the extrapolation relative to the limit, times
  :data:`~verify.tolerances.RESOLUTION_FACTOR`. That tolerance is **capped** at
  :math:`(r/T_{lo})^3 + 10[(r/T_{lo})^3 + \sqrt\varepsilon]`: the residual of a gradient that
  the expansion describes is at most the order the extrapolation leaves out plus round-off,
  and the grid ends where the round-off of a softmax gradient, relative :math:`\varepsilon T`,
  reaches :math:`\sqrt\varepsilon`. A larger residual is a gradient the expansion does not
  describe: the limit is then *not established*.

Examples
========

>>> temperatures = (100.0, 1000.0, 10000.0)
>>> reference = torch.tensor([[1.0, -1.0]], dtype=torch.float64)
>>> gradients = torch.stack([reference * (1 + 2 / t) for t in temperatures])
>>> fit = power_law(gradients, temperatures, reference)
>>> fit["exponent"], fit["power_law"]
(0.0, True)
"""

import math

import torch

from ..tolerances import RESOLUTION_FACTOR, SLOPE_TOLERANCE, machine_epsilon
from .probing import MODERATE_TEMPERATURES

__all__ = [
    "shift_invariance",
    "power_law",
    "extrapolate",
    "ignores_temperature",
    "tensor_temperature",
]

# Below this |cos(g(T), G)| the projection on the limit cannot carry a slope; fit the norm.
_DIRECTION_FLOOR = 1e-3


def shift_invariance(gradients, temperatures, rounding):
    """[zero-mean-gradient] on every row at every temperature: the worst sum against its bound."""
    worst = {"ratio": -1.0, "error": 0.0, "tolerance": 0.0, "temperature": temperatures[0]}
    for gradient, temperature in zip(gradients, temperatures):
        errors = gradient.sum(-1).abs()
        tolerances = rounding.row_tolerance(gradient, temperature)
        ratios = torch.where(errors > 0, errors / tolerances, torch.zeros_like(errors))
        row = int(ratios.argmax())
        if float(ratios[row]) > worst["ratio"]:
            worst = {
                "ratio": float(ratios[row]),
                "error": float(errors[row]),
                "tolerance": float(tolerances[row]),
                "temperature": temperature,
            }
    worst["invariant"] = worst["ratio"] <= 1.0
    return worst


def power_law(gradients, temperatures, reference):
    """The exponent of ``gradients`` ``[K, R, N]`` over ``temperatures`` against ``reference``."""
    temperatures = torch.tensor(temperatures, dtype=torch.float64)
    lowest = float(temperatures[0])
    reference_norm = reference.norm()
    norms = gradients.flatten(1).norm(dim=1)
    projections = (gradients * reference).sum((1, 2)) / reference_norm**2
    cosines = projections * reference_norm / torch.where(norms > 0, norms, torch.ones_like(norms))
    aligned = bool((cosines > _DIRECTION_FLOOR).all() or (cosines < -_DIRECTION_FLOOR).all())
    sizes = projections.abs() if aligned else norms / reference_norm
    log_temperatures = temperatures.log()
    if bool((sizes > 0).all()):
        design = torch.stack(
            [
                torch.ones_like(temperatures),
                log_temperatures,
                lowest / temperatures,
                (lowest / temperatures) ** 2,
            ],
            dim=1,
        )
        targets = sizes.log()[:, None]
        solution = torch.linalg.lstsq(design, targets).solution
        raw = float(solution[1, 0])
        residual = float((design @ solution - targets).pow(2).mean().sqrt())
    else:  # the gradient vanishes at some temperatures only: no power law
        raw, residual = float("nan"), float("inf")
    rounded = round(2.0 * raw) / 2.0 if math.isfinite(raw) else raw
    is_power_law = (
        math.isfinite(raw)
        and abs(raw - rounded) <= SLOPE_TOLERANCE
        and residual <= SLOPE_TOLERANCE * float(log_temperatures.std())
    )
    return {
        "exponent": (0.0 + rounded)
        if is_power_law
        else (round(raw, 3) if math.isfinite(raw) else None),
        "power_law": is_power_law,
        "exponent_fit": raw if math.isfinite(raw) else None,
        "fit_residual": residual if math.isfinite(residual) else None,
        "used": rounded if is_power_law else (raw if math.isfinite(raw) else 0.0),
    }


def extrapolate(gradients, temperatures, exponent, reference, uncentred, *, logit_scale, dtype):
    """Scale, cosine and tolerance of :math:`g(T)/T^a` extrapolated to :math:`T = \\infty`.

    ``reference`` is the expected limit :math:`G`; ``uncentred`` the uncentred logits matching
    direction :math:`z - v` with the same row weights; ``logit_scale`` the largest centred
    logit :math:`r`. Returns ``scale``, ``cosine``, ``uncentred_cosine``, ``scale_tolerance``
    (capped), ``residual`` (:math:`\\rho`) and ``established``.
    """
    grid = torch.tensor(temperatures, dtype=torch.float64)
    lowest = float(grid[0])
    corrections = torch.stack([lowest / grid, (lowest / grid) ** 2], dim=1)
    rescaled = (gradients / grid[:, None, None] ** exponent).flatten(1)
    design = torch.cat([torch.ones_like(grid)[:, None], corrections], dim=1)
    solution = torch.linalg.lstsq(design, rescaled).solution
    estimate = solution[0].reshape(reference.shape)
    estimate_norm, reference_norm = estimate.norm(), reference.norm()
    scale = float((estimate * reference).sum() / reference_norm**2)
    cosine = (
        float((estimate * reference).sum() / (estimate_norm * reference_norm))
        if estimate_norm > 0
        else None
    )
    uncentred_cosine = (
        float((estimate * uncentred).sum() / (estimate_norm * uncentred.norm()))
        if estimate_norm > 0 and uncentred.norm() > 0
        else None
    )
    # rms over the temperatures of the residual's norm, relative to the limit's norm
    residual = (
        float((design @ solution - rescaled).pow(2).sum(1).mean().sqrt() / estimate_norm)
        if estimate_norm > 0
        else float("inf")
    )
    truncation = (logit_scale / lowest) ** 3
    tolerance = truncation + RESOLUTION_FACTOR * residual
    # The residual of a series that the extrapolation describes is at most the order it leaves
    # out plus the round-off, which the grid keeps below sqrt(eps).
    cap = truncation + RESOLUTION_FACTOR * (truncation + machine_epsilon(dtype) ** 0.5)
    return {
        "scale": scale,
        "cosine": cosine,
        "uncentred_cosine": uncentred_cosine,
        "scale_tolerance": min(tolerance, cap),
        "residual": residual,
        "established": tolerance <= cap,
        "cap": cap,
    }


def ignores_temperature(gradients, temperatures, rounding):
    """True if the gradient is the same at every temperature, within the rounding bounds.

    Every gradient is compared with the one at the first moderate temperature. The comparison
    between the moderate temperatures is the sharp one: there the bounds are tight, while at
    high temperature, in float32 with many classes, they can reach the gradient's own size.
    """
    index = len(temperatures) - len(MODERATE_TEMPERATURES)
    reference, reference_temperature = gradients[index], temperatures[index]
    reference_tolerance = rounding.row_tolerance(reference, reference_temperature)
    for gradient, temperature in zip(gradients, temperatures):
        bound = rounding.row_tolerance(gradient, temperature) + reference_tolerance
        if bool(((gradient - reference).abs().sum(-1) > bound).any()):
            return False
    return True


def tensor_temperature(probe, references, temperatures, rounding, rows):
    """Compare the gradients at ``T`` given as a 0-d tensor with those at the same float ``T``.

    ``references`` are the float-``T`` gradient rows at ``temperatures``; ``rows`` turns a
    probe's gradient into rows. Returns ``(status, temperature, exponent)``: ``"same"``;
    ``"differs"``, with the first temperature where the two paths disagree and the power of
    ``T`` that relates them when there is one; or ``"unsupported"``.
    """
    for reference, temperature in zip(references, temperatures):
        gradient = probe.tensor_gradient(temperature)
        if gradient is None:
            return "unsupported", None, None
        gradient = rows(gradient)
        bound = rounding.row_tolerance(gradient, temperature) + rounding.row_tolerance(
            reference, temperature
        )
        if bool(((gradient - reference).abs().sum(-1) <= bound).all()):
            continue
        reference_size = float(reference.pow(2).sum())
        ratio = float((gradient * reference).sum()) / reference_size if reference_size else 0.0
        if ratio <= 0:
            return "differs", temperature, None
        power = math.log(ratio) / math.log(temperature)
        rounded = round(2.0 * power) / 2.0
        exponent = rounded if abs(power - rounded) <= SLOPE_TOLERANCE and rounded else None
        return "differs", temperature, exponent
    return "same", None, None
