"""The in-memory FER2013 dataset every loader returns, and the data layer's error type.

Whatever format FER2013 arrives in (a CSV, torchvision's folder, Kaggle's image folders, the
synthetic stand-in), :func:`fercourse.data.load_fer2013` turns it into one :class:`FER2013`:
three aligned NumPy arrays plus a record of where they came from. Introduced in
``notebooks/01_data.ipynb``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..labels import EMOTIONS, NUM_CLASSES
from ..preprocessing import IMAGE_SIZE

USAGES: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")
"""FER2013's ``Usage`` values in file order: training, model selection, the reported test."""

FER2013_USAGE_COUNTS: dict[str, int] = {"Training": 28709, "PublicTest": 3589, "PrivateTest": 3589}
"""Images per Usage in the published FER2013 (35,887 in all)."""

FER2013_CLASS_COUNTS: dict[str, int] = {
    "angry": 4953,
    "disgust": 547,
    "fear": 5121,
    "happy": 8989,
    "sad": 6077,
    "surprise": 4002,
    "neutral": 6198,
}
"""Images per class in the published FER2013, all usages together (in code order)."""


class DataError(ValueError):
    """FER2013 input that cannot be read as it is; the message names the file, row or value."""


@dataclass(eq=False)
class FER2013:
    """FER2013 (or a stand-in) in memory: aligned images, labels and usages.

    Introduced in ``notebooks/01_data.ipynb``.

    Attributes:
        images: (N, 48, 48) uint8 faces.
        labels: (N,) int64 codes in FER2013 order (``fc.EMOTIONS[code]`` is the name).
        usage: (N,) str array, each one of ``"Training"``, ``"PublicTest"``, ``"PrivateTest"``.
        source: the file or folder it was read from (or how it was made).
        format: ``"fer2013.csv"``, ``"icml_face_data.csv"``, ``"competition-csv"``,
            ``"kaggle-folders"`` or ``"synthetic"`` (``"+ferplus"`` is appended for FERPlus labels).
        synthetic: True for the procedural stand-in faces; every output made from it says so.
        dropped: what was left out on purpose, counted (e.g. ``{"ferplus: not a face": 177}``).
        ids: optional (N,) str array naming each image's origin (a file's relative path for image
            folders); None for CSV sources, where the row order is the identity.

    Example:
        >>> import fercourse as fc
        >>> ds = fc.data.make_synthetic_faces(n=200, seed=0)
        >>> len(ds), ds.images.shape[1:], ds.synthetic
        (200, (48, 48), True)
        >>> len(ds.where("Training")) > 100
        True
    """

    images: np.ndarray
    labels: np.ndarray
    usage: np.ndarray
    source: str = ""
    format: str = ""
    synthetic: bool = False
    dropped: dict[str, int] = field(default_factory=dict)
    ids: np.ndarray | None = None
    _fingerprint: str | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        # Validate once here, so every later step can trust shapes and dtypes.
        self.images = np.asarray(self.images)
        self.labels = np.asarray(self.labels)
        self.usage = np.asarray(self.usage).astype(str)
        n = len(self.images)
        if self.images.dtype != np.uint8 or self.images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise DataError(
                f"{self.source or 'FER2013'}: images must be (N, 48, 48) uint8, "
                f"got {self.images.shape} {self.images.dtype}"
            )
        if self.labels.shape != (n,) or self.usage.shape != (n,):
            raise DataError(
                f"{self.source or 'FER2013'}: {n} images but labels {self.labels.shape} and "
                f"usage {self.usage.shape}"
            )
        self.labels = self.labels.astype(np.int64, copy=False)
        if n and (self.labels.min() < 0 or self.labels.max() >= NUM_CLASSES):
            bad = self.labels[(self.labels < 0) | (self.labels >= NUM_CLASSES)][0]
            raise DataError(f"{self.source or 'FER2013'}: label {bad} is outside 0-6")
        unknown = sorted(set(np.unique(self.usage).tolist()) - set(USAGES))
        if unknown:
            raise DataError(
                f"{self.source or 'FER2013'}: unknown Usage {unknown[0]!r}; "
                f"expected one of {', '.join(USAGES)}"
            )
        if self.ids is not None:
            self.ids = np.asarray(self.ids).astype(str)
            if self.ids.shape != (n,):
                raise DataError(f"{self.source}: {n} images but ids {self.ids.shape}")
        self.dropped = {str(k): int(v) for k, v in dict(self.dropped).items()}

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        counts = ", ".join(f"{u}={int((self.usage == u).sum())}" for u in USAGES)
        parts = [f"{len(self)} faces ({counts})", f"format={self.format!r}"]
        parts.append("synthetic=True (procedural stand-in, not FER2013)" if self.synthetic else "")
        if self.dropped:
            parts.append(f"dropped={self.dropped}")
        parts.append(f"source={self.source!r}")
        return "FER2013(" + ", ".join(p for p in parts if p) + ")"

    def select(self, indices: Sequence[int] | np.ndarray) -> FER2013:
        """A new dataset holding the rows ``indices`` (in that order); provenance is kept.

        Args:
            indices: integer indices or a boolean mask.
        """
        idx = np.asarray(indices)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return FER2013(
            images=self.images[idx],
            labels=self.labels[idx],
            usage=self.usage[idx],
            source=self.source,
            format=self.format,
            synthetic=self.synthetic,
            dropped=dict(self.dropped),
            ids=None if self.ids is None else self.ids[idx],
        )

    def where(self, usage: str | Iterable[str]) -> FER2013:
        """The rows whose Usage is ``usage`` (one name or several).

        Example:
            >>> test = ds.where("PrivateTest")  # doctest: +SKIP
        """
        wanted = [usage] if isinstance(usage, str) else list(usage)
        unknown = [u for u in wanted if u not in USAGES]
        if unknown:
            raise DataError(f"unknown Usage {unknown[0]!r}; expected one of {', '.join(USAGES)}")
        return self.select(np.isin(self.usage, wanted))

    def class_counts(self, by_usage: bool = False) -> pd.Series | pd.DataFrame:
        """Images per class, in code order (index: emotion names).

        Args:
            by_usage: return a DataFrame with one column per Usage (plus ``"all"``).
        """
        counts = pd.Series(
            np.bincount(self.labels, minlength=NUM_CLASSES), index=list(EMOTIONS), name="count"
        )
        if not by_usage:
            return counts
        table = {
            u: np.bincount(self.labels[self.usage == u], minlength=NUM_CLASSES) for u in USAGES
        }
        frame = pd.DataFrame(table, index=list(EMOTIONS))
        frame["all"] = counts
        return frame

    def usage_counts(self) -> dict[str, int]:
        """Images per Usage, e.g. ``{"Training": 28709, "PublicTest": 3589, "PrivateTest": 3589}``."""
        return {u: int((self.usage == u).sum()) for u in USAGES}

    def info(self) -> dict[str, str | bool]:
        """Where the data came from: ``source``, ``format`` and ``synthetic``.

        Stored with every checkpoint and result, so a run on the synthetic faces is never
        mistaken for one on FER2013.
        """
        return {"source": str(self.source), "format": str(self.format), "synthetic": self.synthetic}

    def fingerprint(self) -> str:
        """sha256 of the images, labels and usages: two datasets with equal content match.

        Split files record it, so a split made for another dataset is refused.
        """
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(np.ascontiguousarray(self.images).tobytes())
            h.update(self.labels.astype("<i8").tobytes())
            h.update("\n".join(self.usage.tolist()).encode())
            self._fingerprint = h.hexdigest()
        return self._fingerprint


def image_hashes(images: np.ndarray) -> np.ndarray:
    """A 16-byte blake2b hash (hex) of each image's pixels: equal hashes, equal images."""
    return np.array(
        [hashlib.blake2b(im.tobytes(), digest_size=16).hexdigest() for im in images], dtype="U32"
    )
