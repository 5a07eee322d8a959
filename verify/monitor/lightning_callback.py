"""A PyTorch Lightning ``Callback`` that feeds :class:`~verify.monitor.KDMonitor`.

The module's ``training_step`` returns a dict with the loss and the logits it used::

    def training_step(self, batch, batch_idx):
        student_logits, teacher_logits = self(batch), self.teacher(batch)
        loss = kd_loss(student_logits, teacher_logits, self.T)
        return {"loss": loss, "student_logits": student_logits,
                "teacher_logits": teacher_logits, "temperature": self.T}

    trainer = Trainer(callbacks=[KDMonitorCallback(KDMonitor("run.jsonl"), head="head")])

After every optimizer step the callback observes those logits (``step`` is the trainer's
``global_step``); with ``head`` (an attribute path of the LightningModule, or a function of
it) it watches that head with the trainer's first optimizer. Needs ``lightning``
(``pip install kd-theorems[monitor]``).
"""

import lightning.pytorch as pl

from .._errors import check_argument
from .head import resolve_head
from .monitor import KDMonitor

__all__ = ["KDMonitorCallback"]


class KDMonitorCallback(pl.Callback):
    """Observe the logits that ``training_step`` returns (keys ``student_key``,
    ``teacher_key``, ``temperature_key`` and, if present, ``mask_key``) after each step."""

    def __init__(
        self,
        monitor,
        *,
        head=None,
        student_key="student_logits",
        teacher_key="teacher_logits",
        temperature_key="temperature",
        mask_key="mask",
    ):
        check_argument(
            isinstance(monitor, KDMonitor), "monitor must be a KDMonitor, got {!r}", monitor
        )
        super().__init__()
        self.monitor = monitor
        self.head = head
        self.keys = (student_key, teacher_key, temperature_key, mask_key)

    def on_train_start(self, trainer, pl_module):
        head = resolve_head(pl_module, self.head)
        if head is not None:
            optimizers = trainer.optimizers
            self.monitor.watch_head(head, optimizers[0] if optimizers else None)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        student_key, teacher_key, temperature_key, mask_key = self.keys
        check_argument(
            isinstance(outputs, dict) and all(k in outputs for k in self.keys[:3]),
            "KDMonitorCallback: training_step must return a dict with {!r}, {!r} and {!r}",
            student_key,
            teacher_key,
            temperature_key,
        )
        temperature = outputs[temperature_key]
        self.monitor.observe(
            outputs[student_key],
            outputs[teacher_key],
            float(temperature),
            step=int(trainer.global_step),
            mask=outputs.get(mask_key),
        )

    def on_train_end(self, trainer, pl_module):
        self.monitor.close()
