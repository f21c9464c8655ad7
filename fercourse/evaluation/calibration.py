"""Calibration: does a 90 % confident prediction come true 90 % of the time?

:func:`expected_calibration_error` measures it (equal-width confidence bins, as in Guo et al.
2017, "On Calibration of Modern Neural Networks"); :func:`fit_temperature` repairs it with one
scalar fitted on the validation split (temperature scaling), which never changes a prediction,
only its confidence. Introduced in ``notebooks/02_baseline.ipynb``; ``fc.explain.plot_reliability``
draws the reliability diagram.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    pass


def reliability_bins(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> dict[str, Any]:
    """Per-bin confidence, accuracy and count of the top prediction.

    Args:
        probs: (N, K) probabilities.
        labels: (N,) true classes.
        n_bins: equal-width bins over (0, 1].

    Returns:
        dict with ``edges`` (n_bins + 1,), ``confidence``, ``accuracy`` (NaN in empty bins) and
        ``count`` (each (n_bins,)).
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    if probs.ndim != 2 or len(probs) != len(labels):
        raise ValueError(
            f"expected probs (N, K) and labels (N,), got {probs.shape} and {labels.shape}"
        )
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bins are (lo, hi]; a confidence of exactly 0 cannot happen for a softmax.
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(which, weights=confidence, minlength=n_bins) / count
        acc = np.bincount(which, weights=correct, minlength=n_bins) / count
    return {"edges": edges, "confidence": conf, "accuracy": acc, "count": count}


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error: the count-weighted mean |accuracy - confidence| over bins.

    Args:
        probs: (N, K) probabilities (rows sum to 1).
        labels: (N,) true classes.
        n_bins: number of equal-width confidence bins.

    Returns:
        ECE in [0, 1]; 0 for a perfectly calibrated model.

    Example:
        >>> probs = np.array([[0.8, 0.2]] * 10)
        >>> labels = np.array([0] * 8 + [1] * 2)
        >>> round(expected_calibration_error(probs, labels), 6)
        0.0
    """
    bins = reliability_bins(probs, labels, n_bins)
    filled = bins["count"] > 0
    gaps = np.abs(bins["accuracy"][filled] - bins["confidence"][filled])
    return float((gaps * bins["count"][filled]).sum() / max(int(bins["count"].sum()), 1))


def temperature_from_logits(
    logits: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray, *, max_iter: int = 100
) -> float:
    """The temperature T minimising the NLL of ``softmax(logits / T)``.

    LBFGS on log T (so T stays positive), as in Guo et al. 2017.

    Args:
        logits: (N, K) raw model outputs, e.g. on the validation split.
        labels: (N,) true classes.
        max_iter: LBFGS iterations.

    Returns:
        T > 0; above 1 softens an over-confident model.
    """
    z = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.detach().exp())
