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

from pathlib import Path

import numpy as np
import pandas as pd

from ..labels import emotion_index
from .dataset import FER2013, USAGES, DataError

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
    if ds.ids is not None:
        raise DataError(
            f"FERPlus labels follow fer2013.csv's row order, which {ds.source} ({ds.format}) does "
            "not keep; load fer2013.csv or icml_face_data.csv with ferplus=..."
        )
    votes, usage = read_ferplus_votes(path)
    if len(votes) != len(ds):
        raise DataError(
            f"{path} has {len(votes)} rows but {ds.source} has {len(ds)}: FERPlus needs the "
            "complete fer2013.csv in its original order"
        )
    mismatch = usage != ds.usage
    if mismatch.any():
        row = int(np.flatnonzero(mismatch)[0])
        raise DataError(
            f"{path}, line {row + 2}: Usage {usage[row]!r} but {ds.source} row {row + 1} is "
            f"{ds.usage[row]!r}: the two files are not in the same order"
        )
    winner = majority_vote(votes)
    labels = np.full(len(ds), -1, dtype=np.int64)
    dropped = dict(ds.dropped)
    for col, name in enumerate(FERPLUS_VOTE_COLUMNS):
        rows = winner == col
        if name in FERPLUS_TO_FER:
            labels[rows] = emotion_index(FERPLUS_TO_FER[name])
        elif rows.any():
            dropped[DROP_REASONS[name]] = int(rows.sum())
    if (winner == -1).any():
        dropped[DROP_REASONS["none"]] = int((winner == -1).sum())
    keep = labels >= 0
    out = ds.select(keep)
    out.labels = labels[keep]
    out.dropped = dropped
    out.format = f"{ds.format}+ferplus"
    return out
