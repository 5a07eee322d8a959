"""Writing output files safely: the path is checked before any work, the file appears whole or
not at all (a temporary file in the same directory, then a rename), with the permissions a
new file normally gets, and a symbolic link or a special file is never replaced silently.

:mod:`verify` writes its figures through the same helpers.

Examples
========

>>> check_output_path("")
Traceback (most recent call last):
...
derive._errors.DeriveError: --out must be a file path, got ''
"""

import os
import stat
import tempfile

from ._errors import DeriveError, check_argument

__all__ = ["check_output_path", "check_output_directory", "write_atomically"]


def check_output_path(path, *, option="--out", suffix=""):
    """Check before computing that ``path`` can be written as a new or replaced regular file."""
    check_argument(
        isinstance(path, (str, os.PathLike)) and str(path) != "",
        "{} must be a file path{}, got {!r}",
        option,
        f" (e.g. report{suffix})" if suffix else "",
        path,
    )
    path = os.fspath(path)
    check_argument("\x00" not in path, "{} must not contain a NUL byte", option)
    directory = os.path.dirname(os.path.abspath(path))
    check_argument(os.path.isdir(directory), "{} directory does not exist: {}", option, directory)
    check_argument(
        not os.path.isdir(path),
        "{} must be a file path{}, got the directory {}",
        option,
        f" (FILE{suffix})" if suffix else "",
        path,
    )
    check_argument(
        not os.path.islink(path),
        "{} is a symbolic link ({}): give the path of the file itself, it is not replaced",
        option,
        path,
    )
    if os.path.exists(path):
        mode = os.stat(path).st_mode
        check_argument(
            stat.S_ISREG(mode), "{} is not a regular file ({}): it is not replaced", option, path
        )
    check_argument(
        os.access(directory, os.W_OK | os.X_OK),
        "{} directory is not writable: {}",
        option,
        directory,
    )
    _probe_write(directory, option)
    return path


def _probe_write(directory, option):
    """Create and remove a file in ``directory``: permissions alone do not tell (root passes
    every access check, and still cannot create files in /proc)."""
    try:
        handle, name = tempfile.mkstemp(dir=directory, prefix=".", suffix=".probe")
    except OSError as error:
        raise DeriveError(
            f"{option} directory is not writable: {directory} ({error.strerror or error})"
        ) from None
    os.close(handle)
    os.unlink(name)


def check_output_directory(path, *, option="--out"):
    """Check before computing that ``path`` is, or can be created as, a writable directory."""
    check_argument(
        isinstance(path, (str, os.PathLike)) and str(path) != "",
        "{} must be a directory path, got {!r}",
        option,
        path,
    )
    path = os.fspath(path)
    check_argument("\x00" not in path, "{} must not contain a NUL byte", option)
    if os.path.exists(path) or os.path.islink(path):
        check_argument(
            os.path.isdir(path) and not os.path.islink(path),
            "{} must be a directory, got {} (a file or a link)",
            option,
            path,
        )
        check_argument(
            os.access(path, os.W_OK | os.X_OK), "{} directory is not writable: {}", option, path
        )
        _probe_write(path, option)
        return path
    parent = os.path.dirname(os.path.abspath(path))
    check_argument(os.path.isdir(parent), "{} cannot be created: {} does not exist", option, parent)
    check_argument(
        os.access(parent, os.W_OK | os.X_OK),
        "{} cannot be created: {} is not writable",
        option,
        parent,
    )
    _probe_write(parent, option)
    return path


def _default_mode():
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomically(path, data, *, option="--out"):
    """Write ``data`` (str or bytes) to ``path`` via a temporary file and a rename."""
    path = check_output_path(path, option=option)
    directory = os.path.dirname(os.path.abspath(path))
    mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else _default_mode()
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".", suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data.encode() if isinstance(data, str) else data)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException as error:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        if isinstance(error, OSError):
            raise DeriveError(f"cannot write {option} {path}: {error.strerror or error}") from None
        raise
    return path
