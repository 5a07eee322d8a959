"""The audit and the trace on real, unmodified library losses (the ``[integrations]`` extra:
trl, torchdistill, textbrewer), called through ``--call`` and the recognised signatures.

Each identification is checked against the mathematics of the library's code:

* TRL's ``GKDTrainer.generalized_jsd_loss`` has no T**2: at beta = 0 it is
  F.kl_div(log q, log p) = KL(p || q), forward KL; at beta = 1 KL(q || p), reverse KL; at
  beta = 0.5 JSD_0.5 = JS; each times T^-2, and over real tokens only with labels (-100 at
  padding), a mean over the real tokens.
* torchdistill's ``KDLoss`` without targets returns the soft loss alone, KL batchmean without
  T**2 (kl times T^-2); with targets alpha CE + (1 - alpha) T**2 KL (ce-mixture, alpha).
  ``DISTLoss``'s inter-class term is tau**2 (1 - Pearson) (dist times T^2); its intra-class term
  correlates over the batch, which no per-example objective is. ``LogitStdKDLoss`` without
  targets is KL of the softmaxes of the logits standardized with torch.std (unbiased), no T**2.
* textbrewer's ``kd_ce_loss`` is the soft cross-entropy without T**2 (kl times T^-2);
  ``kd_mse_loss`` is F.mse_loss(z/T, v/T) = T^-2 <(z - v)^2> = 2 T^-2 logits matching.
"""

import os
import sys

import forkrun
import pytest
import torch

torchdistill_losses = pytest.importorskip("torchdistill.losses.mid_level")
textbrewer_losses = pytest.importorskip("textbrewer.losses")
pytest.importorskip("trl")

from derive import trace  # noqa: E402
from verify.audit import audit  # noqa: E402

IO = '({".": {"output": student}}, {".": {"output": teacher}}'
KD = 'fn(".", "output", ".", "output", temperature=T, alpha=0.5)'


@pytest.fixture
def gkd(monkeypatch):
    """TRL's generalized JSD. Its module imports transformers, which imports torchvision when
    one is installed; a torchvision built for another torch fails to import, so it is hidden
    from transformers when it cannot be imported (the loss does not use it), for this test
    only: the other tests of the process (timm's optimizers) see torchvision as it is."""
    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    try:
        import torchvision  # noqa: F401
    except Exception:
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            monkeypatch.delitem(sys.modules, name)
        monkeypatch.setitem(sys.modules, "torchvision", None)
    module = pytest.importorskip("trl.experimental.gkd.gkd_trainer")
    return module.GKDTrainer.generalized_jsd_loss


def test_torch_is_still_the_cpu_build():
    assert torch.version.cuda is None and torch.__version__.startswith("2.13.0"), torch.__version__


def _identified(result):
    return result.objective, dict(result.parameters), result.weight, result.identification_exponent


SEQUENCES = dict(sequence_length=4, batch_size=4, mask="labels")


@pytest.mark.parametrize(
    "beta, objective",
    [("0.0", "kl"), ("0.5", "js"), ("1.0", "reverse-kl")],
)
@pytest.mark.parametrize("labels", [False, True])
def test_trl_generalized_jsd(beta, objective, labels, gkd):
    call = (
        f"fn(student, teacher, labels=mask, beta={beta}, temperature=T)"
        if labels
        else f"fn(student, teacher, beta={beta}, temperature=T)"
    )
    result = audit(gkd, call=call, symbolic=False, **(SEQUENCES if labels else {}))
    assert _identified(result) == (objective, {}, 1.0, -2.0), result.to_text()
    assert result.call == call + " (--call)"
    if labels:
        assert result.normalization == "token-mean"
    declared = audit(
        gkd,
        call=call,
        expect=objective,
        power=-2,
        symbolic=False,
        **(SEQUENCES if labels else {}),
    )
    assert declared.verdict == "consistent", declared.diagnoses


def test_trl_recognised_signature_with_labels(gkd):
    result = audit(gkd, symbolic=False, **SEQUENCES)
    assert (
        result.call
        == "fn(student, teacher, temperature=T, labels=mask) (recognised from the signature)"
    )
    assert _identified(result) == ("js", {}, 1.0, -2.0)  # beta defaults to 0.5


def test_torchdistill_kd_loss_with_and_without_targets():
    without = audit(torchdistill_losses.KDLoss, call=KD + IO + ")", symbolic=False)
    assert _identified(without) == ("kl", {}, 1.0, -2.0), without.to_text()
    with_targets = audit(torchdistill_losses.KDLoss, call=KD + IO + ", target)", symbolic=False)
    objective, parameters, weight, power = _identified(with_targets)
    assert (objective, weight, power) == ("ce-mixture", 1.0, 0.0), with_targets.to_text()
    assert abs(parameters["alpha"] - 0.5) < 1e-4
    assert with_targets.labels == "random"


def test_torchdistill_dist_loss():
    call = 'fn(".", "output", ".", "output", tau=T, gamma=0.0)' + IO + ")"
    result = audit(torchdistill_losses.DISTLoss, call=call, symbolic=False)
    assert _identified(result) == ("dist", {}, 1.0, 2.0), result.to_text()
    declared = audit(torchdistill_losses.DISTLoss, call=call, expect="dist", power=2)
    assert declared.verdict == "consistent", declared.diagnoses
    # With its intra-class term (gamma = 1, recognised call): a correlation over the batch.
    recognised = audit(torchdistill_losses.DISTLoss, symbolic=False)
    assert recognised.call.endswith("(recognised from the signature)")
    assert recognised.objective == "unknown"


def test_torchdistill_logit_std_kd_loss():
    call = 'fn(".", "output", ".", "output", temperature=T, alpha=0.5)' + IO + ")"
    result = audit(torchdistill_losses.LogitStdKDLoss, call=call, symbolic=False)
    assert _identified(result) == ("standardized-kl", {"std": "unbiased"}, 1.0, -2.0), (
        result.to_text()
    )
    declared = audit(
        torchdistill_losses.LogitStdKDLoss,
        call=call,
        expect="standardized-kl:std=unbiased",
        power=-2,
        symbolic=False,
    )
    assert declared.verdict == "consistent", declared.diagnoses


def test_textbrewer_kd_ce_and_kd_mse():
    ce = audit(textbrewer_losses.kd_ce_loss)
    assert _identified(ce) == ("kl", {}, 1.0, -2.0) and ce.call == ""  # the default call
    mse = audit(textbrewer_losses.kd_mse_loss, expect="logits-matching", weight=2, power=-2)
    assert _identified(mse) == ("logits-matching", {}, 2.0, -2.0)
    assert mse.verdict == "consistent", mse.diagnoses
    assert mse.symbolic.relation_text.startswith("ℓ = 2*T^-2*logits-matching")


def test_traces_of_library_losses():
    assert trace(textbrewer_losses.kd_mse_loss, order=2).relation.text == (
        "= 2*T^-2*logits-matching"
    )
    kd = trace(torchdistill_losses.KDLoss, order=2, call=KD + IO + ")")
    assert kd.relation.text == "= T^-2*KD", kd.relation.text


def test_the_cli_audits_a_library_loss_in_one_command():
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    done = forkrun.run(
        [
            "-m",
            "verify",
            "audit",
            "torchdistill.losses.mid_level:KDLoss",
            "--call",
            KD + IO + ", target)",
            "--expect",
            "ce-mixture:alpha=0.5",
            "--no-trace",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "call                  fn(" in done.stdout


def test_the_cli_audits_trls_loss_in_one_command():
    """TRL's module imports torchvision (through transformers); where the installed torchvision
    was built for another torch, the loader declares its missing operators and imports again
    (derive._torchvision), so the one command works either way."""
    pytest.importorskip("trl")
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    done = forkrun.run(
        [
            "-m",
            "verify",
            "audit",
            "trl.experimental.gkd.gkd_trainer:GKDTrainer.generalized_jsd_loss",
            "--call",
            "fn(student, teacher, beta=0.5, temperature=T)",
            "--expect",
            "js",
            "--power",
            "-2",
            "--no-trace",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "identified as         js, weight 1, times T^-2" in done.stdout


def test_only_torchvisions_operator_failure_is_tolerated():
    from derive._torchvision import is_operator_failure

    missing = RuntimeError("operator torchvision::nms does not exist")
    wrapped = ModuleNotFoundError("Could not import module 'BaseImageProcessor'")
    wrapped.__cause__ = missing
    assert is_operator_failure(missing) and is_operator_failure(wrapped)
    assert not is_operator_failure(RuntimeError("operator aten::nms does not exist"))
    assert not is_operator_failure(ModuleNotFoundError("No module named 'trl'"))
