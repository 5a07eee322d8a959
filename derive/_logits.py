r"""The one reader of logits files, shared by ``derive bound`` and ``verify regime``.

:func:`read_logits` reads an array ``[B, N]`` from a ``.npy`` file (``numpy.save``) or a ``.pt``
file (``torch.save`` of one tensor; torch is imported only then), and refuses in one line,
before reading the data:

* a path that is not a regular file (a directory, a FIFO, a device, a socket), checked before
  opening it and again on the opened file (a FIFO would block the reader forever);
* a ``.npy`` header longer than :data:`MAX_HEADER_BYTES`, an array whose shape is not
  ``[B, N]`` with ``B >= 1`` and ``N >= 2``, more than ``max_values`` logits, a file shorter than
  its header says;
* a dtype outside :data:`DTYPES` (float16/32/64, bfloat16 in ``.pt``, and integers, which are
  exact in float64 up to 2**53): long double, complex, bool, object, strings, structured;
* in a ``.pt``: anything but one dense, strided, real tensor on the CPU or a device (sparse,
  meta, quantized and nested tensors are refused), loaded with ``weights_only=True``, from a
  file no larger than the data it may hold plus :data:`PT_OVERHEAD_BYTES`;
* a value that is not finite (its position is named).

The result is a C-contiguous float64 :class:`numpy.ndarray`.

Examples
========

>>> import os, tempfile, numpy
>>> path = os.path.join(tempfile.mkdtemp(), "teacher.npy")
>>> numpy.save(path, numpy.zeros((2, 3), dtype=numpy.float32))
>>> read_logits(path, option="--teacher", max_values=100).shape
(2, 3)
>>> numpy.save(path, numpy.zeros((2, 3), dtype=numpy.complex128))
>>> read_logits(path, option="--teacher", max_values=100)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
derive._errors.DeriveError: --teacher: the array in ... must hold real numbers (...), ... complex128
"""

import os
import stat

from ._errors import DeriveError

__all__ = ["read_logits", "DTYPES", "MAX_HEADER_BYTES", "PT_OVERHEAD_BYTES", "SUFFIXES"]

#: The file kinds read (by suffix).
SUFFIXES = (".npy", ".pt", ".pth")
#: The dtypes accepted, by name (numpy's and torch's).
DTYPES = (
    "float16",
    "float32",
    "float64",
    "bfloat16",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
)
_SHOWN = "float16, float32, float64 (bfloat16 in .pt) or integers"
#: The longest ``.npy`` header read (numpy's own default limit).
MAX_HEADER_BYTES = 10000
#: A ``.pt`` file may be this much larger than the data it holds (the zip's records, pickle).
PT_OVERHEAD_BYTES = 1 << 20


def read_logits(path, *, option, max_values, error=DeriveError):
    """The logits ``[B, N]`` in ``path`` as float64; ``error`` (one line naming ``option`` and
    the file) for anything else. ``max_values`` is the most logits (``B * N``) accepted."""
    if not (isinstance(path, (str, os.PathLike)) and str(path) != ""):
        raise error(f"{option} must be a file path, got {path!r}")
    path = os.fspath(path)
    if "\x00" in path:
        raise error(f"{option} must not contain a NUL byte")
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        raise error(f"{option} must be a .pt or .npy file of logits [B, N], got {path}")
    handle = _open_regular(path, option, error)
    with os.fdopen(handle, "rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        if suffix == ".npy":
            values = _read_npy(stream, size, path, option, max_values, error)
        else:
            values = _read_pt(stream, size, path, option, max_values, error)
    # lazy: numpy costs ~0.15 s to import (a fifth of `import derive`); only reading logits needs it
    import numpy

    finite = numpy.isfinite(values)
    if not finite.all():
        row, column = (int(i) for i in numpy.argwhere(~finite)[0])
        raise error(
            f"{option}: the logits in {path} must be finite, got {values[row, column]} at "
            f"[{row}, {column}]"
        )
    return values


def _kind(mode):
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _open_regular(path, option, error):
    """A read-only descriptor of ``path``, a regular file (checked before and after opening;
    ``O_NONBLOCK`` so that a FIFO swapped in between cannot block the open)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise error(f"{option}: no such file: {path}") from None
    except OSError as problem:
        raise error(f"{option}: cannot read {path}: {problem.strerror or problem}") from None
    if not stat.S_ISREG(mode):
        raise error(f"{option}: {path} is {_kind(mode)}, not a regular file of logits")
    try:
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as problem:
        raise error(f"{option}: cannot read {path}: {problem.strerror or problem}") from None
    mode = os.fstat(handle).st_mode
    if not stat.S_ISREG(mode):
        os.close(handle)
        raise error(f"{option}: {path} is {_kind(mode)}, not a regular file of logits")
    if hasattr(os, "set_blocking"):
        os.set_blocking(handle, True)
    return handle


def _check_shape(shape, count, path, option, max_values, error):
    if len(shape) != 2:
        raise error(f"{option}: the array in {path} must have shape [B, N], got shape {shape}")
    if shape[0] < 1 or shape[1] < 2:
        raise error(
            f"{option}: the array in {path} must have B >= 1 rows and N >= 2 classes, got "
            f"shape {shape}"
        )
    if count > max_values:
        raise error(f"{option}: at most {max_values} logits (B*N), got {count} in {path}")


def _refuse_dtype(name, path, option, error):
    raise error(
        f"{option}: the array in {path} must hold real numbers ({_SHOWN}), got dtype {name}"
    )


def _read_npy(stream, size, path, option, max_values, error):
    # lazy: numpy costs ~0.15 s to import (a fifth of `import derive`); only reading logits needs it
    import numpy

    # lazy: numpy's .npy reader, imported with numpy for the same reason
    from numpy.lib import format as npy

    def unreadable(reason):
        return error(f"{option}: {path} is not a readable .npy array ({reason})")

    try:
        version = npy.read_magic(stream)
    except ValueError:
        raise error(
            f"{option}: {path} is not a .npy file (numpy.save writes one); give an array of "
            f"logits [B, N]"
        ) from None
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise unreadable(f"format version {version[0]}.{version[1]}")
    length_bytes = stream.read(2 if version == (1, 0) else 4)
    if len(length_bytes) < (2 if version == (1, 0) else 4):
        raise unreadable("the header is cut short")
    length = int.from_bytes(length_bytes, "little")
    if length > MAX_HEADER_BYTES:
        raise unreadable(f"a header of {length} bytes; at most {MAX_HEADER_BYTES}")
    stream.seek(-len(length_bytes), os.SEEK_CUR)
    reader = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
    try:
        shape, fortran_order, dtype = reader(stream, max_header_size=MAX_HEADER_BYTES)
    except (ValueError, SyntaxError, TypeError) as problem:
        raise unreadable(" ".join(str(problem).split())[:100]) from None
    if dtype.hasobject:
        raise error(f"{option}: {path} holds Python objects, not numbers")
    if dtype.fields is not None or dtype.subdtype is not None or dtype.name not in DTYPES:
        _refuse_dtype(dtype.name if dtype.fields is None else "structured", path, option, error)
    count = 1
    for extent in shape:
        count *= extent
    _check_shape(tuple(shape), count, path, option, max_values, error)
    needed = count * dtype.itemsize
    if size - stream.tell() < needed:
        raise unreadable(
            f"the file holds {size - stream.tell()} bytes of data, its header says {needed}"
        )
    data = stream.read(needed)
    array = numpy.frombuffer(data, dtype=dtype, count=count).reshape(
        shape, order="F" if fortran_order else "C"
    )
    return numpy.ascontiguousarray(array, dtype=numpy.float64)


def _read_pt(stream, size, path, option, max_values, error):
    largest = max_values * 8 + PT_OVERHEAD_BYTES
    if size > largest:
        raise error(
            f"{option}: {path} is {size} bytes, more than {max_values} float64 logits take "
            f"(at most {largest} bytes)"
        )
    # lazy: torch is the optional [verify] extra, needed for a .pt file only; never at module level
    import torch

    try:
        value = torch.load(stream, map_location="cpu", weights_only=True)
    except Exception as problem:  # torch.load raises many types for a file it cannot read
        reason = " ".join(str(problem).split())[:100] or type(problem).__name__
        raise error(f"{option}: {path} is not a saved tensor ({reason})") from None
    if not isinstance(value, torch.Tensor):
        raise error(f"{option}: {path} must hold one tensor [B, N], got a {type(value).__name__}")
    for refused, what in (
        (value.layout != torch.strided, f"a {value.layout} tensor"),
        (value.is_nested, "a nested tensor"),
        (value.is_quantized, "a quantized tensor"),
        (value.is_meta or value.device.type == "meta", "a meta tensor (it holds no values)"),
    ):
        if refused:
            raise error(f"{option}: {path} holds {what}; logits must be one dense (strided) tensor")
    name = str(value.dtype).removeprefix("torch.")
    if name not in DTYPES:
        _refuse_dtype(name, path, option, error)
    _check_shape(tuple(value.shape), value.numel(), path, option, max_values, error)
    return value.detach().to("cpu", torch.float64).contiguous().numpy().copy()
