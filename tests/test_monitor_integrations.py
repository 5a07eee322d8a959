"""The KD monitor inside real trainers: a PyTorch Lightning Trainer and a Hugging Face Trainer
(tiny models built from configs, CPU, no downloads). Skipped when the libraries are absent
(the optional extra ``[monitor]`` installs them)."""

import importlib.metadata
import sys

import pytest
import torch
from monitor_helpers import equal_mean_, install_fake_atlas, kd_loss

from verify.monitor import KDMonitor


def _import_without_a_broken_torchvision(name, monkeypatch):
    """Import ``name``; if torchvision is installed but cannot load (a build that does not
    match the installed torch raises RuntimeError on import, and lightning's and transformers'
    optional imports trip over it), hide torchvision first: neither trainer needs it here.
    Hidden for this test only: the other tests of the process see torchvision as it is."""
    try:
        import torchvision  # noqa: F401
    except ImportError:
        pass
    except Exception:
        for key in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
            monkeypatch.delitem(sys.modules, key)
        monkeypatch.setitem(sys.modules, "torchvision", None)
        version, distribution = importlib.metadata.version, importlib.metadata.distribution

        def hidden(function):
            def lookup(package):
                if package.lower() == "torchvision":
                    raise importlib.metadata.PackageNotFoundError(package)
                return function(package)

            return lookup

        monkeypatch.setattr(importlib.metadata, "version", hidden(version))
        monkeypatch.setattr(importlib.metadata, "distribution", hidden(distribution))
    return pytest.importorskip(name)


# -- PyTorch Lightning -----------------------------------------------------------------------


def test_lightning_callback_observes_every_step(tmp_path, monkeypatch):
    pl = _import_without_a_broken_torchvision("lightning.pytorch", monkeypatch)
    from verify.monitor.lightning_callback import KDMonitorCallback

    install_fake_atlas(monkeypatch)

    class Distil(pl.LightningModule):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.body = torch.nn.Linear(6, 8)
            self.head = torch.nn.Linear(8, 5)
            self.teacher = torch.nn.Linear(6, 5)
            equal_mean_(self.head)
            equal_mean_(self.teacher)
            self.teacher.requires_grad_(False)

        def training_step(self, batch, batch_idx):
            (x,) = batch
            student_logits = self.head(torch.tanh(self.body(x)))
            teacher_logits = self.teacher(x)
            loss = kd_loss(student_logits, teacher_logits, 4.0)
            return {
                "loss": loss,
                "student_logits": student_logits,
                "teacher_logits": teacher_logits,
                "temperature": 4.0,
            }

        def configure_optimizers(self):
            return torch.optim.AdamW(self.parameters(), lr=1e-2)

    data = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(
            torch.randn(40, 6, generator=torch.Generator().manual_seed(1))
        ),
        batch_size=8,
    )
    monitor = KDMonitor(tmp_path / "run.jsonl")
    callback = KDMonitorCallback(monitor, head="head")
    trainer = pl.Trainer(
        max_steps=5,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback],
        default_root_dir=tmp_path,
    )
    trainer.fit(Distil(), data)
    lines = (tmp_path / "run.jsonl").read_text().splitlines()
    assert len(lines) == 5
    assert [w.cause for w in monitor.warnings][0] == "head-mean-drift"
    assert monitor.warnings[0].statement == "atlas-coordinatewise"
    assert monitor.heads[0].optimizer is not None


# -- Hugging Face ----------------------------------------------------------------------------


def test_hugging_face_callback_observes_every_step(tmp_path, monkeypatch):
    transformers = _import_without_a_broken_torchvision("transformers", monkeypatch)
    from verify.monitor.hf_callback import KDMonitorTrainerCallback

    install_fake_atlas(monkeypatch)
    config = transformers.GPT2Config(
        vocab_size=24, n_positions=8, n_embd=16, n_layer=1, n_head=2, tie_word_embeddings=False
    )
    torch.manual_seed(0)
    student, teacher = transformers.GPT2LMHeadModel(config), transformers.GPT2LMHeadModel(config)
    teacher.requires_grad_(False)
    with torch.no_grad():
        for model in (student, teacher):
            model.lm_head.weight.sub_(model.lm_head.weight.mean(0, keepdim=True))
    monitor = KDMonitor(tmp_path / "run.jsonl")
    callback = KDMonitorTrainerCallback(monitor, head="lm_head")

    class KDTrainer(transformers.Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
            student_logits = model(
                input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]
            ).logits
            with torch.no_grad():
                teacher_logits = teacher(
                    input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]
                ).logits
            callback.expose(
                student_logits, teacher_logits, 4.0, mask=inputs["attention_mask"].bool()
            )
            mask = inputs["attention_mask"].bool()
            return kd_loss(student_logits[mask], teacher_logits[mask], 4.0)

    generator = torch.Generator().manual_seed(2)
    dataset = []
    for _ in range(16):
        ids = torch.randint(0, 24, (8,), generator=generator)
        mask = torch.ones(8, dtype=torch.long)
        mask[6:] = 0
        dataset.append({"input_ids": ids, "attention_mask": mask})
    arguments = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=4,
        per_device_train_batch_size=4,
        learning_rate=1e-2,
        optim="sgd",
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        remove_unused_columns=False,
        disable_tqdm=True,
    )
    trainer = KDTrainer(model=student, args=arguments, train_dataset=dataset, callbacks=[callback])
    trainer.train()
    records = [
        __import__("json").loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert all(r["examples"] == 4 * 6 for r in records)  # the mask keeps 6 of 8 tokens
    assert records[0]["heads"][0]["optimizer"] == "SGD"
    # SGD on an untied, equal-mean lm_head: the class means stay at round-off.
    assert all(h["weight_floor_ratio"] <= 1 for r in records for h in r["heads"])
    assert not [w for w in monitor.warnings if w.cause == "head-mean-drift"]
