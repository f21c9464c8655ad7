"""Figures that compare models: a run's models side by side, and the course team's results.

Introduced in ``notebooks/08_compare.ipynb``. Each function returns a ``matplotlib.figure.Figure`` built without ``pyplot`` (like
``fercourse.explain.plots``), so a notebook cell that ends on the call shows it exactly once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

if TYPE_CHECKING:
    import pandas as pd


def plot_comparison(table: pd.DataFrame):
    """Two panels: accuracy and macro-F1 per model; accuracy against CPU latency (or GFLOPs).

    Args:
        table: from :func:`summarize_runs` (with ``cpu_ms`` when the models were given).

    Returns:
        The matplotlib figure.
    """
    cost = "cpu_ms" if "cpu_ms" in table else "params_m"
    cost_label = {"cpu_ms": "CPU latency, 1 face (ms)", "params_m": "parameters (M)"}[cost]
    fig = Figure(figsize=(12, 4))
    ax_bar, ax_cost = fig.subplots(1, 2)
    ordered = table.sort_values("accuracy")
    ordered[["accuracy", "macro_f1"]].plot.barh(ax=ax_bar)
    ax_bar.set_xlim(0, 1)
    ax_bar.set_xlabel("PrivateTest")
    ax_bar.set_ylabel("")
    if "majority_baseline" in table and table["majority_baseline"].notna().any():
        ax_bar.axvline(
            table["majority_baseline"].max(), color="gray", ls="--", label="majority class"
        )
        ax_bar.legend(loc="lower right")
    ax_cost.scatter(table[cost], table["accuracy"])
    for name, row in table.iterrows():
        ax_cost.annotate(
            str(name), (row[cost], row["accuracy"]), textcoords="offset points", xytext=(4, 4)
        )
    ax_cost.set_xlabel(cost_label)
    ax_cost.set_ylabel("PrivateTest accuracy")
    title = (
        "synthetic faces (not comparable with FER2013)" if table["synthetic"].any() else "FER2013"
    )
    fig.suptitle(f"The models side by side: {title}")
    fig.tight_layout()
    return fig


def plot_reference_results(
    table: pd.DataFrame, ensemble: dict[str, Any] | bool | None = True
) -> Figure:
    """The course team's FER2013 results (:func:`fercourse.course.reference_results`) against the anchors.

    Left: PrivateTest accuracy per model, plain and with flip TTA, with the original project's
    figure for the same architecture and the published anchors as lines; the recorded ensemble
    of the models (``True``: :func:`reference_ensemble`; or a dict like it; ``None``: none) is
    the top bar. Right: the validation accuracy per epoch of each run (how long each model kept
    improving).

    Introduced in ``notebooks/08_compare.ipynb``.
    """
    import pandas as pd

    from ..course.reference import reference_ensemble, reference_history
    from ..course.summary import ANCHORS

    fig = Figure(figsize=(13, 4.6), layout="constrained")
    ax_bar, ax_curve = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.2, 1]})
    ordered = table.sort_values("private_acc")
    if ensemble is True:
        ensemble = reference_ensemble()
    if ensemble:
        name = f"ensemble of {len(ensemble['members'])}"
        extra = pd.DataFrame(
            {
                "private_acc": [ensemble["private_acc"]],
                "private_acc_flip": [ensemble["private_acc_flip"]],
                "original_project": [float("nan")],
            },
            index=[name],
        )
        ordered = pd.concat([ordered[list(extra.columns)], extra])
    y = np.arange(len(ordered))
    ax_bar.barh(y - 0.2, 100 * ordered["private_acc"], height=0.4, label="PrivateTest")
    ax_bar.barh(y + 0.2, 100 * ordered["private_acc_flip"], height=0.4, label="+ flip TTA")
    original = ordered["original_project"].astype(float)
    has = original.notna().to_numpy()
    ax_bar.scatter(
        100 * original[has],
        y[has],
        marker="D",
        color="black",
        zorder=3,
        label="original project (same architecture)",
    )
    for (name, value), style in zip(ANCHORS.items(), (":", "--", "-.", "-"), strict=False):
        ax_bar.axvline(100 * value, color="gray", ls=style, lw=1, label=f"{name} {value:.1%}")
    ax_bar.set_yticks(y, ordered.index)
    low = 100 * min(ordered["private_acc"].min(), original[has].min() if has.any() else 1.0)
    ax_bar.set_xlim(max(0, low - 8), 80)
    ax_bar.set_xlabel("PrivateTest accuracy (%)")
    ax_bar.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=7)
    ax_bar.set_title("Measured on the real FER2013")
    for name, epochs in reference_history().items():
        ax_curve.plot(
            [e["epoch"] for e in epochs], [100 * e["val_acc"] for e in epochs], label=name
        )
    ax_curve.set_xlabel("epoch")
    ax_curve.set_ylabel("validation accuracy (%)")
    ax_curve.legend(fontsize=8)
    ax_curve.grid(alpha=0.3)
    ax_curve.set_title("Learning curves")
    return fig
