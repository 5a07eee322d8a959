r"""Target-aware and normalized objectives: Decoupled KD's identity and limits, and the limits
of logit standardization and DIST, which coincide.

Notation: the label ``g``; :math:`\langle f\rangle_{\neg g}` the mean over the other classes;
:math:`d = z - v`; :math:`\hat z` the standardized logits and
:math:`\rho = \langle\hat z\hat v\rangle` the Pearson correlation of the logits.

Examples
========

>>> from derive.statements import STATEMENTS
>>> STATEMENTS["dkd-identity"].prove().verdict
'holds'
"""

import sympy

from ..notation import ClassMean, N, OtherMean, concrete, epsilon, sigma_z, v_g, v_i, z_g, z_i, zh_i
from ..objectives import OBJECTIVES
from ..objectives.normalized import correlation, unbiased_scale
from ..objectives.target_aware import label_probability, labelled_kl, nckd, tckd
from ..series import power_series
from ._common import gradient_sum, leading, term_gradient, terms
from ._registry import label, statement

__all__ = []


@statement(
    "dkd-identity",
    "KL splits exactly into DKD's two parts",
    r"\mathrm{KL}(p\,\|\,q) = \mathrm{TCKD} + (1 - p_g)\,\mathrm{NCKD}\ "
    r"\text{for every } T \text{ and } N",
)
def _dkd_identity(order):
    return {
        label(
            "KL - TCKD - (1 - p_g) NCKD", r"\mathrm{KL} - \mathrm{TCKD} - (1 - p_g)\mathrm{NCKD}"
        ): labelled_kl() - tckd() - (1 - label_probability()) * nckd()
    }


@statement(
    "dkd-identity/unweighted",
    "KL is not TCKD + NCKD: the weight 1 - p_g matters",
    r"\mathrm{KL}(p\,\|\,q) = \mathrm{TCKD} + \mathrm{NCKD}",
    expected="refuted",
)
def _dkd_unweighted(order):
    # At high T the difference is p_g T^2 NCKD's limit: visible at T^0 of T^2 (KL - ...).
    difference = (labelled_kl() - tckd() - nckd()) / epsilon**2
    return {
        label(
            "T^0 term of T^2 (KL - TCKD - NCKD)",
            r"[T^0]\ T^2(\mathrm{KL} - \mathrm{TCKD} - \mathrm{NCKD})",
        ): power_series(difference, order=1)[0]
    }


@statement(
    "dkd-limit",
    "At high T, DKD is a reweighted mean-squared error on the logits",
    r"T^2\,\mathrm{TCKD} \to \frac{(d_g - \langle d\rangle)^2}{2(N-1)},\quad "
    r"T^2\,\mathrm{NCKD} \to \tfrac12\mathrm{Var}_{j\ne g}(d)",
)
def _dkd_limit(order):
    d = z_i - v_i
    label_difference = z_g - v_g
    mean_over_all = (label_difference + (N - 1) * OtherMean(d)) / N
    alpha, beta = (p.symbol for p in OBJECTIVES["dkd"].parameters)
    tckd_limit = (label_difference - mean_over_all) ** 2 / (2 * (N - 1))
    nckd_limit = (OtherMean(d**2) - OtherMean(d) ** 2) / 2
    return {
        label(
            "L_0(T^2 TCKD) - (d_g - <d>)^2/(2(N - 1))",
            r"L_0(T^2\mathrm{TCKD}) - \frac{(d_g - \langle d\rangle)^2}{2(N-1)}",
        ): leading("loss", "dkd-tckd") - tckd_limit,
        label(
            "L_0(T^2 NCKD) - Var_not g(d)/2",
            r"L_0(T^2\mathrm{NCKD}) - \tfrac12\mathrm{Var}_{j\ne g}(d)",
        ): leading("loss", "dkd-nckd") - nckd_limit,
        label(
            "L_0(DKD) - (alpha TCKD + beta NCKD limits)",
            r"L_0(\mathrm{DKD}) - (\alpha\,\cdot + \beta\,\cdot)",
        ): leading("loss", "dkd", alpha=alpha, beta=beta) - alpha * tckd_limit - beta * nckd_limit,
    }


@statement(
    "dkd-binary",
    "With two classes, DKD's non-target part vanishes identically",
    r"N = 2 \Rightarrow \mathrm{NCKD} \equiv 0",
)
def _dkd_binary(order):
    return {
        label("NCKD at N = 2 (one other class)", r"\mathrm{NCKD}|_{N=2}"): concrete(
            nckd(), classes=2
        )
    }


@statement(
    "dkd-binary/three-classes",
    "With three classes the non-target part does not vanish",
    r"N = 3 \Rightarrow \mathrm{NCKD} \equiv 0",
    expected="refuted",
)
def _dkd_three_classes(order):
    # Its T^0 term (times T^2) at N = 3: half the variance of d over the two other classes.
    return {
        label("T^2 NCKD at N = 3, T^0 term", r"[T^0]\ T^2\mathrm{NCKD}|_{N=3}"): concrete(
            leading("loss", "dkd-nckd"), classes=3
        )
    }


@statement(
    "standardized-limit",
    "KD on standardized logits tends to 1 - rho(z, v)",
    r"T^2\,\mathrm{KL}(\mathrm{softmax}(\hat v/T)\,\|\,\mathrm{softmax}(\hat z/T)) \to "
    r"1 - \rho(z, v)\ \text{(population } \sigma\text{)},\ \tfrac{N-1}{N}(1 - \rho)"
    r"\ \text{(unbiased std)}",
)
def _standardized_limit(order):
    rho = correlation()
    residuals = {
        label("L_0 - (1 - rho), population std", r"L_0 - (1 - \rho),\ \sigma"): leading(
            "loss", "standardized-kl", std="population"
        )
        - (1 - rho),
        label(
            "L_0 - (N - 1)/N (1 - rho), unbiased std",
            r"L_0 - \tfrac{N-1}{N}(1 - \rho),\ \text{unbiased}",
        ): leading("loss", "standardized-kl", std="unbiased") - (N - 1) / N * (1 - rho),
    }
    # The unbiased std scales the standardized logits by sqrt((N - 1)/N): term k by its k+2 power.
    unbiased = terms("loss", order, "standardized-kl", std="unbiased")
    population = terms("loss", order, "standardized-kl", std="population")
    for k, (u, p) in enumerate(zip(unbiased, population)):
        residuals[
            label(
                f"L_{k}(unbiased) - ((N - 1)/N)^({k + 2}/2) L_{k}(population)",
                rf"L_{k}^{{\text{{unbiased}}}} - \left(\tfrac{{N-1}}{{N}}\right)^{{{k + 2}/2}}"
                rf" L_{k}^{{\sigma}}",
            )
        ] = u - unbiased_scale() ** (k + 2) * p
    return residuals


@statement(
    "scale-invariance",
    "Standardized KD does not see the logits' scale",
    r"\sum_i z_i \frac{\partial L}{\partial z_i} = 0\ \text{for KD on standardized logits, "
    r"besides } \sum_i \frac{\partial L}{\partial z_i} = 0",
)
def _scale_invariance(order):
    residuals = {}
    # z_i = <z> + sigma_z zh_i in standardized coordinates.
    logit = ClassMean(z_i) + sigma_z * zh_i
    for std in ("population", "unbiased"):
        gradient = OBJECTIVES["standardized-kl"].gradient(std=std)["i"]
        residuals[
            label(
                f"sum_i z_i dL/dz_i, {std} std",
                rf"\sum_i z_i\,\partial L/\partial z_i,\ \text{{{std}}}",
            )
        ] = N * ClassMean(sympy.expand(logit * gradient))
        residuals[
            label(f"sum_i dL/dz_i, {std} std", rf"\sum_i \partial L/\partial z_i,\ \text{{{std}}}")
        ] = gradient_sum(gradient)
        for k, term in enumerate(terms("loss", order, "standardized-kl", std=std)):
            residuals[
                label(
                    f"sum_i z_i dL_{k}/dz_i, {std} std",
                    rf"\sum_i z_i\,\partial L_{k}/\partial z_i,\ \text{{{std}}}",
                )
            ] = N * ClassMean(sympy.expand(logit * term_gradient("standardized-kl", term)))
    return residuals


@statement(
    "scale-invariance/kd",
    "KD itself sees the logits' scale",
    r"\sum_i z_i \frac{\partial L_{KD}}{\partial z_i} = 0",
    expected="refuted",
)
def _kd_scale(order):
    return {
        label("sum_i z_i G_0,i of KD", r"\sum_i z_i\,G_{0,i}\ \text{(KD)}"): N
        * ClassMean(sympy.expand(z_i * leading("gradient", "kl")))
    }


@statement(
    "dist-limit",
    "DIST tends to 1 - rho(z, v)",
    r"1 - \rho\left(\mathrm{softmax}(z/T), \mathrm{softmax}(v/T)\right) \to 1 - \rho(z, v)",
)
def _dist_limit(order):
    return {
        label("L_0 - (1 - rho)", r"L_0 - (1 - \rho)"): leading("loss", "dist") - (1 - correlation())
    }


@statement(
    "standardized-equals-dist",
    "Standardized KD and DIST have the same high-temperature limit",
    r"\lim_{T\to\infty} T^2\,"
    r"\mathrm{KL}(\mathrm{softmax}(\hat v/T)\,\|\,\mathrm{softmax}(\hat z/T))"
    r" = \lim_{T\to\infty} \left[1 - \rho(\mathrm{softmax}(z/T), \mathrm{softmax}(v/T))\right]",
)
def _standardized_equals_dist(order):
    return {
        label(
            "L_0(standardized KD) - L_0(DIST)", r"L_0(\text{standardized KD}) - L_0(\text{DIST})"
        ): leading("loss", "standardized-kl", std="population") - leading("loss", "dist")
    }


@statement(
    "standardized-equals-dist/unbiased",
    "With the unbiased std, standardized KD's limit is (N - 1)/N times DIST's",
    r"\lim T^2\,\mathrm{KL}(\mathrm{softmax}(\hat v_u/T)\,\|\,\mathrm{softmax}(\hat z_u/T)) "
    r"= \lim \left[1 - \rho(\mathrm{softmax}(z/T), \mathrm{softmax}(v/T))\right]",
    expected="refuted",
)
def _unbiased_differs(order):
    return {
        label(
            "L_0(standardized KD, unbiased) - L_0(DIST)",
            r"L_0(\text{standardized KD, unbiased}) - L_0(\text{DIST})",
        ): leading("loss", "standardized-kl", std="unbiased") - leading("loss", "dist")
    }
