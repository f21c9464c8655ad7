"""The data report: class balance, duplicates, blank images and what was dropped.

FER2013 is known to be noisy: about 1,800 exact duplicate images (some shared between Training
and the test sets, some with two different labels), a dozen blank images and a 16:1 class
imbalance. :func:`data_report` counts all of it for any :class:`~fercourse.data.FER2013`, so a
student sees the problems before training on them. Introduced in ``notebooks/01_data.ipynb``;
``python -m fercourse data report [PATH]`` prints the same report.

Definitions:

- **exact duplicates**: images with identical pixels (blake2b hash of the 2,304 bytes). Within a
  part, ``extra copies`` counts the images beyond the first of each group; across parts, an image
  of one part whose exact copy is in another (a leak from Training into a test set).
- **mirrored duplicates**: images whose left-right mirror is another image's exact copy.
- **conflicting labels**: groups of identical images that carry more than one label.
- **blank** images have one grey level (std 0); **near-constant** images have a pixel standard
  deviation below :data:`NEAR_CONSTANT_STD` grey levels (no face can be seen).
- **copies of one file**: for image folders, files whose names mark them as copies of one
  FER2013 image (``Training_123.jpg`` and ``Training_123.jpg3.jpg``); the Kaggle "augmented"
  copies are rotated and zoomed, so pixel hashes cannot match them, but their names can.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..labels import EMOJI, EMOTIONS, NUM_CLASSES
from .dataset import FER2013, USAGES, image_hashes

NEAR_CONSTANT_STD: float = 10.0
"""Pixel standard deviation (0-255 scale) below which an image counts as near-constant.
FER2013's real faces have a standard deviation of 40 or more; its blank images have 0."""

_COPY_SUFFIX = re.compile(r"(\.[A-Za-z]+)\d+\.[A-Za-z]+$")


def pixel_std(images: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Each image's pixel standard deviation (grey levels), in float32 chunks (fast, small)."""
    flat = images.reshape(len(images), -1)
    out = np.empty(len(images), np.float32)
    for start in range(0, len(images), chunk):
        block = flat[start : start + chunk].astype(np.float32)
        out[start : start + chunk] = block.std(axis=1)
    return out


@dataclass
class DataReport:
    """What :func:`data_report` found. Render it with ``print(report)``, ``report.to_markdown()``
    (notebooks show it as Markdown), ``report.to_frame()``, and ``fc.explain.plot_class_balance(report)`` draws it.

    Introduced in ``notebooks/01_data.ipynb``.

    Attributes:
        source, format, synthetic: where the data came from (synthetic data says so everywhere).
        counts: images per class (rows, code order) and part (columns), with an ``all`` column.
        imbalance_ratio: largest over smallest class count in the training part.
        duplicates_within: extra exact copies inside each part.
        duplicate_groups_within: groups of identical images inside each part.
        duplicates_across: for each pair of parts, images of the second found in the first.
        duplicate_groups: index arrays of every group of identical images (all parts together).
        conflicting_labels: groups of identical images with more than one label.
        mirrored_duplicates: images whose mirror image is in the dataset.
        blank: indices of single-grey-level images.
        near_constant: indices of images with std below ``near_constant_std`` (blank included).
        copies_of_one_file: images beyond the first that name the same original file.
        dropped: what the loader left out on purpose (e.g. augmented copies, FERPlus non-faces).
    """

    source: str
    format: str
    synthetic: bool
    n_images: int
    counts: pd.DataFrame
    imbalance_ratio: float
    duplicates_within: dict[str, int]
    duplicate_groups_within: dict[str, int]
    duplicates_across: dict[str, int]
    duplicate_groups: list[np.ndarray] = field(repr=False)
    conflicting_labels: int
    mirrored_duplicates: int
    blank: np.ndarray = field(repr=False)
    near_constant: np.ndarray = field(repr=False)
    near_constant_std: float
    copies_of_one_file: int
    dropped: dict[str, int]

    @property
    def parts(self) -> list[str]:
        return [c for c in self.counts.columns if c != "all"]

    def duplicate_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Each extra copy of an image next to its first copy: ``(first, copy)`` index arrays.

        FER2013 labelled some identical images twice; ``fc.data.label_agreement(
        labels[copy], labels[first])`` measures how often the dataset agrees with itself.
        """
        pairs = [(int(g[0]), int(c)) for g in self.duplicate_groups for c in g[1:]]
        if not pairs:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        first, copy = np.array(pairs, dtype=np.int64).T
        return first, copy

    def to_frame(self) -> pd.DataFrame:
        """Class counts per part with each class's share of the total (for notebooks)."""
        frame = self.counts.copy()
        frame.index = [f"{name} {EMOJI[name]}" for name in self.counts.index]
        frame["share %"] = (100 * frame["all"] / max(1, frame["all"].sum())).round(1)
        return frame

    def issues_frame(self) -> pd.DataFrame:
        """One row per part: images, extra duplicate copies, blank and near-constant images."""
        rows = {}
        for part in self.parts:
            rows[part] = {
                "images": int(self.counts[part].sum()),
                "duplicate copies": self.duplicates_within.get(part, 0),
                "duplicate groups": self.duplicate_groups_within.get(part, 0),
            }
        return pd.DataFrame(rows).T

    def to_dict(self) -> dict[str, Any]:
        """Plain numbers for JSON (indices left out)."""
        return {
            "source": self.source,
            "format": self.format,
            "synthetic": self.synthetic,
            "n_images": self.n_images,
            "counts": {c: self.counts[c].to_dict() for c in self.counts.columns},
            "imbalance_ratio": self.imbalance_ratio,
            "duplicates_within": self.duplicates_within,
            "duplicate_groups_within": self.duplicate_groups_within,
            "duplicates_across": self.duplicates_across,
            "duplicate_groups": len(self.duplicate_groups),
            "conflicting_labels": self.conflicting_labels,
            "mirrored_duplicates": self.mirrored_duplicates,
            "blank": len(self.blank),
            "near_constant": len(self.near_constant),
            "near_constant_std": self.near_constant_std,
            "copies_of_one_file": self.copies_of_one_file,
            "dropped": self.dropped,
        }

    def _headline(self) -> str:
        if self.synthetic:
            return "SYNTHETIC stand-in (procedural faces, not FER2013)"
        return "FER2013"

    def to_markdown(self) -> str:
        """The report as Markdown (what a notebook displays)."""
        train = self.parts[0]
        lines = [
            f"### Data report: {self._headline()}",
            "",
            f"- source: `{self.source}` (format `{self.format}`"
            + (", **synthetic**)" if self.synthetic else ")"),
            f"- images: {self.n_images:,} ("
            + ", ".join(f"{p} {int(self.counts[p].sum()):,}" for p in self.parts)
            + ")",
            f"- class imbalance ({train}): {self._imbalance_text()}",
            "",
            _plain_table(self.to_frame()),
            "",
            "- exact duplicates within parts: "
            + ", ".join(
                f"{p} {self.duplicates_within[p]:,} extra copies "
                f"({self.duplicate_groups_within[p]:,} groups)"
                for p in self.parts
            ),
            "- exact duplicates across parts: "
            + ", ".join(f"{k} {v:,}" for k, v in self.duplicates_across.items()),
            f"- identical images with conflicting labels: {self.conflicting_labels:,} groups",
            f"- mirrored duplicates: {self.mirrored_duplicates:,}",
            f"- blank images (one grey level): {len(self.blank):,}; near-constant "
            f"(std < {self.near_constant_std:g}): {len(self.near_constant):,}",
        ]
        if self.copies_of_one_file:
            lines.append(
                f"- files that are copies of another file (by name): {self.copies_of_one_file:,}"
            )
        dropped = ", ".join(f"{k}: {v:,}" for k, v in self.dropped.items()) or "nothing"
        lines.append(f"- dropped on purpose by the loader: {dropped}")
        return "\n".join(lines)

    def _imbalance_text(self) -> str:
        counts = self.counts[self.parts[0]]
        big, small = counts.idxmax(), counts.idxmin()
        return (
            f"{big} {int(counts[big]):,} vs {small} {int(counts[small]):,} = "
            f"{self.imbalance_ratio:.1f}x"
        )

    def __str__(self) -> str:
        text = self.to_markdown().replace("### ", "").replace("`", "").replace("**", "")
        return text

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


def _plain_table(frame: pd.DataFrame) -> str:
    header = "| class | " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|---" * (len(frame.columns) + 1) + "|"
    rows = [
        f"| {idx} | " + " | ".join(f"{v:g}" if isinstance(v, float) else f"{v}" for v in row) + " |"
        for idx, row in zip(frame.index, frame.to_numpy().tolist())
    ]
    return "\n".join([header, rule, *rows])


def _parts(ds: FER2013, split) -> dict[str, np.ndarray]:
    if split is None:
        return {u: np.flatnonzero(ds.usage == u) for u in USAGES}
    from .splits import PARTS, check_split

    check_split(split, ds)
    return {p: split[p] for p in PARTS}


def _duplicates(ds: FER2013, parts: dict[str, np.ndarray], hashes: np.ndarray) -> tuple:
    """Groups of identical images; extra copies within each part and across parts; how many
    groups carry more than one label."""
    part_of = np.full(len(ds), "", dtype=object)
    for name, idx in parts.items():
        part_of[idx] = name
    groups: dict[str, list[int]] = defaultdict(list)
    for i, h in enumerate(hashes.tolist()):
        groups[h].append(i)
    dup_groups = [np.array(v) for v in groups.values() if len(v) > 1]

    within = {p: 0 for p in parts}
    within_groups = {p: 0 for p in parts}
    names = list(parts)
    across = {f"{a} & {b}": 0 for i, a in enumerate(names) for b in names[i + 1 :]}
    conflicting = 0
    for members in dup_groups:
        member_parts = part_of[members]
        present = [p for p in names if (member_parts == p).any()]
        for p in present:
            n_in = int((member_parts == p).sum())
            if n_in > 1:
                within[p] += n_in - 1
                within_groups[p] += 1
        for i, a in enumerate(present):
            for b in present[i + 1 :]:
                across[f"{a} & {b}"] += int((member_parts == b).sum())
        if len(np.unique(ds.labels[members])) > 1:
            conflicting += 1
    return dup_groups, within, within_groups, across, conflicting


def data_report(
    ds: FER2013, split=None, *, near_constant_std: float = NEAR_CONSTANT_STD
) -> DataReport:
    """Count FER2013's known problems: imbalance, duplicates, blank images, dropped rows.

    Introduced in ``notebooks/01_data.ipynb``.

    Args:
        ds: the dataset.
        split: optional :class:`~fercourse.data.Split`; parts are then train/val/public_test/
            private_test instead of the three Usages.
        near_constant_std: threshold for near-constant images (0-255 grey levels).

    Returns:
        A :class:`DataReport`.

    Example:
        >>> import fercourse as fc
        >>> report = fc.data.data_report(fc.data.make_synthetic_faces(n=300))
        >>> report.synthetic, len(report.blank)
        (True, 0)
    """
    parts = _parts(ds, split)
    counts = pd.DataFrame(
        {p: np.bincount(ds.labels[idx], minlength=NUM_CLASSES) for p, idx in parts.items()},
        index=list(EMOTIONS),
    )
    counts["all"] = counts.sum(axis=1)
    first = counts[next(iter(parts))]
    imbalance = float(first.max() / first.min()) if first.min() > 0 else float("inf")

    hashes = image_hashes(ds.images)
    dup_groups, within, within_groups, across, conflicting = _duplicates(ds, parts, hashes)

    # A mirror duplicate: the flipped image's hash is another image's hash (not a symmetric self).
    flipped = image_hashes(ds.images[:, :, ::-1])
    hash_set = set(hashes.tolist())
    mirrored = sum(1 for h, f in zip(hashes.tolist(), flipped.tolist()) if f != h and f in hash_set)

    std = pixel_std(ds.images)
    blank = np.flatnonzero(std == 0)
    near_constant = np.flatnonzero(std < near_constant_std)

    copies = 0
    if ds.ids is not None:
        # Same folder and same original name: two different faces that merely share a name in
        # two class folders (the Kaggle export has two such pairs) are not copies.
        originals = [_COPY_SUFFIX.sub(r"\1", i) for i in ds.ids.tolist()]
        copies = len(originals) - len(set(originals))

    return DataReport(
        source=ds.source,
        format=ds.format,
        synthetic=ds.synthetic,
        n_images=len(ds),
        counts=counts,
        imbalance_ratio=imbalance,
        duplicates_within=within,
        duplicate_groups_within=within_groups,
        duplicates_across=across,
        duplicate_groups=dup_groups,
        conflicting_labels=conflicting,
        mirrored_duplicates=mirrored,
        blank=blank,
        near_constant=near_constant,
        near_constant_std=near_constant_std,
        copies_of_one_file=copies,
        dropped=dict(ds.dropped),
    )
