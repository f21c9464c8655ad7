"""Plots of training and evaluation results; each function returns a matplotlib ``Figure``.

The figures are built with ``matplotlib.figure.Figure`` rather than ``pyplot``, so a notebook cell
shows each one exactly once and a loop of plots leaks no open figures; in a script call
``fig.savefig(path)``. Emotion names label every axis; emoji are optional (``emoji=True``)
because without an emoji font matplotlib draws them as empty boxes. Introduced in
``notebooks/02_baseline.ipynb``; ``notebooks/08_compare.ipynb`` compares models with them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..labels import EMOJI, EMOTIONS

if TYPE_CHECKING:
    import torch

    from ..data import FER2013, Split

__all__ = [
    "plot_confusion",
    "plot_history",
    "plot_per_class",
    "plot_predictions",
    "plot_reliability",
]

WRONG_COLOR = "#d62728"
RIGHT_COLOR = "#2ca02c"


def _names(emoji: bool) -> list[str]:
    return [f"{name} {EMOJI[name]}" if emoji else name for name in EMOTIONS]


def _history_rows(history: Any) -> tuple[list[dict[str, Any]], int]:
    """(rows, best_epoch) from a History, its dict, a DataFrame, a list of rows or a run folder."""
    if isinstance(history, (str, Path)):
        from ..history import History

        history = History.load(history)
    if hasattr(history, "epochs") and hasattr(history, "best_epoch"):
        return list(history.epochs), int(history.best_epoch)
    if isinstance(history, Mapping):
        return list(history.get("epochs", [])), int(history.get("best_epoch", 0))
    if hasattr(history, "to_dict") and hasattr(history, "columns"):  # a DataFrame
        frame = history.reset_index() if "epoch" not in history.columns else history
        return frame.to_dict("records"), 0
    return list(history), 0


def plot_history(history: Any, *, title: str | None = None) -> Figure:
    """Training curves: loss and accuracy per epoch, train against validation.

    Args:
        history: a :class:`fercourse.training.History` (what ``fc.fit`` returns), its
            ``to_dict()``, a DataFrame from ``history.to_frame()``, or a run folder.
        title: figure title (default: the model's name).

    Returns:
        A Figure with two panels; a dotted line marks the best (saved) epoch.

    Example:
        >>> fig = fc.explain.plot_history(history)  # doctest: +SKIP
    """
    rows, best = _history_rows(history)
    if not rows:
        raise ValueError("the history has no epochs to plot")
    epochs = [r["epoch"] for r in rows]
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, key, label in ((axes[0], "loss", "loss"), (axes[1], "acc", "accuracy")):
        for split, style in (("train", "-o"), ("val", "-s")):
            values = [r.get(f"{split}_{key}") for r in rows]
            if any(v is not None for v in values):
                ax.plot(epochs, values, style, markersize=3, label=split)
        if best:
            ax.axvline(best, color="gray", linestyle=":", label=f"best (epoch {best})")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    name = getattr(history, "model", "") or (
        history.get("model", "") if isinstance(history, Mapping) else ""
    )
    fig.suptitle(title or (f"{name}: training curves" if name else "training curves"))
    return fig


def _confusion_matrix(metrics_or_cm: Any) -> np.ndarray:
    if isinstance(metrics_or_cm, Mapping):
        if "confusion" not in metrics_or_cm:
            raise ValueError("expected an fc.evaluate() result (with 'confusion') or a 7x7 matrix")
        metrics_or_cm = metrics_or_cm["confusion"]
    cm = np.asarray(metrics_or_cm, dtype=np.float64)
    if cm.shape != (len(EMOTIONS), len(EMOTIONS)):
        raise ValueError(
            f"expected a {len(EMOTIONS)}x{len(EMOTIONS)} confusion matrix, got {cm.shape}"
        )
    return cm


def plot_confusion(
    metrics_or_cm: Any,
    normalize: bool = True,
    *,
    title: str | None = None,
    emoji: bool = False,
    cmap: str = "Blues",
) -> Figure:
    """Confusion-matrix heatmap (seaborn); rows are the true emotion, columns the prediction.

    Args:
        metrics_or_cm: an ``fc.evaluate`` result or a 7x7 matrix of counts.
        normalize: show each row as fractions (the diagonal is then per-class recall).
        title: figure title (default: model, split and accuracy when known).
        emoji: add each emotion's emoji to the tick labels (needs an emoji font).
        cmap: matplotlib colour map.

    Returns:
        The Figure.

    Example:
        >>> fig = fc.explain.plot_confusion(fc.evaluate(model, data))  # doctest: +SKIP
    """
    import seaborn as sns

    cm = _confusion_matrix(metrics_or_cm)
    shown = cm
    if normalize:
        with np.errstate(invalid="ignore", divide="ignore"):
            shown = np.nan_to_num(cm / cm.sum(axis=1, keepdims=True))
    fig = Figure(figsize=(6.4, 5.4), layout="constrained")
    ax = fig.subplots()
    names = _names(emoji)
    sns.heatmap(
        shown,
        annot=True,
        fmt=".2f" if normalize else ".0f",
        cmap=cmap,
        vmin=0.0,
        vmax=1.0 if normalize else None,
        square=True,
        xticklabels=names,
        yticklabels=names,
        cbar_kws={"label": "fraction of the true class" if normalize else "images"},
        ax=ax,
    )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.tick_params(axis="x", labelrotation=45)
    ax.tick_params(axis="y", labelrotation=0)
    if title is None and isinstance(metrics_or_cm, Mapping):
        parts = [str(metrics_or_cm.get(k)) for k in ("model", "split") if metrics_or_cm.get(k)]
        if "accuracy" in metrics_or_cm:
            parts.append(f"accuracy {metrics_or_cm['accuracy']:.3f}")
        title = ", ".join(parts)
    ax.set_title(title or "confusion matrix")
    return fig


def plot_per_class(
    metrics: Mapping[str, Any],
    *,
    scores: Sequence[str] = ("f1", "recall"),
    title: str | None = None,
    emoji: bool = False,
) -> Figure:
    """Grouped bars of per-class scores, for one model or several side by side.

    Args:
        metrics: an ``fc.evaluate`` result, or ``{label: result}`` for several models.
        scores: which per-class scores to draw, one panel each (``"precision"``, ``"recall"``,
            ``"f1"``).
        title: figure title.
        emoji: add emoji to the class labels.

    Returns:
        The Figure.

    Example:
        >>> fig = fc.explain.plot_per_class({"cnn": m_cnn, "vit": m_vit})  # doctest: +SKIP
    """
    import pandas as pd
    import seaborn as sns

    runs = {"model": metrics} if "per_class" in metrics else dict(metrics)
    if not runs or any("per_class" not in m for m in runs.values()):
        raise ValueError("expected an fc.evaluate() result or a dict of them")
    names = dict(zip(EMOTIONS, _names(emoji)))
    records = [
        {
            "run": run,
            "emotion": names[emotion],
            "score": score,
            "value": m["per_class"][emotion][score],
        }
        for run, m in runs.items()
        for emotion in EMOTIONS
        for score in scores
    ]
    frame = pd.DataFrame.from_records(records)
    fig = Figure(figsize=(7.5 + 0.6 * len(runs), 3.2 * len(scores)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(scores), 1, sharex=True))
    for ax, score in zip(axes, scores):
        sns.barplot(data=frame[frame["score"] == score], x="emotion", y="value", hue="run", ax=ax)
        ax.set_ylim(0, 1)
        ax.set_ylabel(score)
        ax.set_xlabel("")
        ax.grid(axis="y", alpha=0.3)
        if len(runs) == 1 and ax.get_legend() is not None:
            ax.get_legend().remove()
    fig.suptitle(title or "per-class scores")
    return fig


def plot_predictions(
    model: torch.nn.Module,
    data: FER2013,
    split: str = "PrivateTest",
    n: int = 24,
    *,
    split_obj: Split | None = None,
    cols: int = 8,
    seed: int = 0,
    only_errors: bool = False,
    tta: str | None = None,
    device: str = "auto",
) -> Figure:
    """A grid of faces with the model's prediction; wrong ones in red, with the true emotion.

    Args:
        model: a trained model.
        data: the dataset.
        split: ``"PrivateTest"``, ``"PublicTest"``, ``"val"`` or ``"train"``.
        n: faces to show (a seeded random sample of the split).
        split_obj: the run's split (for ``"val"``/``"train"``).
        cols: faces per row.
        seed: which sample.
        only_errors: show misclassified faces only.
        tta: test-time augmentation for the predictions.
        device: see ``fc.evaluate``.

    Returns:
        The Figure; its title gives the accuracy on the faces shown.

    Example:
        >>> fig = fc.explain.plot_predictions(model, data, n=16, only_errors=True)  # doctest: +SKIP
    """
    from ..evaluation.metrics import predict_proba, split_indices

    idx = split_indices(data, split, split_obj)
    labels = np.asarray(data.labels)
    rng = np.random.default_rng(seed)
    if only_errors:
        # Predict the whole split once, then sample among its mistakes.
        probs_all = predict_proba(model, data.images[idx], tta=tta, device=device)
        idx = idx[probs_all.argmax(1) != labels[idx]]
        if len(idx) == 0:
            raise ValueError(f"no misclassified faces in {split}")
    chosen = np.sort(rng.choice(idx, size=min(n, len(idx)), replace=False))
    probs = predict_proba(model, data.images[chosen], tta=tta, device=device)
    preds = probs.argmax(1)
    rows = int(np.ceil(len(chosen) / cols))
    fig = Figure(figsize=(1.45 * cols, 1.95 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_frame_on(False)
    for ax, i, pred, p in zip(axes, chosen, preds, probs):
        ax.imshow(data.images[i], cmap="gray", vmin=0, vmax=255)
        wrong = pred != labels[i]
        color = WRONG_COLOR if wrong else RIGHT_COLOR
        ax.set_title(f"{EMOTIONS[pred]} {p[pred]:.0%}", fontsize=8, color=color)
        if wrong:
            ax.set_xlabel(f"true: {EMOTIONS[labels[i]]}", fontsize=7, color=WRONG_COLOR)
            ax.set_frame_on(True)
            for spine in ax.spines.values():
                spine.set_color(WRONG_COLOR)
                spine.set_linewidth(2)
    correct = float((preds == labels[chosen]).mean())
    name = getattr(model, "model_name", type(model).__name__)
    fig.suptitle(f"{name} on {split}: {correct:.0%} of these {len(chosen)} correct (red = wrong)")
    return fig


def plot_reliability(
    probs: np.ndarray, labels: np.ndarray, n_bins: int = 15, *, title: str | None = None
) -> Figure:
    """Reliability diagram: accuracy against confidence per bin, with the ECE in the title.

    Args:
        probs: (N, 7) probabilities (``fc.evaluation.predict_proba``).
        labels: (N,) true classes.
        n_bins: confidence bins.
        title: figure title.

    Returns:
        The Figure; bars below the diagonal mean over-confidence.

    Example:
        >>> probs = fc.evaluation.predict_proba(model, test.images)  # doctest: +SKIP
        >>> fig = fc.explain.plot_reliability(probs, test.labels)  # doctest: +SKIP
    """
    from ..evaluation.calibration import expected_calibration_error, reliability_bins

    bins = reliability_bins(probs, labels, n_bins)
    ece = expected_calibration_error(probs, labels, n_bins)
    edges = bins["edges"]
    centers, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
    fig = Figure(figsize=(4.8, 4.6), layout="constrained")
    ax = fig.subplots()
    filled = bins["count"] > 0
    ax.bar(
        centers[filled], bins["accuracy"][filled], width=width * 0.95, label="accuracy", alpha=0.8
    )
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfect calibration")
    ax.plot(
        centers[filled],
        bins["confidence"][filled],
        "o",
        color="black",
        markersize=3,
        label="mean confidence",
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top probability)")
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper left")
    ax.set_title(title or f"reliability, ECE {ece:.3f}")
    return fig
