"""Safe checkpoints: a safetensors state dict plus a JSON card that says what it is.

A checkpoint ``outputs/<run>/<model>/best`` is two files:

- ``best.safetensors``: the weights only (no pickle, so loading runs no code);
- ``best.json``: the model name and keyword arguments, class names, preprocessing, metrics, the
  split file's hash and the library versions.

:func:`load_checkpoint` rebuilds the architecture from the card and checks that the weights fit,
so a checkpoint can never be loaded into the wrong model silently; a damaged file, a card that
does not say what to build, or weights that are not finite raise :class:`CheckpointError`
naming the file and what is wrong. Training state for resuming (optimizer, scheduler, RNG) is
stored by ``fc.fit`` separately (``fercourse.training.state``), with
``torch.load(weights_only=True)``. Introduced in ``notebooks/02_baseline.ipynb``.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from . import preprocessing
from .labels import EMOTIONS
from .utils import atomic_write_bytes, atomic_write_json, library_versions

WEIGHTS_SUFFIX = ".safetensors"
CARD_SUFFIX = ".json"

DEFAULT_MODEL_STEM: Path = Path(__file__).resolve().parent / "inference" / "default_model" / "model"
"""The checkpoint bundled with the package (trained on FER2013): ``fc.EmotionModel.load("default")``
and the teacher ``"default"`` of ``fc.fit`` (``TrainConfig.teacher``) read it."""


class CheckpointError(RuntimeError):
    """A checkpoint is missing, damaged, incomplete, or does not fit the requested model.

    The message names the file and what is wrong with it.
    """


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
    """Return the JSON card of a checkpoint without loading its weights.

    Raises:
        CheckpointError: no card, or one that is not a JSON object (the message names the file).
    """
    card = _stem(path).with_suffix(CARD_SUFFIX)
    if not card.is_file():
        raise CheckpointError(f"no checkpoint card at {card}")
    try:
        meta = json.loads(card.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{card} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise CheckpointError(
            f"{card}: the card is a JSON {type(meta).__name__}, expected an object such as "
            '{"model": "baseline_cnn", "model_kwargs": {}, ...}'
        )
    return meta


def check_card(card: dict[str, Any], source: str | Path) -> None:
    """Check that a card says what to build and how to use it, before any weights are read.

    Args:
        card: the card (from :func:`read_card`).
        source: the card's file, for the message.

    Raises:
        CheckpointError: naming ``source`` and the field: ``model`` missing or not a registered
            model name, ``model_kwargs`` not an object, ``classes`` not fercourse's, or
            ``temperature`` not a positive number.
    """
    from .models import list_models

    name = card.get("model")
    if name is None:
        raise CheckpointError(f'{source}: the card has no "model" (the architecture to build)')
    known = list_models()
    if not isinstance(name, str) or name not in known:
        raise CheckpointError(
            f"{source}: unknown model {name!r} in the card; fercourse builds {', '.join(known)}"
        )
    kwargs = card.get("model_kwargs", {})
    if not isinstance(kwargs, dict):
        raise CheckpointError(
            f'{source}: "model_kwargs" must be an object of keyword arguments, '
            f"got a {type(kwargs).__name__}: {kwargs!r}"
        )
    if card.get("classes", list(EMOTIONS)) != list(EMOTIONS):
        raise CheckpointError(
            f"{source}: the checkpoint was trained with classes {card.get('classes')}, fercourse uses "
            f"{list(EMOTIONS)}"
        )
    card_temperature(card, source)


def card_temperature(card: dict[str, Any], source: str | Path) -> float:
    """The card's softmax temperature (1.0 when it records none), checked.

    Raises:
        CheckpointError: the temperature is not a finite number above 0 (a negative one would
            turn the probabilities upside down: the least likely emotion would win).
    """
    value = card.get("temperature")
    if value is None:
        return 1.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CheckpointError(f"{source}: temperature must be a number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise CheckpointError(
            f"{source}: temperature must be a finite number above 0, got {value!r} "
            "(fc.evaluation.fit_temperature finds one)"
        )
    return float(value)


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Load only the weights of a checkpoint (safetensors: no code is executed).

    Raises:
        CheckpointError: the file is missing, damaged (empty, truncated, a cut header), or holds
            weights that are not finite (NaN or infinity); the message names the file.
    """
    weights = _stem(path).with_suffix(WEIGHTS_SUFFIX)
    if not weights.is_file():
        raise CheckpointError(f"no checkpoint weights at {weights}")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        size = weights.stat().st_size
        raise CheckpointError(
            f"{weights}: damaged weights file ({size} bytes; safetensors: {exc}); "
            "it was probably cut short while copying: copy or train it again"
        ) from None
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise CheckpointError(
                f"{weights}: {bad} of {tensor.numel()} values of {key!r} are NaN or infinite "
                "(the training run diverged?); these weights cannot predict anything"
            )
    return state


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
        CheckpointError: missing or damaged files, a card that does not say what to build (see
            :func:`check_card`), non-finite weights, or weights that do not fit the model. The
            message names the file and the mismatch.
    """
    card = read_card(path)
    card_file = _stem(path).with_suffix(CARD_SUFFIX)
    check_card(card, card_file)
    if model is None:
        from .models import create_model

        kwargs = card.get("model_kwargs", {})
        try:
            model = create_model(card["model"], **kwargs)
        except (TypeError, ValueError) as exc:  # kwargs the builder does not take
            raise CheckpointError(
                f"{card_file}: cannot build {card['model']!r} with model_kwargs {kwargs}: {exc}"
            ) from None
    load_weights_into(model, load_state_dict(path), str(_stem(path)))
    return model.to(map_location).eval(), card
