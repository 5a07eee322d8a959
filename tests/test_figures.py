"""The data behind notebook 03's figure (:func:`verify.figures.mean_gap_trajectories`), on a few
steps: notebook 03 itself runs 50 steps and executes only with --run-slow."""

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from verify import figures

#: Round-off level for float64 logit means of these small MLPs (|logits| of order 1).
ROUND_OFF = 100 * torch.finfo(torch.float64).eps


@pytest.fixture(scope="module")
def curves():
    return figures.mean_gap_trajectories(steps=3)


def test_equal_mean_sgd_keeps_the_gap_at_round_off_and_the_others_open_it(curves):
    assert list(curves) == [
        "equal-mean init, SGD (momentum 0.9)",
        "equal-mean init, Adam",
        "default init, SGD (momentum 0.9)",
        "default init, Adam",
    ]
    assert all(len(gaps) == 4 for gaps in curves.values())
    assert max(curves["equal-mean init, SGD (momentum 0.9)"]) < ROUND_OFF
    adam = curves["equal-mean init, Adam"]
    assert adam[0] < ROUND_OFF and min(adam[1:]) > 1e6 * ROUND_OFF
    for label in ("default init, SGD (momentum 0.9)", "default init, Adam"):
        assert min(curves[label]) > 1e6 * ROUND_OFF, label


def test_the_plot_draws_each_curve(curves):
    ax = figures.plot_mean_gaps(curves)
    labels = [line.get_label() for line in ax.get_lines()]
    assert [label for label in labels if label in curves] == list(curves)
