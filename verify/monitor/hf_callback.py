"""A Hugging Face ``TrainerCallback`` that feeds :class:`~verify.monitor.KDMonitor`.

A ``Trainer`` does not hand the logits to its callbacks, so the subclass that computes the KD
loss exposes them to the callback::

    class KDTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
            student_logits = model(**inputs).logits
            with torch.no_grad():
                teacher_logits = self.teacher(**inputs).logits
            self.kd_callback.expose(student_logits, teacher_logits, T,
                                    mask=inputs.get("attention_mask"))
            return kd_loss(student_logits, teacher_logits, T)

    callback = KDMonitorTrainerCallback(KDMonitor("run.jsonl"), head="lm_head")

At the end of each optimizer step the callback observes the last exposed logits (``step`` is
``state.global_step``; with gradient accumulation, the last micro-batch's); with ``head`` (an
attribute path of the model, or a function of it) it watches that head with the trainer's
optimizer (unwrapped from accelerate's wrapper). Needs ``transformers``
(``pip install kd-theorems[monitor]``).
"""

import torch
import transformers

from .._errors import check_argument
from .head import resolve_head
from .monitor import KDMonitor

__all__ = ["KDMonitorTrainerCallback"]


class KDMonitorTrainerCallback(transformers.TrainerCallback):
    """Observe the logits a ``Trainer`` subclass passes to :meth:`expose` once per step."""

    def __init__(self, monitor, *, head=None):
        check_argument(
            isinstance(monitor, KDMonitor), "monitor must be a KDMonitor, got {!r}", monitor
        )
        self.monitor = monitor
        self.head = head
        self._exposed = None

    def expose(self, student_logits, teacher_logits, T, *, mask=None):
        """Keep this micro-batch's logits (detached: nothing of the graph is held)."""
        with torch.no_grad():
            self._exposed = (
                student_logits.detach(),
                teacher_logits.detach(),
                float(T),
                None if mask is None else mask.detach(),
            )

    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        head = resolve_head(model, self.head)
        if head is not None:
            optimizer = getattr(optimizer, "optimizer", optimizer)  # accelerate's wrapper
            if not isinstance(optimizer, torch.optim.Optimizer):
                optimizer = None
            self.monitor.watch_head(head, optimizer)

    def on_step_end(self, args, state, control, **kwargs):
        check_argument(
            self._exposed is not None,
            "KDMonitorTrainerCallback: compute_loss must call callback.expose(student_logits, "
            "teacher_logits, T) before the step ends",
        )
        student, teacher, temperature, mask = self._exposed
        self.monitor.observe(student, teacher, temperature, step=int(state.global_step), mask=mask)
        self._exposed = None

    def on_train_end(self, args, state, control, **kwargs):
        self.monitor.close()
