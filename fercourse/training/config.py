"""Training hyperparameters as one dataclass, with per-model defaults and presets.

A :class:`TrainConfig` is plain data: it prints, compares and saves as JSON (``asdict``), so the
``config.json`` next to every run says exactly how the weights were made. Every field is checked
when a config is made, in one place (:meth:`TrainConfig.__post_init__`): its type, from the
field's annotation (``int``, ``float``, ``bool``, ``str``, ``... | None``), then its range
(:data:`RANGES`), so ``--set lr=abc`` says ``TrainConfig.lr must be a number, got 'abc'``. Introduced in
``notebooks/02_baseline.ipynb``; the transformer defaults are discussed in
``notebooks/05_hybrid.ipynb`` and ``notebooks/07_vit.ipynb``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import numbers
import typing
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

OPTIMIZERS = ("adamw", "sgd")
SCHEDULERS = ("plateau", "cosine", "onecycle", "linear", "none")
MONITORS = ("val_acc", "val_loss")
AMP_MODES = ("auto", "native", "bf16", "fp16", "off")
PRESETS = ("full", "smoke", "class")
DISTILL_MODES = ("hard", "soft")

# What every model's recipe shares, per preset; each model registers what differs next to its
# builder (``fc.models.register_model(..., recipes={...})``, see ``fc.models.model_info``).
#
# `full`: the original project's recipe (the TrainConfig defaults: up to 50 epochs, AdamW,
# ReduceLROnPlateau, early stopping, class-weighted cross-entropy).
#
# `smoke`: a few epochs on a stratified subset, so a notebook trains in about a minute on 2 CPU
# cores and still shows a model learning (see notebooks/02_baseline.ipynb). A few hundred steps
# are too few for augmentation and class weights to pay off, so smoke turns both off and uses a
# one-cycle schedule (which warms up by itself, its first 30 %). Measured on the synthetic faces
# (1 thread, PrivateTest, majority class 25 %): with 1,200 faces at a peak rate of 5e-3 a CNN
# ended at the majority class or not depending on the batch order; with the subsets in the
# models' recipes (3,000 faces for the baseline, 1,000-2,000 for the slower CNNs) at 2e-3 the
# baseline reached 79 %, attention 73 %, specialists 55 %, multiscale 52 %. Like `class` it trains
# in bf16 autocast where the CPU has native bf16 (`amp="native"`): on a 2-core AVX512-BF16 Xeon
# that halved the CNNs' smoke epochs (the baseline's from 12.7 to 6.2 s) and they learned as well
# (PrivateTest 84 % vs 76 % for the baseline, 52 % vs 52 % for multiscale).
#
# `class`: real FER2013 on a laptop CPU within a class period: a wall-clock budget (8 minutes
# per model), the schedule sized to it and decaying to zero, label smoothing, the light
# augmentation (flips and small shifts, rotations and zooms; no brightness jitter or erasing), no
# class weights, bf16 autocast where the CPU has native bf16 and channels-last
# tensors (the README's "In a class period" has the measurements behind it).
PRESET_DEFAULTS: dict[str, dict[str, Any]] = {
    "full": {},
    "smoke": {
        "epochs": 4,
        "batch_size": 32,
        "scheduler": "onecycle",
        "augment": None,
        "class_weighted": False,
        "patience": 0,
        "warmup_epochs": 0,
        "amp": "native",
    },
    "class": {
        "budget_minutes": 8.0,
        "epochs": 100,
        "scheduler": "onecycle",
        "label_smoothing": 0.1,
        "augment_recipe": "light",
        "class_weighted": False,
        "patience": 0,
        "amp": "native",
        "channels_last": True,
    },
}


@dataclass
class TrainConfig:
    """Everything :func:`fercourse.training.fit` needs to know besides the model and the data.

    Build one with :meth:`for_model` (per-model defaults and a preset) rather than by hand.
    Introduced in ``notebooks/02_baseline.ipynb``.

    Attributes:
        epochs: maximum number of epochs (early stopping may end sooner).
        budget_minutes: train for this much wall-clock time: ``fc.fit`` measures the throughput
            first and sizes the schedule to the epochs that fit (at most ``epochs``), leaving
            room for the validation passes; ``None``: no budget.
        batch_size: images per training step.
        lr: peak learning rate.
        weight_decay: decoupled weight decay (AdamW) or L2 (SGD).
        optimizer: ``"adamw"`` or ``"sgd"`` (SGD uses ``momentum`` and ``nesterov``).
        momentum: SGD momentum.
        nesterov: Nesterov momentum for SGD (the strongest published FER2013 CNN recipe uses it).
        scheduler: ``"plateau"`` (ReduceLROnPlateau on the monitored value, once per epoch),
            ``"cosine"`` (cosine decay per step), ``"onecycle"`` (OneCycleLR per step),
            ``"linear"`` (warm-up, then linear decay to zero) or ``"none"``.
        warmup_epochs: linear warm-up from ``lr / steps`` to ``lr`` over this many epochs
            (``"onecycle"`` uses it as its rising phase).
        min_lr_factor: the cosine schedule decays to ``lr * min_lr_factor``.
        patience: early stopping: stop after this many epochs without improvement of
            ``monitor``; ``0`` turns early stopping off.
        monitor: ``"val_acc"`` (default: higher is better) or ``"val_loss"`` (lower is better);
            it picks the best epoch, drives early stopping and the plateau scheduler.
        min_delta: an improvement smaller than this does not count.
        plateau_factor: ReduceLROnPlateau multiplies the rate by this.
        plateau_patience: ReduceLROnPlateau waits this many epochs.
        label_smoothing: cross-entropy label smoothing (0 = off).
        class_weighted: weight the cross-entropy by inverse class frequency of the training
            split (``fc.data.class_weights``); FER2013 has 16x more happy than disgust faces.
        ema: decay of an exponential moving average of the weights (e.g. ``0.999``), or ``None``.
            With EMA, validation and the saved checkpoints use the averaged weights.
        mixup_alpha: MixUp Beta parameter (0 = off).
        cutmix_alpha: CutMix Beta parameter (0 = off); with both on, each batch picks one.
        augment: the training augmentation, passed to ``fc.data.make_loaders``: ``"batch"``
            (tensor ops on the device, default), ``"albumentations"`` (per image) or ``None``.
        augment_recipe: which augmentation (``fc.data.AUGMENT_RECIPES``): ``"standard"`` (flip,
            affine, brightness/contrast, an erased patch) or ``"light"`` (flip and affine).
        weighted_sampler: passed to ``fc.data.make_loaders`` (oversample rare classes).
        num_workers: DataLoader worker processes (0 is fastest on a 2-core machine).
        grad_clip: clip the gradient norm to this value, or ``None``.
        teacher: distil from this teacher (``fc.training.distill``): ``"default"`` (the bundled
            FER2013 model), a run folder or a checkpoint; ``None`` trains on the labels alone.
            The teacher must have been trained on this split's training faces only.
        distill: ``"hard"`` (the teacher's top class, DeiT's better variant) or ``"soft"``.
        distill_alpha: weight of the teacher's term; the labels get ``1 - distill_alpha``.
        distill_tau: softmax temperature of ``"soft"`` distillation.
        max_train_samples: train on a stratified subset of this size (``None`` = all).
        max_val_samples: validate on a stratified subset of this size (``None`` = all).
        checkpoint_every_steps: also save the resumable state every this many steps inside an
            epoch, so a run killed mid-epoch loses at most this many steps (0 = epoch ends
            only). ``None``: 200 on a CPU (minutes of work), 0 on a GPU (an epoch takes seconds).
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ...
        amp: ``"auto"`` (bf16 autocast on CUDA, off on CPU), ``"native"`` (as ``"auto"``, and
            bf16 on a CPU with native bf16: the ``smoke`` and ``class`` presets), ``"bf16"``,
            ``"fp16"`` or ``"off"``.
        channels_last: ``"auto"`` (on CUDA only), ``True`` or ``False``.
        compile: wrap the model in ``torch.compile`` for training (worth it on a GPU only).
        deterministic: deterministic kernels and no cuDNN autotuning (bit-identical on CPU).
        seed: seeds the split, the subset, the batch order and every random draw.
        preset: the preset this config came from (recorded for the reader, not used).
    """

    epochs: int = 50
    budget_minutes: float | None = None
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    momentum: float = 0.9
    nesterov: bool = True
    scheduler: str = "plateau"
    warmup_epochs: int = 0
    min_lr_factor: float = 0.01
    patience: int = 10
    monitor: str = "val_acc"
    min_delta: float = 0.0
    plateau_factor: float = 0.5
    plateau_patience: int = 5
    label_smoothing: float = 0.0
    class_weighted: bool = True
    ema: float | None = None
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    augment: str | None = "batch"
    augment_recipe: str = "standard"
    weighted_sampler: bool = False
    num_workers: int = 0
    grad_clip: float | None = None
    teacher: str | None = None
    distill: str = "hard"
    distill_alpha: float = 0.5
    distill_tau: float = 1.0
    max_train_samples: int | None = None
    max_val_samples: int | None = None
    checkpoint_every_steps: int | None = None
    device: str = "auto"
    amp: str = "auto"
    channels_last: bool | str = "auto"
    compile: bool = False
    deterministic: bool = True
    seed: int = 0
    preset: str = "full"

    RESUME_IGNORED: ClassVar[tuple[str, ...]] = (
        "checkpoint_every_steps",
        "num_workers",
        "device",
        "compile",
    )
    """Fields that may differ when a run is resumed: they change speed, not the result."""

    def __post_init__(self) -> None:
        # The one place where values are checked: types first (from the annotations), then the
        # choices and ranges; every message names the field and the value.
        # The augmentation choices belong to the data room; imported here, not with this module,
        # so `import fercourse.training` does not pull in albumentations and OpenCV.
        from ..data.augment import AUGMENT_RECIPES
        from ..data.loaders import AUGMENT_MODES

        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            setattr(self, f.name, _typed(f.name, getattr(self, f.name), hints[f.name]))
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("scheduler", self.scheduler, SCHEDULERS)
        _check_choice("monitor", self.monitor, MONITORS)
        _check_choice("amp", self.amp, AMP_MODES)
        _check_choice("preset", self.preset, PRESETS)
        _check_choice("augment", self.augment, AUGMENT_MODES)
        _check_choice("augment_recipe", self.augment_recipe, tuple(AUGMENT_RECIPES))
        _check_choice("distill", self.distill, DISTILL_MODES)
        if self.channels_last not in (True, False, "auto"):
            raise ValueError(
                f"TrainConfig.channels_last must be true, false or 'auto', "
                f"got {self.channels_last!r}"
            )
        for name, (ok, allowed) in RANGES.items():
            value = getattr(self, name)
            if value is not None and not ok(value):
                raise ValueError(f"TrainConfig.{name} must be {allowed}, got {value!r}")

    @classmethod
    def for_model(cls, name: str, preset: str = "full", **overrides: Any) -> TrainConfig:
        """The recommended config for a model, optionally shrunk by a preset.

        Args:
            name: a model name from ``fc.models.list_models()``.
            preset: ``"full"`` (the original project's recipe: batch 64, up to 50 epochs, AdamW,
                ReduceLROnPlateau, early stopping, class-weighted cross-entropy), ``"smoke"``
                (4 epochs on a stratified subset, 3,000 training images for the baseline and
                fewer for the slower models, one-cycle schedule, no augmentation or class
                weights, bf16 where the CPU has it: about a minute on 2 CPU cores) or
                ``"class"`` (real FER2013 on a CPU in a class period: an 8-minute budget,
                one-cycle, label smoothing, bf16 where the CPU has it). The model's own values come from its registered recipe
                (``fc.models.model_info(name).recipes``).
            **overrides: any field of :class:`TrainConfig`; applied last.

        Returns:
            A new :class:`TrainConfig`.

        Raises:
            ValueError: an unknown model, preset or field name, or an invalid value.

        Example:
            >>> cfg = TrainConfig.for_model("vit_tiny", preset="smoke", label_smoothing=0.1)
            >>> cfg.lr, cfg.epochs, cfg.scheduler, cfg.label_smoothing
            (0.001, 4, 'onecycle', 0.1)
        """
        from ..models import model_info

        _check_choice("preset", preset, PRESETS)
        recipes = model_info(name).recipes
        if preset not in recipes:
            raise ValueError(
                f"model {name!r} registers no {preset!r} recipe (it has: "
                f"{', '.join(recipes) or 'none'}); add one to its register_model(recipes=...) or "
                "build a TrainConfig(...) yourself"
            )
        values: dict[str, Any] = dict(PRESET_DEFAULTS[preset])
        values.update(recipes[preset])
        values["preset"] = preset
        cls._check_names(overrides)
        values.update(overrides)
        return cls(**values)

    def replace(self, **overrides: Any) -> TrainConfig:
        """A copy with some fields changed (unknown names are an error)."""
        self._check_names(overrides)
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Rebuild a config from :meth:`to_dict` (e.g. a run's ``config.json``)."""
        cls._check_names(values)
        return cls(**values)

    def differences(self, other: dict[str, Any] | TrainConfig) -> dict[str, tuple[Any, Any]]:
        """Fields that differ from ``other`` (ignoring :attr:`RESUME_IGNORED`): name -> (other, self)."""
        theirs = other.to_dict() if isinstance(other, TrainConfig) else dict(other)
        ours = self.to_dict()
        return {
            k: (theirs.get(k, "<missing>"), v)
            for k, v in ours.items()
            if k not in self.RESUME_IGNORED and theirs.get(k, "<missing>") != v
        }

    @classmethod
    def field_names(cls) -> list[str]:
        """Names of the config's fields."""
        return [f.name for f in fields(cls)]

    @classmethod
    def _check_names(cls, values: dict[str, Any]) -> None:
        known = cls.field_names()
        for key in values:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(
                    f"unknown TrainConfig field {key!r}{hint}; fields: {', '.join(known)}"
                )


def parse_overrides(
    pairs: list[str], check: type[TrainConfig] | None = TrainConfig
) -> dict[str, Any]:
    """Parse command-line ``key=value`` strings into typed config overrides.

    Values are read as JSON where possible (``1e-3``, ``true``, ``null``), ``none`` means ``None``,
    anything else stays a string. Used by ``python -m fercourse train --set lr=3e-4`` (and, with
    ``check=None``, by ``--model-set distilled=true`` for the model's own keyword arguments).

    Raises:
        ValueError: a pair without ``=`` or an unknown field name.
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise ValueError(f"expected key=value, got {pair!r}")
        key = key.strip().replace("-", "_")
        raw = raw.strip()
        if raw.lower() in ("none", "null"):
            value: Any = None
        else:
            try:
                value = json.loads(raw.lower() if raw.lower() in ("true", "false") else raw)
            except json.JSONDecodeError:
                value = raw
        out[key] = value
    if check is not None:
        check._check_names(out)
    return out


RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "epochs": (lambda v: v >= 1, "at least 1"),
    "batch_size": (lambda v: v >= 1, "at least 1"),
    "lr": (lambda v: v > 0, "positive"),
    "weight_decay": (lambda v: v >= 0, "0 or more"),
    "momentum": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "warmup_epochs": (lambda v: v >= 0, "0 or more"),
    "min_lr_factor": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "patience": (lambda v: v >= 0, "0 or more (0: no early stopping)"),
    "min_delta": (lambda v: v >= 0, "0 or more"),
    "plateau_factor": (lambda v: 0 < v < 1, "in (0, 1)"),
    "plateau_patience": (lambda v: v >= 0, "0 or more"),
    "label_smoothing": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "ema": (lambda v: 0 < v < 1, "a decay in (0, 1) or None"),
    "mixup_alpha": (lambda v: v >= 0, "0 or more (0: off)"),
    "cutmix_alpha": (lambda v: v >= 0, "0 or more (0: off)"),
    "num_workers": (lambda v: v >= 0, "0 or more"),
    "grad_clip": (lambda v: v > 0, "positive or None"),
    "max_train_samples": (lambda v: v >= 1, "at least 1 or None (all)"),
    "max_val_samples": (lambda v: v >= 1, "at least 1 or None (all)"),
    "checkpoint_every_steps": (lambda v: v >= 0, "0 or more, or None"),
    "seed": (lambda v: v >= 0, "0 or more"),
    "budget_minutes": (lambda v: v > 0, "positive, or None (no budget)"),
    "distill_alpha": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "distill_tau": (lambda v: v > 0, "positive"),
}
"""Field -> (test, what the message says is allowed); checked after the types, None passes."""

_KIND_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _typed(name: str, value: Any, hint: Any) -> Any:
    """``value`` checked against the field's annotation (ints become floats for float fields).

    bool is not an int here (``epochs=True`` is refused), a float is not an int (``8.5`` and
    ``8.0`` are refused for ``batch_size``), and a string is never converted: ``"yes"`` is not a
    bool and ``"1e-4"`` is not a number (:func:`parse_overrides` reads command-line text).
    """
    kinds = typing.get_args(hint) or (hint,)
    for kind in kinds:
        if kind is type(None) and value is None:
            return None
        if kind is bool and isinstance(value, bool):
            return value
        if kind is int and isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
        if kind is float and isinstance(value, numbers.Real) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ValueError(f"TrainConfig.{name} must be a finite number, got {value!r}")
            return float(value)
        if kind is str and isinstance(value, str):
            return value
    wanted = " or ".join(_KIND_NAMES.get(k, "None") for k in kinds)
    note = ""
    if isinstance(value, str) and _looks_numeric(value):
        note = " (a string: give it as a number, without quotes)"
    raise ValueError(f"TrainConfig.{name} must be {wanted}, got {value!r}{note}")


def _looks_numeric(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _check_choice(name: str, value: Any, choices: tuple[str | None, ...]) -> None:
    if value not in choices:
        shown = ", ".join("None" if c is None else c for c in choices)
        raise ValueError(f"TrainConfig.{name} must be one of {shown}; got {value!r}")
