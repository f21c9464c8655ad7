"""FERPlus relabels: ten crowd votes per FER2013 image, turned into majority-vote labels.

Microsoft's FERPlus (``fer2013new.csv``, https://github.com/microsoft/FERPlus) re-labelled every
FER2013 image with 10 votes over ``neutral, happiness, surprise, sadness, anger, disgust, fear,
contempt, unknown, NF`` (NF: not a face), in the same row order as ``fer2013.csv``. FERPlus's
"majority" mode, reproduced here:

1. votes of 1 are discarded as outliers (as in FERPlus's own loader);
2. the winning class needs more than half of the remaining votes, else there is no majority;
3. rows whose winner is ``unknown`` or ``NF``, ``contempt`` (no FER2013 class) or that have no
   majority are dropped, and each reason is counted in ``dataset.dropped``.

Introduced in ``notebooks/01_data.ipynb``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..labels import EMOTIONS, emotion_index
from ..utils import data_dir
from .dataset import FER2013, USAGES, DataError

FERPLUS_FILENAME = "fer2013new.csv"

FERPLUS_VOTE_COLUMNS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)
FERPLUS_TO_FER: dict[str, str] = {
    "neutral": "neutral",
    "happiness": "happy",
    "surprise": "surprise",
    "sadness": "sad",
    "anger": "angry",
    "disgust": "disgust",
    "fear": "fear",
}
"""FERPlus vote column -> FER2013 emotion name (contempt, unknown and NF have none)."""

DROP_REASONS: dict[str, str] = {
    "NF": "ferplus: not a face",
    "unknown": "ferplus: unknown",
    "contempt": "ferplus: contempt (no FER2013 class)",
    "none": "ferplus: no majority",
}


def read_ferplus_votes(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read ``fer2013new.csv``.

    Returns:
        (votes (N, 10) int64 in :data:`FERPLUS_VOTE_COLUMNS` order, usage (N,) str).

    Raises:
        DataError: a missing column or a bad vote, naming the line and value.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such FERPlus file (fer2013new.csv)")
    table = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    table.columns = [c.strip() for c in table.columns]
    for column in ("Usage", *FERPLUS_VOTE_COLUMNS):
        if column not in table.columns:
            raise DataError(
                f"{path}: missing column {column!r}; found {list(table.columns)} "
                "(FERPlus fer2013new.csv: Usage,Image name,neutral,...,unknown,NF)"
            )
    votes = table[list(FERPLUS_VOTE_COLUMNS)].apply(lambda c: pd.to_numeric(c, errors="coerce"))
    bad = votes.isna().to_numpy() | (votes.to_numpy() < 0)
    if bad.any():
        row, col = (int(v[0]) for v in np.nonzero(bad))
        value = table[FERPLUS_VOTE_COLUMNS[col]].iloc[row]
        raise DataError(
            f"{path}, line {row + 2}: vote {FERPLUS_VOTE_COLUMNS[col]}={value!r} is not a "
            "non-negative number"
        )
    usage = table["Usage"].str.strip().to_numpy().astype(str)
    unknown = ~np.isin(usage, USAGES)
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise DataError(f"{path}, line {row + 2}: unknown Usage {table['Usage'].iloc[row]!r}")
    return votes.to_numpy().astype(np.int64), usage


def majority_vote(votes: np.ndarray) -> np.ndarray:
    """FERPlus majority labels: a vote column index per row, or -1 when there is no majority.

    Args:
        votes: (N, 10) vote counts in :data:`FERPLUS_VOTE_COLUMNS` order.

    Example:
        >>> majority_vote(np.array([[6, 3, 1, 0, 0, 0, 0, 0, 0, 0], [4, 4, 2, 0, 0, 0, 0, 0, 0, 0]]))
        array([ 0, -1])
    """
    kept = np.where(votes > 1, votes, 0)  # single votes are outliers in FERPlus's loader
    total = kept.sum(axis=1)
    winner = kept.argmax(axis=1)
    has_majority = kept.max(axis=1) * 2 > total
    return np.where(has_majority & (total > 0), winner, -1)


def ferplus_labels(votes: np.ndarray) -> np.ndarray:
    """FERPlus majority labels as FER2013 codes: -1 where no FER2013 emotion wins.

    Introduced in ``notebooks/01_data.ipynb``.

    Args:
        votes: (N, 10) vote counts in :data:`FERPLUS_VOTE_COLUMNS` order.

    Returns:
        (N,) int64 codes in FER2013 order (``fc.EMOTIONS``), -1 for no majority, contempt,
        unknown or not a face.

    Example:
        >>> ferplus_labels(np.array([[6, 3, 1, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0, 0, 10]]))
        array([ 6, -1])
    """
    winner = majority_vote(votes)
    codes = np.full(len(winner), -1, dtype=np.int64)
    for col, name in enumerate(FERPLUS_VOTE_COLUMNS):
        if name in FERPLUS_TO_FER:
            codes[winner == col] = emotion_index(FERPLUS_TO_FER[name])
    return codes


def fer_columns() -> np.ndarray:
    """For each FER2013 code, the index of its FERPlus vote column (contempt has no code)."""
    to_column = {fer: FERPLUS_VOTE_COLUMNS.index(plus) for plus, fer in FERPLUS_TO_FER.items()}
    return np.array([to_column[name] for name in EMOTIONS], dtype=np.int64)


def find_ferplus_csv(near: str | Path | None = None) -> Path | None:
    """``fer2013new.csv`` next to ``near`` (a FER2013 file or folder), or in the data folder.

    Looks in ``near``'s folder, ``fc.utils.data_dir()`` and ``data_dir()/ferplus``.

    Returns:
        The path, or None when there is none.
    """
    folders = []
    if near is not None:
        near = Path(near)
        folders.append(near if near.is_dir() else near.parent)
    folders += [data_dir(), data_dir() / "ferplus"]
    for folder in folders:
        if (folder / FERPLUS_FILENAME).is_file():
            return folder / FERPLUS_FILENAME
    return None


def check_row_order(ds: FER2013, usage: np.ndarray, path: str | Path) -> None:
    """Raise :class:`DataError` unless the FERPlus rows of ``path`` line up with ``ds``'s rows.

    FERPlus names no image: its rows follow ``fer2013.csv``'s order, so ``ds`` must be the
    complete CSV (35,887 rows in the published order), with the same Usage on every row.
    """
    if ds.ids is not None:
        raise DataError(
            f"FERPlus labels follow fer2013.csv's row order, which {ds.source} ({ds.format}) does "
            "not keep; load fer2013.csv or icml_face_data.csv with ferplus=..."
        )
    if len(usage) != len(ds):
        raise DataError(
            f"{path} has {len(usage)} rows but {ds.source} has {len(ds)}: FERPlus needs the "
            "complete fer2013.csv in its original order"
        )
    mismatch = usage != ds.usage
    if mismatch.any():
        row = int(np.flatnonzero(mismatch)[0])
        raise DataError(
            f"{path}, line {row + 2}: Usage {usage[row]!r} but {ds.source} row {row + 1} is "
            f"{ds.usage[row]!r}: the two files are not in the same order"
        )


def ferplus_votes_for(ds: FER2013, path: str | Path | None = None) -> np.ndarray | None:
    """The FERPlus votes of ``ds``'s faces, row for row, or None when they cannot be had.

    Introduced in ``notebooks/01_data.ipynb`` (the "label it yourself" exercise compares your
    labels with FER2013's and with the ten FERPlus voters of each face).

    Args:
        ds: FER2013 as loaded from ``fer2013.csv`` or ``icml_face_data.csv`` (the row order
            FERPlus follows), with its original labels.
        path: ``fer2013new.csv``; None looks for it with :func:`find_ferplus_csv`.

    Returns:
        (N, 10) int64 votes in :data:`FERPLUS_VOTE_COLUMNS` order, aligned with ``ds``; None for
        the synthetic faces, when no file is found, or (with a warning saying why) when the file
        does not line up with ``ds`` (image folders keep no row order).

    Raises:
        FileNotFoundError: an explicit ``path`` that does not exist.
    """
    if path is None:
        if ds.synthetic:
            return None
        path = find_ferplus_csv(ds.source.split(" (")[0] if ds.source else None)
        if path is None:
            return None
    votes, usage = read_ferplus_votes(path)
    try:
        check_row_order(ds, usage, path)
    except DataError as err:
        warnings.warn(f"FERPlus votes not used: {err}", stacklevel=2)
        return None
    return votes


def apply_ferplus(ds: FER2013, path: str | Path) -> FER2013:
    """Replace ``ds``'s labels by FERPlus majority votes; drop and count the rows without one.

    Introduced in ``notebooks/01_data.ipynb``.

    Args:
        ds: FER2013 read from a CSV in its original row order (35,887 rows).
        path: ``fer2013new.csv``.

    Returns:
        A new :class:`FER2013` (``format`` gets ``"+ferplus"``; ``dropped`` counts each reason).

    Raises:
        DataError: ``ds`` is not in FER2013's row order (wrong length or Usage mismatch).
    """
    path = Path(path)
    if ds.ids is not None:  # before reading the file: the message is about the source
        check_row_order(ds, ds.usage, path)
    votes, usage = read_ferplus_votes(path)
    check_row_order(ds, usage, path)
    winner = majority_vote(votes)
    labels = ferplus_labels(votes)
    dropped = dict(ds.dropped)
    for col, name in enumerate(FERPLUS_VOTE_COLUMNS):
        rows = winner == col
        if name not in FERPLUS_TO_FER and rows.any():
            dropped[DROP_REASONS[name]] = int(rows.sum())
    if (winner == -1).any():
        dropped[DROP_REASONS["none"]] = int((winner == -1).sum())
    keep = labels >= 0
    out = ds.select(keep)
    out.labels = labels[keep]
    out.dropped = dropped
    out.format = f"{ds.format}+ferplus"
    return out
