"""The real ``timm`` optimizers, by name, as :func:`timm.optim.create_optimizer_v2` builds them.

:func:`import_timm` imports :mod:`timm.optim`. ``timm`` imports ``torchvision`` (for layers no
optimizer uses); a ``torchvision`` wheel built for CUDA beside a CPU ``torch`` cannot load its
compiled operators, and its import then fails registering fake kernels for two of them
(``torchvision::nms``, ``torchvision::qnms``). Only in that case, :func:`import_timm` declares
those two operator schemas (no kernels: nothing here calls them) and imports again; with a
matching ``torchvision`` (the CPU build of 0.28.x for torch 2.13) nothing is touched.

:func:`build` makes an optimizer by name over a model's parameters; :data:`UNAVAILABLE`
names the ones that need a package or a GPU this machine lacks, found by trying.

Examples
========

>>> names = timm_optimizer_names()
>>> "adamw" in names and "muon" in names
True
"""

import importlib
import sys

import torch

from derive._torchvision import declare_missing_operators, is_operator_failure

from .._errors import VerifyError, check_argument

__all__ = ["import_timm", "timm_optimizer_names", "build", "runs_here"]


def import_timm():
    """``timm.optim``, importable with a CUDA-built ``torchvision`` beside a CPU ``torch``."""
    try:
        return importlib.import_module("timm.optim")
    except ModuleNotFoundError as error:
        raise VerifyError(f"timm is not installed ({error}); pip install timm") from None
    except RuntimeError as error:
        if not is_operator_failure(error):
            raise
    for name in [n for n in sys.modules if n == "timm" or n.startswith("timm.")]:
        del sys.modules[name]
    declare_missing_operators()
    return importlib.import_module("timm.optim")


def timm_optimizer_names():
    """Every optimizer name ``timm`` offers (``timm.optim.list_optimizers()``)."""
    return list(import_timm().list_optimizers())


def build(name, parameters, **options):
    """``timm.optim.create_optimizer_v2(parameters, opt=name, **options)``."""
    optim = import_timm()
    check_argument(
        name in optim.list_optimizers(), "unknown timm optimizer {!r}; see list_optimizers()", name
    )
    return optim.create_optimizer_v2(parameters, opt=name, **options)


def runs_here(name):
    """``None`` if the named optimizer can be built on this machine's CPU, else why not."""
    try:
        build(name, [torch.nn.Parameter(torch.zeros(2, 2))], lr=1e-2)
    except Exception as error:  # any failure to build means "not here"
        return f"{type(error).__name__}: {' '.join(str(error).split())[:120]}"
    return None
