r"""The one loader of ``"MODULE:FUNCTION"`` targets (``FUNCTION`` may be dotted,
``Class.method``), shared by ``derive trace`` and ``verify audit``.

:func:`pkgutil.resolve_name` does the lookup. Importing runs the user's module, so the toolkit
calls this only inside a child process (:mod:`derive._isolation`); whatever the module does
when imported, raising included, becomes one line of the package's error.

Examples
========

>>> resolve_target("verify.gallery:kd_batchmean").__name__
'kd_batchmean'
>>> resolve_target("verify.gallery")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
derive._errors.DeriveError: target must be MODULE:FUNCTION (e.g. ...), got 'verify.gallery'
"""

import os
import pkgutil
import re
import sys

from ._errors import DeriveError
from ._torchvision import declare_missing_operators, torchvision_fails_to_import

__all__ = ["resolve_target", "check_target"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_TARGET = re.compile(rf"{_NAME}(\.{_NAME})*:{_NAME}(\.{_NAME})*")


def check_target(target, *, error=DeriveError):
    """Check the form ``MODULE:FUNCTION`` (dotted identifiers) without importing anything."""
    if not (isinstance(target, str) and _TARGET.fullmatch(target)):
        raise error(
            f"target must be MODULE:FUNCTION (e.g. verify.gallery:kd_batchmean), got {target!r}"
        )
    return target


def resolve_target(target, *, error=DeriveError):
    """The callable named by ``target``; ``error`` (one line) when it cannot be imported, has no
    such attribute, or is not callable. The working directory is importable, as for
    ``python -m``."""
    check_target(target, error=error)
    module_name, _, attribute = target.partition(":")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        try:
            value = pkgutil.resolve_name(target)
        except Exception:
            if not torchvision_fails_to_import():
                raise
            # A torchvision built for another torch stopped the import: declare its
            # operators (derive._torchvision) and try again (Python already dropped the
            # modules whose import failed; the ones that loaded stay, as they must).
            declare_missing_operators()
            value = pkgutil.resolve_name(target)
    except (ImportError, AttributeError) as problem:
        found = _importable(module_name)
        if found is not True:
            raise error(
                f"cannot import module {module_name!r} of target {target!r}: {found}"
            ) from None
        raise error(
            f"module {module_name!r} has no attribute {attribute!r} (target {target!r}): "
            f"{type(problem).__name__}: {_one_line(problem)}"
        ) from None
    except error:
        raise
    except SystemExit as problem:
        raise error(
            f"cannot import module {module_name!r} of target {target!r}: it called "
            f"sys.exit({problem.code!r}) when imported: the module runs a script (argparse?); "
            f"put the loss in a module that only defines it"
        ) from None
    except BaseException as problem:  # whatever the module does when imported
        raise error(
            f"cannot import module {module_name!r} of target {target!r}: "
            f"{type(problem).__name__}: {_one_line(problem)}"
        ) from None
    if not callable(value):
        raise error(f"target {target!r} is not callable (it is a {type(value).__name__})")
    return value


def _importable(module_name):
    """``True`` if the module is already imported, else the reason it is not."""
    if module_name in sys.modules:
        return True
    try:
        __import__(module_name)
    except BaseException as problem:
        return f"{type(problem).__name__}: {_one_line(problem)}"
    return True


def _one_line(error):
    text = " ".join(str(error).split())
    return text or type(error).__name__
