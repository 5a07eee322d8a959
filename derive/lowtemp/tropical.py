r"""Max-plus (tropical) building blocks of the low-temperature limits, on explicit logits.

Every function takes sequences of numbers (sympy Rationals, mpmath or Python floats) and uses
only comparisons, sums and logarithms, so one definition serves the exact proofs and the
high-precision checks. ``A`` is the student's argmax set, ``B`` the teacher's; ties are exact
equalities.

Examples
========

>>> argmax_set([0, 2, 2]), margin([0, 2, 2]), margin([1, 1])
((1, 2), 2, None)
>>> perceptron_loss([0, -1, -2], [-1, 0, -3])
1.0
"""

import math

import sympy

#: The exact 1 the weights are built from by default.
_ONE = sympy.Integer(1)

__all__ = [
    "argmax_set",
    "margin",
    "gaps",
    "mean_over",
    "uniform_on",
    "perceptron_loss",
    "perceptron_update",
    "divergence",
]


def argmax_set(values):
    """Indices where ``values`` attains its maximum, ascending."""
    top = max(values)
    return tuple(j for j, x in enumerate(values) if x == top)


def margin(values):
    """``max - (largest value below the max)``: the gap to the first class outside the argmax
    set (``None`` when every class is tied)."""
    top = max(values)
    below = [x for x in values if x != top]
    return top - max(below) if below else None


def gaps(values):
    """``max_j x_j - x_i`` for every class ``i``."""
    top = max(values)
    return [top - x for x in values]


def mean_over(values, indices):
    """The mean of ``values`` over ``indices``."""
    return sum(values[j] for j in indices) / len(indices)


def uniform_on(indices, classes, one=_ONE):
    """The uniform distribution on ``indices`` as a list of ``classes`` weights."""
    return [one / len(indices) if j in indices else 0 * one for j in range(classes)]


def perceptron_loss(student, teacher):
    r""":math:`\max_j z_j - \langle z\rangle_B`: the multiclass perceptron loss on the teacher's
    label (the mean over the teacher's tied argmaxes)."""
    return max(student) - mean_over(student, argmax_set(teacher))


def perceptron_update(student, teacher, one=_ONE):
    r""":math:`1_A/|A| - 1_B/|B|`: the perceptron update (ties: means over the tied classes)."""
    classes = len(student)
    a = uniform_on(argmax_set(student), classes, one)
    b = uniform_on(argmax_set(teacher), classes, one)
    return [x - y for x, y in zip(a, b)]


def divergence(first, second, log=math.log):
    r""":math:`\mathrm{KL}(\mathrm{first}\,\|\,\mathrm{second})`, ``inf`` when ``first`` puts mass
    where ``second`` has none."""
    total = 0
    for x, y in zip(first, second):
        if x == 0:
            continue
        if y == 0:
            return math.inf
        total = total + x * log(x / y)
    return total
