"""The training loop's two pieces: one epoch of training, one pass of evaluation.

Everything a network learns, it learns in :func:`train_step`: a forward pass, the loss, zeroed
gradients, ``backward``, and the optimizer's step. :func:`train_one_epoch` repeats it over a
loader; :func:`evaluate_epoch` measures loss and accuracy without learning. Both return plain
numbers, in the shape of going_modular's ``engine.py``. ``fc.fit`` is a short loop over these two
plus what a long run needs (checkpoints, resume, the schedule, early stopping, EMA). Introduced in
``notebooks/02_baseline.ipynb``, where the step is first written out by hand.

Example:
    >>> import fercourse as fc, torch
    >>> model = fc.models.create_model("baseline_cnn")
    >>> loader = [(torch.randn(8, 1, 48, 48), torch.randint(0, 7, (8,)))]
    >>> loss_fn = torch.nn.CrossEntropyLoss()
    >>> optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    >>> stats = fc.training.train_one_epoch(model, loader, loss_fn, optimizer)
    >>> sorted(stats)
    ['accuracy', 'images', 'loss', 'seconds']
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..runtime import Runtime, resolve_runtime

__all__ = ["EpochTally", "evaluate_epoch", "train_one_epoch", "train_step"]

Batch = tuple[torch.Tensor, torch.Tensor]


def train_step(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Callable[..., torch.Tensor],
    optimizer: torch.optim.Optimizer,
    *,
    runtime: Runtime | None = None,
    scaler: torch.amp.GradScaler | None = None,
    grad_clip: float | None = None,
    teacher: nn.Module | None = None,
    mix: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step on one batch: forward, loss, ``zero_grad``, ``backward``, ``step``.

    Args:
        model: the network, in training mode.
        x: a batch of faces (B, 1, 48, 48) on the model's device.
        y: their labels (B,).
        loss_fn: ``loss_fn(outputs, targets)``; with a ``teacher``,
            ``loss_fn(outputs, targets, teacher_logits)`` (``fc.training.DistillationLoss``).
        optimizer: updates the weights.
        runtime: autocast and memory format (default: plain float32).
        scaler: a ``GradScaler`` for float16 autocast (``None``: no loss scaling).
        grad_clip: clip the gradient norm to this value.
        teacher: a frozen model whose predictions on the same (augmented) batch the loss reads.
        mix: MixUp / CutMix, ``(x, y) -> (mixed x, soft targets)``.

    Returns:
        ``(loss, logits)``, both detached: the batch's loss and the predictions it was computed
        from (for a distilled ViT, the mean of its two heads).
    """
    autocast = runtime.autocast() if runtime is not None else torch.autocast("cpu", enabled=False)
    targets = y
    if mix is not None:
        x, targets = mix(x, y)
    with autocast:
        outputs = model(x)
        teacher_logits = None
        if teacher is not None:
            with torch.no_grad():
                teacher_logits = teacher(x)
    if teacher_logits is not None:
        loss = loss_fn(outputs, targets, teacher_logits)
    else:
        loss = loss_fn(outputs.float(), targets)
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        if grad_clip is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
    # A distilled ViT returns its two heads while training; it predicts with their mean.
    logits = (outputs[0] + outputs[1]) / 2 if isinstance(outputs, tuple) else outputs
    return loss.detach(), logits.detach()


@dataclass
class EpochTally:
    """Running sums of one training epoch (kept by ``fc.fit`` so a resumed epoch adds up)."""

    loss_sum: float = 0.0
    correct: float = 0.0
    images: int = 0
    seconds: float = 0.0

    def add(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        self.loss_sum += float(loss) * len(y)
        # Accuracy against the un-mixed labels (approximate under MixUp / CutMix).
        self.correct += float((logits.argmax(1) == y).sum())
        self.images += len(y)

    def summary(self) -> dict[str, float]:
        seen = max(self.images, 1)
        return {
            "loss": self.loss_sum / seen,
            "accuracy": self.correct / seen,
            "images": self.images,
            "seconds": self.seconds,
        }

    def state_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in vars(self).items()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> EpochTally:
        return cls(
            float(state["loss_sum"]),
            float(state["correct"]),
            int(state["images"]),
            float(state["seconds"]),
        )


def train_one_epoch(
    model: nn.Module,
    loader: Iterable[Batch],
    loss_fn: Callable[..., torch.Tensor],
    optimizer: torch.optim.Optimizer,
    *,
    scheduler: Any = None,
    runtime: Runtime | None = None,
    scaler: torch.amp.GradScaler | None = None,
    grad_clip: float | None = None,
    teacher: nn.Module | None = None,
    mix: Callable | None = None,
    ema: Any = None,
    tally: EpochTally | None = None,
    after_step: Callable[[EpochTally], None] | None = None,
) -> dict[str, float]:
    """Train ``model`` for one pass over ``loader``, one :func:`train_step` per batch.

    Args:
        model: the network (put in training mode here).
        loader: yields ``(x, y)`` batches, e.g. ``fc.data.make_loaders(...).train``.
        loss_fn: the loss (see :func:`train_step`).
        optimizer: updates the weights.
        scheduler: stepped after every batch (a torch per-step scheduler, or
            ``fc.training.Schedule``: anything with ``step()`` or ``after_step()``).
        runtime: device, autocast and memory format (default: the model's device, float32).
        scaler, grad_clip, teacher, mix: passed to :func:`train_step`.
        ema: an ``AveragedModel`` updated after every step.
        tally: running sums to continue (``fc.fit`` passes the ones of a resumed epoch).
        after_step: called with the tally after every step (``fc.fit`` saves its state there).

    Returns:
        ``{"loss": mean training loss, "accuracy": training accuracy, "images": n,
        "seconds": time spent}``.
    """
    runtime = runtime if runtime is not None else resolve_runtime(_device_of(model), "off", False)
    tally = tally if tally is not None else EpochTally()
    step_scheduler = getattr(scheduler, "after_step", None) or getattr(scheduler, "step", None)
    model.train()
    started = time.perf_counter()
    for x, y in loader:
        x = runtime.inputs(x)
        y = y.to(runtime.device, non_blocking=True)
        loss, logits = train_step(
            model,
            x,
            y,
            loss_fn,
            optimizer,
            runtime=runtime,
            scaler=scaler,
            grad_clip=grad_clip,
            teacher=teacher,
            mix=mix,
        )
        if step_scheduler is not None:
            step_scheduler()
        if ema is not None:
            ema.update_parameters(model)
        tally.add(loss, logits, y)
        if after_step is not None:
            now = time.perf_counter()
            tally.seconds += now - started
            started = now
            after_step(tally)
    tally.seconds += time.perf_counter() - started
    return tally.summary()


@torch.no_grad()
def evaluate_epoch(
    model: nn.Module,
    loader: Iterable[Batch],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    *,
    runtime: Runtime | None = None,
) -> dict[str, Any]:
    """Measure ``model`` on every batch of ``loader``, without learning anything.

    Args:
        model: the network (put in eval mode for the pass, then given its mode back).
        loader: yields ``(x, y)`` batches.
        loss_fn: the loss to report (default: plain cross-entropy, comparable across runs).
        runtime: device, autocast and memory format (default: the model's device, float32).

    Returns:
        ``{"loss": mean loss, "accuracy": accuracy, "macro_f1": macro-F1, "images": n,
        "seconds": time spent}``.
    """
    from sklearn.metrics import f1_score

    from ..labels import NUM_CLASSES

    loss_fn = loss_fn if loss_fn is not None else nn.CrossEntropyLoss()
    runtime = runtime if runtime is not None else resolve_runtime(_device_of(model), "off", False)
    was_training = model.training
    model.eval()
    started = time.perf_counter()
    logits, labels = [], []
    try:
        for x, y in loader:
            with runtime.autocast():
                out = model(runtime.inputs(x))
            logits.append(out.float().cpu())
            labels.append(y.cpu())
    finally:
        model.train(was_training)
    if not logits:
        raise ValueError("evaluate_epoch: the loader yielded no batches")
    logits_t, y_t = torch.cat(logits), torch.cat(labels)
    preds = logits_t.argmax(1)
    return {
        "loss": float(loss_fn(logits_t, y_t)),
        "accuracy": float((preds == y_t).float().mean()),
        "macro_f1": float(
            f1_score(
                y_t.numpy(),
                preds.numpy(),
                labels=range(NUM_CLASSES),
                average="macro",
                zero_division=0,
            )
        ),
        "images": len(y_t),
        "seconds": time.perf_counter() - started,
    }


def _device_of(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")
