r"""Packed monomials: the exponents of a monomial side by side in one Python integer.

The expansion engine (:class:`derive.series.Algebra`) numbers its generators by *slots* and
writes a monomial :math:`\prod_k x_k^{e_k}` as :math:`\sum_k e_k\,2^{16k}`, so that multiplying
monomials is adding integers. Each slot holds 16 bits, of which the top one is a *guard*: every
exponent the engine creates is at most :data:`MAX_EXPONENT` (:math:`2^{15} - 1`), so the sum
of two exponents fits the slot and cannot carry into the next one; a product whose exponent
reaches :math:`2^{15}` sets its slot's guard bit, and :func:`check_guard` raises instead of
letting the next product wrap into the neighbouring generator.

Code outside the engine reads packed monomials only through the functions here
(:func:`slots`, :func:`exponent`, :func:`exponents`, :func:`slot_mask`), never through the
layout's constants.

Examples
========

>>> m = pack(0, 3) + pack(2, 5)
>>> exponents(m), exponent(m, 2), slots(m)
({0: 3, 2: 5}, 5, [0, 2])
>>> m & slot_mask(2) == pack(2, 5)
True
>>> pack(1, MAX_EXPONENT + 1)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
derive._errors.DeriveError: exponents must be in 0..32767 (MAX_EXPONENT: ...), got 32768
"""

from ._errors import DeriveError

__all__ = [
    "MAX_EXPONENT",
    "pack",
    "exponent",
    "exponents",
    "slots",
    "slot_mask",
    "guard_bit",
    "check_guard",
]

#: Bits per generator (slot) in a packed monomial, the guard bit included.
BITS = 16
#: Every exponent the engine holds: the guard bit above it stays free.
MAX_EXPONENT = (1 << (BITS - 1)) - 1
MASK = (1 << BITS) - 1
_GUARD = 1 << (BITS - 1)


def _limit_error(value):
    return DeriveError(
        f"exponents must be in 0..{MAX_EXPONENT} (MAX_EXPONENT: the engine packs "
        f"{BITS - 1} bits per generator), got {value}"
    )


def pack(slot, exponent):
    """The monomial :math:`x_{slot}^{exponent}`; raises :class:`~derive.DeriveError` beyond
    :data:`MAX_EXPONENT`."""
    if not 0 <= exponent <= MAX_EXPONENT:
        raise _limit_error(exponent)
    return exponent << (BITS * slot)


def exponent(monomial, slot):
    """The exponent of generator ``slot`` in ``monomial``."""
    return (monomial >> (BITS * slot)) & MASK


def exponents(monomial):
    """``{slot: exponent}`` of the generators present in ``monomial``."""
    result, slot = {}, 0
    while monomial:
        value = monomial & MASK
        if value:
            result[slot] = value
        monomial >>= BITS
        slot += 1
    return result


def slots(monomial):
    """The slots present in ``monomial`` (or in the bitwise or of several), ascending."""
    result, slot = [], 0
    while monomial:
        if monomial & MASK:
            result.append(slot)
        monomial >>= BITS
        slot += 1
    return result


def slot_mask(slot):
    """The bits of generator ``slot``: ``monomial & slot_mask(k)`` keeps its factor
    :math:`x_k^{e_k}`, ``monomial & ~mask`` drops the generators of ``mask``."""
    return MASK << (BITS * slot)


def guard_bit(slot):
    """The guard bit of ``slot``: set only by a product whose exponent passed the limit."""
    return _GUARD << (BITS * slot)


def check_guard(present, guards):
    """Raise :class:`~derive.DeriveError` if ``present`` (the bitwise or of the monomials of a
    product) has one of the guard bits ``guards`` set: an exponent passed the limit."""
    if present & guards:
        raise _limit_error(f"{MAX_EXPONENT + 1} or more in a product")
