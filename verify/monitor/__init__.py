r"""Watch the theory during training: is your KD run behaving as logits matching?

:class:`KDMonitor` is called once per training step with the logits the loop already has::

    monitor = KDMonitor("run.jsonl")
    monitor.watch_head(student.fc, optimizer)
    for x in data:
        z, v = student(x), teacher(x)
        loss = kd_loss(z, v, T)
        monitor.observe(z, v, T, step=step)
        ...

Each step's record (docs/monitor.md) has the logit-mean gap, :math:`T` against the
convergence radius with a certified remainder bound, the cosines of KD's gradient with its
two limits, and the watched heads' class-mean drift against the round-off floor. It warns
once per cause when the premise breaks. ``python -m verify monitor-report RUN.jsonl``
summarises a run (:mod:`verify.monitor.report`); :mod:`verify.monitor.lightning` and
:mod:`verify.monitor.huggingface` hold the callbacks for PyTorch Lightning and Hugging Face.
"""

from .head import HeadMagnitude, HeadWatch, TensorDrift, drift_floor, resolve_head
from .measures import BatchMeasures, gap_floor, measure_batch, perceptron_update
from .monitor import SCHEMA_VERSION, KDMonitor, MonitorWarning, atlas_verdict

__all__ = [
    "KDMonitor",
    "MonitorWarning",
    "SCHEMA_VERSION",
    "atlas_verdict",
    "BatchMeasures",
    "measure_batch",
    "gap_floor",
    "perceptron_update",
    "HeadMagnitude",
    "HeadWatch",
    "resolve_head",
    "TensorDrift",
    "drift_floor",
]
