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
# # 02 — The infinite-temperature theorem and the expansion in $1/T$
#
# Chen et al. (arXiv:2109.06458): with no assumption on the logits, KD at infinite
# temperature is logits matching **plus an extra regularization term**; equal logit means
# make the regularizer vanish. `derive` expands $L_{KD}$ and its gradient to any order in
# $1/T$ for a symbolic number of classes, by power-series arithmetic on class moments
# $\langle z^a v^b\rangle$, and proves each statement symbolically.

# %%
from IPython.display import Markdown, display

import derive
from derive import formula

# %% [markdown]
# ## The leading term: logits matching and the regularizer

# %%
loss = derive.expand("loss", order=4)
display(formula("L_0", loss.terms[0].expr, term=True))
pieces = derive.leading_pieces("loss")
display(formula("L_{LM}", pieces["logits-matching"]))
display(formula(r"\text{regularizer}", pieces["regularizer"]))
print(derive.STATEMENTS["infinite-temperature"].prove())

# %% [markdown]
# ## Equal means suffice
#
# With $\langle z\rangle = \langle v\rangle$ (which an equal-mean initialization of the two
# output layers guarantees under SGD; see notebook 03), the regularizer vanishes and KD at
# $T\to\infty$ is exactly logits matching.

# %%
print(derive.STATEMENTS["equal-mean-suffices"].prove())
print(derive.STATEMENTS["equal-mean"].prove())

# %% [markdown]
# ## The higher-order terms
#
# Each term of the gradient sums to zero over the classes (the zero-mean gradient), and is
# the derivative of the loss term of the same order.

# %%
gradient = derive.expand("gradient", order=4)
for term in loss.terms[1:]:
    display(formula(f"L_{{{term.power}}}", term.expr, term=True))
for term in gradient.terms:
    display(formula(f"G_{{{term.power},i}}", term.expr, term=True))
print(derive.STATEMENTS["expansion"].prove(order=4))
print(derive.STATEMENTS["zero-mean-gradient"].prove(order=4))

# %% [markdown]
# ## The same engine, other objectives
#
# An objective is a definition plugged into one expansion engine. Reverse KL agrees with KL
# at $T^0$; Jensen–Shannon is a quarter of it; they part at $T^{-1}$.

# %%
for name in ("reverse-kl", "js"):
    terms = derive.expand("loss", order=2, objective=name).terms
    display(Markdown(f"**{derive.OBJECTIVES[name].title}**"))
    for term in terms:
        display(formula(f"L_{{{term.power}}}", term.expr, term=True))

# %% [markdown]
# ## LaTeX ready to paste
#
# The strings below are stable (pinned term order), so a paper can quote them:

# %%
for term in gradient.terms[:2]:
    print(f"G_{{{term.power},i}} = {term.latex}")

# %% [markdown]
# The full report with every statement, proof and term compiles with pdflatex:
# `python -m derive report --order 4 --out kd-report.tex`.
