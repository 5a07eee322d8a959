"""The one validator of integer and boolean arguments, for :mod:`derive` and :mod:`verify`.

An integer argument is an ``int`` that is not a ``bool`` (``True`` is not a count), within its
bounds; a flag is ``True`` or ``False`` exactly. Each failure is one line of the package's error
(``error``: :class:`~derive.DeriveError` or :class:`~verify.VerifyError`) naming the value and
what is allowed.

Examples
========

>>> check_integer(3, name="order", minimum=1)
3
>>> check_integer(True, name="order", minimum=1)
Traceback (most recent call last):
...
derive._errors.DeriveError: order must be an integer >= 1, got True
>>> check_integer(2**40, name="seed", minimum=0, maximum=2**32 - 1)
Traceback (most recent call last):
...
derive._errors.DeriveError: seed must be an integer in [0, 4294967295], got 1099511627776
>>> check_flag("yes", name="mask")
Traceback (most recent call last):
...
derive._errors.DeriveError: mask must be True or False, got 'yes'
"""

from ._errors import DeriveError

__all__ = ["check_integer", "check_flag", "is_integer"]


def is_integer(value):
    """Whether ``value`` is an ``int`` and not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_integer(value, *, name, minimum=None, maximum=None, error=DeriveError):
    """``value`` if it is an integer within ``[minimum, maximum]`` (``None``: unbounded)."""
    if minimum is not None and maximum is not None:
        allowed = f"an integer in [{minimum}, {maximum}]"
    elif minimum is not None:
        allowed = f"an integer >= {minimum}"
    elif maximum is not None:
        allowed = f"an integer <= {maximum}"
    else:
        allowed = "an integer"
    if not (
        is_integer(value)
        and (minimum is None or value >= minimum)
        and (maximum is None or value <= maximum)
    ):
        raise error(f"{name} must be {allowed}, got {value!r}")
    return value


def check_flag(value, *, name, error=DeriveError):
    """``value`` if it is ``True`` or ``False``."""
    if not isinstance(value, bool):
        raise error(f"{name} must be True or False, got {value!r}")
    return value
