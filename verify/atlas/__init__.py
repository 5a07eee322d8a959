"""The optimizer atlas: which training setups keep the head's class means, so that KD at high
temperature stays logits matching (docs/optimizers.md, statements ``atlas-*`` of
docs/theory.md).

* :func:`recognise` (:mod:`.catalogue`): the verdict, statement and fix for a built optimizer.
* :func:`measure_drift` (:mod:`.drift`): train zero-class-sum reference heads and measure
  :math:`|1^T W|`, :math:`|1^T b|` against the round-off floor.
* :mod:`.heads`: tied, weight-normalised and LoRA heads; :mod:`.timm_optimizers`: the real
  ``timm`` optimizers by name; :mod:`.precision`: Muon's internal precision, Newton–Schulz's
  amplification, SGD in low precision; :mod:`.command`: ``python -m verify optimizer``.

Examples
========

>>> import torch
>>> recognise(torch.optim.AdamW([torch.nn.Parameter(torch.zeros(4, 3))]))["verdict"]
'breaks'
"""

from .catalogue import predict_timm, recognise
from .drift import Drift, JointOptimizer, ReferenceModel, measure_drift

__all__ = [
    "recognise",
    "predict_timm",
    "measure_drift",
    "Drift",
    "ReferenceModel",
    "JointOptimizer",
]
