"""nbval set-up for ``pytest --nbval-lax notebooks/``: smoke preset, synthetic faces, tmp outputs.

The checked cells store facts about the smoke preset on the synthetic faces (dataset sizes,
parameter counts, the configuration), so the notebooks must run exactly that here even on a
machine that has FER2013 in ``data/``. The kernel nbval starts inherits this environment.
Set ``FERCOURSE_NBVAL_KEEP=1`` to keep the data and outputs folder for a look afterwards.
"""

from __future__ import annotations

import os
import shutil
import tempfile

_TMP: str | None = None


def pytest_configure(config):
    global _TMP
    option = config.option
    if not (getattr(option, "nbval_lax", False) or getattr(option, "nbval", False)):
        return
    _TMP = tempfile.mkdtemp(prefix="fercourse-nbval-")
    os.environ["FERCOURSE_PRESET"] = "smoke"
    os.environ["FERCOURSE_DATA"] = os.path.join(_TMP, "data")  # empty: the synthetic faces
    os.environ["FERCOURSE_OUTPUTS"] = os.path.join(_TMP, "outputs")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # 07_vit: no 47 s of retries without a network
    os.environ.setdefault("MPLBACKEND", "agg")
    os.environ.setdefault("FERCOURSE_PROGRESS", "0")  # one line per epoch, no tqdm widgets
    os.environ["FERCOURSE_CHECKS_STRICT"] = "1"  # these are the solutions: every check must pass


def pytest_unconfigure(config):
    if _TMP and not os.environ.get("FERCOURSE_NBVAL_KEEP"):
        shutil.rmtree(_TMP, ignore_errors=True)
