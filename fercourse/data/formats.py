"""Reading and writing FER2013's CSV files: ``fer2013.csv``, ``icml_face_data.csv``, and the
competition's ``train.csv`` / ``test.csv``.

All four hold one face per row as 2,304 space-separated pixel values (48x48, row-major):

==========================  ===============================  ===============================
file                        header                           rows
==========================  ===============================  ===============================
``fer2013.csv``             ``emotion,pixels,Usage``         35,887 (all three Usages)
``icml_face_data.csv``      ``emotion, Usage, pixels``       the same rows (note the spaces)
``train.csv``               ``emotion,pixels``               28,709 Training rows
``test.csv``                ``pixels``                       7,178 test rows, **no labels**
==========================  ===============================  ===============================

Every row is checked; a bad one raises :class:`~fercourse.data.dataset.DataError` naming the
file, the line (1-based, the header is line 1) and the value. Introduced in
``notebooks/01_data.ipynb``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from ..labels import NUM_CLASSES
from ..preprocessing import IMAGE_SIZE
from .dataset import FER2013, USAGES, DataError
from .progress import progress_bar

NUM_PIXELS: int = IMAGE_SIZE * IMAGE_SIZE

COMPETITION_TEST_ROWS: int = 7178
"""Rows of the competition's unlabelled ``test.csv`` (PublicTest + PrivateTest)."""


def read_header(path: str | Path) -> list[str]:
    """The CSV header's column names exactly as written (leading spaces kept)."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            first = fh.readline()
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not a text CSV file ({err.reason})") from None
    if not first.strip():
        raise DataError(f"{path}: the file is empty (no header line)")
    return first.rstrip("\r\n").split(",")


def csv_kind(path: str | Path, header: list[str] | None = None) -> str:
    """Which FER2013 CSV ``path`` is, from its header and name.

    Returns:
        ``"fer2013.csv"``, ``"icml_face_data.csv"``, ``"train.csv"``, ``"test.csv"`` or
        ``"ferplus"`` (the FERPlus vote file, which holds no pixels).

    Raises:
        DataError: naming the missing column when the header fits no known file.
    """
    path = Path(path)
    header = read_header(path) if header is None else header
    names = [h.strip() for h in header]
    if "NF" in names and "contempt" in names:
        return "ferplus"
    if "pixels" not in names:
        raise DataError(
            f"{path}: missing column 'pixels'; found columns {header} "
            "(expected emotion,pixels,Usage as in fer2013.csv)"
        )
    has_emotion, has_usage = "emotion" in names, "Usage" in names
    if has_emotion and has_usage:
        # icml_face_data.csv writes ' Usage' and ' pixels' with a leading space.
        return "icml_face_data.csv" if any(h != h.strip() for h in header) else "fer2013.csv"
    if path.name == "train.csv" and has_emotion:
        return "train.csv"
    if path.name == "test.csv" and not has_emotion:
        return "test.csv"
    missing = [c for c in ("emotion", "pixels", "Usage") if c not in names]
    raise DataError(
        f"{path}: missing column {missing[0]!r}; found columns {header} "
        "(fer2013.csv needs emotion,pixels,Usage; only the competition's train.csv may omit Usage)"
    )


def _first_undecodable_line(path: Path) -> tuple[int, bytes] | None:
    """(1-based line, the bytes around the first one that is not UTF-8), or None."""
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as err:
                return number, line[max(0, err.start - 10) : err.end + 10]
    return None


def _read_table(path: Path) -> pd.DataFrame:
    try:
        # Everything as text, blank lines kept: line numbers in errors stay exact.
        table = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
            engine="c",
        )
    except pd.errors.ParserError as err:
        raise DataError(f"{path}: malformed CSV ({err})") from None
    except UnicodeDecodeError as err:
        # pandas names neither the file nor the line (its byte offset is per chunk): find them.
        found = _first_undecodable_line(path)
        where = f"line {found[0]}: byte(s) near {found[1]!r}" if found else err.reason
        raise DataError(
            f"{path}, {where} are not UTF-8 (FER2013 CSVs are plain ASCII; was the file edited "
            "and saved as Latin-1?)"
        ) from None
    table.columns = [c.strip() for c in table.columns]
    return table.fillna("")


def parse_pixels(
    pixels: list[str], path: str | Path, first_line: int = 2, *, progress: bool | None = None
) -> np.ndarray:
    """Parse pixel strings into (N, 48, 48) uint8, checking every row.

    Args:
        pixels: one string of 2,304 space-separated integers per row.
        path: the file (for error messages).
        first_line: the file line of ``pixels[0]`` (2 when the header is line 1).
        progress: show a progress bar (default: for large files).

    Raises:
        DataError: naming the line and the value for a wrong count, a non-number or a value
            outside 0-255.
    """
    images = np.empty((len(pixels), NUM_PIXELS), np.uint8)
    rows = progress_bar(pixels, desc=f"parsing {Path(path).name}", enabled=progress)
    for i, text in enumerate(rows):
        try:
            # C-speed parsing; numpy raises ValueError at the first token that is not a number.
            values = np.fromstring(text, dtype=np.int64, sep=" ")
        except ValueError:
            values = None
        if values is None or values.size != NUM_PIXELS or values.min() < 0 or values.max() > 255:
            _raise_bad_pixels(text, path, first_line + i)
        images[i] = values
    return images.reshape(-1, IMAGE_SIZE, IMAGE_SIZE)


_PIXEL_TOKEN = re.compile(r"[+-]?[0-9]+", re.ASCII)
"""What the C-speed parser reads as a number (Python's ``int`` also takes ``1_0`` and ``١``)."""


def _raise_bad_pixels(text: str, path: str | Path, line: int) -> None:
    tokens = text.split()
    for token in tokens:
        if not _PIXEL_TOKEN.fullmatch(token):
            raise DataError(f"{path}, line {line}: non-numeric pixel value {token!r}")
        if not 0 <= int(token) <= 255:
            raise DataError(f"{path}, line {line}: pixel value {token} is outside 0-255")
    if len(tokens) != NUM_PIXELS:
        raise DataError(
            f"{path}, line {line}: expected {NUM_PIXELS} pixel values (48x48), got {len(tokens)}"
        )
    raise DataError(f"{path}, line {line}: cannot parse the pixel values {text[:40]!r}...")


def _parse_labels(values: pd.Series, path: Path) -> np.ndarray:
    codes = pd.to_numeric(values.str.strip(), errors="coerce")
    bad = codes.isna() | (codes % 1 != 0)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{path}, line {i + 2}: emotion {values.iloc[i]!r} is not an integer")
    codes = codes.to_numpy().astype(np.int64)
    out = (codes < 0) | (codes >= NUM_CLASSES)
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise DataError(
            f"{path}, line {i + 2}: emotion {codes[i]} is outside 0-{NUM_CLASSES - 1} "
            "(FER2013 codes: 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral)"
        )
    return codes


def _parse_usage(values: pd.Series, path: Path) -> np.ndarray:
    usage = values.str.strip().to_numpy().astype(str)
    bad = ~np.isin(usage, USAGES)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}, line {i + 2}: unknown Usage {values.iloc[i]!r}; "
            f"expected one of {', '.join(USAGES)}"
        )
    return usage


def read_fer2013_csv(path: str | Path, *, progress: bool | None = None) -> FER2013:
    """Read ``fer2013.csv``, ``icml_face_data.csv`` or the competition ``train.csv``.

    Introduced in ``notebooks/01_data.ipynb``.

    The competition ``test.csv`` has no labels and is refused here (see
    :func:`fercourse.data.load_fer2013` for how a folder holding it is handled).

    Args:
        path: the CSV file.
        progress: show a progress bar (default: for large files).

    Returns:
        A :class:`FER2013` whose ``format`` is the file kind (``"train.csv"`` becomes
        ``"competition-csv"``, every row Training).

    Raises:
        DataError: a missing column or a bad row (the message names the line and value).
    """
    path = Path(path)
    kind = csv_kind(path)
    if kind == "ferplus":
        raise DataError(
            f"{path} is the FERPlus vote file (no pixels): load fer2013.csv and pass this file "
            "as ferplus=..., e.g. fc.data.load_fer2013('data/fer2013.csv', ferplus=...)"
        )
    if kind == "test.csv":
        raise DataError(
            f"{path} is the competition's test.csv: it has no labels, so it cannot be used for "
            "training or evaluation. fer2013.csv or icml_face_data.csv hold the same 7,178 test "
            "faces with labels (PublicTest + PrivateTest); see data/README.md"
        )
    table = _read_table(path)
    if table.empty:
        raise DataError(f"{path}: no faces (the file has a header line but no data rows)")
    empty = (table == "").all(axis=1).to_numpy()
    if empty.any():
        raise DataError(f"{path}, line {int(np.flatnonzero(empty)[0]) + 2}: empty row")
    labels = _parse_labels(table["emotion"], path)
    if kind == "train.csv":
        usage = np.full(len(table), "Training")
    else:
        usage = _parse_usage(table["Usage"], path)
    images = parse_pixels(table["pixels"].tolist(), path, progress=progress)
    return FER2013(
        images=images,
        labels=labels,
        usage=usage,
        source=str(path),
        format="competition-csv" if kind == "train.csv" else kind,
    )


def count_csv_rows(path: str | Path) -> int:
    """Data rows of a CSV file: non-blank lines after the header."""
    with open(path, "rb") as fh:
        return max(0, sum(1 for line in fh if line.strip()) - 1)


def write_fer2013_csv(ds: FER2013, path: str | Path) -> Path:
    """Write ``ds`` as a real ``fer2013.csv`` (``emotion,pixels,Usage``), atomically.

    Introduced in ``notebooks/01_data.ipynb``.

    torchvision's ``datasets.FER2013`` and every FER2013 tutorial read the result. When ``ds``
    is synthetic, a sidecar ``fer2013.csv.synthetic.json`` is written next to it, so loading the
    file again still says it is synthetic.

    Args:
        ds: the dataset (rows are written in its order).
        path: the CSV file to write.

    Returns:
        ``path``.

    Example:
        >>> import fercourse as fc
        >>> faces = fc.data.make_synthetic_faces(n=100, seed=0)
        >>> fc.data.write_fer2013_csv(faces, "data/synthetic/fer2013.csv")  # doctest: +SKIP
    """
    from .synthetic import SYNTHETIC_VERSION, synthetic_marker_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Indexing an object array of the 256 decimal strings is ~6x faster than str() per pixel.
    table = np.array([str(v) for v in range(256)], dtype=object)
    flat = ds.images.reshape(len(ds), -1)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write("emotion,pixels,Usage\n")
            for label, row, usage in zip(ds.labels.tolist(), flat, ds.usage.tolist()):
                fh.write(f"{label},{' '.join(table[row].tolist())},{usage}\n")
        marker = synthetic_marker_path(path)
        if ds.synthetic:
            info = {
                "synthetic": True,
                "note": "procedural stand-in faces made by fercourse, NOT FER2013",
                "made_by": ds.source,
                "version": SYNTHETIC_VERSION,
                "n": len(ds),
            }
            marker.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        else:
            # Real faces written over a synthetic file: the old marker would mislabel them.
            marker.unlink(missing_ok=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
