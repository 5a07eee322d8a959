"""A ``torchvision`` built for another ``torch`` (a CUDA wheel beside a CPU ``torch``) cannot
load its C++ operators, and its import then stops at ``torchvision::nms does not exist``:
every module that imports it (``timm``, ``transformers``' image processors, hence ``trl``)
fails to import, although distillation losses use none of those operators.

:func:`declare_missing_operators` declares the two operator schemas torchvision's import
registers fake kernels for (no kernels: the operators stay unusable), so that the import
completes. It is called only after an import failed with that error (and torch is then already
imported); with a matching ``torchvision`` nothing is touched.
"""

import importlib
import sys

__all__ = ["is_operator_failure", "torchvision_fails_to_import", "declare_missing_operators"]

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_LIBRARIES = []  # torch keeps the declared schemas while the library object lives


def is_operator_failure(error):
    """Whether ``error`` (or what caused it) is torchvision's missing-operator failure."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, RuntimeError) and "torchvision::" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def torchvision_fails_to_import():
    """Whether importing torchvision fails with the missing-operator error (torch imported)."""
    if "torch" not in sys.modules:
        return False
    try:
        importlib.import_module("torchvision")
    except Exception as error:  # anything else is not ours to handle
        return is_operator_failure(error)
    return False


def declare_missing_operators():
    """Declare torchvision's operator schemas and forget its half-imported modules."""
    # lazy: torch is the optional [verify] extra; derive never imports it at module level
    import torch

    library = torch.library.Library("torchvision", "FRAGMENT")
    for schema in _SCHEMAS:
        try:
            library.define(schema)
        except RuntimeError:  # already declared (by torchvision itself or an earlier call)
            pass
    _LIBRARIES.append(library)
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]
