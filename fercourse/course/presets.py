"""Which training preset a notebook runs: ``auto``, ``smoke``, ``class`` or ``full``.

Every course notebook has a ``preset`` parameter. ``auto`` (the default) picks what fits the
machine and the data: the CPU ``smoke`` preset on the synthetic faces (or on CI), so the whole
course executes in minutes anywhere; on real FER2013 the ``class`` preset without a CUDA GPU
(each model trains within a fixed budget, about 8 minutes on a 2-core laptop) and ``full`` with
one. Introduced in ``notebooks/01_data.ipynb``.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ..utils import in_ci

PRESETS: tuple[str, ...] = ("auto", "smoke", "class", "full")
"""The values a notebook's ``preset`` parameter accepts."""

PRESET_ENV = "FERCOURSE_PRESET"
"""Environment variable that decides what ``auto`` means (the nbval tests set it to ``smoke``)."""


def resolve_preset(preset: str = "auto", data: Any = None, *, verbose: bool = True) -> str:
    """Turn a notebook's ``preset`` parameter into ``"smoke"``, ``"class"`` or ``"full"``.

    An explicit preset is returned as it is. ``"auto"`` becomes ``$FERCOURSE_PRESET`` when that
    is set; else ``"smoke"`` for the synthetic faces or on CI (``fc.utils.in_ci()``); else, on
    real FER2013, ``"full"`` with a CUDA GPU and ``"class"`` without one.

    Args:
        preset: ``"auto"``, ``"smoke"``, ``"class"`` or ``"full"``.
        data: the loaded dataset (``fc.data.load_fer2013()``); only its ``synthetic`` flag is
            read. ``None`` counts as "no real FER2013".
        verbose: print one line saying what was chosen and why.

    Returns:
        ``"smoke"``, ``"class"`` or ``"full"``.

    Raises:
        ValueError: for any other preset name (also in ``$FERCOURSE_PRESET``).

    Example:
        >>> import fercourse as fc
        >>> fc.course.resolve_preset("smoke", verbose=False)
        'smoke'
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")
    if preset != "auto":
        chosen, why = preset, "asked for explicitly"
    elif os.environ.get(PRESET_ENV):
        chosen, why = os.environ[PRESET_ENV].strip().lower(), f"${PRESET_ENV} is set"
        if chosen not in PRESETS[1:]:
            raise ValueError(f"${PRESET_ENV}={chosen!r}; expected one of {', '.join(PRESETS[1:])}")
    elif data is None or getattr(data, "synthetic", True):
        chosen, why = "smoke", "no real FER2013 (synthetic faces)"
    elif in_ci():
        chosen, why = "smoke", "running on CI"
    elif torch.cuda.is_available():
        chosen, why = "full", "real FER2013 and a CUDA GPU"
    else:
        chosen, why = "class", "real FER2013 without a CUDA GPU: a time budget per model"
    if verbose:
        print(f"preset {preset!r} -> {chosen!r}: {why}")
    return chosen


def config_overrides(**values: Any) -> dict[str, Any]:
    """Keep the hyperparameters a notebook's parameters set: every value that is not ``None``.

    In a parameters cell ``None`` means "the preset's default" (``epochs = None``), so every other
    value is a real one, ``0`` included: ``patience=0`` turns early stopping off and
    ``warmup_epochs=0`` trains without a warm-up. This drops the ``None`` values and returns the
    rest for ``fc.TrainConfig.for_model(name, preset, **overrides)``. Introduced in
    ``notebooks/02_baseline.ipynb``.

    Example:
        >>> config_overrides(epochs=None, lr=1e-4, patience=0, optimizer=None)
        {'lr': 0.0001, 'patience': 0}
    """
    return {k: v for k, v in values.items() if v is not None}


def resolve_pretrained(choice: str = "auto") -> bool:
    """Decide whether ``vit_tiny`` starts from the ImageNet weights, and print why.

    Args:
        choice: ``"auto"`` (the weights when they can be had: a local file, the Hugging Face
            cache, or a reachable hub), ``"yes"`` (they must be had) or ``"no"``.

    Returns:
        ``True`` to build ``fc.create_model("vit_tiny", pretrained=True)``.

    Raises:
        ValueError: another ``choice``.
        RuntimeError, FileNotFoundError: ``"yes"`` and no weights (the message says how to get
            them without internet).
    """
    if choice not in ("auto", "yes", "no"):
        raise ValueError(f"pretrained must be 'auto', 'yes' or 'no', got {choice!r}")
    if choice == "no":
        print("pretrained='no': training ViT-Tiny from scratch")
        return False
    from ..models.vit_tiny import resolve_pretrained_file

    try:
        found = resolve_pretrained_file()
    except (RuntimeError, FileNotFoundError) as err:
        if choice == "yes":
            raise
        print(f"no ImageNet weights available, so training ViT-Tiny FROM SCRATCH: {err}")
        return False
    print(f"fine-tuning ViT-Tiny from the ImageNet weights ({found or 'downloaded from the hub'})")
    return True
