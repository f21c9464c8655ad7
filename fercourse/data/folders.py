"""Reading FER2013 exported as image folders (the Kaggle ``train/<class>/*.jpg`` versions).

Layouts read (class folders are the seven emotion names, any case)::

    root/train/<class>/*.jpg          root/test/<class>/*.jpg       (Kaggle "msambare/fer2013")
    root/train|validation|test/<class>/*.jpg                       (e.g. "Duygu-Tanima")
    root/<class>/*.jpg                                             (one folder of classes)

Rules, in the order they are applied:

- **Labels come from the class folder's name**, mapped through ``fc.EMOTIONS``: folders sort
  alphabetically (angry, disgust, fear, happy, neutral, sad, surprise), which is *not* FER2013's
  code order, so an ``ImageFolder``-style index would mislabel sad, surprise and neutral.
- **Usage comes from the file name** when it starts with ``Training_``, ``PublicTest_`` or
  ``PrivateTest_`` (FER2013 exports keep it), whatever folder the file sits in. Otherwise it
  comes from the split folder: ``train`` -> Training, ``validation``/``val`` -> PublicTest and
  ``test`` -> PrivateTest. A ``test`` folder without name prefixes cannot be told apart into
  PublicTest and PrivateTest; it is all PrivateTest and a warning says so.
- **Augmented copies** named like ``PrivateTest_123.jpg3.jpg`` (one original name plus a copy
  number) are not FER2013 images: they are left out and counted in ``dataset.dropped``, unless
  ``include_augmented=True``.
- Files that are not images (by extension) are left out and counted too.
- **Images that are not 48x48**: a square image is resized to 48x48 with
  ``fc.preprocessing.RESIZE_INTERPOLATION`` and a warning says how many were; a non-square
  image is an error (crop the face first, e.g. with ``fc.prepare_face``). Colour images are
  converted to grayscale.
- An empty or missing folder, an unknown folder name, or an unreadable or **truncated** image
  (a JPEG without its end-of-image marker, a PNG without its IEND chunk) is an error naming the
  path: libjpeg would decode a truncated JPEG with grey rows and only a stderr line. The same file name in two class folders is allowed: the Kaggle export has two such
  pairs (``Training_8475486.jpg``, ``Training_52789098.jpg``) that are different faces; exact
  copies would show up in :func:`fercourse.data.data_report`'s duplicate count.

Images are read as bytes, checked for truncation and decoded with OpenCV (``cv2.imdecode``).
Introduced in ``notebooks/01_data.ipynb``.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..labels import EMOTIONS, emotion_index
from ..preprocessing import IMAGE_SIZE, RESIZE_INTERPOLATION
from .dataset import FER2013, USAGES, DataError
from .progress import progress_bar

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}
)

SPLIT_FOLDERS: dict[str, str] = {
    "train": "Training",
    "training": "Training",
    "validation": "PublicTest",
    "val": "PublicTest",
    "valid": "PublicTest",
    "publictest": "PublicTest",
    "test": "PrivateTest",
    "privatetest": "PrivateTest",
}
"""Split folder name (lower case) -> the Usage its files get when their names carry none."""

_USAGE_NAME = re.compile(r"^(Training|PublicTest|PrivateTest)_(\d+)\.([A-Za-z]+)$")
_AUGMENTED_NAME = re.compile(r"^(Training|PublicTest|PrivateTest)_(\d+)\.[A-Za-z]+\d+\.[A-Za-z]+$")

DROPPED_AUGMENTED = "augmented copies (*.jpgN.jpg)"
DROPPED_NOT_IMAGES = "files that are not images"


def _is_class_folder(path: Path) -> bool:
    return path.is_dir() and path.name.lower() in EMOTIONS


def _visible_children(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def is_image_folder_tree(root: str | Path) -> bool:
    """True when ``root`` holds class folders, directly or under split folders."""
    root = Path(root)
    if not root.is_dir():
        return False
    children = _visible_children(root)
    if any(_is_class_folder(c) for c in children):
        return True
    return any(
        c.is_dir()
        and c.name.lower() in SPLIT_FOLDERS
        and any(_is_class_folder(g) for g in _visible_children(c))
        for c in children
    )


@dataclass
class _File:
    path: str
    label: int
    usage: str
    number: int  # the id in the name (Training_<number>.jpg), or -1
    from_name: bool


def _split_folders(root: Path) -> list[tuple[Path, str | None]]:
    """(folder of class folders, Usage from the folder name or None) pairs under ``root``."""
    children = _visible_children(root)
    if not children:
        raise DataError(f"{root}: the folder is empty (expected train/, test/ or class folders)")
    if any(_is_class_folder(c) for c in children):
        others = [c for c in children if c.is_dir() and not _is_class_folder(c)]
        if others:
            raise DataError(
                f"{others[0]}: unknown class folder {others[0].name!r}; "
                f"expected one of {', '.join(EMOTIONS)}"
            )
        return [(root, None)]
    splits = []
    for child in children:
        if not child.is_dir():
            continue
        usage = SPLIT_FOLDERS.get(child.name.lower())
        if usage is None:
            raise DataError(
                f"{child}: unexpected folder {child.name!r} in {root}; expected split folders "
                f"({', '.join(sorted(set(SPLIT_FOLDERS)))}) holding class folders "
                f"({', '.join(EMOTIONS)})"
            )
        splits.append((child, usage))
    if not splits:
        raise DataError(f"{root}: no split or class folders (expected train/ and test/)")
    return splits


def list_image_files(
    root: str | Path, *, include_augmented: bool = False
) -> tuple[list[_File], dict[str, int]]:
    """Every image file under ``root`` with its label and Usage, plus what was left out.

    Returns:
        (files sorted by Usage then name number, counts of files left out on purpose).
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such folder")
    files: list[_File] = []
    dropped: Counter[str] = Counter()
    for split_dir, folder_usage in _split_folders(root):
        class_dirs = _visible_children(split_dir)
        if not class_dirs:
            raise DataError(f"{split_dir}: the folder is empty (expected class folders)")
        for class_dir in class_dirs:
            if not class_dir.is_dir():
                dropped[DROPPED_NOT_IMAGES] += 1
                continue
            try:
                label = emotion_index(class_dir.name)
            except ValueError:
                raise DataError(
                    f"{class_dir}: unknown class folder {class_dir.name!r}; "
                    f"expected one of {', '.join(EMOTIONS)}"
                ) from None
            entries = [(e.name, e.path) for e in os.scandir(class_dir) if e.is_file()]
            if not entries:
                raise DataError(f"{class_dir}: the folder is empty (no images)")
            for name, path in entries:
                if _AUGMENTED_NAME.match(name) and not include_augmented:
                    dropped[DROPPED_AUGMENTED] += 1
                    continue
                if (
                    name.startswith(".")
                    or os.path.splitext(name)[1].lower() not in IMAGE_EXTENSIONS
                ):
                    dropped[DROPPED_NOT_IMAGES] += 1
                    continue
                match = _USAGE_NAME.match(name) or _AUGMENTED_NAME.match(name)
                if match:
                    usage, number, from_name = match.group(1), int(match.group(2)), True
                elif folder_usage is not None:
                    usage, number, from_name = folder_usage, -1, False
                else:
                    raise DataError(
                        f"{path}: cannot tell its Usage: name files "
                        "Training_*/PublicTest_*/PrivateTest_* or put the class folders under "
                        "train/ and test/"
                    )
                files.append(_File(path, label, usage, number, from_name))
    if not files:
        raise DataError(f"{root}: no images found")
    if any(not f.from_name and f.usage == "PrivateTest" for f in files):
        logger.warning(
            "%s: test images without PublicTest_/PrivateTest_ name prefixes are all treated as "
            "PrivateTest (the reported test); select models on the validation split",
            root,
        )
    rank = {u: i for i, u in enumerate(USAGES)}
    # FER2013's row order is Training, PublicTest, PrivateTest; the name number keeps the
    # order of files written from a CSV, the path breaks ties for files without one.
    files.sort(key=lambda f: (rank[f.usage], f.number, f.path))
    return files, dict(dropped)


_JPEG_START = b"\xff\xd8"
_JPEG_SCAN, _JPEG_END = b"\xff\xda", b"\xff\xd9"
_PNG_START, _PNG_END = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"


def truncation(data: bytes | np.ndarray) -> str | None:
    """Why the bytes of a JPEG or PNG file are cut short, or None when they end properly.

    libjpeg decodes a truncated JPEG without an error (it fills the missing rows in grey and
    prints "Premature end of JPEG file" on stderr, naming no file), so the end marker is
    checked here. Entropy-coded data never holds the bytes ``FF D9``, so an end-of-image marker
    after the last start-of-scan means the image is complete, even with bytes after it.

    Args:
        data: the file's bytes (``bytes`` or a uint8 array).
    """
    head, tail = bytes(data[:8]), bytes(data[-64:])
    if head.startswith(_JPEG_START):
        if tail.rstrip(b"\x00").endswith(_JPEG_END):
            return None  # the usual case: only the last bytes are looked at
        whole = bytes(data)
        if whole.rfind(_JPEG_END) > whole.rfind(_JPEG_SCAN) >= 0:
            return None  # bytes after the end marker: libjpeg stops at the marker
        return "the JPEG file is truncated (no end-of-image marker after its image data)"
    if head.startswith(_PNG_START) and _PNG_END not in tail:
        return "the PNG file is truncated (no IEND chunk at its end)"
    return None


def decode_face(path: str | Path) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Decode one face image to (48, 48) uint8 grayscale.

    Returns:
        (face, original (height, width) if it had to be resized, else None).

    Raises:
        DataError: the file cannot be read, is truncated, cannot be decoded, or is not square.
    """
    # Read the bytes ourselves (this also handles non-ASCII paths on Windows, which imread
    # cannot open): a missing file is told from a bad one, and a truncated one is caught.
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as err:
        raise DataError(f"{path}: cannot read the file ({err.strerror or err})") from None
    cut = truncation(data) if data else None
    if cut is not None:
        raise DataError(f"{path}: {cut}; download it again or delete it")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE) if data else None
    if image is None:
        raise DataError(f"{path}: cannot decode the image (damaged or not an image file)")
    if image.shape == (IMAGE_SIZE, IMAGE_SIZE):
        return image, None
    height, width = image.shape
    if height != width:
        raise DataError(
            f"{path}: the image is {width}x{height}, not square; FER2013 faces are 48x48 "
            "(crop the face first, e.g. with fc.prepare_face)"
        )
    face = cv2.resize(image, (IMAGE_SIZE, IMAGE_SIZE), interpolation=RESIZE_INTERPOLATION)
    return face, (height, width)


def read_image_folders(
    root: str | Path,
    *,
    include_augmented: bool = False,
    progress: bool | None = None,
    threads: int = 1,
) -> FER2013:
    """Read a FER2013 image-folder tree (see the module docstring for the rules).

    Introduced in ``notebooks/01_data.ipynb``.

    Args:
        root: the folder holding ``train/`` and ``test/`` (or class folders).
        include_augmented: also load augmented copies (``*.jpgN.jpg``); they are near-duplicates
            of FER2013 images, so leave this off except to study them.
        progress: show a progress bar (default: for large trees).
        threads: decoding threads. OpenCV releases the GIL while decoding, so more threads help
            on an idle multi-core machine; on a busy 2-core one a single thread was fastest.

    Returns:
        A :class:`FER2013` with ``format="kaggle-folders"`` and ``ids`` holding each file's
        path relative to ``root``.
    """
    root = Path(root)
    files, dropped = list_image_files(root, include_augmented=include_augmented)
    images = np.empty((len(files), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    resized: list[tuple[str, tuple[int, int]]] = []
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        paths = [f.path for f in files]
        decoded = map(decode_face, paths) if threads <= 1 else pool.map(decode_face, paths)
        bar = progress_bar(
            decoded, desc=f"decoding {root.name}", total=len(files), enabled=progress
        )
        for i, (face, original) in enumerate(bar):
            images[i] = face
            if original is not None:
                resized.append((files[i].path, original))
    if resized:
        path, (h, w) = resized[0]
        logger.warning(
            "%s: resized %d images that were not 48x48 to 48x48 (first: %s, %dx%d)",
            root,
            len(resized),
            path,
            w,
            h,
        )
    for reason, count in dropped.items():
        logger.info("%s: left out %d %s", root, count, reason)
    return FER2013(
        images=images,
        labels=np.array([f.label for f in files], dtype=np.int64),
        usage=np.array([f.usage for f in files]),
        source=str(root),
        format="kaggle-folders",
        dropped=dropped,
        ids=np.array([os.path.relpath(f.path, root).replace(os.sep, "/") for f in files]),
    )
