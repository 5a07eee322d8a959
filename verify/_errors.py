"""The one error type of :mod:`verify`, raised through one helper."""

from derive import _validate

__all__ = ["VerifyError", "check_argument", "MAX_EXAMPLES", "MAX_SEED"]

#: The most examples per check (``--examples``): a check sized by networks trains that many.
MAX_EXAMPLES = 65536
#: Seeds run from 0 to this (generators are seeded with ``seed * 1_000_003 + offset``, which
#: must stay below 2**63).
MAX_SEED = 2**32 - 1


class VerifyError(ValueError):
    """Bad input to :mod:`verify`: the message names the bad value and what is allowed."""


def check_argument(condition: object, message: str, *args: object) -> None:
    """Raise :class:`VerifyError` with ``message.format(*args)`` unless ``condition`` holds.

    Examples
    ========

    >>> check_argument(3 >= 1, "examples must be an integer >= 1, got {!r}", 3)
    >>> check_argument(0 >= 1, "examples must be an integer >= 1, got {!r}", 0)
    Traceback (most recent call last):
    ...
    verify._errors.VerifyError: examples must be an integer >= 1, got 0
    """
    if not condition:
        raise VerifyError(message.format(*args))


def check_positive_integer(value, *, name):
    """Validate an integer >= 1 (bools are refused) and return it: the one validator,
    :func:`derive._validate.check_integer`."""
    return _validate.check_integer(value, name=name, minimum=1, error=VerifyError)


def check_integer(value, *, name):
    """Validate an integer (bools are refused) and return it (see
    :func:`derive._validate.check_integer`)."""
    return _validate.check_integer(value, name=name, error=VerifyError)
