"""``python -m fercourse data fetch``: download FER2013 with the ``kaggle`` package, or say how.

FER2013 is distributed by Kaggle under its competition rules, so it cannot ship with the course.
With the ``kaggle`` package installed and credentials set up, :func:`fetch_fer2013` downloads the
competition files into ``data/fer2013/`` (torchvision's layout: ``fer2013.csv``,
``icml_face_data.csv``, ``train.csv``, ``test.csv``), loads them and checks the published counts
(35,887 = 28,709 Training + 3,589 PublicTest + 3,589 PrivateTest). Without either it prints the
exact manual steps. Introduced in ``notebooks/01_data.ipynb``; steps also in ``data/README.md``.
"""

from __future__ import annotations

import importlib.util
import os
import tarfile
import zipfile
from pathlib import Path

from ..labels import EMOTIONS
from ..utils import data_dir
from .dataset import FER2013, FER2013_CLASS_COUNTS, FER2013_USAGE_COUNTS, DataError

KAGGLE_COMPETITION = "challenges-in-representation-learning-facial-expression-recognition-challenge"
KAGGLE_DATASET = "msambare/fer2013"
"""The image-folder version (``train/<class>/``, ``test/<class>/``)."""

COMPETITION_URL = f"https://www.kaggle.com/c/{KAGGLE_COMPETITION}"
DATASET_URL = f"https://www.kaggle.com/datasets/{KAGGLE_DATASET}"
TOTAL = sum(FER2013_USAGE_COUNTS.values())


def kaggle_credentials() -> str | None:
    """Where Kaggle credentials are configured (a description, never their content), or None."""
    if os.environ.get("KAGGLE_API_TOKEN"):
        return "the KAGGLE_API_TOKEN environment variable"
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return "the KAGGLE_USERNAME / KAGGLE_KEY environment variables"
    config = Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle"))
    for name in ("kaggle.json", "access_token"):
        if (config / name).is_file():
            return str(config / name)
    return None


def manual_steps(dest: str | Path | None = None) -> str:
    """The exact steps to get FER2013 by hand into ``dest`` (default ``data_dir()``)."""
    dest = Path(dest) if dest is not None else data_dir()
    return f"""FER2013 is not downloaded automatically here ({_why_not()}). Get it by hand:

  1. Sign in at https://www.kaggle.com and open
     {COMPETITION_URL}
     Click "Late Submission" / "I understand and accept" to accept the competition rules.
  2. On its "Data" tab, click "Download All" (a zip with fer2013.tar.gz, icml_face_data.csv,
     train.csv and test.csv).
  3. Unpack it so that this file exists:
       {dest / "fer2013" / "fer2013.csv"}
     e.g.  mkdir -p {dest / "fer2013"} && unzip {KAGGLE_COMPETITION}.zip -d {dest / "fer2013"}
           tar -xzf {dest / "fer2013" / "fer2013.tar.gz"} -C {dest}
     (icml_face_data.csv alone is enough too: put it in {dest / "fer2013"}.)
  Or the image-folder version: download {DATASET_URL}
     and unzip it to {dest / "fer2013-kaggle"} (train/<class>/, test/<class>/).
  4. Check it:  python -m fercourse data report

To let `python -m fercourse data fetch` do steps 2-3: `pip install kaggle`, create an API token
on https://www.kaggle.com/settings ("Create New Token") and save it as ~/.kaggle/kaggle.json
(chmod 600), then run the fetch again. See data/README.md."""


def _why_not() -> str:
    if importlib.util.find_spec("kaggle") is None:
        return "the `kaggle` package is not installed"
    if kaggle_credentials() is None:
        return "no Kaggle credentials found"
    return "the download failed"


def verify_counts(ds: FER2013) -> list[str]:
    """Compare ``ds`` with FER2013's published counts.

    Introduced in ``notebooks/01_data.ipynb``.

    Returns:
        A list of problems (empty when the images per Usage and per class match exactly).
    """
    problems = []
    if ds.synthetic:
        problems.append("these are the synthetic stand-in faces, not FER2013")
    counts = ds.usage_counts()
    dropped = sum(ds.dropped.values())
    if "ferplus" in ds.format:
        if len(ds) + dropped != TOTAL:
            problems.append(f"{len(ds):,} kept + {dropped:,} dropped FERPlus rows != {TOTAL:,}")
        return problems
    for usage, expected in FER2013_USAGE_COUNTS.items():
        if counts[usage] != expected:
            problems.append(f"{usage}: {counts[usage]:,} images, expected {expected:,}")
    if not problems:
        by_class = ds.class_counts()
        for name in EMOTIONS:
            if int(by_class[name]) != FER2013_CLASS_COUNTS[name]:
                problems.append(
                    f"{name}: {int(by_class[name]):,} images, expected {FER2013_CLASS_COUNTS[name]:,}"
                )
    return problems


def _safe_extract_zip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for member in zf.namelist():
            target = (dest / member).resolve()
            if not target.is_relative_to(dest.resolve()):
                raise DataError(f"{archive}: refusing to extract {member!r} outside {dest}")
        zf.extractall(dest)


def _download_competition(dest: Path) -> Path:
    from kaggle.api.kaggle_api_extended import KaggleApi  # imported late: it reads credentials

    api = KaggleApi()
    api.authenticate()
    folder = dest / "fer2013"
    folder.mkdir(parents=True, exist_ok=True)
    api.competition_download_files(KAGGLE_COMPETITION, path=str(folder), quiet=False)
    for archive in sorted(folder.glob("*.zip")):
        _safe_extract_zip(archive, folder)
        archive.unlink()
    tarball = folder / "fer2013.tar.gz"
    if tarball.is_file():
        with tarfile.open(tarball) as tf:
            tf.extractall(dest, filter="data")  # holds fer2013/fer2013.csv
        tarball.unlink()
    return folder


def _download_dataset(dest: Path) -> Path:
    from kaggle.api.kaggle_api_extended import KaggleApi

    api = KaggleApi()
    api.authenticate()
    folder = dest / "fer2013-kaggle"
    api.dataset_download_files(KAGGLE_DATASET, path=str(folder), unzip=True, quiet=False)
    return folder


def fetch_fer2013(dest: str | Path | None = None, *, source: str = "competition") -> Path | None:
    """Download FER2013 with the ``kaggle`` package and verify its counts; else print the steps.

    Introduced in ``notebooks/01_data.ipynb``.

    Args:
        dest: the data folder (default ``fc.utils.data_dir()``).
        source: ``"competition"`` (the CSV files, into ``dest/fer2013/``) or ``"folders"``
            (the image-folder dataset, into ``dest/fer2013-kaggle/``).

    Returns:
        The folder holding FER2013, or None when it could not be downloaded (the manual steps
        were printed).

    Raises:
        DataError: the download does not match the published counts.
    """
    from .load import find_fer2013, load_fer2013

    dest = Path(dest) if dest is not None else data_dir()
    existing = find_fer2013(dest)
    if existing is not None:
        print(f"FER2013 is already there: {existing}")
        folder = existing
    elif importlib.util.find_spec("kaggle") is None or kaggle_credentials() is None:
        print(manual_steps(dest))
        return None
    else:
        if source not in ("competition", "folders"):
            raise ValueError(f"source must be 'competition' or 'folders', got {source!r}")
        print(f"downloading FER2013 ({source}) with Kaggle credentials from {kaggle_credentials()}")
        try:
            folder = (_download_competition if source == "competition" else _download_dataset)(dest)
        except Exception as err:  # network, rules not accepted, quota: say what to do instead
            print(f"the Kaggle download failed: {err}\n")
            print(manual_steps(dest))
            return None
    ds = load_fer2013(folder)
    problems = verify_counts(ds)
    if problems:
        raise DataError(f"{folder}: not the published FER2013: " + "; ".join(problems))
    print(
        f"verified {folder}: {len(ds):,} images = "
        + " + ".join(f"{v:,} {k}" for k, v in ds.usage_counts().items())
    )
    return folder
