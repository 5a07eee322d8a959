"""Reading a term printed in the notation back: :func:`parse`.

The text form of every derived term (``mean(z_i**a*v_i**b)``, see :mod:`derive.notation`) reads
back with :func:`parse`, which accepts this notation, the objectives' parameters
(:func:`derive.objectives.parameter_symbols`) and nothing else. It sits above the objectives,
whose parameters it knows; the reader itself (:mod:`derive._reader`) needs only the notation.

Examples
========

>>> parse("beta*mean(z_i)")
beta*mean(z_i)
"""

from typing import Any

from ._reader import PARSE_MAX_BITS, PARSE_MAX_LENGTH, read
from .objectives import parameter_symbols

__all__ = ["parse", "PARSE_MAX_LENGTH", "PARSE_MAX_BITS"]


def parse(text: str) -> Any:
    """Parse a term printed in this notation (``mean(z_i**2*v_i)/N`` and the like).

    Only this notation is accepted: its symbols (``z_i, v_i, N, T, epsilon, z_g, ...``, the
    objectives' parameters and ``f1, f2, ...``), integers, ``+ - * / **``, parentheses and the
    functions ``mean, mean_other, exp, log, sqrt, fd, fd_alpha``. Nothing is evaluated as Python:
    the text is read with :mod:`ast` and each node is translated. Anything else raises
    :class:`~derive.DeriveError`.

    >>> parse("mean(z_i**2*v_i)/N - z_i*mean(v_i)")
    -z_i*mean(v_i) + mean(v_i*z_i**2)/N
    >>> parse("__import__('os').system('true')")  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    derive._errors.DeriveError: parse: unknown function "__import__('os').system" at column 1;
    allowed: mean, mean_other, exp, log, sqrt, fd, fd_alpha
    """
    return read(text, _parameter_symbol)


def _parameter_symbol(name):
    """The symbol of the objectives' parameter ``name`` (``beta``, ``alpha``, ...), or None."""
    return parameter_symbols().get(name)
