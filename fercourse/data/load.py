"""``fc.data.load_fer2013``: FER2013 from any published format, or the synthetic stand-in.

Introduced in ``notebooks/01_data.ipynb``; every later notebook starts with it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..utils import data_dir
from .cache import cache_path, read_cache, source_signature, write_cache
from .dataset import FER2013, DataError
from .ferplus import FERPLUS_FILENAME, apply_ferplus, find_ferplus_csv
from .folders import is_image_folder_tree, read_image_folders
from .formats import COMPETITION_TEST_ROWS, count_csv_rows, csv_kind, read_fer2013_csv
from .synthetic import (
    DEFAULT_SYNTHETIC_N,
    SYNTHETIC_VERSION,
    make_synthetic_faces,
    read_synthetic_marker,
)

logger = logging.getLogger(__name__)

SYNTHETIC_DIRNAME = "synthetic"
SPLITS_DIRNAME = "splits"
DROPPED_TEST_CSV = "test.csv: unlabelled competition test rows"

_NOT_SEARCHED = {SYNTHETIC_DIRNAME, SPLITS_DIRNAME, "__pycache__"}

HOW_TO_GET = (
    "To use FER2013: `python -m fercourse data fetch` (needs Kaggle credentials) or follow "
    "data/README.md, then put it under {dir}"
)


@dataclass
class _Source:
    kind: str  # "csv", "competition" or "folders"
    path: Path  # the file read (csv, competition: train.csv) or the folder
    extras: list[Path] = field(default_factory=list)  # other files whose change matters


def _csv_source(path: Path) -> _Source:
    kind = csv_kind(path)
    if kind == "train.csv":
        test = path.with_name("test.csv")
        return _Source("competition", path, [test] if test.is_file() else [])
    return _Source("csv", path)


def _resolve(path: Path) -> _Source:
    """Which reader handles ``path``, following torchvision's precedence for folders."""
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no such file or folder. " + HOW_TO_GET.format(dir=data_dir())
        )
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise DataError(
                f"{path}: not a FER2013 file (expected fer2013.csv, icml_face_data.csv, "
                "train.csv, or a folder of images)"
            )
        return _csv_source(path)
    for name in ("fer2013.csv", "icml_face_data.csv", "train.csv"):
        if (path / name).is_file():
            return _csv_source(path / name)
    if (path / "test.csv").is_file():
        return _csv_source(path / "test.csv")  # refused with an explanation when read
    if (path / "fer2013").is_dir() and not is_image_folder_tree(path):
        return _resolve(path / "fer2013")  # torchvision's datasets.FER2013(root) layout
    if is_image_folder_tree(path):
        return _Source("folders", path)
    if not any(path.iterdir()):
        raise DataError(f"{path}: the folder is empty. " + HOW_TO_GET.format(dir=path))
    raise DataError(
        f"{path}: no FER2013 found (expected fer2013.csv, icml_face_data.csv, "
        "fer2013/fer2013.csv, train.csv, or train/<class>/ and test/<class>/ image folders)"
    )


def detect_format(path: str | Path) -> str:
    """The FER2013 format found at ``path`` (without reading the pixels).

    Introduced in ``notebooks/01_data.ipynb``.

    Returns:
        ``"fer2013.csv"``, ``"icml_face_data.csv"``, ``"competition-csv"``,
        ``"kaggle-folders"`` or ``"synthetic"``.

    Example:
        >>> fc.data.detect_format("data/fer2013-kaggle")  # doctest: +SKIP
        'kaggle-folders'
    """
    source = _resolve(Path(path).expanduser().resolve())
    if source.kind == "folders":
        return "kaggle-folders"
    if source.kind == "competition":
        return "competition-csv"
    if read_synthetic_marker(source.path) is not None:
        return "synthetic"
    return csv_kind(source.path)


def find_fer2013(root: str | Path | None = None) -> Path | None:
    """Look for FER2013 in ``root`` (default ``fc.utils.data_dir()``) and one or two levels down.

    Introduced in ``notebooks/01_data.ipynb``.

    Preference: ``fer2013.csv``, ``icml_face_data.csv``, image folders, then the competition's
    ``train.csv``; a shallower find wins a tie. The synthetic stand-in is never returned.

    Returns:
        The file or folder to pass to :func:`load_fer2013`, or None.
    """
    root = Path(root) if root is not None else data_dir()
    if not root.is_dir():
        return None
    found: list[tuple[int, int, str, Path]] = []
    level = [root]
    for depth in range(3):
        for folder in level:
            for rank, name in enumerate(("fer2013.csv", "icml_face_data.csv")):
                candidate = folder / name
                if candidate.is_file() and read_synthetic_marker(candidate) is None:
                    found.append((rank, depth, str(candidate), candidate))
            if is_image_folder_tree(folder):
                found.append((2, depth, str(folder), folder))
            if (folder / "train.csv").is_file():
                found.append((3, depth, str(folder), folder))
        if depth == 2:
            break  # never list the last level's contents (class folders hold thousands of files)
        level = [
            child
            for folder in level
            for child in sorted(folder.iterdir())
            if child.is_dir() and child.name not in _NOT_SEARCHED and not child.name.startswith(".")
        ]
    if not found:
        return None
    found.sort()
    if len(found) > 1:
        others = ", ".join(str(f[3]) for f in found[1:4])
        logger.info("using %s (also found: %s)", found[0][3], others)
    return found[0][3]


def _ferplus_path(ferplus: str | Path | bool | None, source: _Source) -> Path | None:
    if ferplus is None or ferplus is False:
        return None
    if ferplus is True:
        found = find_ferplus_csv(source.path.parent)
        if found is not None:
            return found
        raise FileNotFoundError(
            f"ferplus=True but no {FERPLUS_FILENAME} next to {source.path} or in {data_dir()}; "
            "get it from https://github.com/microsoft/FERPlus (data/README.md)"
        )
    path = Path(ferplus)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such FERPlus file ({FERPLUS_FILENAME})")
    return path


def _read(source: _Source, *, include_augmented: bool, progress: bool | None) -> FER2013:
    if source.kind == "folders":
        return read_image_folders(
            source.path, include_augmented=include_augmented, progress=progress
        )
    ds = read_fer2013_csv(source.path, progress=progress)
    if source.kind == "competition":
        test = source.extras[0] if source.extras else None
        if test is not None:
            rows = count_csv_rows(test)
            ds.dropped[DROPPED_TEST_CSV] = rows
            logger.warning(
                "%s has no labels: its %d rows (PublicTest + PrivateTest%s) are left out, so only "
                "Training is loaded; use fer2013.csv or icml_face_data.csv for the labelled tests",
                test,
                rows,
                "" if rows == COMPETITION_TEST_ROWS else f", expected {COMPETITION_TEST_ROWS}",
            )
    marker = read_synthetic_marker(source.path)
    if marker is not None:
        ds.format, ds.synthetic = "synthetic", True
        ds.source = f"{source.path} (synthetic: {marker.get('made_by', 'fercourse')})"
    return ds


def load_fer2013(
    path: str | Path | None = None,
    *,
    ferplus: str | Path | bool | None = None,
    cache: bool = True,
    include_augmented: bool = False,
    progress: bool | None = None,
) -> FER2013:
    """Load FER2013 from any published format; without it, the synthetic stand-in.

    Introduced in ``notebooks/01_data.ipynb``.

    Formats, detected from ``path`` (a file or a folder):

    1. ``fer2013.csv`` (``emotion,pixels,Usage``);
    2. ``icml_face_data.csv`` (``emotion, Usage, pixels``);
    3. torchvision's layout ``root/fer2013/`` holding either file, or the competition's
       ``train.csv`` / ``test.csv``. ``test.csv`` has no labels: it is never mixed into
       evaluation; only Training is loaded and its rows are counted in ``dataset.dropped``;
    4. Kaggle image folders ``train/<class>/``, ``test/<class>/`` (and ``validation/``), with
       Usage from ``Training_``/``PublicTest_``/``PrivateTest_`` file-name prefixes where present
       (see :mod:`fercourse.data.folders` for every rule, including images not 48x48);
    5. optionally FERPlus relabels (``ferplus=``): majority votes, dropped rows counted.

    The parsed arrays are cached in a ``.npz`` next to the source (see
    :mod:`fercourse.data.cache`), so the next load takes a fraction of a second.

    Args:
        path: a file or folder; None searches ``fc.utils.data_dir()`` (``$FERCOURSE_DATA`` or
            ``data/``) with :func:`find_fer2013`. When nothing is found, the synthetic faces
            (``data/synthetic/fer2013.csv``, made once) are loaded and a warning says so.
        ferplus: ``fer2013new.csv`` for FERPlus majority labels, or True to look for it next to
            the source and in the data folder.
        cache: read and write the ``.npz`` cache.
        include_augmented: for image folders, keep augmented copies (``*.jpgN.jpg``).
        progress: progress bar while parsing (default: for large sources).

    Returns:
        A :class:`FER2013` (``print`` it to see its format, counts and whether it is synthetic).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DataError: the input is malformed or holds no face; the message names the file, row or
            value.

    Example:
        >>> import fercourse as fc
        >>> data = fc.data.load_fer2013()  # doctest: +SKIP
        >>> data.images.shape, data.labels[:5], data.usage[0]  # doctest: +SKIP
        ((35887, 48, 48), array([0, 0, 2, 4, 6]), 'Training')
    """
    if path is None:
        found = find_fer2013()
        if found is None:
            return load_synthetic(cache=cache)
        path = found
    # Absolute paths: the cache key and `source` must not depend on the working directory.
    source = _resolve(Path(path).expanduser().resolve())
    ferplus_path = _ferplus_path(ferplus, source)
    options = {"ferplus": ferplus_path is not None, "augmented": include_augmented}
    variant = ".".join(
        v for v, on in (("ferplus", ferplus_path), ("with-augmented", include_augmented)) if on
    )
    cache_file = cache_path(source.path, variant)
    signature = ""
    if cache:
        signature = source_signature(source.path, *source.extras, ferplus_path, options=options)
        cached = read_cache(cache_file, signature)
        if cached is not None:
            return _with_faces(cached, source.path)
    ds = _read(source, include_augmented=include_augmented, progress=progress)
    if ferplus_path is not None:
        ds = apply_ferplus(ds, ferplus_path)
    _with_faces(ds, source.path)
    if cache:
        write_cache(cache_file, ds, signature)
    return ds


def _with_faces(ds: FER2013, path: Path) -> FER2013:
    """``ds``, refused when it holds no face (every later step would fail far from the cause)."""
    if not len(ds):
        left_out = f"; left out: {ds.dropped}" if ds.dropped else ""
        raise DataError(f"{path}: no faces in this dataset{left_out}")
    return ds


def synthetic_csv_path() -> Path:
    """Where the default synthetic stand-in is written: ``data_dir()/synthetic/fer2013.csv``."""
    return data_dir() / SYNTHETIC_DIRNAME / "fer2013.csv"


def load_synthetic(
    n: int | None = None, seed: int = 0, *, cache: bool = True, announce: bool = True
) -> FER2013:
    """The synthetic stand-in, written once as a real ``fer2013.csv`` and read back.

    Introduced in ``notebooks/01_data.ipynb``.

    Args:
        n: number of faces (default :data:`~fercourse.data.synthetic.DEFAULT_SYNTHETIC_N`).
        seed: random seed.
        cache: use the ``.npz`` cache.
        announce: log the one-line warning that these are not FER2013 faces.
    """
    from .formats import write_fer2013_csv

    n = DEFAULT_SYNTHETIC_N if n is None else n
    csv = synthetic_csv_path()
    marker = read_synthetic_marker(csv)
    made_by = f"make_synthetic_faces(n={n}, seed={seed})"
    if not (
        csv.is_file()
        and marker
        and marker.get("version") == SYNTHETIC_VERSION
        and marker.get("made_by") == made_by
    ):
        write_fer2013_csv(make_synthetic_faces(n=n, seed=seed), csv)
    if announce:
        logger.warning(
            "fercourse: no FER2013 found under %s; using the SYNTHETIC stand-in (%d procedural "
            "faces, not FER2013) from %s. %s",
            data_dir(),
            n,
            csv,
            HOW_TO_GET.format(dir=data_dir()),
        )
    return load_fer2013(csv, cache=cache)
