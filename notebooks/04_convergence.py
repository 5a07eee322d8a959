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
# # 04 — Convergence: the remainder after $K$ terms is $O(T^{-K})$
#
# `derive` gives the terms $G_k$ of $\partial L_{KD}/\partial z = \sum_k T^{-k} G_k$ for a
# symbolic number of classes. `verify` turns them into torch functions and subtracts $K$ of
# them from autograd's gradient. On a log–log plot the remainder falls with slope $-K$, until
# floating-point round-off (measured against a 40-digit mpmath reference) takes over: much
# later in float64 than in float32.

# %%
from IPython.display import display

import derive
import verify
from derive import formula
from verify import figures

for term in derive.expand("gradient", order=2).terms:
    display(formula(f"G_{{{term.power},i}}", term.expr, term=True))

# %%
curves = figures.remainder_curves(classes=5, orders=(1, 2, 3, 4))
figures.plot_remainders(curves)
# %% [markdown]
# The fitted slopes, and where each dtype stops resolving the remainder (its floor):

# %%
for key, data in curves.items():
    if key != "temperatures":
        print(f"{key[0]}: {data['convergence'].describe()}")

# %% [markdown]
# The same measurement on hypothesis-drawn logits, as the [expansion] check:

# %%
print(verify.run_check("expansion", examples=4).describe())
