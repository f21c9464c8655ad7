"""Test helpers for the data room: small synthetic faces written in every FER2013 format.

The writers here are deliberately independent of fercourse's own readers and writers (plain
pandas, csv and cv2 calls), so a format test compares fercourse against the format itself, not
against a mirror image of its own code. Expensive results are memoised for the whole session.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

import fercourse as fc

FOLDER_NAMES = {"Training": "train", "PublicTest": "test", "PrivateTest": "test"}


@functools.cache
def synthetic(n: int = 240, seed: int = 1):
    """Memoised synthetic faces (treat as read-only; use ``.select`` to change anything)."""
    return fc.data.make_synthetic_faces(n=n, seed=seed)


def pixel_strings(images: np.ndarray) -> list[str]:
    return [" ".join(map(str, im.ravel().tolist())) for im in images]


def write_fer2013_csv(ds, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {"emotion": ds.labels, "pixels": pixel_strings(ds.images), "Usage": ds.usage}
    ).to_csv(path, index=False)
    return path


def write_icml_csv(ds, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("emotion, Usage, pixels\n")
        for label, usage, pixels in zip(ds.labels, ds.usage, pixel_strings(ds.images)):
            fh.write(f"{label},{usage},{pixels}\n")
    return path


def write_competition(ds, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    train = ds.usage == "Training"
    pd.DataFrame({"emotion": ds.labels[train], "pixels": pixel_strings(ds.images[train])}).to_csv(
        folder / "train.csv", index=False
    )
    pd.DataFrame({"pixels": pixel_strings(ds.images[~train])}).to_csv(
        folder / "test.csv", index=False
    )
    return folder


def write_image_folders(
    ds,
    root: Path,
    *,
    layout: str = "kaggle",
    prefixes: bool = True,
    ext: str = ".png",
    augmented_every: int = 0,
    jpeg_quality: int = 95,
) -> Path:
    """Write ``ds`` as image folders.

    Args:
        layout: ``"kaggle"`` (train/ and test/) or ``"three"`` (train/, validation/, test/, with
            files shuffled into the wrong folders: names must win).
        prefixes: name files ``<Usage>_<row>`` (else ``im<row>``).
        ext: ``.png`` (lossless) or ``.jpg``.
        augmented_every: also write a flipped ``<name>.jpg<k>.jpg`` copy of every k-th image.
    """
    rng = np.random.default_rng(0)
    three = ["train", "validation", "test"]
    for i, (image, label, usage) in enumerate(zip(ds.images, ds.labels, ds.usage)):
        if layout == "kaggle":
            split = FOLDER_NAMES[usage]
        else:
            split = three[rng.integers(3)]  # deliberately not the official split
        folder = root / split / fc.EMOTIONS[label]
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{usage}_{i}" if prefixes else f"im{i}"
        params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if ext == ".jpg" else []
        ok, data = cv2.imencode(ext, image, params)
        assert ok
        (folder / f"{name}{ext}").write_bytes(data.tobytes())
        if augmented_every and i % augmented_every == 0:
            _, copy = cv2.imencode(".png", np.ascontiguousarray(image[:, ::-1]))
            # The Kaggle export's copies are JPEG files named <name>.jpg<k>.jpg.
            (folder / f"{name}{ext}3{ext}").write_bytes(copy.tobytes())
    return root


def votes_for(labels: np.ndarray, seed: int = 0) -> tuple[np.ndarray, dict[str, int]]:
    """FERPlus-style votes (N, 10) agreeing with ``labels``, with planted drop cases.

    Returns:
        (votes, expected dropped counts by FERPlus column name or "none").
    """
    rng = np.random.default_rng(seed)
    to_column = {
        "neutral": 0,
        "happy": 1,
        "surprise": 2,
        "sad": 3,
        "angry": 4,
        "disgust": 5,
        "fear": 6,
    }
    votes = np.zeros((len(labels), 10), np.int64)
    for i, label in enumerate(labels):
        votes[i, to_column[fc.EMOTIONS[label]]] = 7
        votes[i, rng.integers(10)] += 1  # a single stray vote: an outlier FERPlus discards
        votes[i, (to_column[fc.EMOTIONS[label]] + 1) % 7] += 2
    planted = {"NF": [3, 11], "unknown": [5], "contempt": [7, 8, 9]}
    for name, rows in planted.items():
        column = {"contempt": 7, "unknown": 8, "NF": 9}[name]
        for r in rows:
            votes[r] = 0
            votes[r, column] = 10
    votes[13] = [4, 4, 2, 0, 0, 0, 0, 0, 0, 0]  # no majority
    expected = {name: len(rows) for name, rows in planted.items()} | {"none": 1}
    return votes, expected


def write_ferplus(ds, path: Path, votes: np.ndarray) -> Path:
    columns = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear"]
    columns += ["contempt", "unknown", "NF"]
    table = pd.DataFrame(votes, columns=columns)
    table.insert(0, "Image name", [f"fer{i:07d}.png" for i in range(len(ds))])
    table.insert(0, "Usage", ds.usage)
    table.to_csv(path, index=False)
    return path
