"""The parsed-array cache: a compact ``.npz`` next to the source, reused while the source is unchanged.

Parsing the 35,887-row CSV or decoding 35,887 JPEGs takes seconds to minutes on a laptop; the
cache (uint8 images, int8 labels, uint8 usage codes, no pickle) loads in well under a second.
It is keyed on the source's size and modification time (for a folder: every sub-folder's
modification time and file count, which change when files are added, removed or renamed), on the options
that change the result (FERPlus file, augmented copies) and on :data:`CACHE_VERSION`, so an
edited source or a newer fercourse re-parses instead of serving stale arrays. A folder that cannot
be written (shared, read-only data) only costs the cache, with a warning. Introduced in
``notebooks/01_data.ipynb``.
"""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..utils import atomic_write_bytes
from .dataset import FER2013, USAGES

logger = logging.getLogger(__name__)

CACHE_VERSION: int = 1
CACHE_SUFFIX: str = ".fercourse.npz"


def cache_path(source: str | Path, variant: str = "") -> Path:
    """Where the cache of ``source`` lives: ``fer2013.csv`` -> ``fer2013.fercourse.npz`` beside
    it; a folder ``fer2013-kaggle/`` -> ``fer2013-kaggle.fercourse.npz`` beside the folder."""
    source = Path(source)
    stem = source.name if source.is_dir() else source.stem
    return source.with_name(f"{stem}{'.' + variant if variant else ''}{CACHE_SUFFIX}")


def _file_signature(path: Path) -> list[Any]:
    st = path.stat()
    return [str(path), st.st_size, st.st_mtime_ns]


def _tree_signature(root: Path) -> list[Any]:
    # Folder-level only (name, mtime, entry count): adding, removing or renaming a file changes
    # its folder's mtime. Stat-ing all 40k files of the Kaggle tree would cost ~0.5 s per load;
    # a file edited in place under the same name is not noticed (load with cache=False then).
    parts: list[Any] = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        parts.append([os.path.relpath(folder, root), os.stat(folder).st_mtime_ns, len(files)])
    return [str(root), parts]


def source_signature(*paths: str | Path | None, options: dict | None = None) -> str:
    """A string that changes whenever one of ``paths`` (files or folders) or ``options`` does."""
    parts: list[Any] = [CACHE_VERSION, options or {}]
    for path in paths:
        if path is None:
            continue
        path = Path(path)
        parts.append(_tree_signature(path) if path.is_dir() else _file_signature(path))
    return json.dumps(parts, sort_keys=True, default=str)


def read_cache(path: str | Path, signature: str) -> FER2013 | None:
    """The cached dataset if ``path`` exists and matches ``signature``, else None."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            if meta.get("signature") != signature:
                logger.info("%s: the source changed since it was cached; re-reading it", path)
                return None
            ids = npz["ids"] if "ids" in npz.files else None
            return FER2013(
                images=npz["images"],
                labels=npz["labels"].astype(np.int64),
                usage=np.asarray(USAGES)[npz["usage"]],
                source=meta["source"],
                format=meta["format"],
                synthetic=bool(meta["synthetic"]),
                dropped=meta["dropped"],
                ids=ids,
            )
    except Exception as err:  # a damaged or foreign cache is only a missed shortcut
        logger.warning("%s: ignoring an unreadable cache (%s); re-reading the source", path, err)
        return None


def make_readable(path: str | Path) -> None:
    """Give ``path`` the usual permissions (``atomic_write_bytes`` makes 0600 temp files), so a
    cache or split file beside shared data is readable by everyone who can read the data."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def write_cache(path: str | Path, ds: FER2013, signature: str) -> Path | None:
    """Store ``ds`` at ``path`` (atomically). Returns the path, or None if it cannot be written."""
    path = Path(path)
    meta = {
        "signature": signature,
        "source": ds.source,
        "format": ds.format,
        "synthetic": ds.synthetic,
        "dropped": ds.dropped,
        "version": CACHE_VERSION,
    }
    usage_codes = np.zeros(len(ds), np.uint8)
    for code, usage in enumerate(USAGES):
        usage_codes[ds.usage == usage] = code
    arrays: dict[str, np.ndarray] = {
        "images": ds.images,
        "labels": ds.labels.astype(np.int8),
        "usage": usage_codes,
        "meta": np.array(json.dumps(meta)),
    }
    if ds.ids is not None:
        arrays["ids"] = ds.ids
    buffer = io.BytesIO()
    # Uncompressed: the uint8 arrays are already 3.5x smaller than the CSV, and loading stays a
    # plain read (compression would add ~0.5 s per load for ~25% less disk).
    np.savez(buffer, **arrays)
    try:
        atomic_write_bytes(path, buffer.getvalue())
        make_readable(path)
        return path
    except OSError as err:
        logger.warning("cannot write the cache %s (%s); the next load will parse again", path, err)
        return None
