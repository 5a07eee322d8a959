"""The audit's pieces on their own, each decision with a control on either side: the cap on
the limit's tolerance, the tail bound of the identification, the token normalizations, the
signature reading and the sandbox."""

import math

import pytest
import torch

from verify._errors import VerifyError
from verify.audit.fitting import extrapolate, power_law
from verify.audit.identification import _truncation
from verify.audit.loading import Sandbox, Signature, inspect_signature
from verify.audit.sequences import classify
from verify.tolerances import RESOLUTION_FACTOR, machine_epsilon

_GRID = tuple(float(t) for t in torch.logspace(2, 4, 9, dtype=torch.float64))


def _limit():
    generator = torch.Generator().manual_seed(0)
    limit = torch.randn(4, 6, generator=generator, dtype=torch.float64)
    return limit - limit.mean(-1, keepdim=True)


def _wobbling(amplitude):
    """Gradients G (1 + 1/T + amplitude cos(3 log T)): a series plus what no series is."""
    limit = _limit()
    return torch.stack(
        [limit * (1 + 1 / t + amplitude * math.cos(3 * math.log(t))) for t in _GRID]
    ), limit


def _extrapolated(amplitude, logit_scale):
    gradients, limit = _wobbling(amplitude)
    return extrapolate(
        gradients, _GRID, 0.0, limit, limit, logit_scale=logit_scale, dtype=torch.float64
    )


def test_the_cap_on_the_limits_tolerance_holds_from_both_sides():
    """Established iff the extrapolation's residual is within the omitted order plus
    sqrt(eps): just below passes, just above is 'not established', whatever the scale."""
    scale = 1.0
    unit = _extrapolated(1e-3, scale)["residual"] / 1e-3  # the residual per unit amplitude
    allowed = (scale / _GRID[0]) ** 3 + machine_epsilon(torch.float64) ** 0.5
    below, above = (
        _extrapolated(0.5 * allowed / unit, scale),
        _extrapolated(2.0 * allowed / unit, scale),
    )
    assert below["established"] and not above["established"]
    assert below["scale_tolerance"] < below["cap"] and above["scale_tolerance"] == above["cap"]
    truncation = (scale / _GRID[0]) ** 3
    assert above["cap"] == pytest.approx(truncation + RESOLUTION_FACTOR * allowed)
    assert _extrapolated(0.0, scale)["established"]


def test_the_power_law_needs_the_exponent_and_the_residual():
    gradients, limit = _wobbling(0.0)
    assert power_law(gradients, _GRID, limit)["exponent"] == 0.0
    bent = torch.stack([g * t ** (0.5 * (i > 4)) for i, (g, t) in enumerate(zip(gradients, _GRID))])
    assert not power_law(bent, _GRID, limit)["power_law"]


def test_the_tail_bound_is_geometric_and_refuses_a_slow_series():
    def sizes(ratio):
        return torch.stack([torch.full((1, 2), ratio**k * 10.0**k) for k in range(5)])

    # terms of relative size 0.1^k at T = 10: the tail 0.1^5 / 0.9
    assert _truncation(sizes(0.1), 10.0) == pytest.approx(0.1**5 / 0.9)
    assert _truncation(sizes(0.6), 10.0) == -math.inf


@pytest.mark.parametrize(
    "weights, scale, name",
    [
        ([[1, 1, 1, 1], [1, 1, 0, 0]], 1.0, "token-mean"),
        ([[1, 1, 1, 1], [1, 1, 0, 0]], 3.0, "batch-normalized"),
        ([[1, 1, 1, 1], [1, 1, 0, 0]], 6.0, "token-sum"),
        ([[1, 1, 1, 1], [1, 1, 0, 0]], 0.75, "position-mean"),
        ([[0.75, 0.75, 0.75, 0.75], [1.5, 1.5, 0, 0]], 1.0, "sequence-mean"),
        ([[1, 1, 1, 1], [1, 1, 0, 0]], 2.0, None),
        ([[0.5, 1, 1.5, 1], [1, 1, 0, 0]], 1.0, None),
    ],
)
def test_token_normalizations_are_named(weights, scale, name):
    padded = torch.tensor([[False] * 4, [False, False, True, True]])
    result = classify(
        torch.tensor(weights, dtype=torch.float64),
        padded,
        torch.tensor([4, 2]),
        scale,
        tolerance=1e-9,
        scale_tolerance=1e-6,
    )
    assert result.name == name and result.padding == 0.0


def test_padding_with_a_gradient_is_seen():
    weights = torch.tensor([[1.0] * 4, [1.0, 1.0, 1.0, 1.0]], dtype=torch.float64)
    padded = torch.tensor([[False] * 4, [False, False, True, True]])
    result = classify(
        weights, padded, torch.tensor([4, 2]), 1.0, tolerance=1e-9, scale_tolerance=1e-6
    )
    assert result.padding == 1.0


@pytest.mark.parametrize(
    "fn, signature",
    [
        (lambda s, t, T: 0, Signature()),
        (lambda s, t, T, target: 0, Signature("positional", False)),
        (lambda s, t, T, labels: 0, Signature("positional", False)),
        (lambda s, t, T, alpha=1.0: 0, Signature(None, False)),
        (lambda s, t, T, *, target=None, mask=None: 0, Signature("keyword", True)),
        (lambda s, t, T, mask: 0, Signature(None, True)),
        (print, Signature()),
    ],
)
def test_the_signature_says_what_to_pass(fn, signature):
    assert inspect_signature(fn) == signature


def test_the_sandbox_contains_what_the_code_does():
    sandbox = Sandbox("f", timeout=5.0)
    assert sandbox.call(lambda: print("x") or 1, context="") == 1
    assert sandbox.printed_lines == 1
    for action, message in [
        (lambda: exit(1), "called sys.exit(1)"),
        (lambda: 1 / 0, "raised ZeroDivisionError: division by zero"),
    ]:
        with pytest.raises(VerifyError) as error:
            sandbox.call(action, context="(test)")
        assert message in str(error.value)
    expired = Sandbox("f", timeout=1e-9)
    with pytest.raises(VerifyError) as error:
        expired.call(lambda: 1, context="")
    assert "did not finish within its timeout" in str(error.value)
