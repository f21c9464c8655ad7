"""Ensembles: average several models' probabilities.

Averaging the softmax of differently built models (a CNN, an attention CNN, a transformer) is the
simplest way past a single model on FER2013: the published ensembles reach ~75 % where the best
single CNN reaches ~73 %. Introduced in ``notebooks/08_compare.ipynb``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..labels import NUM_CLASSES
from .metrics import predict_proba, save_metrics, score_split

if TYPE_CHECKING:
    from ..data import FER2013, Split


def ensemble_proba(
    models: Sequence[torch.nn.Module],
    x_or_faces: Any,
    *,
    weights: Sequence[float] | None = None,
    tta: str | None = None,
    temperatures: Sequence[float | None] | None = None,
    device: str | torch.device = "auto",
    batch_size: int = 256,
) -> np.ndarray:
    """The (weighted) mean of several models' probabilities.

    Args:
        models: trained models.
        x_or_faces: anything :func:`fercourse.evaluation.predict_proba` takes.
        weights: one non-negative weight per model (default: equal); normalised to sum to 1.
        tta: TTA mode applied to every member.
        temperatures: per-model temperature scaling (``None`` entries: none).
        device: see ``predict_proba``.
        batch_size: images per forward pass.

    Returns:
        (N, 7) probabilities.

    Example:
        >>> probs = fc.evaluation.ensemble_proba([cnn, vit], data.images[:4])  # doctest: +SKIP
    """
    models = list(models)
    if not models:
        raise ValueError("an ensemble needs at least one model")
    w = np.ones(len(models)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(models),) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"need one non-negative weight per model ({len(models)}), got {weights}")
    temps = list(temperatures) if temperatures is not None else [None] * len(models)
    if len(temps) != len(models):
        raise ValueError(f"need one temperature per model ({len(models)}), got {len(temps)}")
    total = None
    for model, weight, temp in zip(models, w / w.sum(), temps):
        p = predict_proba(
            model, x_or_faces, tta=tta, temperature=temp, device=device, batch_size=batch_size
        )
        total = weight * p if total is None else total + weight * p
    return total.astype(np.float32)


def evaluate_ensemble(
    models: Sequence[torch.nn.Module],
    data: FER2013,
    split: str = "PrivateTest",
    *,
    split_obj: Split | None = None,
    weights: Sequence[float] | None = None,
    tta: str | None = None,
    temperatures: Sequence[float | None] | None = None,
    device: str | torch.device = "auto",
    batch_size: int = 256,
    save_to: str | Path | None = None,
    member_probs: Sequence[np.ndarray] | None = None,
) -> dict[str, Any]:
    """Score the average of several models like :func:`fercourse.evaluate` scores one.

    Args:
        models: trained models.
        data: the dataset.
        split: ``"PrivateTest"``, ``"PublicTest"``, ``"val"`` or ``"train"``.
        split_obj: the runs' split (see ``evaluate``).
        weights: per-model weights (default equal).
        tta: TTA for every member.
        temperatures: per-model temperatures.
        device: see ``evaluate``.
        batch_size: images per forward pass.
        save_to: folder (or ``.json`` path) whose ``metrics.json`` gets an ``ensemble:...`` entry.
        member_probs: each member's probabilities on the split's faces, already computed
            (``predict_proba``, in the order of ``models``, without TTA or temperature): they are
            averaged instead of predicting the faces again (``08_compare`` scores the members
            one by one first).

    Returns:
        The ``evaluate`` dict, with ``model`` ``"ensemble"``, ``members`` and ``weights``.
    """
    if member_probs is not None and (
        len(member_probs) != len(models) or tta is not None or temperatures is not None
    ):
        raise ValueError("member_probs needs one array per model, and no tta or temperatures")

    def predict(faces: np.ndarray, mode: str | None) -> np.ndarray:
        if member_probs is not None:
            w = np.ones(len(models)) if weights is None else np.asarray(weights, np.float64)
            total = sum(weight * np.asarray(p) for weight, p in zip(w / w.sum(), member_probs))
            if total.shape != (len(faces), NUM_CLASSES):
                raise ValueError(f"member_probs of shape {total.shape} for {len(faces)} faces")
            return total.astype(np.float32)
        return ensemble_proba(
            models,
            faces,
            weights=weights,
            tta=mode,
            temperatures=temperatures,
            device=device,
            batch_size=batch_size,
        )

    result = score_split(predict, data, split, split_obj=split_obj, tta=tta, key_prefix="ensemble:")
    result["model"] = "ensemble"
    result["members"] = [getattr(m, "model_name", type(m).__name__) for m in models]
    result["weights"] = None if weights is None else [float(v) for v in weights]
    result["selected_on"] = sorted({str(getattr(m, "selected_on", None)) for m in models})
    result["data"] = data.info()
    if save_to is not None:
        save_metrics(result, save_to)
    return result
