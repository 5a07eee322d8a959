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
# # 05 — Objective families: every f-divergence at high temperature
#
# LLM and vision distillation use many objectives besides Hinton's KD: reverse KL (MiniLLM),
# the generalized Jensen–Shannon divergence $\mathrm{JSD}_\beta$ (GKD), skew KL (DistiLLM),
# Amari's $\alpha$-divergence. All are f-divergences $T^2 D_f(p\,\|\,q) = T^2\sum_i q_i f(p_i/q_i)$
# of the teacher's softmax $p$ and the student's $q$. `derive` expands the generic one with $f$
# left undefined: its derivatives at 1 are the symbols $f_2, f_3, \dots$

# %%
from IPython.display import Markdown, display

import derive
from derive import formula
from derive.statements.families import f_divergence_coefficients
from verify import figures

for term in derive.expand("loss", order=2, objective="f-divergence").terms:
    display(formula(f"L_{{{term.power}}}", term.expr, term=True))

# %% [markdown]
# ## The limits side by side
#
# Every member tends to $f''(1)\,\tfrac12\mathrm{Var}(z - v)$ ([f-divergence-limit]); the first
# correction is
# $\frac{f''(1)}{2}\langle\hat v\hat d^2\rangle - \frac{f'''(1)}{6}\langle\hat d^3\rangle$
# ([f-divergence-first-correction]). So each member is summarized by two numbers:

# %%
members = ["kl", "reverse-kl", "js", "jsd", "skew-kl", "skew-reverse-kl", "alpha-divergence"]
for name in members:
    second, third = f_divergence_coefficients(name)
    display(Markdown(f"**{derive.OBJECTIVES[name].title}**"))
    display(formula("f''(1)", second))
    display(formula("f'''(1)", third))
print(derive.STATEMENTS["f-divergence-limit"].prove(order=2))
print(derive.STATEMENTS["f-divergence-first-correction"].prove(order=2))

# %% [markdown]
# ## $\beta$ and $\alpha$ only weight the loss at high $T$
#
# $\mathrm{JSD}_\beta \to \beta(1-\beta)\,\tfrac12\mathrm{Var}(z - v)$ and skew KL
# $\to (1-\alpha)^2\,\tfrac12\mathrm{Var}(z-v)$: the parameter survives only as a factor. Divided
# by that factor, the losses of autograd (solid) approach one common limit, each along
# derive's $L_0 + L_1/T$ (dashed). At $\beta = 0$ or $1$ the divergence is identically 0.

# %%
entries = [
    ("kl", ("kl", {})),
    ("reverse-kl", ("reverse-kl", {})),
    ("jsd, beta = 3/10", ("jsd", {"beta": "3/10"})),
    ("jsd, beta = 1/2", ("jsd", {"beta": "1/2"})),
    ("skew-kl, alpha = 1/5", ("skew-kl", {"alpha": "1/5"})),
    ("alpha-divergence, alpha = 1/2", ("alpha-divergence", {"alpha": "1/2"})),
]
weights = {
    "kl": 1,
    "reverse-kl": 1,
    "jsd, beta = 3/10": 0.21,
    "jsd, beta = 1/2": 0.25,
    "skew-kl, alpha = 1/5": 0.64,
    "alpha-divergence, alpha = 1/2": 1,
}
curves = figures.objective_curves(entries)
figures.plot_objective_curves(curves, weights=weights)
print(derive.STATEMENTS["jsd-limit"].prove(order=2))
print(derive.STATEMENTS["jsd-limit/beta-free"].prove(order=1))

# %% [markdown]
# ## Forward and reverse KL part at $T^{-1}$
#
# Both start at $\tfrac12\mathrm{Var}(z-v)$; at $T^{-1}$ they differ by
# $-\tfrac16\langle\hat d^3\rangle$, the third central moment of $d = z - v$. That is what lets a
# numeric probe tell swapped `kl_div` arguments apart:

# %%
forward = derive.expand("loss", order=2, objective="kl").terms[1].expr
reverse = derive.expand("loss", order=2, objective="reverse-kl").terms[1].expr
display(formula(r"L_1^{KL(p\|q)} - L_1^{KL(q\|p)}", forward - reverse, term=True))
for label in ("kl", "reverse-kl"):
    first, second = curves[label]["terms"]
    print(f"{label}: L_0 = {first:.6f}, L_1 = {second:.6f}")

# %% [markdown]
# Separate temperatures and a hot teacher belong to the same engine: with the student at
# $rT$ the limit is $\tfrac12\mathrm{Var}(z/r - v)$; a hot teacher against a student at fixed
# $T_s$ is label smoothing with weight 1, then $-\mathrm{Cov}(v, z)/(T\,T_s)$.

# %%
display(
    formula(
        "L_0", derive.expand("loss", order=1, objective="two-temperature").terms[0].expr, term=True
    )
)
for term in derive.expand("loss", order=2, objective="hot-teacher").terms:
    display(formula(f"L_{{{term.power}}}", term.expr))
print(derive.STATEMENTS["hot-teacher-label-smoothing"].prove(order=2))
