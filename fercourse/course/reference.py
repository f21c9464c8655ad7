"""The course team's measured results on the real FER2013, shipped with the package.

Students mostly run the notebooks on a laptop with the ``smoke`` preset or on the synthetic faces,
so their own numbers say little about FER2013 itself. The numbers in
``fercourse/course/fer2013_results.json`` were measured by training on the real data (see the
README's "Results on FER2013" section for the commands) and are what ``08_compare`` shows next to
the student's run and the published anchors.

- :func:`reference_results`: the shipped rows as a DataFrame; :func:`results_markdown` as a table;
  :func:`reference_history`, :func:`reference_ensemble`.

They are recorded by ``tools/record_results.py`` (:mod:`fercourse.ops.record`).

Introduced in ``notebooks/08_compare.ipynb``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


REFERENCE_RESULTS_PATH: Path = Path(__file__).resolve().parent / "fer2013_results.json"
"""The measured results that ship with the package."""

ORIGINAL_PROJECT: dict[str, float] = {
    "baseline_cnn": 0.520,
    "attention_cnn": 0.626,
    "vit_tiny": 0.699,
}
"""Validation accuracies of the student project this course grew from, per architecture."""


def init_label(model: str, init: str, teacher: str | None = None) -> str:
    """How a result's weights started, for a model that could start otherwise.

    ``""`` for a model without pretrained weights trained on the labels; ``"from scratch"`` or
    ``"ImageNet-pretrained"`` for ``vit_tiny``; ``", distilled from attention_cnn"`` added when a
    teacher took part.
    """
    from ..models import has_pretrained_weights

    label = ""
    if has_pretrained_weights(model):
        label = "from scratch" if init == "scratch" else "ImageNet-pretrained"
    if isinstance(teacher, str) and teacher:
        label = f"{label}, distilled from {teacher}" if label else f"distilled from {teacher}"
    return label


def reference_ensemble(path: str | Path | None = None) -> dict[str, Any] | None:
    """The course team's recorded ensemble (the average of the models of the results table).

    Returns:
        ``{"members", "params", "private_acc", "private_f1", "private_acc_flip",
        "private_f1_flip"}`` (fractions), or ``None`` when no ensemble was recorded.
    """
    path = Path(path) if path is not None else REFERENCE_RESULTS_PATH
    return json.loads(path.read_text(encoding="utf-8")).get("ensemble")


def reference_results(path: str | Path | None = None) -> pd.DataFrame:
    """The course team's FER2013 results as a DataFrame, one row per model, best first.

    Accuracies are fractions in [0, 1]; ``original_project`` is the figure of the student
    project this course grew from for the same architecture (``NaN`` where it had none).

    Example:
        >>> table = fc.course.reference_results()  # doctest: +SKIP
        >>> table.loc["baseline_cnn", "private_acc"]  # doctest: +SKIP
    """
    import pandas as pd

    path = Path(path) if path is not None else REFERENCE_RESULTS_PATH
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise FileNotFoundError(f"no measured results at {path}") from err
    rows = record["results"]
    columns = [
        "params",
        "private_acc",
        "private_acc_flip",
        "private_f1",
        "private_f1_flip",
        "public_acc",
        "val_acc",
        "best_epoch",
        "epochs",
        "train_minutes",
        "hardware",
        "seed",
        "original_project",
    ]
    table = pd.DataFrame(rows)
    if "teacher" not in table:
        table["teacher"] = None
    table = table.set_index("model")[[*columns, "init", "teacher"]]
    table.attrs["data"] = record.get("data", {})
    table.attrs["commands"] = {r["model"]: r["command"] for r in rows}
    return table.sort_values("private_acc", ascending=False)


def reference_history(path: str | Path | None = None) -> dict[str, list[dict[str, float]]]:
    """Each model's per-epoch ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``."""
    path = Path(path) if path is not None else REFERENCE_RESULTS_PATH
    record = json.loads(path.read_text(encoding="utf-8"))
    return {r["model"]: r.get("history", []) for r in record["results"]}


def results_markdown(table: pd.DataFrame) -> str:
    """A README-ready Markdown table of :func:`reference_results`."""
    import pandas as pd

    lines = [
        "| model | params | PrivateTest acc | + flip TTA | macro-F1 (+ flip) | PublicTest acc | "
        "epochs | training time | trained on | original project |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for name, r in table.iterrows():
        original = "-" if pd.isna(r["original_project"]) else f"{r['original_project']:.1%}"
        label = init_label(str(name), r["init"], r["teacher"])
        lines.append(
            f"| {name}{f' ({label})' if label else ''} | {r['params'] / 1e6:.2f}M | **{r['private_acc']:.1%}** | "
            f"{r['private_acc_flip']:.1%} | {r['private_f1']:.3f} ({r['private_f1_flip']:.3f}) | "
            f"{r['public_acc']:.1%} | {r['epochs']} | {r['train_minutes']:.0f} min | {r['hardware']} | "
            f"{original} |"
        )
    return "\n".join(lines)
