"""Recording the course team's results on the real FER2013 (maintainers, not students).

- :func:`collect_results`: score a folder of trained runs (PrivateTest and PublicTest, with and
  without flip TTA) and describe how each was trained, one JSON-ready row per model;
- :func:`choose_ensemble`: the runs whose average is best on the validation split;
  :func:`collect_ensemble` scores that average;
- :func:`train_command`: the ``python -m fercourse train`` line that reproduces a run.

``tools/record_results.py`` calls them and writes ``fercourse/course/fer2013_results.json``, which
students read through :func:`fercourse.course.reference_results`.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..course.reference import ORIGINAL_PROJECT
from ..rundir import course_runs

if TYPE_CHECKING:
    from ..data import FER2013

__all__ = ["choose_ensemble", "collect_ensemble", "collect_results", "train_command"]


def train_command(
    config: dict[str, Any],
    model: str,
    *,
    data: str,
    out: str,
    init: str = "scratch",
    model_kwargs: dict[str, Any] | None = None,
) -> str:
    """The ``python -m fercourse train`` line that reproduces a run's configuration.

    Only the fields that differ from ``TrainConfig.for_model(model, preset)`` are spelled out,
    plus ``--pretrained yes|no`` for a model with pretrained weights (``init`` says which) and
    ``--model-set`` for builder arguments that differ from the builder's defaults.
    """
    from ..models import get_model_builder, has_pretrained_weights
    from ..training import TrainConfig

    preset = config.get("preset", "full")
    defaults = asdict(TrainConfig.for_model(model, preset))
    parts = [
        f"python -m fercourse train --model {model} --preset {preset} --data {data} --out {out}"
    ]
    if has_pretrained_weights(model):
        parts.append(f"--pretrained {'no' if init == 'scratch' else 'yes'}")
    builder_defaults = {
        k: p.default for k, p in inspect.signature(get_model_builder(model)).parameters.items()
    }
    for key, value in (model_kwargs or {}).items():
        if builder_defaults.get(key, value) != value:
            parts.append(f"--model-set {key}={_cli_value(value)}")
    if config.get("epochs") != defaults["epochs"]:
        parts.append(f"--epochs {config['epochs']}")
    skip = {"epochs", "preset", *TrainConfig.RESUME_IGNORED}
    for key, value in config.items():
        if key in skip or key not in defaults or value == defaults[key]:
            continue
        parts.append(f"--set {key}={_cli_value(value)}")
    return " ".join(parts)


def _cli_value(value: Any) -> str:
    return (
        "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    )


def collect_results(
    run_dir: str | Path,
    data: FER2013,
    *,
    data_arg: str = "data/fer2013-kaggle",
    device: str = "cpu",
    save: bool = True,
) -> list[dict[str, Any]]:
    """Score every trained run under ``run_dir`` and describe how it was made.

    Each model's best checkpoint (chosen on its validation split, never on a test split) is
    evaluated on PrivateTest and PublicTest, plain and with flip TTA.

    Args:
        run_dir: the parent of the run folders (``--out`` of ``python -m fercourse train``).
        data: the data set the runs were trained on (the real FER2013 for the shipped table).
        data_arg: how the reproduce command names the data (a path relative to the repository).
        device: where to evaluate.
        save: also merge the scores into each run's ``metrics.json``.

    Returns:
        One row per model (JSON-ready), in the course's order.

    Raises:
        FileNotFoundError: ``run_dir`` holds no trained run.
        ValueError: a run trained on another split.
    """
    from ..data import make_split

    runs = course_runs(run_dir)
    if not runs:
        raise FileNotFoundError(f"no trained run (a best checkpoint) under {run_dir}")
    rows = []
    for run_dir_ in runs:
        run = run_dir_.load()
        split = make_split(data, seed=int(run.card["config"]["seed"]))
        _check_split(run.card, split, run_dir_.path, "is this the data the run was trained on?")
        scores = _scores(run, data, split, device, run_dir_.path if save else None)
        rows.append(_result_row(run_dir_, run.card, scores, split, data_arg, Path(run_dir)))
    return rows


def _scores(run: Any, data: FER2013, split: Any, device: str, save_to: Path | None) -> dict:
    """PrivateTest and PublicTest, plain and with flip TTA: accuracy, macro-F1 and n."""
    from ..evaluation import evaluate

    scores: dict[str, dict[str, float]] = {}
    for split_name in ("PrivateTest", "PublicTest"):
        for tta in (None, "flip"):
            m = evaluate(
                run.model,
                data,
                split_name,
                split_obj=split,
                tta=tta,
                device=device,
                save_to=save_to,
            )
            key = split_name if tta is None else f"{split_name}+{tta}"
            scores[key] = {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "n": m["n"]}
    return scores


def _trained_on(runtime: dict[str, Any]) -> str:
    """``"Intel Xeon (2 cores), 1 thread, bf16 autocast"`` from a run's recorded runtime."""
    text = runtime.get("hardware", "unknown")
    if runtime.get("cpu_threads") and runtime.get("device") == "cpu":
        threads = int(runtime["cpu_threads"])
        text += f", {threads} thread{'s' if threads != 1 else ''}"
    if runtime.get("amp") not in (None, "off"):
        text += f", {runtime['amp'].replace('bfloat16', 'bf16')} autocast"
    return text


def _result_row(
    run_dir: Any, card: dict, scores: dict, split: Any, data_arg: str, out: Path
) -> dict[str, Any]:
    config = run_dir.config()
    history = run_dir.history()
    epochs = history.epochs if history is not None else []
    teacher = config.get("teacher")
    return {
        "model": card["model"],
        "init": card["init"],
        "teacher": teacher["model"] if teacher else None,
        "model_kwargs": card.get("model_kwargs", {}),
        "params": int(card["num_parameters"]),
        "private_acc": scores["PrivateTest"]["accuracy"],
        "private_f1": scores["PrivateTest"]["macro_f1"],
        "private_acc_flip": scores["PrivateTest+flip"]["accuracy"],
        "private_f1_flip": scores["PrivateTest+flip"]["macro_f1"],
        "public_acc": scores["PublicTest"]["accuracy"],
        "public_acc_flip": scores["PublicTest+flip"]["accuracy"],
        "val_acc": float(card["metrics"]["val_acc"]),
        "best_epoch": int(card["epoch"]),
        "epochs": len(epochs),
        "train_minutes": round(sum(float(e.get("seconds", 0.0)) for e in epochs) / 60.0, 1),
        "hardware": _trained_on(config.get("runtime", {})),
        "device": config.get("runtime", {}).get("device", "?"),
        "budget": config.get("budget"),
        "seed": int(card["config"]["seed"]),
        "split_hash": split.hash,
        "test_faces": scores["PrivateTest"]["n"],
        "original_project": ORIGINAL_PROJECT.get(card["model"]),
        "trained_at": card.get("saved_at"),
        "versions": card.get("versions", {}),
        "config": card["config"],
        "history": [
            {k: round(float(e[k]), 4) for k in ("train_loss", "train_acc", "val_loss", "val_acc")}
            | {"epoch": int(e["epoch"])}
            for e in epochs
        ],
        "command": train_command(
            card["config"],
            card["model"],
            data=data_arg,
            out=out.as_posix(),
            init=card["init"],
            model_kwargs=card.get("model_kwargs", {}),
        ),
    }


def _check_split(card: dict[str, Any], split: Any, where: Any, consequence: str) -> None:
    """Raise ValueError when a checkpoint's card names another split than ``split``."""
    recorded = card.get("split_hash")
    if recorded and not split.matches(recorded):
        raise ValueError(
            f"{where}: trained on split {recorded[:12]}, but this data and seed give "
            f"{split.hash[:12]}: {consequence}"
        )


def _ensemble_split(cards: list[tuple[dict[str, Any], Any]], data: FER2013) -> Any:
    """The one split all ``(card, where)`` members were trained on, or ValueError."""
    from ..data import make_split

    seeds = {int(card["config"]["seed"]) for card, _ in cards}
    if len(seeds) != 1:
        raise ValueError(f"the ensemble's members use different seeds (splits): {sorted(seeds)}")
    split = make_split(data, seed=seeds.pop())
    for card, where in cards:
        _check_split(card, split, where, "it cannot join the ensemble")
    return split


def collect_ensemble(
    run_dir: str | Path,
    data: FER2013,
    *,
    device: str = "cpu",
    members: Sequence[str | Path] = (),
    runs: Sequence[str] | None = None,
) -> dict[str, Any] | None:
    """The average of the runs' best models under ``run_dir`` on PrivateTest, plain and flip.

    Args:
        run_dir: the parent of the run folders.
        data: the data set the runs were trained on.
        device: where to evaluate.
        members: more checkpoints to average in (a checkpoint stem or either of its files, e.g.
            the bundled default model, whose run folder is not under ``run_dir``).
        runs: only these runs under ``run_dir`` (folder names, e.g. ``["attention_cnn",
            "hybrid_transformer"]``); ``None``: all of them. Choose on the validation
            accuracies (each row's ``val_acc``), never on PrivateTest.

    Returns:
        ``{"members", "params", "val_acc", "private_acc", "private_f1", "private_acc_flip",
        "private_f1_flip"}``, or ``None`` with fewer than two models. All must share one split
        (same seed and data).

    Raises:
        ValueError: members trained on different splits.
        FileNotFoundError: a name in ``runs`` has no run under ``run_dir``.
    """
    from ..checkpoint import load_checkpoint
    from ..evaluation import evaluate_ensemble

    found = course_runs(run_dir)
    if runs is not None:
        missing = sorted(set(runs) - {run.path.name for run in found})
        if missing:
            raise FileNotFoundError(f"no run of {', '.join(missing)} under {run_dir}")
        found = [run for run in found if run.path.name in runs]
    stems = [run.checkpoint() for run in found]
    stems += [Path(m) for m in members]
    models, cards = [], []
    for stem in stems:
        model, card = load_checkpoint(stem)
        models.append(model)
        cards.append((card, stem))
    if len(models) < 2:
        return None
    split = _ensemble_split(cards, data)
    out: dict[str, Any] = {
        "members": [card["model"] for card, _ in cards],
        "params": int(sum(int(card["num_parameters"]) for card, _ in cards)),
        "val_acc": evaluate_ensemble(models, data, "val", split_obj=split, device=device)[
            "accuracy"
        ],
    }
    for tta, suffix in ((None, ""), ("flip", "_flip")):
        m = evaluate_ensemble(models, data, "PrivateTest", split_obj=split, tta=tta, device=device)
        out[f"private_acc{suffix}"] = m["accuracy"]
        out[f"private_f1{suffix}"] = m["macro_f1"]
    return out


def choose_ensemble(
    run_dir: str | Path, data: FER2013, *, device: str = "cpu"
) -> tuple[list[str], list[tuple[tuple[str, ...], float]]]:
    """The runs under ``run_dir`` whose average is most accurate on the validation split.

    Every subset of two or more runs is scored on ``val`` (each model predicts once; the subsets
    average those probabilities), never on a test split, so the choice leaves PrivateTest clean.
    Ties go to the smaller ensemble.

    Returns:
        ``(chosen run names, [(subset, val accuracy), ...] best first)``; ``([], [])`` with fewer
        than two runs.
    """
    import itertools

    import numpy as np

    from ..evaluation import predict_proba

    folders = course_runs(run_dir)
    if len(folders) < 2:
        return [], []
    split = _ensemble_split([(f.card(), f.path) for f in folders], data)
    labels = np.asarray(data.labels)[split.val]
    probs = {}
    for folder in folders:
        model = folder.load().model
        probs[folder.path.name] = predict_proba(model, data.images[split.val], device=device)
    scored = []
    for size in range(2, len(folders) + 1):
        for subset in itertools.combinations(sorted(probs), size):
            mean = np.mean([probs[name] for name in subset], axis=0)
            scored.append((subset, float((mean.argmax(1) == labels).mean())))
    scored.sort(key=lambda item: (-item[1], len(item[0])))
    return list(scored[0][0]), scored
