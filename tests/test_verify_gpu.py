"""CUDA runs: skipped without a GPU, run when one is present."""

import pytest
import torch

from verify import CHECKS, NetworkSpec, StackedNetworks
from verify.devices import resolve_device

pytestmark = pytest.mark.gpu


def test_auto_picks_cuda():
    assert resolve_device("auto").type == "cuda"


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("statement_id", list(CHECKS))
def test_every_check_gives_its_verdict_on_cuda(statement_id, dtype):
    result = CHECKS[statement_id](device="cuda", dtype=dtype, examples=16, search_examples=20)
    assert result.device.startswith("cuda")
    assert result.verdict == result.expected, result


def test_stacked_networks_on_cuda_match_the_cpu():
    spec = NetworkSpec(
        kind="conv",
        input_shape=(2, 5, 5),
        widths=(4, 3),
        activation="gelu",
        bias=True,
        normalization="batch",
        classes=6,
    )
    cpu = StackedNetworks.build(spec, count=8, seed=3)
    cuda = StackedNetworks.build(spec, count=8, seed=3, device="cuda")
    inputs = torch.randn(8, 4, 2, 5, 5, dtype=torch.float64)
    _, expected = cpu.forward(inputs)
    _, logits = cuda.forward(inputs.cuda())
    assert torch.allclose(logits.cpu(), expected, rtol=1e-10, atol=1e-12)
