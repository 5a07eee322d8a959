"""Device and dtype resolution: the names the CLI and the checks accept.

Examples
========

>>> resolve_device("cpu")
device(type='cpu')
>>> resolve_dtype("float32")
torch.float32
>>> dtype_name(torch.float64)
'float64'
>>> resolve_dtype("float16")
Traceback (most recent call last):
...
verify._errors.VerifyError: dtype must be one of float64, float32, got 'float16'
"""

import torch

from ._errors import check_argument

__all__ = ["DEVICES", "DTYPES", "cuda_available", "resolve_device", "resolve_dtype", "dtype_name"]

#: Device names accepted by :func:`resolve_device` (and ``--device``).
DEVICES = ("auto", "cpu", "cuda")
#: Floating point types the checks run in, by name (and ``--dtype``); float64 is the default.
DTYPES = {"float64": torch.float64, "float32": torch.float32}


def cuda_available():
    """True if torch sees a CUDA device."""
    return torch.cuda.is_available()


def resolve_device(device: str | torch.device = "cpu") -> torch.device:
    """A :class:`torch.device` for ``"auto"``, ``"cpu"``, ``"cuda"`` (or ``"cuda:K"``), or a device.

    ``"auto"`` picks CUDA when it is present, else the CPU. Asking for CUDA without it raises
    :class:`~verify.VerifyError`.
    """
    if isinstance(device, torch.device):
        device = str(device)
    check_argument(
        isinstance(device, str) and (device in DEVICES or device.startswith("cuda:")),
        "device must be one of {}, got {!r}",
        ", ".join(DEVICES),
        device,
    )
    if device == "auto":
        return torch.device("cuda" if cuda_available() else "cpu")
    if device.startswith("cuda"):
        check_argument(
            cuda_available(),
            "device {!r} was requested but CUDA is not available "
            "(torch {}); use --device cpu or auto",
            device,
            torch.__version__,
        )
        try:
            resolved = torch.device(device)
        except RuntimeError:
            resolved = None
        check_argument(
            resolved is not None
            and (resolved.index is None or resolved.index < torch.cuda.device_count()),
            "device {!r} does not exist: {} CUDA device(s) present",
            device,
            torch.cuda.device_count(),
        )
        assert resolved is not None  # check_argument raised otherwise
        return resolved
    return torch.device(device)


def resolve_dtype(dtype: str | torch.dtype = torch.float64) -> torch.dtype:
    """A floating :class:`torch.dtype` from a name in :data:`DTYPES` or a dtype."""
    if isinstance(dtype, torch.dtype):
        check_argument(
            dtype in DTYPES.values(), "dtype must be one of {}, got {}", ", ".join(DTYPES), dtype
        )
        return dtype
    check_argument(dtype in DTYPES, "dtype must be one of {}, got {!r}", ", ".join(DTYPES), dtype)
    return DTYPES[dtype]


def dtype_name(dtype):
    """The short name (``"float64"``) of a dtype accepted by :func:`resolve_dtype`."""
    dtype = resolve_dtype(dtype)
    return next(name for name, value in DTYPES.items() if value == dtype)
