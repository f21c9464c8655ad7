"""Safe checkpoints: a safetensors state dict plus a JSON card that says what it is.

A checkpoint ``outputs/<run>/<model>/best`` is two files:

- ``best.safetensors``: the weights only (no pickle, so loading runs no code);
- ``best.json``: the model name and keyword arguments, class names, preprocessing, metrics, the
  split file's hash and the library versions.

:func:`load_checkpoint` rebuilds the architecture from the card and checks that the weights fit,
so a checkpoint can never be loaded into the wrong model silently. Training state for resuming
(optimizer, scheduler, RNG) is stored by ``fc.fit`` separately (``fercourse.training.state``), with
``torch.load(weights_only=True)``. Introduced in ``notebooks/02_baseline.ipynb``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save

from . import preprocessing
from .labels import EMOTIONS
from .utils import atomic_write_bytes, atomic_write_json, library_versions

WEIGHTS_SUFFIX = ".safetensors"
CARD_SUFFIX = ".json"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete, or does not fit the requested model."""


def _stem(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix in (WEIGHTS_SUFFIX, CARD_SUFFIX):
        path = path.with_suffix("")
    return path


def save_checkpoint(path: str | Path, model: torch.nn.Module, **card: Any) -> Path:
    """Save ``model``'s weights and a card describing them, atomically.

    Args:
        path: file stem, e.g. ``outputs/smoke/baseline_cnn/best`` (a suffix is ignored).
        model: a model from :func:`fercourse.models.create_model` (it carries ``model_name`` and
            ``model_kwargs``).
        **card: anything else to record (``metrics``, ``split_hash``, ``epoch``, ``config``...).

    Returns:
        The path of the ``.safetensors`` file.
    """
    stem = _stem(path)
    name = getattr(model, "model_name", None)
    if name is None:
        raise CheckpointError(
            f"{type(model).__name__} has no model_name; build models with fc.models.create_model()"
        )
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {
        "format": "fercourse-checkpoint/1",
        "model": name,
        "model_kwargs": dict(getattr(model, "model_kwargs", {})),
        "classes": list(EMOTIONS),
        "preprocessing": preprocessing.describe(),
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": library_versions(),
    }
    meta.update(card)
    weights = stem.with_suffix(WEIGHTS_SUFFIX)
    # Weights first, card second: a card on disk always describes complete weights.
    atomic_write_bytes(weights, save(state, metadata={"model": name}))
    atomic_write_json(stem.with_suffix(CARD_SUFFIX), meta)
    return weights


def read_card(path: str | Path) -> dict[str, Any]:
    """Return the JSON card of a checkpoint without loading its weights."""
    card = _stem(path).with_suffix(CARD_SUFFIX)
    if not card.is_file():
        raise CheckpointError(f"no checkpoint card at {card}")
    try:
        return json.loads(card.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{card} is not valid JSON: {exc}") from exc


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Load only the weights of a checkpoint (safetensors: no code is executed)."""
    weights = _stem(path).with_suffix(WEIGHTS_SUFFIX)
    if not weights.is_file():
        raise CheckpointError(f"no checkpoint weights at {weights}")
    return load_file(str(weights))


def load_weights_into(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model`` strictly, with an error that says what does not fit."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            parts.append(
                f"{len(wrong)} with another shape (e.g. {k}: {tuple(state[k].shape)} in the file, "
                f"{tuple(own[k].shape)} in the model)"
            )
        arch = getattr(model, "model_name", type(model).__name__)
        raise CheckpointError(
            f"checkpoint {source} does not fit model {arch!r}: " + "; ".join(parts)
        )
    model.load_state_dict(state, strict=True)


def load_checkpoint(
    path: str | Path, model: torch.nn.Module | None = None, *, map_location: str = "cpu"
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Load a checkpoint saved by :func:`save_checkpoint`.

    Args:
        path: the checkpoint stem or either of its two files.
        model: load into this model; by default the architecture is rebuilt from the card.
        map_location: device for the returned model.

    Returns:
        ``(model, card)`` with the model in eval mode.

    Raises:
        CheckpointError: missing files, or weights that do not fit the model (names the mismatch).
    """
    card = read_card(path)
    if card.get("classes", list(EMOTIONS)) != list(EMOTIONS):
        raise CheckpointError(
            f"checkpoint {_stem(path)} was trained with classes {card.get('classes')}, "
            f"fercourse uses {list(EMOTIONS)}"
        )
    if model is None:
        from .models import create_model

        model = create_model(card["model"], **card.get("model_kwargs", {}))
    load_weights_into(model, load_state_dict(path), str(_stem(path)))
    return model.to(map_location).eval(), card
