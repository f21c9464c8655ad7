"""Plots: each returns a matplotlib Figure that renders, from histories and evaluate() results."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

import fercourse as fc
from fercourse.explain.plots import (
    plot_confusion,
    plot_history,
    plot_per_class,
    plot_predictions,
    plot_reliability,
)
from fercourse.training import History


def _render(fig: Figure) -> None:
    assert isinstance(fig, Figure)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.getvalue()[:4] == b"\x89PNG"


def _history() -> History:
    h = History(model="baseline_cnn", best_epoch=2, best_val_acc=0.5)
    for e, (tl, vl, ta, va) in enumerate(
        [(1.9, 1.8, 0.2, 0.3), (1.5, 1.4, 0.45, 0.5), (1.3, 1.45, 0.55, 0.48)]
    ):
        h.add({"epoch": e + 1, "train_loss": tl, "val_loss": vl, "train_acc": ta, "val_acc": va})
    return h


def _metrics(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 7, 200)
    probs = rng.dirichlet(np.ones(7), 200)
    probs[np.arange(100), labels[:100]] += 2.0
    probs /= probs.sum(1, keepdims=True)
    return {
        "split": "PrivateTest",
        "model": f"m{seed}",
        **fc.evaluation.compute_metrics(probs, labels),
    }


def test_plot_history_from_history_frame_and_folder(tmp_path):
    h = _history()
    fig = plot_history(h)
    assert len(fig.axes) == 2 and "baseline_cnn" in fig._suptitle.get_text()
    _render(fig)
    _render(plot_history(h.to_frame()))
    h.save(tmp_path)
    _render(plot_history(tmp_path))
    with pytest.raises(ValueError, match="no epochs"):
        plot_history(History())


@pytest.mark.filterwarnings("ignore:Glyph")  # emoji=True without an emoji font: boxes
def test_plot_confusion_and_per_class():
    m = _metrics(0)
    fig = plot_confusion(m)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == list(fc.EMOTIONS)
    assert "accuracy" in fig.axes[0].get_title()
    _render(fig)
    _render(plot_confusion(m["confusion"], normalize=False, emoji=True))
    with pytest.raises(ValueError, match="7x7"):
        plot_confusion(np.ones((3, 3)))
    _render(plot_per_class(m))
    fig = plot_per_class({"cnn": m, "vit": _metrics(1)}, scores=("f1",))
    assert len(fig.axes) == 1
    _render(fig)


def test_plot_reliability():
    m_probs = np.random.default_rng(0).dirichlet(np.ones(7), 100)
    _render(plot_reliability(m_probs, np.zeros(100, int)))


class _Mean(nn.Module):
    model_name = "mean"

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.linspace(-1, 1, 7))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(1, 2, 3))[:, None] * self.w * 5


def test_plot_predictions_marks_mistakes():
    data = fc.data.make_synthetic_faces(n=120, seed=0)
    fig = plot_predictions(_Mean(), data, "PrivateTest", n=10, cols=5, device="cpu")
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert len(titled) == min(10, int((data.usage == "PrivateTest").sum()))
    _render(fig)
    fig = plot_predictions(_Mean(), data, "PrivateTest", n=4, only_errors=True, device="cpu")
    colours = {ax.title.get_color() for ax in fig.axes if ax.get_title()}
    assert colours == {"#d62728"}  # every face shown is a mistake, in red
