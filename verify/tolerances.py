r"""Tolerances from the floating point type and the magnitudes involved.

Every tolerance here is a first-order rounding-error bound in the style of Higham,
*Accuracy and Stability of Numerical Algorithms*, ch. 3–4:

.. math::

    |\hat y - y| \;\le\; \varepsilon \cdot n_{\mathrm{ops}} \cdot m,

where :math:`\varepsilon` is the dtype's machine epsilon (``torch.finfo(dtype).eps``, the gap
between 1 and the next float), :math:`n_{\mathrm{ops}}` counts the roundings on the longest
chain of operations that produces :math:`y`, and :math:`m` is the magnitude of the quantities
that are rounded along that chain (*not* of the result, which may be zero after cancellation).
An IEEE operation rounds with relative error at most :math:`\varepsilon/2` and torch's
vectorised ``exp``/``log`` with at most one ulp, i.e. :math:`\varepsilon`; counting every
operation as :math:`\varepsilon` therefore already carries a factor up to 2 of slack, and no
further constant is tuned. The counts are written out where they are defined.

Convergence checks (slopes in :math:`\log T`) use two further constants, both explained below:
:data:`SLOPE_TOLERANCE` and :data:`RESOLUTION_FACTOR`.

Examples
========

>>> import torch
>>> machine_epsilon(torch.float64)
2.220446049250313e-16
>>> rounding_bound(dtype=torch.float64, operations=10, magnitude=2.0)
4.440892098500626e-15
>>> softmax_gradient_operations(classes=10, argument_magnitude=0.0)
30.0
"""

import torch

from ._errors import check_argument

__all__ = [
    "SOFTMAX_CHAIN_OPERATIONS",
    "UPDATE_OPERATIONS",
    "SLOPE_TOLERANCE",
    "RESOLUTION_FACTOR",
    "machine_epsilon",
    "rounding_bound",
    "softmax_gradient_operations",
    "class_sum_tolerance",
    "forward_mean_tolerance",
]

#: Roundings on the chain of a softmax-based gradient component, besides the class sums and
#: the argument (both counted separately by :func:`softmax_gradient_operations`): the
#: exponential (1), the normaliser's log or division (1), ``exp`` of the log-probabilities in
#: autograd's backward of ``log_softmax`` (1), the product with the upstream gradient (1), the
#: subtraction of the target (1), the loss weight such as ``T**2`` (2: the square and the
#: product), the ``1/T`` of the chain rule (1), a mixture's weights and sum (2). Total 10.
SOFTMAX_CHAIN_OPERATIONS = 10

#: Roundings in one optimizer step on one coordinate, per magnitude involved: weight decay's
#: product and sum (2), momentum's two products and sum (3), Nesterov's extra product and sum
#: (2), the step ``lr * d_p`` and the subtraction (2). Total 9; plain SGD uses fewer.
UPDATE_OPERATIONS = 9

#: Allowed deviation of a measured log-log slope from the theoretical order (docs/theory.md:
#: "slope -1 +- 0.1"). Its two sources: the next order of the expansion bends the
#: local slope by about ``|c_{K+1} / c_K| / T``, kept small by starting the temperature range
#: well above the logits' scale, and residual round-off, kept below 10 % per point by
#: :data:`RESOLUTION_FACTOR`.
SLOPE_TOLERANCE = 0.1

#: A measured difference counts as *resolved* only where it exceeds this multiple of the
#: round-off measured at the same temperature: round-off then moves its logarithm by at most
#: ``log(1.1) < 0.1``, so a least-squares slope over a decade or more moves by less than
#: :data:`SLOPE_TOLERANCE`. The first temperature where this fails is reported as the
#: dtype's *floor*.
RESOLUTION_FACTOR = 10.0


def machine_epsilon(dtype):
    """The machine epsilon of a floating dtype, as a Python float."""
    check_argument(
        isinstance(dtype, torch.dtype) and dtype.is_floating_point,
        "dtype must be a floating torch.dtype, got {!r}",
        dtype,
    )
    return float(torch.finfo(dtype).eps)


def rounding_bound(*, dtype, operations, magnitude):
    r"""The first-order bound :math:`\varepsilon \cdot n_{\mathrm{ops}} \cdot m`.

    Parameters
    ==========

    dtype : torch.dtype
        The type the computation ran in.
    operations : float or Tensor
        Roundings on the longest chain (see the module docstring).
    magnitude : float or Tensor
        Size of the rounded intermediate quantities (sums of absolute values).
    """
    return machine_epsilon(dtype) * operations * magnitude


def softmax_gradient_operations(*, classes, argument_magnitude):
    r"""Roundings behind one class sum of a softmax-based gradient, :math:`\sum_i \hat g_i`.

    ``2 * classes``: the :math:`N - 1` additions of the softmax normaliser (which multiply the
    relative error of every probability) and the :math:`N - 1` additions of the final sum.
    ``2 * argument_magnitude``: the arguments :math:`a_i = z_i/T` are scaled and shifted by
    their maximum before ``exp``, so each carries an absolute error up to
    :math:`\varepsilon \max_i |a_i|` per rounding, which ``exp`` turns into the same
    relative error; with the teacher's softmax, ``argument_magnitude`` is
    :math:`(\max|z| + \max|v|)/T`. Plus :data:`SOFTMAX_CHAIN_OPERATIONS`.
    """
    return 2.0 * classes + 2.0 * argument_magnitude + SOFTMAX_CHAIN_OPERATIONS


def class_sum_tolerance(*, dtype, classes, argument_magnitude, gradient_magnitude):
    r"""Tolerance on :math:`|\sum_i \hat g_i|` for a gradient that is exactly zero-sum.

    ``gradient_magnitude`` is :math:`\sum_i m_i`, the summed size of the intermediates of
    the components, for example :math:`T \sum_i (q_i + p_i) = 2T` for ``T**2 * KL(p || q)``,
    whose components :math:`T(q_i - p_i)` may cancel to far below that.

    Examples
    ========

    >>> import torch
    >>> class_sum_tolerance(dtype=torch.float32, classes=3, argument_magnitude=0.0,
    ...                     gradient_magnitude=2.0)
    3.814697265625e-06
    """
    operations = softmax_gradient_operations(classes=classes, argument_magnitude=argument_magnitude)
    return rounding_bound(dtype=dtype, operations=operations, magnitude=gradient_magnitude)


def forward_mean_tolerance(*, dtype, classes, features, magnitude):
    r"""Tolerance on a computed class mean :math:`\langle \hat z \rangle` of an affine output layer.

    Each logit :math:`z_i = \sum_j W_{ij} h_j + b_i` is a dot product of ``features`` terms plus
    a bias (``features + 1`` roundings, relative to :math:`\sum_j |W_{ij} h_j| + |b_i|`); the
    mean adds ``classes`` more (the ``classes - 1`` additions of the sum and the division), and
    its difference from the prediction one more: ``features + classes + 2``. ``magnitude`` is
    the largest :math:`\sum_j |W_{ij} h_j| + |b_i|` over the classes.
    """
    return rounding_bound(dtype=dtype, operations=features + classes + 2, magnitude=magnitude)
