# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 — Decoupled KD, logit standardization and DIST at high temperature
#
# Decoupled KD (Zhao et al., CVPR 2022) splits KL into a target-class part (TCKD) and a
# non-target part (NCKD) and weights them apart. Logit standardization (Sun et al., CVPR 2024)
# z-scores the logits before the softmax; DIST (Huang et al., NeurIPS 2022) uses the Pearson
# correlation of the softmaxes. All have closed-form limits at high temperature, and two of them
# are the same objective there.

# %%
from IPython.display import display

import derive
from derive import formula
from verify import figures

# %% [markdown]
# ## The DKD split is exact
#
# $\mathrm{KL}(p\,\|\,q) = \mathrm{TCKD} + (1 - p_g)\,\mathrm{NCKD}$ at every $T$ and $N$
# ([dkd-identity]): the proof is symbolic, and autograd's twins agree to round-off. With two
# classes the non-target part is empty: NCKD vanishes identically ([dkd-binary]).

# %%
print(derive.STATEMENTS["dkd-identity"].prove())
print(derive.STATEMENTS["dkd-binary"].prove())
for row in figures.dkd_split():
    print(
        f"N = {row['classes']:2d}: KL = {row['kl']:.6f}, TCKD = {row['tckd']:.6f}, "
        f"(1 - p_g) NCKD = {row['weighted_nckd']:.6f}, residual {row['residual']:.1e}"
    )

# %% [markdown]
# ## At high temperature DKD is a reweighted mean-squared error
#
# $T^2\,\mathrm{TCKD} \to (d_g - \langle d\rangle)^2/(2(N-1))$ and
# $T^2\,\mathrm{NCKD} \to \tfrac12\mathrm{Var}_{j\ne g}(d)$, $d = z - v$ ([dkd-limit]); the label's
# logits $z_g, v_g$ stand apart and $\langle\cdot\rangle_{\neg g}$ averages the other classes:

# %%
for name in ("dkd-tckd", "dkd-nckd", "dkd"):
    display(
        formula(
            rf"L_0^{{\mathrm{{{name}}}}}",
            derive.expand("loss", order=1, objective=name).terms[0].expr,
            term=True,
        )
    )
print(derive.STATEMENTS["dkd-limit"].prove(order=1))

# %% [markdown]
# ## Standardized KD and DIST meet at $1 - \rho(z, v)$
#
# On standardized logits $\hat z = (z - \langle z\rangle)/\sigma_z$ KD tends to
# $1 - \rho(z, v)$, $\rho = \langle\hat z\hat v\rangle$ the Pearson correlation of the logits
# ([standardized-limit]); with `torch.std`'s unbiased std, to $\frac{N-1}{N}(1 - \rho)$. DIST tends
# to $1 - \rho$ too ([dist-limit]), so the two objectives coincide at high temperature
# ([standardized-equals-dist]):

# %%
for name, values in (("standardized-kl", {"std": "population"}), ("dist", {})):
    for term in derive.expand("loss", order=2, objective=name, parameters=values or None).terms:
        display(formula(rf"L_{{{term.power}}}^{{\mathrm{{{name}}}}}", term.expr))
print(derive.STATEMENTS["standardized-equals-dist"].prove())
print(derive.STATEMENTS["standardized-equals-dist/unbiased"].prove())

# %% [markdown]
# Autograd agrees: the difference of the two losses (torch twins, float64) falls as $T^{-1}$,
# while with the unbiased std it tends to $\rho$-dependent constant $\frac1N(1 - \rho)$.

# %%
population = figures.difference_curve(("standardized-kl", {"std": "population"}), ("dist", {}))
unbiased = figures.difference_curve(("standardized-kl", {"std": "unbiased"}), ("dist", {}))
import matplotlib.pyplot as plt  # noqa: E402

plt.loglog(
    population["temperatures"],
    population["difference"],
    label=f"population std: slope {population['slope']:.2f}",
)
plt.loglog(
    unbiased["temperatures"],
    unbiased["difference"],
    label=f"unbiased std: slope {unbiased['slope']:.2f}",
)
plt.xlabel("temperature T")
plt.ylabel("|standardized KD - DIST|")
plt.legend()
