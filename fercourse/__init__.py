"""fercourse: a course kit for facial expression recognition on FER2013.

Use it through one alias, so a reader always sees what comes from the library::

    import fercourse as fc
    fc.setup(seed=0)
    data = fc.data.load_fer2013()            # FER2013 if present, else the synthetic faces
    model = fc.models.create_model("baseline_cnn")
    history = fc.fit(model, data, fc.TrainConfig.for_model("baseline_cnn"))
    metrics = fc.evaluate(model, data, split="PrivateTest")

The package is laid out as rooms: ``data``, ``models``, ``training``, ``evaluation``,
``explain`` (every figure), ``inference``, ``mirror``, ``course`` (what students call besides
those: presets, exercise checks, comparison tables, reference results) and ``ops`` (running the
course headless, SLURM, recording results); ``labels`` and ``preprocessing`` hold the single
source of truth for the label order, the emoji and the image preprocessing, ``rundir`` owns the
run folder. See docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import importlib
from typing import Any

from .labels import EMOJI, EMOTIONS, NUM_CLASSES, emotion_index
from .utils import setup

__version__ = "0.1.0"

_SUBMODULES = {
    "checkpoint",
    "course",
    "data",
    "evaluation",
    "explain",
    "inference",
    "labels",
    "mirror",
    "models",
    "preprocessing",
    "history",
    "ops",
    "rundir",
    "runtime",
    "training",
    "utils",
    "bench",
}

# Short names for the calls every notebook makes; the full path is what the docs teach.
_SHORTCUTS = {
    "check": ("course", "check"),
    "fit": ("training", "fit"),
    "TrainConfig": ("training", "TrainConfig"),
    "History": ("training", "History"),
    "evaluate": ("evaluation", "evaluate"),
    "create_model": ("models", "create_model"),
    "list_models": ("models", "list_models"),
    "gradcam": ("explain", "gradcam"),
    "EmotionModel": ("inference", "EmotionModel"),
    "FaceDetector": ("inference", "FaceDetector"),
    "prepare_face": ("preprocessing", "prepare_face"),
}


def __getattr__(name: str) -> Any:
    # Submodules load on first use, so `import fercourse` stays quick (no timm, OpenCV, widgets).
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _SHORTCUTS:
        module, attr = _SHORTCUTS[name]
        return getattr(importlib.import_module(f".{module}", __name__), attr)
    raise AttributeError(f"module 'fercourse' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _SUBMODULES | set(_SHORTCUTS))


__all__ = ["EMOJI", "EMOTIONS", "NUM_CLASSES", "emotion_index", "setup", *sorted(_SHORTCUTS)]
