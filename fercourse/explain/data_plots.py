"""Figures of the data: faces per emotion, augmented faces, and the class balance.

Introduced in ``notebooks/01_data.ipynb``. Each returns a matplotlib Figure or Axes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from matplotlib.figure import Figure

from ..data.augment import DEFAULT_AUGMENT, AugmentSettings, BatchAugment, train_transform
from ..labels import EMOJI, EMOTIONS, NUM_CLASSES

if TYPE_CHECKING:
    from ..data import FER2013
    from ..data.report import DataReport

__all__ = [
    "plot_class_balance",
    "plot_faces_to_label",
    "plot_label_conflicts",
    "plot_samples",
    "preview_augmentations",
]


def plot_samples(
    data: FER2013, per_class: int = 6, *, usage: str = "Training", seed: int = 0
) -> Figure:
    """A grid of faces: one row per emotion (in code order), ``per_class`` random faces each.

    Introduced in ``notebooks/01_data.ipynb``.

    Args:
        data: the dataset (``fc.data.load_fer2013()``).
        per_class: faces per row.
        usage: which part to draw from (``"Training"``, ``"PublicTest"``, ``"PrivateTest"``).
        seed: which faces.

    Returns:
        The figure; the title says when the faces are the synthetic stand-in.
    """
    part = data.where(usage)
    rng = np.random.default_rng(seed)
    fig = Figure(figsize=(1.1 * per_class + 1.2, 1.15 * len(EMOTIONS)))
    axes = fig.subplots(len(EMOTIONS), per_class, squeeze=False)
    for code, name in enumerate(EMOTIONS):
        members = np.flatnonzero(part.labels == code)
        chosen = rng.choice(members, size=min(per_class, len(members)), replace=False)
        for j, ax in enumerate(axes[code]):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j < len(chosen):
                ax.imshow(part.images[chosen[j]], cmap="gray", vmin=0, vmax=255)
        axes[code, 0].set_ylabel(f"{code} {name}", rotation=0, ha="right", va="center")
    kind = "SYNTHETIC stand-in" if data.synthetic else "FER2013"
    fig.suptitle(f"{usage} faces per emotion ({kind})")
    fig.tight_layout()
    return fig


def preview_augmentations(
    ds: FER2013,
    n: int = 6,
    *,
    per_image: int = 6,
    pipeline: str = "batch",
    settings: AugmentSettings = DEFAULT_AUGMENT,
    seed: int = 0,
):
    """A grid of faces (rows) and their augmented versions (columns) to check the recipe by eye.

    Introduced in ``notebooks/01_data.ipynb``.

    Args:
        ds: the dataset (Training faces are shown).
        n: number of faces.
        per_image: augmented versions per face.
        pipeline: ``"batch"`` (:class:`BatchAugment`) or ``"albumentations"``
            (:func:`train_transform`).
        settings: the recipe.
        seed: picks the faces and the augmentations.

    Returns:
        A matplotlib Figure (the first column is the original).

    Example:
        >>> fig = preview_augmentations(fc.data.load_fer2013(), n=4)  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(ds.usage == "Training")
    pool = pool if len(pool) else np.arange(len(ds))
    idx = rng.choice(pool, size=min(n, len(pool)), replace=False)
    faces = ds.images[idx]
    if pipeline == "batch":
        aug = BatchAugment(settings, seed=seed)
        views = [aug(torch.from_numpy(faces)).numpy() for _ in range(per_image)]
    elif pipeline == "albumentations":
        transform = train_transform(settings, seed=seed)
        views = [np.stack([transform(image=f)["image"] for f in faces]) for _ in range(per_image)]
    else:
        raise ValueError(f"pipeline must be 'batch' or 'albumentations', got {pipeline!r}")
    fig, axes = plt.subplots(
        len(idx), per_image + 1, figsize=(1.3 * (per_image + 1), 1.4 * len(idx)), squeeze=False
    )
    for r, i in enumerate(idx):
        row = [faces[r]] + [v[r] for v in views]
        for c, img in enumerate(row):
            ax = axes[r, c]
            ax.imshow(img, cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(EMOTIONS[ds.labels[i]], fontsize=8)
        axes[0, 0].set_title("original", fontsize=8)
    what = "SYNTHETIC stand-in" if ds.synthetic else "FER2013"
    fig.suptitle(f"augmentation preview ({pipeline}), {what}", fontsize=10)
    fig.tight_layout()
    return fig


def plot_class_balance(report: DataReport, ax=None, *, emoji: bool = False):
    """Bar chart of images per class and part, from ``fc.data.data_report(data)``.

    Introduced in ``notebooks/01_data.ipynb``.

    Args:
        ax: a matplotlib Axes (default: a new figure).
        emoji: add each class's emoji to its label (needs an emoji font, e.g. Debian's
            ``fonts-noto-color-emoji``; otherwise matplotlib draws empty boxes).

    Returns:
        The matplotlib Axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.5))
    counts = report.counts[report.parts]
    x = np.arange(NUM_CLASSES)
    width = 0.8 / len(report.parts)
    for i, part in enumerate(report.parts):
        ax.bar(x + (i - (len(report.parts) - 1) / 2) * width, counts[part], width, label=part)
    names = [f"{n} {EMOJI[n]}" if emoji else n for n in EMOTIONS]
    ax.set_xticks(x, names)
    ax.set_ylabel("images")
    title = "class balance"
    ax.set_title(f"{title}: SYNTHETIC stand-in" if report.synthetic else f"{title}: FER2013")
    ax.legend(frameon=False)
    return ax


def plot_faces_to_label(data: FER2013, indices, *, cols: int = 7) -> Figure:
    """The faces of the "label it yourself" exercise, numbered, without their labels.

    Introduced in ``notebooks/01_data.ipynb``.

    Args:
        data: the dataset.
        indices: which faces, in the order you answer (``fc.data.labelling_sample(data)``).
        cols: faces per row.

    Returns:
        The figure.
    """
    indices = np.asarray(indices, dtype=np.int64)
    cols = max(1, min(cols, len(indices)))
    rows = max(1, -(-len(indices) // cols))
    fig = Figure(figsize=(1.25 * cols, 1.45 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k, i in enumerate(indices):
        ax = axes[k // cols, k % cols]
        ax.imshow(data.images[i], cmap="gray", vmin=0, vmax=255)
        ax.set_title(str(k + 1), fontsize=9)
    kind = "SYNTHETIC stand-in" if data.synthetic else "FER2013"
    fig.suptitle(f"label these {len(indices)} faces, in this order ({kind})", fontsize=10)
    fig.tight_layout()
    return fig


def plot_label_conflicts(data: FER2013, report: DataReport, *, n: int = 6) -> Figure:
    """Identical images that FER2013 labelled differently: one row per group, each copy titled
    with its label and part.

    Introduced in ``notebooks/01_data.ipynb``.

    Args:
        data: the dataset the report was made from.
        report: ``fc.data.data_report(data)``.
        n: at most this many groups.

    Returns:
        The figure (a note instead of faces when there is no such group).
    """
    groups = [g for g in report.duplicate_groups if len(np.unique(data.labels[g])) > 1][:n]
    kind = "SYNTHETIC stand-in" if data.synthetic else "FER2013"
    if not groups:
        fig = Figure(figsize=(6, 0.8))
        ax = fig.subplots()
        ax.axis("off")
        ax.text(0.5, 0.5, f"no identical images with different labels ({kind})", ha="center")
        return fig
    cols = max(len(g) for g in groups)
    fig = Figure(figsize=(1.5 * cols, 1.6 * len(groups)))
    axes = fig.subplots(len(groups), cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for r, group in enumerate(groups):
        for c, i in enumerate(group):
            axes[r, c].imshow(data.images[i], cmap="gray", vmin=0, vmax=255)
            axes[r, c].set_title(f"{EMOTIONS[data.labels[i]]}\n{data.usage[i]}", fontsize=8)
    fig.suptitle(f"identical images, different labels ({kind})", fontsize=10)
    fig.tight_layout()
    return fig
