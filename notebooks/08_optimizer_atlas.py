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
# # 08 — The optimizer atlas: which training setups keep KD equal to logits matching
#
# At high temperature KD's gradient is logits matching plus a term in the logit-mean gap
# $\langle z\rangle - \langle v\rangle$ (notebook 02):

# %%
import matplotlib.pyplot as plt
import torch

import derive
from verify.atlas import measure_drift, recognise
from verify.atlas.precision import (
    PRECISIONS,
    growth_exponent,
    newton_schulz_amplification,
    newton_schulz_in,
    recentred,
    sgd_precision_drift,
)

derive.formula("G_0", derive.expand("gradient", order=1).terms[0].expr, term=True)

# %% [markdown]
# The gap vanishes for every input when the head's class sums $1^T W$ and $1^T b$ stay at
# their equal-mean start, and only the head's optimizer step decides that. The four
# statements of the atlas and their refutations, proved symbolically:

# %%
for statement_id, statement in derive.STATEMENTS.items():
    if statement_id.startswith("atlas-"):
        result = statement.prove()
        print(f"{statement_id:48s} {result.verdict:8s} residual {result.residual}")

# %% [markdown]
# ## Drift of the class sum, step by step
#
# Zero-class-sum reference heads trained 20 steps in float64 by real optimizers: SGD stays at
# round-off, Adam leaves it at the first step. `torch.optim.Muon` keeps the sums in exact
# arithmetic ([atlas-left-invariant]) but iterates Newton–Schulz in bfloat16, and the
# iteration multiplies any error along $1$ by about 3.44 per iteration; with the iteration in
# float64, or with the update re-centred, the sums stay at round-off.


# %%
def muon(model):
    return torch.optim.Muon([model.head.weight], lr=0.02)


muon_options = {"bias": False, "per_model": True, "networks": 1}
runs = {
    "SGD(momentum=0.9)": measure_drift(lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    "Adam": measure_drift(lambda p: torch.optim.Adam(p, lr=0.01)),
    "Muon (bfloat16, shipped)": measure_drift(muon, **muon_options),
}
with newton_schulz_in(torch.float64):
    runs["Muon, Newton–Schulz in float64"] = measure_drift(muon, **muon_options)
with recentred():
    runs["Muon, re-centred update"] = measure_drift(muon, **muon_options)

figure, axis = plt.subplots(figsize=(7, 4))
for label, drift in runs.items():
    axis.semilogy([max(w, 1e-18) for w in drift.weight_steps], label=label)
axis.axhline(runs["Adam"].weight_floor, color="grey", linestyle=":", label="float64 floor")
axis.set_xlabel("step")
axis.set_ylabel("max |1ᵀW|")
axis.legend(fontsize=8)
plt.show()
for label, drift in runs.items():
    print(f"{label:34s} {drift.verdict:9s} max|1ᵀW| {drift.weight:.2e}")

# %% [markdown]
# Newton–Schulz's amplification of an error along $1$, per iteration (its slope at 0):

# %%
print([round(factor, 4) for factor in newton_schulz_amplification()])

# %% [markdown]
# ## Plain SGD in low precision
#
# SGD keeps the sums exactly, so what remains is round-off: a random walk that grows like
# $\sqrt{t}$, predicted by $\sqrt{Nt}\,\tfrac12(\varepsilon_p|W| + \eta\,\varepsilon_c|\nabla W|)$.

# %%
for precision in PRECISIONS:
    drift = sgd_precision_drift(precision)
    measured = ", ".join(f"{drift[t]:.1e}" for t in (1, 10, 100))
    predicted = ", ".join(f"{drift['predicted'][t]:.1e}" for t in (1, 10, 100))
    print(
        f"{precision:18s} after 1, 10, 100 steps: {measured}  (model {predicted}), "
        f"exponent {growth_exponent(drift):.2f}"
    )

# %% [markdown]
# ## Your optimizer
#
# `verify.atlas.recognise` names the statement behind a known optimizer, and
# `python -m verify optimizer MODULE:FACTORY` measures any recipe (docs/optimizers.md).

# %%
parameters = [torch.nn.Parameter(torch.zeros(4, 3))]
for optimizer in (torch.optim.AdamW(parameters), torch.optim.LBFGS(parameters)):
    print(recognise(optimizer))
