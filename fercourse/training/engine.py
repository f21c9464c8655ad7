"""The training loop: ``fc.fit(model, data, config) -> History``, resumable at any point.

One run lives in one folder (default ``outputs/runs/<model>``)::

    best.safetensors  best.json     the weights of the best validation epoch, with their card
    last.safetensors  last.json     the weights after the latest finished epoch
    train_state.pt                  everything needed to continue (weights, optimizer, scheduler,
                                    EMA, RNG states, early stopping, history, position in epoch)
    history.json  history.csv       per-epoch metrics
    config.json                     the config, split, data source, device and library versions

``train_state.pt`` is written atomically at the end of every epoch and every
``config.checkpoint_every_steps`` steps, and holds tensors and plain containers only (it loads
with ``torch.load(weights_only=True)``). Each epoch's batch order and augmentation are seeded from
``(config.seed, epoch)``, so a run killed at any moment, even by SIGKILL in the middle of an
epoch, continues from the last saved step and, on a CPU, ends with bit-identical weights to a run
that was never interrupted. Introduced in ``notebooks/02_baseline.ipynb``.
"""

from __future__ import annotations

import io
import math
import os
import random
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR, ReduceLROnPlateau

from .. import checkpoint as ckpt
from ..evaluation.metrics import _view_logits, data_info
from ..evaluation.runtime import Runtime, resolve_runtime
from ..utils import (
    atomic_write_bytes,
    atomic_write_json,
    in_ci,
    library_versions,
    outputs_dir,
    seed_everything,
)
from .config import TrainConfig
from .history import HISTORY_CSV, HISTORY_JSON, History

if TYPE_CHECKING:
    from ..data import FER2013, Split

TRAIN_STATE = "train_state.pt"
CONFIG_FILE = "config.json"
BEST, LAST = "best", "last"
RUN_FILES = (
    f"{BEST}{ckpt.WEIGHTS_SUFFIX}",
    f"{BEST}{ckpt.CARD_SUFFIX}",
    f"{LAST}{ckpt.WEIGHTS_SUFFIX}",
    f"{LAST}{ckpt.CARD_SUFFIX}",
    TRAIN_STATE,
    HISTORY_JSON,
    HISTORY_CSV,
    CONFIG_FILE,
)
STATE_FORMAT = "fercourse-train-state/1"
DEFAULT_CHECKPOINT_STEPS_CPU = 200
"""``checkpoint_every_steps=None`` on a CPU: a mid-epoch save every 200 steps (minutes of work)."""
SELECTED_ON = "val"
"""Where fercourse picks the best epoch: ``val``, carved from Training (never a test split)."""


class ResumeError(RuntimeError):
    """An existing run folder does not belong to this model, config or split."""


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def default_run_dir(model_name: str) -> Path:
    """Where :func:`fit` writes a run by default: ``outputs/runs/<model_name>``."""
    return outputs_dir() / "runs" / model_name


def fit(
    model: nn.Module,
    data: FER2013,
    config: TrainConfig | None = None,
    *,
    split: Split | None = None,
    out_dir: str | Path | None = None,
    resume: bool = True,
    progress: bool | None = None,
) -> History:
    """Train ``model`` on the training part of ``data``, choosing the best epoch on ``val``.

    The loss is (class-weighted, optionally label-smoothed) cross-entropy; validation accuracy
    (or loss, see ``config.monitor``) picks the best epoch, drives early stopping and the plateau
    scheduler. The test splits are never looked at. When training ends the model holds the best
    epoch's weights (the EMA weights when ``config.ema`` is set).

    Args:
        model: a model from ``fc.models.create_model`` (it must carry ``model_name``).
        data: the dataset, e.g. ``fc.data.load_fer2013()``.
        config: hyperparameters (default ``TrainConfig.for_model(model.model_name)``).
        split: train/val/test indices (default ``fc.data.make_split(data, seed=config.seed)``).
        out_dir: the run folder (default ``outputs/runs/<model_name>``).
        resume: continue the run saved in ``out_dir`` if there is one (a finished run is
            returned as it is, without training). ``False`` deletes that run's files and starts
            afresh. Resuming with another model, split or config (other than
            ``TrainConfig.RESUME_IGNORED``) raises :class:`ResumeError`.
        progress: tqdm progress bars. ``None``: on in a notebook or a terminal, off in CI and when
            ``FERCOURSE_PROGRESS=0`` (set it for papermill runs). Without bars, one line per
            epoch is printed instead.

    Returns:
        The :class:`History` of per-epoch metrics.

    Raises:
        ResumeError: ``out_dir`` holds another run.
        ValueError: a model without ``model_name`` or an empty split.

    Example:
        >>> import fercourse as fc
        >>> data = fc.data.load_fer2013()
        >>> model = fc.models.create_model("baseline_cnn")
        >>> config = fc.TrainConfig.for_model("baseline_cnn", preset="smoke")
        >>> history = fc.fit(model, data, config)  # doctest: +SKIP
        >>> history.best_val_acc  # doctest: +SKIP
        0.61
    """
    name = getattr(model, "model_name", None)
    if not name:
        raise ValueError(
            f"{type(model).__name__} has no model_name: build it with fc.models.create_model(name)"
        )
    config = config if config is not None else TrainConfig.for_model(name)
    if split is None:
        from ..data import make_split

        split = make_split(data, seed=config.seed)
    out = Path(out_dir) if out_dir is not None else default_run_dir(name)
    trainer = _Trainer(model, data, config, split, out, _progress_enabled(progress))
    return trainer.run(resume)


@dataclass
class Run:
    """A trained run loaded from its folder by :func:`load_run`.

    Attributes:
        model: the checkpoint's model, in eval mode.
        card: the checkpoint's JSON card (metrics, epoch, config, split hash, versions...).
        history: the run's :class:`History` (``None`` if the folder has none).
        path: the run folder.
    """

    model: nn.Module
    card: dict[str, Any]
    history: History | None
    path: Path


def load_run(path: str | Path, which: str = BEST, *, map_location: str = "cpu") -> Run:
    """Load a run folder written by :func:`fit`.

    Args:
        path: the run folder, or one of its checkpoint files.
        which: ``"best"`` or ``"last"``.
        map_location: device of the returned model.

    Returns:
        A :class:`Run`; ``run.model.selected_on`` says where the checkpoint was chosen.

    Example:
        >>> run = fc.training.load_run("outputs/runs/baseline_cnn")  # doctest: +SKIP
        >>> fc.evaluate(run.model, data, save_to=run.path)  # doctest: +SKIP
    """
    path = Path(path)
    if path.suffix in (ckpt.WEIGHTS_SUFFIX, ckpt.CARD_SUFFIX):
        path, which = path.parent, path.stem
    if which not in (BEST, LAST):
        raise ValueError(f"which must be 'best' or 'last', got {which!r}")
    if not (path / f"{which}{ckpt.CARD_SUFFIX}").is_file():
        raise FileNotFoundError(f"no {which} checkpoint in {path} (expected {which}.json)")
    model, card = ckpt.load_checkpoint(path / which, map_location=map_location)
    model.selected_on = card.get("selected_on")
    history = History.load(path) if (path / HISTORY_JSON).is_file() else None
    return Run(model=model, card=card, history=history, path=path)


def find_runs(model: str | None = None, root: str | Path | None = None) -> list[Path]:
    """Run folders (holding ``best.json``) under ``root`` (default ``outputs/``), best first.

    Args:
        model: keep only runs of this model name.
        root: where to look.

    Returns:
        Folders sorted by their best validation accuracy, highest first.
    """
    root = Path(root) if root is not None else outputs_dir()
    found = []
    for card_path in root.rglob(f"{BEST}{ckpt.CARD_SUFFIX}"):
        try:
            card = ckpt.read_card(card_path)
        except ckpt.CheckpointError:
            continue
        if model is None or card.get("model") == model:
            found.append((float(card.get("metrics", {}).get("val_acc", 0.0)), card_path.parent))
    return [p for _, p in sorted(found, key=lambda t: (-t[0], str(t[1])))]


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _progress_enabled(progress: bool | None) -> bool:
    if progress is not None:
        return bool(progress)
    env = os.environ.get("FERCOURSE_PROGRESS", "").strip().lower()
    if env:
        return env not in ("0", "false", "no", "off")
    if in_ci():
        return False
    try:  # a Jupyter kernel: tqdm.auto draws a widget that updates in place
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None and type(shell).__name__ == "ZMQInteractiveShell":
            return True
    except ImportError:  # pragma: no cover - IPython ships with Jupyter
        pass
    return sys.stderr.isatty()


def _epoch_seed(seed: int, epoch: int) -> int:
    """A seed for one epoch, recomputable from (seed, epoch) alone (that is what makes resume exact)."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def _rng_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        # weights_only loading accepts tensors and plain containers, not NumPy arrays.
        "numpy": (
            name,
            torch.from_numpy(keys.astype(np.int64)),
            int(pos),
            int(has_gauss),
            float(cached),
        ),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    from timm.optim import param_groups_weight_decay

    # No weight decay on biases and normalisation weights (standard for both CNNs and ViTs).
    groups = param_groups_weight_decay(model, config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov
        )
    return torch.optim.AdamW(groups, lr=config.lr)


class _Schedule:
    """The learning-rate schedule: warm-up and a per-step or per-epoch scheduler.

    Per step: LambdaLR (warm-up, cosine) or OneCycleLR. Per epoch: ReduceLROnPlateau, after the
    warm-up. Every piece is a torch scheduler, so its state_dict is what resume needs.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int):
        warmup = config.warmup_epochs * steps_per_epoch
        total = config.epochs * steps_per_epoch
        self.warmup_epochs = config.warmup_epochs
        self.step_limit: int | None = None
        self.per_step: LRScheduler | None = None
        self.plateau: ReduceLROnPlateau | None = None
        if config.scheduler == "onecycle":
            pct = min(max(warmup / total, 0.01), 0.99) if warmup else 0.3
            self.per_step = OneCycleLR(
                optimizer, max_lr=config.lr, total_steps=total, pct_start=pct
            )
            self.step_limit = total
        elif config.scheduler == "cosine":
            floor = config.min_lr_factor

            def cosine(step: int) -> float:
                if step < warmup:
                    return (step + 1) / warmup
                progress = (step - warmup) / max(1, total - warmup)
                return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

            self.per_step = LambdaLR(optimizer, cosine)
        elif warmup:
            # Linear warm-up, then leave the rate to the plateau scheduler (or constant).
            self.per_step = LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
            self.step_limit = warmup
        if config.scheduler == "plateau":
            self.plateau = ReduceLROnPlateau(
                optimizer,
                mode="max" if config.monitor == "val_acc" else "min",
                factor=config.plateau_factor,
                patience=config.plateau_patience,
            )

    def after_step(self) -> None:
        if self.per_step is None:
            return
        if self.step_limit is None or self.per_step.last_epoch < self.step_limit:
            self.per_step.step()

    def after_epoch(self, epochs_done: int, value: float) -> None:
        if self.plateau is not None and epochs_done >= self.warmup_epochs:
            self.plateau.step(value)

    def state_dict(self) -> dict[str, Any]:
        return {
            "per_step": self.per_step.state_dict() if self.per_step else None,
            "plateau": self.plateau.state_dict() if self.plateau else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.per_step is not None and state.get("per_step") is not None:
            self.per_step.load_state_dict(state["per_step"])
        if self.plateau is not None and state.get("plateau") is not None:
            self.plateau.load_state_dict(state["plateau"])


class _EarlyStopping:
    """Counts epochs without improvement of the monitored value."""

    def __init__(self, monitor: str, patience: int, min_delta: float):
        self.maximize = monitor == "val_acc"
        self.patience, self.min_delta = patience, min_delta
        self.best = -math.inf if self.maximize else math.inf
        self.bad_epochs = 0

    def update(self, value: float) -> bool:
        """Record an epoch's value; True when it is a new best."""
        better = (
            value > self.best + self.min_delta
            if self.maximize
            else value < self.best - self.min_delta
        )
        if better:
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
        return better

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": float(self.best), "bad_epochs": int(self.bad_epochs)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.bad_epochs = float(state["best"]), int(state["bad_epochs"])


def _make_mix(config: TrainConfig) -> Callable[[torch.Tensor, torch.Tensor], tuple] | None:
    """torchvision's batched MixUp / CutMix (soft targets), or None when both are off."""
    if not (config.mixup_alpha or config.cutmix_alpha):
        return None
    from torchvision.transforms import v2

    from ..labels import NUM_CLASSES

    ops = []
    if config.mixup_alpha:
        ops.append(v2.MixUp(alpha=config.mixup_alpha, num_classes=NUM_CLASSES))
    if config.cutmix_alpha:
        ops.append(v2.CutMix(alpha=config.cutmix_alpha, num_classes=NUM_CLASSES))
    return ops[0] if len(ops) == 1 else v2.RandomChoice(ops)


def _save_torch(path: Path, obj: Any) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_train_state(out_dir: str | Path) -> dict[str, Any] | None:
    """The resumable state of a run folder (``None`` if there is none), loaded weights-only."""
    path = Path(out_dir) / TRAIN_STATE
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: say which, do not guess
        raise ResumeError(f"cannot read {path} ({exc}); delete it or pass resume=False") from exc
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ResumeError(f"{path} is not a fercourse training state; pass resume=False")
    return state


def _cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


# --------------------------------------------------------------------------------------------
# The trainer
# --------------------------------------------------------------------------------------------


class _Trainer:
    """One call of :func:`fit`: builds everything, restores a saved state, runs the epochs."""

    def __init__(
        self,
        model: nn.Module,
        data: FER2013,
        config: TrainConfig,
        split: Split,
        out: Path,
        progress: bool,
    ) -> None:
        self.model, self.data, self.config, self.split, self.out = model, data, config, split, out
        self.progress = progress
        self.name: str = model.model_name
        # Where the weights started: "scratch", or the pretrained weights the model was built with.
        pretrained_from = getattr(model, "pretrained_from", None)
        self.init = f"pretrained: {pretrained_from}" if pretrained_from else "scratch"
        self.identity = {
            "model": self.name,
            "model_kwargs": dict(getattr(model, "model_kwargs", {})),
            "split_hash": str(getattr(split, "hash", "")),
            "init": self.init,
            "config": config.to_dict(),
        }

    # ---- bookkeeping -------------------------------------------------------------------------

    def _check_same_run(self, state: dict[str, Any]) -> None:
        where = self.out / TRAIN_STATE
        hint = "pass resume=False to start afresh (deletes that run) or choose another out_dir"
        for key in ("model", "model_kwargs", "split_hash"):
            if key == "split_hash" and _same_split(self.split, state.get(key)):
                continue  # also a run saved with its split file's hash (earlier versions)
            if state.get(key) != self.identity[key]:
                raise ResumeError(
                    f"{where} belongs to another run: {key} is {state.get(key)!r} there, "
                    f"{self.identity[key]!r} here; {hint}"
                )
        if state.get("init", self.init) != self.init:  # states of earlier versions lack it
            raise ResumeError(
                f"{where} started from {state['init']!r}, this model from {self.init!r}; {hint}"
            )
        diff = self.config.differences(state.get("config", {}))
        if diff:
            shown = "; ".join(f"{k}: {old!r} there, {new!r} here" for k, (old, new) in diff.items())
            raise ResumeError(f"{where} was trained with another config ({shown}); {hint}")

    def _clear_run(self) -> None:
        for name in RUN_FILES:
            (self.out / name).unlink(missing_ok=True)

    def _card(self, epoch: int, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "metrics": {k: v for k, v in row.items() if k not in ("epoch", "seconds")},
            "epoch": epoch,
            "selected_on": SELECTED_ON,
            "monitor": self.config.monitor,
            "ema": self.config.ema,
            "config": self.config.to_dict(),
            "split_hash": self.identity["split_hash"],
            "split_path": str(getattr(self.split, "path", "") or ""),
            "init": self.init,
            "train_samples": len(self.train_idx),
            "val_samples": len(self.val_idx),
            "data": data_info(self.data),
        }

    def _write_config(self, runtime: Runtime) -> None:
        atomic_write_json(
            self.out / CONFIG_FILE,
            {
                "model": self.name,
                "model_kwargs": self.identity["model_kwargs"],
                "init": self.init,
                "config": self.config.to_dict(),
                "split": {
                    "hash": self.identity["split_hash"],
                    "path": str(getattr(self.split, "path", "") or ""),
                    "train": len(self.train_idx),
                    "val": len(self.val_idx),
                    "selected_on": SELECTED_ON,
                },
                "data": {**data_info(self.data), "n": len(self.data)},
                "runtime": runtime.describe(),
                "versions": library_versions(),
            },
        )

    def _save_state(self, *, finished: bool = False) -> None:
        state = {
            "format": STATE_FORMAT,
            **self.identity,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "finished": finished,
            "model_state": _cpu_state(self.model),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "stopper": self.stopper.state_dict(),
            "accum": {k: float(v) for k, v in self.accum.items()},
            "rng": _rng_state(),
            "history": self.history.to_dict(),
        }
        _save_torch(self.out / TRAIN_STATE, state)

    def _restore(self, state: dict[str, Any]) -> None:
        ckpt.load_weights_into(self.model, state["model_state"], str(self.out / TRAIN_STATE))
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        self.stopper.load_state_dict(state["stopper"])
        self.history = History.from_dict(state["history"])
        self.epoch, self.step_in_epoch = int(state["epoch"]), int(state["step_in_epoch"])
        self.global_step = int(state["global_step"])
        self.accum = dict(state["accum"])
        self.saved_rng = state["rng"]

    def _finish(self) -> History:
        # The model leaves fit() holding the best epoch's weights (EMA weights when enabled).
        best = self.out / BEST
        if (best.with_suffix(ckpt.WEIGHTS_SUFFIX)).is_file():
            ckpt.load_weights_into(self.model, ckpt.load_state_dict(best), str(best))
        self.model.selected_on = SELECTED_ON
        return self.history

    # ---- the loop ----------------------------------------------------------------------------

    def run(self, resume: bool) -> History:
        config = self.config
        state = load_train_state(self.out) if resume else None
        if state is not None:
            self._check_same_run(state)
            if state.get("finished"):
                self.history = History.from_dict(state["history"])
                return self._finish()
        elif not resume:
            self._clear_run()

        seed_everything(config.seed)
        runtime = resolve_runtime(config.device, config.amp, config.channels_last)
        if runtime.device.type == "cuda":
            # Autotuning picks kernels by timing, which breaks run-to-run reproducibility.
            torch.backends.cudnn.benchmark = not config.deterministic
        if config.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

        if config.weighted_sampler and config.class_weighted:
            warnings.warn(
                "weighted_sampler=True and class_weighted=True correct the class imbalance twice; "
                "set class_weighted=False with the sampler",
                stacklevel=3,
            )
        from ..data import class_weights, make_loaders

        loaders = make_loaders(
            self.data,
            self.split,
            batch_size=config.batch_size,
            augment=config.augment,
            weighted_sampler=config.weighted_sampler,
            device=runtime.device,
            seed=config.seed,
            # The smoke preset's stratified subsets; the test parts are never touched here.
            max_per_split={"train": config.max_train_samples, "val": config.max_val_samples},
            num_workers=config.num_workers,
        )
        train_loader, val_loader = loaders.train, loaders.val
        self.train_idx, self.val_idx = loaders.train.indices, loaders.val.indices
        if len(self.train_idx) == 0 or len(self.val_idx) == 0:
            raise ValueError(
                f"empty training ({len(self.train_idx)}) or validation ({len(self.val_idx)}) split"
            )
        steps_per_epoch = len(train_loader)
        labels = np.asarray(self.data.labels)

        weight = class_weights(labels[self.train_idx]).float() if config.class_weighted else None
        criterion = nn.CrossEntropyLoss(
            weight=None if weight is None else weight.to(runtime.device),
            label_smoothing=config.label_smoothing,
        )
        runtime.prepare(self.model)
        self.optimizer = _make_optimizer(self.model, config)
        self.schedule = _Schedule(self.optimizer, config, steps_per_epoch)
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=runtime.device.type == "cuda" and runtime.amp_dtype == torch.float16
        )
        self.ema = None
        if config.ema is not None:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            # use_buffers: BatchNorm statistics are averaged too, so the EMA model is usable as is.
            self.ema = AveragedModel(
                self.model, multi_avg_fn=get_ema_multi_avg_fn(config.ema), use_buffers=True
            )
        self.stopper = _EarlyStopping(config.monitor, config.patience, config.min_delta)
        self.history = History(model=self.name, monitor=config.monitor)
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.accum: dict[str, float] = {
            "loss_sum": 0.0,
            "correct": 0.0,
            "seen": 0.0,
            "seconds": 0.0,
        }
        self.saved_rng: dict[str, Any] | None = None
        if state is not None:
            self._restore(state)
        self.out.mkdir(parents=True, exist_ok=True)
        self._write_config(runtime)

        forward = torch.compile(self.model) if config.compile else self.model
        mix = _make_mix(config)
        from tqdm.auto import tqdm

        epochs_bar = tqdm(
            total=config.epochs,
            initial=self.epoch,
            desc=self.name,
            unit="epoch",
            disable=not self.progress,
            dynamic_ncols=True,
        )
        try:
            # The stop test comes first, so a run resumed after its last epoch stops at once.
            while self.epoch < config.epochs and not self.stopper.should_stop:
                self._train_epoch(
                    forward, train_loader, steps_per_epoch, criterion, runtime, mix, tqdm
                )
                row, improved = self._end_epoch(val_loader, runtime)
                epochs_bar.update(1)
                epochs_bar.set_postfix(
                    loss=f"{row['train_loss']:.3f}", val_acc=f"{row['val_acc']:.3f}", refresh=False
                )
                if not self.progress:
                    star = " *" if improved else ""
                    print(
                        f"[{self.name}] epoch {row['epoch']}/{config.epochs}  "
                        f"train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f} | "
                        f"val loss {row['val_loss']:.4f} acc {row['val_acc']:.4f} "
                        f"f1 {row['val_macro_f1']:.4f} | lr {row['lr']:.2e} | "
                        f"{row['seconds']:.1f} s{star}",
                        flush=True,
                    )
        finally:
            epochs_bar.close()
        self.history.stopped_early = self.epoch < config.epochs
        self.history.finished = True
        self.history.save(self.out)
        self._save_state(finished=True)
        return self._finish()

    def _batches(self, loader: Any, tqdm: Any, steps_per_epoch: int) -> Iterator[Any]:
        """This epoch's batches, in the order an uninterrupted run would see them."""
        # Dropout and MixUp draw from the global generators; the loader's shuffling and
        # augmentation are seeded by (seed, epoch) inside the loader (set_epoch).
        seed_everything(_epoch_seed(self.config.seed, self.epoch))
        loader.set_epoch(self.epoch)
        iterator = iter(loader)
        # Resuming mid-epoch: draw (and drop) the batches already trained on, so the augmentation
        # random state advances exactly as before, then put every RNG back where it was.
        # (At an epoch boundary the epoch seed above already is that state.)
        for _ in range(self.step_in_epoch):
            next(iterator)
        if self.saved_rng is not None and self.step_in_epoch > 0:
            _set_rng_state(self.saved_rng)
        self.saved_rng = None
        bar = tqdm(
            iterator,
            total=steps_per_epoch,
            initial=self.step_in_epoch,
            desc=f"epoch {self.epoch + 1}",
            leave=False,
            disable=not self.progress,
            dynamic_ncols=True,
        )
        yield from bar

    def _train_epoch(
        self,
        forward: Callable[[torch.Tensor], torch.Tensor],
        loader: Any,
        steps_per_epoch: int,
        criterion: nn.Module,
        runtime: Runtime,
        mix: Callable | None,
        tqdm: Any,
    ) -> None:
        config = self.config
        self.model.train()
        every = config.checkpoint_every_steps
        if every is None:
            every = 0 if runtime.device.type == "cuda" else DEFAULT_CHECKPOINT_STEPS_CPU
        started = time.perf_counter()
        for x, y in self._batches(loader, tqdm, steps_per_epoch):
            x = runtime.inputs(x)
            y = y.to(runtime.device, non_blocking=True)
            target = y
            if mix is not None:
                x, target = mix(x, y)
            with runtime.autocast():
                logits = forward(x)
            loss = criterion(logits.float(), target)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if config.grad_clip is not None:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.schedule.after_step()
            if self.ema is not None:
                self.ema.update_parameters(self.model)
            # Training accuracy against the un-mixed labels (approximate under MixUp/CutMix).
            self.accum["loss_sum"] += float(loss.detach()) * len(y)
            self.accum["correct"] += float((logits.detach().argmax(1) == y).sum())
            self.accum["seen"] += len(y)
            self.step_in_epoch += 1
            self.global_step += 1
            if every and self.step_in_epoch % every == 0 and self.step_in_epoch < steps_per_epoch:
                self.accum["seconds"] += time.perf_counter() - started
                started = time.perf_counter()
                self._save_state()
        self.accum["seconds"] += time.perf_counter() - started

    def _end_epoch(self, val_loader: Any, runtime: Runtime) -> tuple[dict[str, Any], bool]:
        import torch.nn.functional as F
        from sklearn.metrics import f1_score

        started = time.perf_counter()
        eval_model = self.ema.module if self.ema is not None else self.model
        labels: list[torch.Tensor] = []

        def inputs() -> Iterator[torch.Tensor]:
            for x, y in val_loader:
                labels.append(y)
                yield x

        logits = _view_logits(eval_model, inputs(), runtime)[0]
        y = torch.cat(labels).cpu()
        preds = logits.argmax(1)
        seen = max(self.accum["seen"], 1.0)
        row = {
            "epoch": self.epoch + 1,
            "train_loss": self.accum["loss_sum"] / seen,
            "train_acc": self.accum["correct"] / seen,
            # Plain cross-entropy on val (no class weights, no smoothing): comparable across runs.
            "val_loss": float(F.cross_entropy(logits, y)),
            "val_acc": float((preds == y).float().mean()),
            "val_macro_f1": float(
                f1_score(
                    y.numpy(), preds.numpy(), labels=range(7), average="macro", zero_division=0
                )
            ),
            "lr": float(self.optimizer.param_groups[0]["lr"]),
            "seconds": self.accum["seconds"] + time.perf_counter() - started,
        }
        value = row[self.config.monitor]
        improved = self.stopper.update(value)
        self.schedule.after_epoch(self.epoch + 1, value)
        self.history.add(row)
        self.epoch += 1
        self.step_in_epoch = 0
        self.accum = {"loss_sum": 0.0, "correct": 0.0, "seen": 0.0, "seconds": 0.0}
        if improved:
            self.history.best_epoch, self.history.best_val_acc = row["epoch"], row["val_acc"]
            ckpt.save_checkpoint(self.out / BEST, eval_model, **self._card(row["epoch"], row))
        ckpt.save_checkpoint(self.out / LAST, eval_model, **self._card(row["epoch"], row))
        self.history.save(self.out)
        # Written last: a crash before this line repeats the epoch, which gives the same result.
        self._save_state()
        return row, improved


def _same_split(split: Any, recorded: Any) -> bool:
    """Whether ``recorded`` (a saved run's split hash) names ``split``."""
    matches = getattr(split, "matches", None)
    return bool(recorded) and callable(matches) and bool(matches(str(recorded)))
