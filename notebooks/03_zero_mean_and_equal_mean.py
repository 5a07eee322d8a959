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
# # 03 — The zero-mean gradient and equal-mean preservation on real training runs
#
# The key lemma of Chen et al.: with softmax and cross-entropy (KD included), the gradient on
# the logits sums to zero over the classes, for every input, target and temperature. Through
# the output layer $z = Wh(x) + b$ this means SGD without weight decay never changes the class
# means $\bar w$ and $\bar b$ of its rows (weight decay shrinks them, and keeps a zero mean
# zero). So if student and teacher start with $\bar w = 0$ and equal $\bar b$
# (**equal-mean initialization**), and the output bias has no weight decay (or $\bar b = 0$),
# their logit means stay equal on every input, at every step, and KD at high temperature is
# exactly logits matching (notebook 02).
# Per-coordinate adaptive optimizers such as Adam break this.

# %%
import derive
import verify
from verify import figures

# %% [markdown]
# ## The lemma, symbolically and numerically

# %%
statement = derive.STATEMENTS["zero-mean-gradient"]
print(statement.title)
print(statement.prove(order=4))
print(verify.run_check("zero-mean-gradient", examples=256).describe())

# %% [markdown]
# A loss that is not shift invariant has no such property: logits matching itself, or
# sigmoid/BCE distillation. The check finds a small counterexample by itself:

# %%
for statement_id in ("zero-mean-gradient/logits-matching", "zero-mean-gradient/sigmoid-bce"):
    print(verify.run_check(statement_id, examples=64).describe(), "\n")

# %% [markdown]
# ## Training: the logit-mean gap over the steps
#
# A teacher MLP is distilled into a student MLP at $T = 4$. With equal-mean initialization
# and SGD the gap $\max_x |\langle z(x)\rangle - \langle v(x)\rangle|$ on held-out inputs stays
# at round-off level for all 50 steps; Adam opens it at the first step; with PyTorch's default
# initialization there is a gap from the start.

# %%
curves = figures.mean_gap_trajectories(steps=50)
figures.plot_mean_gaps(curves)
# %%
for label, gaps in curves.items():
    print(f"{label:40s} step 0: {gaps[0]:.2e}   step 50: {gaps[-1]:.2e}")

# %% [markdown]
# ## The statements behind the plot, checked on many random networks and optimizers

# %%
for statement_id in (
    "mean-preservation",
    "mean-preservation/adam",
    "equal-mean",
    "equal-mean/nonzero-row-mean",
):
    print(verify.run_check(statement_id, examples=8).describe(), "\n")
