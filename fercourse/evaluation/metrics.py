"""Evaluate a model on a FER2013 split: accuracy, macro-F1, per-class scores, confusion matrix.

Every score comes from scikit-learn (``accuracy_score``, ``f1_score``,
``precision_recall_fscore_support``, ``confusion_matrix``, ``log_loss``); this module only gets
the model's probabilities in the right order and stores the result. fercourse selects the best
epoch on ``val`` (carved from Training) and reports **PrivateTest**, which no training decision
has seen; PublicTest is reported beside it. Introduced in ``notebooks/02_baseline.ipynb``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
)

from ..labels import EMOTIONS, NUM_CLASSES
from ..preprocessing import to_tensor
from ..rundir import METRICS_FILE
from ..runtime import Runtime, resolve_runtime
from ..utils import atomic_write_json
from .calibration import expected_calibration_error, temperature_from_logits
from .tta import DEFAULT_CROP, check_tta, tta_views

if TYPE_CHECKING:
    from ..data import FER2013, Split


SPLITS = ("PrivateTest", "PublicTest", "val", "train")
_SPLIT_ALIASES = {
    "privatetest": "PrivateTest",
    "private_test": "PrivateTest",
    "private": "PrivateTest",
    "publictest": "PublicTest",
    "public_test": "PublicTest",
    "public": "PublicTest",
    "val": "val",
    "validation": "val",
    "train": "train",
    "training": "train",
}
_SPLIT_ATTR = {
    "PrivateTest": "private_test",
    "PublicTest": "public_test",
    "val": "val",
    "train": "train",
}


def canonical_split(split: str) -> str:
    """``"private_test"`` -> ``"PrivateTest"`` etc.; raises ValueError for an unknown name."""
    key = str(split).strip().lower()
    if key not in _SPLIT_ALIASES:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return _SPLIT_ALIASES[key]


def split_indices(data: FER2013, split: str, split_obj: Split | None = None) -> np.ndarray:
    """Row indices of ``data`` in a split.

    Args:
        data: the dataset.
        split: ``"PrivateTest"``, ``"PublicTest"``, ``"val"`` or ``"train"``.
        split_obj: the run's split; needed to tell ``val`` from ``train`` (default:
            ``fc.data.make_split(data)``, i.e. seed 0). The test splits come from FER2013's
            ``Usage`` column when no split is given.
    """
    name = canonical_split(split)
    if split_obj is None and name in ("PrivateTest", "PublicTest"):
        idx = np.flatnonzero(np.asarray(data.usage) == name)
    else:
        if split_obj is None:
            from ..data import make_split

            split_obj = make_split(data)
        idx = np.asarray(getattr(split_obj, _SPLIT_ATTR[name]))
    if len(idx) == 0:
        raise ValueError(f"split {name!r} of {getattr(data, 'source', 'the dataset')} is empty")
    return idx


def _batches(x: Any, batch_size: int) -> Iterator[torch.Tensor]:
    """Normalised float batches (B, 1, 48, 48) from faces, tensors or a dataset."""
    if hasattr(x, "images"):  # a FER2013 dataset
        x = x.images
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x) if x.dtype != np.uint8 else x
    if isinstance(x, np.ndarray) or (isinstance(x, torch.Tensor) and x.dtype == torch.uint8):
        # uint8 faces: the shared preprocessing, one batch at a time to keep memory flat.
        single = x.ndim == 2
        n = 1 if single else len(x)
        for i in range(0, n, batch_size):
            yield to_tensor(x if single else x[i : i + batch_size])
        return
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected uint8 faces, a float tensor or a FER2013 dataset, got {type(x)}")
    t = x.float()
    if t.ndim == 2:
        t = t[None, None]
    elif t.ndim == 3:
        t = t[:, None]
    if t.ndim != 4:
        raise ValueError(f"expected a (N, 1, 48, 48) tensor, got {tuple(x.shape)}")
    for i in range(0, len(t), batch_size):
        yield t[i : i + batch_size]


@torch.no_grad()
def _view_logits(
    model: torch.nn.Module,
    batches: Iterable[torch.Tensor],
    runtime: Runtime,
    tta: str | None = None,
    crop_size: int = DEFAULT_CROP,
) -> torch.Tensor:
    """Logits of every TTA view: (V, N, K) float32 on the CPU."""
    was_training = model.training
    runtime.prepare(model).eval()
    out = []
    try:
        for xb in batches:
            views = tta_views(runtime.inputs(xb), tta, crop_size)
            with runtime.autocast():
                logits = model(views.flatten(0, 1))
            out.append(logits.float().reshape(views.shape[0], views.shape[1], -1).cpu())
    finally:
        model.train(was_training)
    if not out:
        raise ValueError("no images to predict")
    return torch.cat(out, dim=1)


def predict_logits(
    model: torch.nn.Module,
    x_or_faces: Any,
    *,
    device: str | torch.device = "auto",
    batch_size: int = 256,
) -> np.ndarray:
    """Raw model outputs (N, 7) for faces, a normalised tensor or a dataset (no TTA)."""
    runtime = resolve_runtime(device)
    return _view_logits(model, _batches(x_or_faces, batch_size), runtime)[0].numpy()


def predict_proba(
    model: torch.nn.Module,
    x_or_faces: Any,
    *,
    tta: str | None = None,
    temperature: float | None = None,
    device: str | torch.device = "auto",
    batch_size: int = 256,
) -> np.ndarray:
    """Class probabilities (N, 7), in :data:`fercourse.EMOTIONS` order.

    Args:
        model: any fercourse model (logits out).
        x_or_faces: uint8 faces (48, 48) / (N, 48, 48) / (N, 1, 48, 48), a normalised float
            tensor (N, 1, 48, 48) from ``fc.preprocessing.to_tensor``, or a ``FER2013`` dataset.
        tta: ``None``, ``"flip"`` or ``"tencrop"``: softmax averaged over the views.
        temperature: divide logits by this before the softmax (see ``fit_temperature``).
        device: ``"auto"`` (CUDA when available) or a device; the model is moved there.
        batch_size: images per forward pass.

    Returns:
        float32 array (N, 7); rows sum to 1.

    Example:
        >>> probs = fc.evaluation.predict_proba(model, data.images[:8])  # doctest: +SKIP
        >>> fc.EMOTIONS[probs[0].argmax()]  # doctest: +SKIP
        'happy'
    """
    runtime = resolve_runtime(device)
    logits = _view_logits(model, _batches(x_or_faces, batch_size), runtime, check_tta(tta))
    if temperature is not None:
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        logits = logits / temperature
    return torch.softmax(logits, dim=-1).mean(dim=0).numpy()


def compute_metrics(probs: np.ndarray, labels: np.ndarray, *, n_bins: int = 15) -> dict[str, Any]:
    """All scores of a set of predictions (scikit-learn does the counting).

    Args:
        probs: (N, 7) probabilities.
        labels: (N,) true FER2013 codes.
        n_bins: ECE bins.

    Returns:
        dict with ``n``, ``accuracy``, ``macro_f1``, ``per_class`` (emotion name -> precision,
        recall, f1, support), ``confusion`` (7x7 list of lists; rows are the true class),
        ``ece``, ``nll`` and ``majority_baseline`` (accuracy of always guessing the most frequent
        true class: the number to beat).
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    if probs.shape != (len(labels), NUM_CLASSES):
        raise ValueError(
            f"expected probs of shape ({len(labels)}, {NUM_CLASSES}), got {probs.shape}"
        )
    classes = list(range(NUM_CLASSES))
    preds = probs.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, preds, labels=classes, zero_division=0
    )
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    return {
        "n": len(labels),
        "accuracy": float(accuracy_score(labels, preds)),
        "macro_f1": float(
            f1_score(labels, preds, labels=classes, average="macro", zero_division=0)
        ),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(EMOTIONS)
        },
        "confusion": confusion_matrix(labels, preds, labels=classes).tolist(),
        "ece": expected_calibration_error(probs, labels, n_bins),
        "nll": _nll(probs, labels),
        "majority_baseline": float(counts.max() / max(len(labels), 1)),
    }


def _nll(probs: np.ndarray, labels: np.ndarray) -> float:
    # float32 softmax rows sum to 1 only to ~1e-7, which scikit-learn warns about; clip (no
    # log 0) and renormalise in float64 first.
    p = np.clip(probs, 1e-12, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    return float(log_loss(labels, p, labels=list(range(NUM_CLASSES))))


def metrics_key(split: str, tta: str | None = None, temperature: float | None = None) -> str:
    """Key of a result in ``metrics.json``: ``"PrivateTest"``, ``"PrivateTest+flip"``, ..."""
    key = canonical_split(split)
    if tta:
        key += f"+{tta}"
    if temperature is not None:
        key += "+temperature"
    return key


def save_metrics(metrics: dict[str, Any], save_to: str | Path, key: str | None = None) -> Path:
    """Merge one result into ``metrics.json`` (other splits' and TTA modes' results are kept).

    Args:
        metrics: a dict from :func:`evaluate`.
        save_to: a run folder (``metrics.json`` goes inside) or a ``.json`` path.
        key: entry name (default :func:`metrics_key` of the result).

    Returns:
        The path written.
    """
    path = Path(save_to)
    if path.suffix != ".json":
        path = path / METRICS_FILE
    existing: dict[str, Any] = {}
    if path.is_file():
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} exists but is not valid JSON ({exc}); move it away") from exc
    if key is None:
        key = metrics.get("key") or metrics_key(
            metrics["split"], metrics.get("tta"), metrics.get("temperature")
        )
    existing[key] = metrics
    return atomic_write_json(path, existing)


def score_split(
    predict: Callable[[np.ndarray, str | None], np.ndarray],
    data: FER2013,
    split: str,
    *,
    split_obj: Split | None = None,
    tta: str | None = None,
    temperature: float | None = None,
    key_prefix: str = "",
) -> dict[str, Any]:
    """Predict one split's faces with ``predict(faces, tta)`` and score them.

    The part :func:`evaluate` and :func:`~fercourse.evaluation.evaluate_ensemble` share: the
    split's indices, the probabilities and :func:`compute_metrics`, under the ``metrics.json`` key.
    """
    name = canonical_split(split)
    mode = check_tta(tta)
    idx = split_indices(data, name, split_obj)
    probs = predict(data.images[idx], mode)
    return {
        "split": name,
        "key": key_prefix + metrics_key(name, mode, temperature),
        **compute_metrics(probs, np.asarray(data.labels)[idx]),
        "tta": mode,
        "temperature": temperature,
    }


def evaluate(
    model: torch.nn.Module,
    data: FER2013,
    split: str = "PrivateTest",
    *,
    split_obj: Split | None = None,
    tta: str | None = None,
    temperature: float | None = None,
    device: str | torch.device = "auto",
    batch_size: int = 256,
    save_to: str | Path | None = None,
) -> dict[str, Any]:
    """Score a model on one split of FER2013.

    Args:
        model: a trained model (e.g. from ``fc.fit`` or ``fc.training.load_run``).
        data: the dataset (``fc.data.load_fer2013()``).
        split: ``"PrivateTest"`` (the reported test set), ``"PublicTest"``, ``"val"`` or
            ``"train"``.
        split_obj: the run's ``fc.data.Split`` (needed for ``"val"``/``"train"`` when the run
            used another seed than 0).
        tta: ``None``, ``"flip"`` or ``"tencrop"`` test-time augmentation.
        temperature: temperature scaling from :func:`fit_temperature` (changes ECE/NLL only).
        device: ``"auto"``: CUDA (bf16, channels-last) when available, else CPU.
        batch_size: images per forward pass.
        save_to: a run folder: merge the result into its ``metrics.json``.

    Returns:
        dict with ``split``, ``n``, ``accuracy``, ``macro_f1``, ``per_class``, ``confusion``,
        ``ece``, ``nll``, ``majority_baseline``, ``tta``, ``temperature``, ``model``,
        ``selected_on`` (where the checkpoint was chosen, when known) and ``data``.

    Example:
        >>> m = fc.evaluate(model, data, split="PrivateTest", tta="flip")  # doctest: +SKIP
        >>> round(m["accuracy"], 3), round(m["macro_f1"], 3)  # doctest: +SKIP
        (0.652, 0.621)
    """

    def predict(faces: np.ndarray, mode: str | None) -> np.ndarray:
        return predict_proba(
            model, faces, tta=mode, temperature=temperature, device=device, batch_size=batch_size
        )

    result = score_split(
        predict, data, split, split_obj=split_obj, tta=tta, temperature=temperature
    )
    result["model"] = getattr(model, "model_name", type(model).__name__)
    # fc.fit and fc.training.load_run record where the checkpoint was selected.
    result["selected_on"] = getattr(model, "selected_on", None)
    result["data"] = data.info()
    if save_to is not None:
        save_metrics(result, save_to)
    return result


def fit_temperature(
    model: torch.nn.Module,
    data: FER2013,
    split_obj: Split | None = None,
    *,
    split: str = "val",
    device: str = "auto",
    batch_size: int = 256,
) -> float:
    """Fit temperature scaling on the validation split (never on a test split).

    Args:
        model: a trained model.
        data: the dataset the split indexes.
        split_obj: the run's split (default: ``fc.data.make_split(data)``).
        split: which split to fit on (``"val"``; ``"PublicTest"`` when selecting on it).
        device: see :func:`fercourse.evaluation.evaluate`.
        batch_size: images per forward pass.

    Returns:
        The temperature; pass it as ``fc.evaluate(..., temperature=T)``.

    Example:
        >>> T = fc.evaluation.fit_temperature(model, data, split_obj=split)  # doctest: +SKIP
        >>> fc.evaluate(model, data, temperature=T)["ece"]  # doctest: +SKIP
    """
    idx = split_indices(data, split, split_obj)
    logits = predict_logits(model, data.images[idx], device=device, batch_size=batch_size)
    return temperature_from_logits(logits, data.labels[idx])
