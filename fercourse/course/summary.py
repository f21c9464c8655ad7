"""Collect a run's results for ``notebooks/08_compare.ipynb``: one row per trained model.

Everything is read from the files the model notebooks saved under ``outputs/<run>/<model>/``
through :class:`fercourse.rundir.RunDir` (test scores, the best checkpoint's card, history and
config); the executed notebooks are never parsed. Introduced in ``notebooks/08_compare.ipynb``.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..rundir import RunDir, course_runs

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn


def model_dirs(run_dir: str | Path) -> list[RunDir]:
    """The model folders of a run that were scored (a ``metrics.json``), in the course's order."""
    return [run for run in course_runs(run_dir) if run.metrics_file.is_file()]


def _notebook_of(model: str) -> str:
    from ..models import list_models, model_info

    return (model_info(model).notebook or "") if model in list_models() else ""


def load_trained_models(run_dir: str | Path, which: str = "best") -> dict[str, nn.Module]:
    """Every model a run trained, loaded from its checkpoint, in eval mode on the CPU.

    Args:
        run_dir: ``outputs/<run>``.
        which: ``"best"`` (the epoch chosen on val) or ``"last"``.

    Returns:
        Folder name (e.g. ``"baseline_cnn"``) -> model, in the course's order.
    """
    return {d.path.name: d.load(which).model for d in model_dirs(run_dir)}


def cpu_latency_ms(
    model: nn.Module, *, repeats: int = 30, warmup: int = 5, threads: int | None = None
) -> float:
    """Median time of one forward pass on one face (batch 1) on the CPU, in milliseconds.

    This is the number that matters for the webcam mirror: one face per frame. The model is
    copied to the CPU in eval mode under ``torch.inference_mode``; the first ``warmup`` calls
    are not timed.

    Args:
        model: any course model (it is not modified).
        repeats: timed calls; the median is returned.
        warmup: untimed calls first (allocations, lazy initialisation).
        threads: PyTorch CPU threads while timing (default: the current setting).

    Example:
        >>> cpu_latency_ms(fc.create_model("baseline_cnn"))  # doctest: +SKIP
        1.9
    """
    import copy

    net = copy.deepcopy(model).cpu().eval()
    x = torch.zeros(1, 1, 48, 48)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        times = []
        with torch.inference_mode():
            for i in range(warmup + repeats):
                t0 = time.perf_counter()
                net(x)
                if i >= warmup:
                    times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    return 1e3 * statistics.median(times)


def summarize_runs(
    run_dir: str | Path,
    *,
    split: str = "PrivateTest",
    models: dict[str, nn.Module] | None = None,
    latency_repeats: int = 30,
) -> pd.DataFrame:
    """One row per model of a run: test scores, size, training time (and CPU latency).

    Args:
        run_dir: ``outputs/<run>`` (``fc.utils.outputs_dir() / run_name``).
        split: which entry of each ``metrics.json`` to report.
        models: the loaded models (:func:`load_trained_models`); when given, each row also gets
            ``gflops`` and ``cpu_ms`` (:func:`cpu_latency_ms`).
        latency_repeats: timed calls per model for ``cpu_ms``.

    Returns:
        A DataFrame indexed by model with ``notebook``, ``accuracy``, ``macro_f1``, ``ece``
        (expected calibration error), ``majority_baseline``, ``n_test``, ``params_m``,
        ``preset``, what the model was trained on (``train_faces`` and ``val_faces``: the faces
        of the split it trained on and was selected on, after the preset's subsets;
        ``batch_size``; ``epochs`` run; ``best_epoch``), ``train_min``, ``synthetic`` (and
        ``gflops``, ``cpu_ms``), sorted by accuracy.

    Raises:
        FileNotFoundError: the run has no model with a ``metrics.json`` (run 02-07 first).
        KeyError: a model's ``metrics.json`` has no ``split`` entry.
    """
    import pandas as pd

    dirs = model_dirs(run_dir)
    if not dirs:
        raise FileNotFoundError(
            f"no trained model in {run_dir} (no */metrics.json): run notebooks 02-07 with the "
            "same run_name first"
        )
    rows = []
    for d in dirs:
        metrics = d.metrics()
        if split not in metrics:
            raise KeyError(f"{d.metrics_file} has no {split!r} entry (it has {list(metrics)})")
        m = metrics[split]
        card, history, config = d.card(), d.history(), d.config()
        epochs = history.epochs if history is not None else []
        name = d.path.name
        split_record = config.get("split", {})
        row = {
            "model": name,
            "notebook": _notebook_of(name),
            "accuracy": m["accuracy"],
            "macro_f1": m["macro_f1"],
            "ece": m.get("ece"),
            "majority_baseline": m.get("majority_baseline"),
            "n_test": m.get("n"),
            "params_m": round(card.get("num_parameters", 0) / 1e6, 3),
            "preset": config.get("config", {}).get("preset", ""),
            # What the model saw: the smoke preset trains each model on its own subset.
            "train_faces": split_record.get("train", card.get("train_samples")),
            "val_faces": split_record.get("val", card.get("val_samples")),
            "batch_size": config.get("config", {}).get("batch_size"),
            "epochs": len(epochs),
            "best_epoch": history.best_epoch if history is not None else None,
            "train_min": round(sum(e.get("seconds", 0.0) for e in epochs) / 60, 2),
            "synthetic": bool(m.get("data", {}).get("synthetic", False)),
        }
        if models is not None and name in models:
            from ..models import count_flops

            row["gflops"] = round(count_flops(models[name]) / 1e9, 3)
            row["cpu_ms"] = round(cpu_latency_ms(models[name], repeats=latency_repeats), 2)
        rows.append(row)
    table = pd.DataFrame(rows).set_index("model")
    return table.sort_values("accuracy", ascending=False)


def load_metrics(run_dir: str | Path, *, split: str = "PrivateTest") -> dict[str, dict[str, Any]]:
    """Each model's ``split`` result from its ``metrics.json``: ``{model: fc.evaluate result}``.

    This is what ``fc.explain.plot_per_class`` takes to compare several models side by side.
    """
    return {d.path.name: d.metrics()[split] for d in model_dirs(run_dir)}


ANCHORS: dict[str, float] = {
    "human": 0.65,  # agreement with the labels (Goodfellow et al., 2013)
    "best single CNN": 0.7328,  # Khaireddin & Chen, 2021 (arXiv:2105.03588)
    "CNN ensemble": 0.752,  # Pramerdorfer & Kampel, 2016 (arXiv:1612.02903)
    "RMN ensemble": 0.7682,  # Residual Masking Network (Pham et al., 2021)
}
"""Published FER2013 test accuracies (7 classes) the course measures itself against."""


def anchor_table(table: pd.DataFrame, ensemble: dict[str, Any] | None = None) -> pd.DataFrame:
    """Each model's (and the ensemble's) accuracy next to the published anchors, in points.

    Prints a warning line first when the run used the synthetic faces: those accuracies are not
    comparable with results on FER2013.

    Args:
        table: from :func:`summarize_runs`.
        ensemble: a result of ``fc.evaluation.evaluate_ensemble``, optional.

    Returns:
        A DataFrame with ``accuracy`` (%) and one column per anchor: the difference in
        percentage points (negative: below the anchor).
    """
    import pandas as pd

    accuracy = dict(table["accuracy"])
    if ensemble is not None:
        accuracy["ensemble"] = ensemble["accuracy"]
    synthetic = bool(table["synthetic"].any()) if "synthetic" in table else False
    if ensemble is not None:
        synthetic |= bool(ensemble.get("data", {}).get("synthetic", False))
    if synthetic:
        print(
            "NOTE: these accuracies are on the SYNTHETIC faces, not FER2013: the comparison with "
            "the published anchors below is not meaningful."
        )
    rows = {
        name: {"accuracy %": round(100 * acc, 2)}
        | {f"vs {anchor}": round(100 * (acc - ref), 2) for anchor, ref in ANCHORS.items()}
        for name, acc in accuracy.items()
    }
    return pd.DataFrame(rows).T
