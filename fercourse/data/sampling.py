"""Class imbalance tools: class weights for the loss, a weighted sampler, stratified subsets.

FER2013 has 16x more happy than disgust training faces. Two standard answers, both used in the
course: weight the cross-entropy by inverse class frequency (:func:`class_weights`), or draw
training batches with a class-balanced sampler (:func:`weighted_sampler`). Introduced in
``notebooks/01_data.ipynb``; used by ``notebooks/02_baseline.ipynb``.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from ..labels import EMOTIONS, NUM_CLASSES

logger = logging.getLogger(__name__)


def class_weights(labels: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Inverse-frequency class weights, normalised to mean 1, for weighted cross-entropy.

    Introduced in ``notebooks/01_data.ipynb``.

    Args:
        labels: training labels (codes 0-6).

    Returns:
        float32 tensor (7,) in code order; a class with half the average frequency gets ~2.

    Raises:
        ValueError: a class has no example (its weight would be infinite).

    Example:
        >>> w = class_weights(np.array([0, 0, 1, 2, 3, 4, 5, 6]))
        >>> loss = torch.nn.CrossEntropyLoss(weight=w)
    """
    labels = np.asarray(torch.as_tensor(labels).cpu())
    counts = np.bincount(labels, minlength=NUM_CLASSES).astype(np.float64)
    if (counts == 0).any():
        missing = [EMOTIONS[c] for c in np.flatnonzero(counts == 0)]
        raise ValueError(f"no training example of {', '.join(missing)}: cannot weight by 1/count")
    weights = 1.0 / counts
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def weighted_sampler(
    labels: np.ndarray | torch.Tensor,
    *,
    num_samples: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.utils.data.WeightedRandomSampler:
    """A sampler that draws every class equally often on average (with replacement).

    Introduced in ``notebooks/01_data.ipynb``.

    Args:
        labels: labels of the dataset the sampler indexes.
        num_samples: draws per epoch (default: the dataset size).
        generator: a seeded ``torch.Generator`` for reproducible draws.

    Returns:
        ``torch.utils.data.WeightedRandomSampler`` for a ``DataLoader(sampler=...)``.
    """
    labels_np = np.asarray(torch.as_tensor(labels).cpu())
    per_sample = class_weights(labels_np)[labels_np].double()
    return torch.utils.data.WeightedRandomSampler(
        per_sample,
        num_samples=len(labels_np) if num_samples is None else num_samples,
        replacement=True,
        generator=generator,
    )


def stratified_subset(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Positions of at most ``n`` items drawn with the class proportions of ``labels``.

    Introduced in ``notebooks/01_data.ipynb``.

    Used for the course's CPU "smoke" runs, which train on a small subset.

    Returns:
        Sorted int64 positions into ``labels`` (all of them when ``n >= len(labels)``).
    """
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels))
    if n <= 0:
        return np.arange(0)
    positions = np.arange(len(labels))
    try:
        chosen, _ = train_test_split(positions, train_size=n, stratify=labels, random_state=seed)
    except ValueError:
        # sklearn refuses to stratify when a class has a single item or n < number of classes.
        logger.info(
            "subset of %d from %d: too small to stratify, drawing at random", n, len(labels)
        )
        chosen = np.random.default_rng(seed).choice(positions, size=n, replace=False)
    return np.sort(np.asarray(chosen, dtype=np.int64))
