"""The official FER2013 splits plus one validation split, saved once and reused by every model.

FER2013's ``Usage`` column gives three official parts: Training (28,709), PublicTest (3,589)
and PrivateTest (3,589). The course carves a validation split out of Training (stratified by
class, seeded) for model selection and early stopping, and reports PrivateTest:

=================  ================================  ===============================
part               from                              used for
=================  ================================  ===============================
``train``          Training minus ``val``            fitting
``val``            10% of Training, stratified       model selection, early stopping
``public_test``    PublicTest                        optional second model selection
``private_test``   PrivateTest                       the reported test (touch once)
=================  ================================  ===============================

:func:`make_split` writes the indices to a JSON file together with the seed, the fraction and
the dataset's fingerprint; the next call (from any notebook, any model) reads the same file, and
a split file made for another dataset is refused. ``Split.hash`` is stored with every checkpoint
and result: a sha256 of what defines the split (the dataset's fingerprint, seed, fraction and the
index lists), not of the file's bytes, so the same split made on two machines (where the data sit
under different paths, which the file records) has the same hash.

FER2013's Training part holds about 1,000 groups of identical images, so a plain random cut
leaves ~200 val images with an exact copy in train. ``make_split(..., group_duplicates=True)``
keeps every group on one side (its own file, ``...-grouped.json``). Introduced in
``notebooks/01_data.ipynb``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from ..labels import EMOTIONS, NUM_CLASSES
from ..utils import atomic_write_bytes, data_dir
from .cache import make_readable
from .dataset import FER2013, DataError, image_hashes

logger = logging.getLogger(__name__)

PARTS: tuple[str, ...] = ("train", "val", "public_test", "private_test")
SPLIT_FORMAT = "fercourse-split"
SPLIT_VERSION = 1


class SplitError(DataError):
    """A split file that does not belong to this dataset or these settings."""


@dataclass(frozen=True, eq=False)
class Split:
    """Index arrays into one :class:`~fercourse.data.FER2013` for each part of the data.

    Introduced in ``notebooks/01_data.ipynb``.

    Attributes:
        train, val, public_test, private_test: sorted int64 indices into the dataset.
        path: the split file.
        hash: sha256 of the split's content (fingerprint, seed, fraction, grouping and the index
            lists), the same on every machine; recorded with checkpoints and results.
        seed, val_fraction: how ``val`` was drawn.
        fingerprint: the dataset's :meth:`~fercourse.data.FER2013.fingerprint`.
    """

    train: np.ndarray
    val: np.ndarray
    public_test: np.ndarray
    private_test: np.ndarray
    path: Path
    hash: str
    seed: int
    val_fraction: float
    fingerprint: str

    def matches(self, recorded: str) -> bool:
        """Whether a hash recorded with a checkpoint or result names this split."""
        return bool(recorded) and recorded == self.hash

    def __getitem__(self, part: str) -> np.ndarray:
        """``split["val"]``; also accepts the Usage names ``"PublicTest"``, ``"PrivateTest"``."""
        key = {"PublicTest": "public_test", "PrivateTest": "private_test"}.get(part, part)
        if key not in PARTS:
            raise KeyError(f"unknown split part {part!r}; expected one of {', '.join(PARTS)}")
        return getattr(self, key)

    def sizes(self) -> dict[str, int]:
        """Images per part."""
        return {part: len(self[part]) for part in PARTS}

    def class_counts(self, ds: FER2013) -> pd.DataFrame:
        """Images per class (rows, code order) and part (columns) of ``ds``."""
        check_split(self, ds)
        table = {p: np.bincount(ds.labels[self[p]], minlength=NUM_CLASSES) for p in PARTS}
        return pd.DataFrame(table, index=list(EMOTIONS))

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={v}" for k, v in self.sizes().items())
        return (
            f"Split({sizes}, seed={self.seed}, val_fraction={self.val_fraction}, "
            f"hash={self.hash[:12]}..., path='{self.path}')"
        )


def default_split_path(
    ds: FER2013, val_fraction: float = 0.1, seed: int = 0, *, group_duplicates: bool = False
) -> Path:
    """``data_dir()/splits/<fingerprint[:16]>-val10-seed0.json`` (``-grouped`` if asked)."""
    name = f"{ds.fingerprint()[:16]}-val{val_fraction * 100:g}-seed{seed}"
    return data_dir() / "splits" / f"{name}{'-grouped' if group_duplicates else ''}.json"


def check_split(split: Split, ds: FER2013) -> None:
    """Raise :class:`SplitError` unless ``split`` was made for ``ds``."""
    if split.fingerprint != ds.fingerprint():
        raise SplitError(
            f"the split {split.path} was made for another dataset (fingerprint "
            f"{split.fingerprint[:16]}), not {ds.source} ({ds.fingerprint()[:16]}); "
            "call fc.data.make_split(data) for this one"
        )


def _stratified_val(indices: np.ndarray, labels: np.ndarray, fraction: float, seed: int):
    """(train, val, stratified?) for the Training ``indices``."""
    if fraction <= 0 or len(indices) == 0:
        return indices, indices[:0], False
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    if counts[counts > 0].min() >= 2:
        try:
            train, val = train_test_split(
                indices, test_size=fraction, stratify=labels, random_state=seed, shuffle=True
            )
            return np.sort(train), np.sort(val), True
        except ValueError:
            pass  # sklearn needs at least one val image per class
    # Only tiny subsets get here (FER2013 always stratifies).
    logger.warning("too few Training images per class to stratify the validation split")
    train, val = train_test_split(indices, test_size=fraction, random_state=seed, shuffle=True)
    return np.sort(train), np.sort(val), False


def _grouped_val(ds: FER2013, training: np.ndarray, fraction: float, seed: int):
    """Like :func:`_stratified_val`, drawing whole groups of identical images."""
    _, first, group = np.unique(
        image_hashes(ds.images[training]), return_inverse=True, return_index=True
    )
    # Stratify the groups by their first image's label, then expand each group.
    reps = np.arange(len(first))
    _, rep_val, stratified = _stratified_val(reps, ds.labels[training][first], fraction, seed)
    in_val = np.isin(group, rep_val)
    return np.sort(training[~in_val]), np.sort(training[in_val]), stratified


def _to_file_text(record: dict) -> str:
    # Metadata indented for reading, each index list on one line (a 35,887-line file otherwise).
    lists = {p: record.pop(p) for p in PARTS}
    text = json.dumps(record, indent=2)[:-2]
    for part, values in lists.items():
        text += f',\n  "{part}": {json.dumps(values)}'
    return text + "\n}\n"


def _load(path: Path, ds: FER2013, val_fraction: float, seed: int, group_duplicates: bool) -> Split:
    raw = path.read_bytes()
    try:
        record = json.loads(raw)
    except json.JSONDecodeError as err:
        raise SplitError(f"{path}: not a split file ({err})") from None
    if record.get("format") != SPLIT_FORMAT:
        raise SplitError(f"{path}: not a fercourse split file")
    fingerprint = record["dataset"]["fingerprint"]
    if fingerprint != ds.fingerprint():
        raise SplitError(
            f"{path} was made for another dataset ({record['dataset'].get('source')}, "
            f"{record['dataset'].get('n')} images, fingerprint {fingerprint[:16]}), not "
            f"{ds.source} ({len(ds)} images, fingerprint {ds.fingerprint()[:16]}); "
            "delete it or pass another path"
        )
    if record["seed"] != seed or not np.isclose(record["val_fraction"], val_fraction):
        raise SplitError(
            f"{path} holds a split with seed={record['seed']}, val_fraction="
            f"{record['val_fraction']}, not seed={seed}, val_fraction={val_fraction}; "
            "pass another path (or path=None for the default name of these settings)"
        )
    if bool(record.get("group_duplicates", False)) != group_duplicates:
        raise SplitError(
            f"{path} was made with group_duplicates={record.get('group_duplicates', False)}, "
            f"not {group_duplicates}; pass another path"
        )
    parts = {p: np.asarray(record[p], dtype=np.int64) for p in PARTS}
    _validate(parts, ds, path)
    return Split(
        **parts,
        path=path,
        hash=_content_hash(fingerprint, seed, float(val_fraction), group_duplicates, parts),
        seed=seed,
        val_fraction=float(val_fraction),
        fingerprint=fingerprint,
    )


def _content_hash(
    fingerprint: str,
    seed: int,
    val_fraction: float,
    group_duplicates: bool,
    parts: dict[str, np.ndarray],
) -> str:
    """sha256 of what defines a split, independent of where its file or the data live."""
    digest = hashlib.sha256()
    settings = {
        "format": SPLIT_FORMAT,
        "version": SPLIT_VERSION,
        "fingerprint": fingerprint,
        "seed": int(seed),
        "val_fraction": round(val_fraction, 12),
        "group_duplicates": bool(group_duplicates),
    }
    digest.update(json.dumps(settings, sort_keys=True).encode("utf-8"))
    for part in PARTS:
        digest.update(f"\n{part}:".encode())
        digest.update(np.ascontiguousarray(parts[part], dtype="<i8").tobytes())
    return digest.hexdigest()


def _validate(parts: dict[str, np.ndarray], ds: FER2013, path: Path) -> None:
    expected = {"train": "Training", "val": "Training"}
    expected.update(public_test="PublicTest", private_test="PrivateTest")
    seen = np.zeros(len(ds), bool)
    for part, idx in parts.items():
        if len(idx) and (idx.min() < 0 or idx.max() >= len(ds)):
            raise SplitError(f"{path}: {part} holds an index outside 0-{len(ds) - 1}")
        if seen[idx].any() or len(np.unique(idx)) != len(idx):
            raise SplitError(f"{path}: {part} overlaps another part or repeats an index")
        seen[idx] = True
        wrong = ds.usage[idx] != expected[part]
        if wrong.any():
            raise SplitError(
                f"{path}: {part} index {idx[wrong][0]} is a {ds.usage[idx[wrong][0]]} image"
            )


def make_split(
    ds: FER2013,
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    path: str | Path | None = None,
    group_duplicates: bool = False,
) -> Split:
    """The official parts plus a stratified, seeded validation split, saved once and reused.

    Introduced in ``notebooks/01_data.ipynb``.

    Args:
        ds: the dataset the indices point into.
        val_fraction: share of Training held out as ``val`` (0 for none).
        seed: random seed of the validation draw.
        path: the split file; default ``data_dir()/splits/<fingerprint>-val10-seed0.json``.
            If it exists it is read (and checked against ``ds``), else it is written.
        group_duplicates: keep exact duplicate images on the same side of the train/val cut.
            FER2013's Training holds ~1,000 groups of identical images; a plain random cut
            puts ~200 val images next to their copy in train, which flatters val accuracy.
            (The file name gets ``-grouped``.)

    Returns:
        A :class:`Split`.

    Raises:
        SplitError: the file at ``path`` was made for another dataset or other settings.

    Example:
        >>> import fercourse as fc
        >>> data = fc.data.load_fer2013()  # doctest: +SKIP
        >>> split = fc.data.make_split(data)  # doctest: +SKIP
        >>> split.sizes()  # doctest: +SKIP
        {'train': 25838, 'val': 2871, 'public_test': 3589, 'private_test': 3589}
    """
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if path is None:
        path = default_split_path(ds, val_fraction, seed, group_duplicates=group_duplicates)
    path = Path(path)
    if path.is_file():
        return _load(path, ds, val_fraction, seed, group_duplicates)
    training = np.flatnonzero(ds.usage == "Training")
    if group_duplicates:
        train, val, stratified = _grouped_val(ds, training, val_fraction, seed)
    else:
        train, val, stratified = _stratified_val(training, ds.labels[training], val_fraction, seed)
    record = {
        "format": SPLIT_FORMAT,
        "version": SPLIT_VERSION,
        "dataset": {
            "fingerprint": ds.fingerprint(),
            "n": len(ds),
            "source": ds.source,
            "format": ds.format,
            "synthetic": ds.synthetic,
        },
        "seed": seed,
        "val_fraction": val_fraction,
        "stratified": stratified,
        "group_duplicates": group_duplicates,
        "sizes": {},
        "train": train.tolist(),
        "val": val.tolist(),
        "public_test": np.flatnonzero(ds.usage == "PublicTest").tolist(),
        "private_test": np.flatnonzero(ds.usage == "PrivateTest").tolist(),
    }
    record["sizes"] = {p: len(record[p]) for p in PARTS}
    atomic_write_bytes(path, _to_file_text(record).encode("utf-8"))
    make_readable(path)
    logger.info("wrote the split %s", path)
    return _load(path, ds, val_fraction, seed, group_duplicates)
