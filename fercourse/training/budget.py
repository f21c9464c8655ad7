"""Training for a wall-clock budget: measure, plan the epochs that fit, keep to the plan.

``fc.fit(..., budget_minutes=8)`` first times a few training steps and a few validation batches
on throw-away copies of the model and optimizer (:func:`measure_throughput`), then
:func:`plan_budget` turns what is left of the budget into a number of epochs, validation passes
and checkpoints included; the learning-rate schedule is sized to exactly those epochs and ends at
zero. With a fixed budget, a schedule sized to the budget that decays to zero at its end beats a
longer schedule cut short (Li, Yumer & Ramanan, "Budgeted Training: Rethinking Deep Neural
Network Training Under Resource Constraints", ICLR 2020).

Machines get busier (another program, a laptop that throttles): after every epoch the run
compares what is left of the budget with how long that epoch really took, and when fewer epochs
fit than planned it shortens the plan and the schedule (:meth:`Schedule.end_at`), so the rate
still reaches the end of its decay on time. The plan is saved with the run, so a resumed run keeps
its schedule and finishes it; :class:`BudgetClock` counts the seconds spent training (time lost
to an interruption is not counted) and, as a last resort, stops before an epoch that would
overrun. Introduced in ``notebooks/02_baseline.ipynb``.
"""

from __future__ import annotations

import copy
import io
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..utils import atomic_write_bytes
from .steps import train_step

__all__ = ["BudgetClock", "BudgetPlan", "measure_throughput", "plan_budget"]

TOLERANCE = 0.02
"""A budgeted run stops before an epoch that would end more than 2% past its budget."""


@dataclass(frozen=True)
class BudgetPlan:
    """What a time budget buys, measured at the start of a run and kept for its resume.

    Attributes:
        budget_s: the wall-clock budget in seconds.
        setup_s: seconds spent before the first epoch (loading, the measurement).
        images_per_s: training throughput measured over the first steps.
        train_s_per_epoch, val_s_per_epoch, overhead_s_per_epoch: the predicted cost of one
            epoch, its validation pass and its checkpoints.
        epochs: the epochs that fit (the schedule is sized to them and ends at zero).
        steps: the training steps that buys (``epochs * steps_per_epoch``).
        measured_epochs: the epochs first planned from the measurement, when the run later
            found its epochs slower or faster and re-planned (else None).
    """

    budget_s: float
    setup_s: float
    images_per_s: float
    train_s_per_epoch: float
    val_s_per_epoch: float
    overhead_s_per_epoch: float
    epochs: int
    steps: int
    measured_epochs: int | None = None

    @property
    def epoch_s(self) -> float:
        """Seconds one epoch was measured to take: training, validation and its checkpoints."""
        return self.train_s_per_epoch + self.val_s_per_epoch + self.overhead_s_per_epoch

    def to_dict(self) -> dict[str, float | int]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


def plan_budget(
    budget_s: float,
    *,
    setup_s: float,
    train_images: int,
    val_images: int,
    steps_per_epoch: int,
    train_images_per_s: float,
    val_images_per_s: float,
    overhead_s_per_epoch: float = 0.0,
    max_epochs: int | None = None,
    margin: float = 0.05,
) -> BudgetPlan:
    """How many epochs fit in what is left of ``budget_s``.

    Args:
        budget_s: the whole budget, in seconds.
        setup_s: seconds already used (loading, the throughput measurement).
        train_images, val_images: images per training epoch and per validation pass.
        steps_per_epoch: batches per training epoch.
        train_images_per_s, val_images_per_s: measured throughputs.
        overhead_s_per_epoch: checkpoint writing per epoch.
        max_epochs: never plan more than this many epochs (``TrainConfig.epochs``).
        margin: fraction of the budget kept free for noise.

    Returns:
        A :class:`BudgetPlan` with at least one epoch.

    Example:
        >>> plan = plan_budget(600, setup_s=20, train_images=10_000, val_images=1_000,
        ...                    steps_per_epoch=157, train_images_per_s=200, val_images_per_s=1000)
        >>> plan.epochs, plan.steps
        (10, 1570)
    """
    train_s = train_images / max(train_images_per_s, 1e-9)
    val_s = val_images / max(val_images_per_s, 1e-9)
    left = budget_s * (1.0 - margin) - setup_s
    epochs = max(1, int(left // (train_s + val_s + overhead_s_per_epoch)))
    if max_epochs is not None:
        epochs = min(epochs, max_epochs)
    return BudgetPlan(
        budget_s=float(budget_s),
        setup_s=float(setup_s),
        images_per_s=float(train_images_per_s),
        train_s_per_epoch=train_s,
        val_s_per_epoch=val_s,
        overhead_s_per_epoch=float(overhead_s_per_epoch),
        epochs=epochs,
        steps=epochs * steps_per_epoch,
    )


def measure_throughput(
    model: nn.Module,
    make_optimizer: Callable[[nn.Module], torch.optim.Optimizer],
    train_batches: Any,
    val_batches: Any,
    loss_fn: Callable[..., torch.Tensor],
    *,
    runtime: Any,
    teacher: nn.Module | None = None,
    mix: Callable | None = None,
    steps: int = 12,
    warmup_steps: int = 2,
    scratch_dir: str | Path | None = None,
) -> dict[str, float]:
    """Training and validation images/s, and the time to write an epoch's checkpoints.

    Everything runs on deep copies of ``model`` and a fresh optimizer, so the run itself is the
    same as a run without a budget (its randomness is re-seeded at every epoch's start). The
    checkpoint writes are timed in ``scratch_dir`` (the run folder: the same disk).

    Returns:
        ``{"train_images_per_s", "val_images_per_s", "overhead_s_per_epoch"}``.
    """
    model = copy.deepcopy(model)
    optimizer = make_optimizer(model)
    timed, images, started = 0, 0, time.perf_counter()
    for i, (x, y) in enumerate(train_batches):
        if i == warmup_steps:  # the first steps warm up allocators and kernels
            started, timed, images = time.perf_counter(), 0, 0
        x, y = runtime.inputs(x), y.to(runtime.device)
        train_step(model, x, y, loss_fn, optimizer, runtime=runtime, teacher=teacher, mix=mix)
        timed, images = timed + 1, images + len(y)
        if i >= warmup_steps and timed >= steps:
            break
    train_ips = images / max(time.perf_counter() - started, 1e-6)
    val_started, val_images = time.perf_counter(), 0
    model.eval()
    with torch.no_grad():
        for i, (x, _) in enumerate(val_batches):
            with runtime.autocast():
                model(runtime.inputs(x))
            val_images += len(x)
            if i >= 3:
                break
    val_ips = val_images / max(time.perf_counter() - val_started, 1e-6)
    # An epoch writes the best and last weights and the training state (weights + optimizer),
    # each atomically with an fsync: time three such writes where the run writes them.
    save_started = time.perf_counter()
    scratch = Path(scratch_dir) if scratch_dir is not None else Path(tempfile.gettempdir())
    for i in range(3):
        buffer = io.BytesIO()
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
        written = atomic_write_bytes(scratch / f".budget-probe-{i}.pt", buffer.getvalue())
        written.unlink(missing_ok=True)
    return {
        "train_images_per_s": train_ips,
        "val_images_per_s": val_ips,
        "overhead_s_per_epoch": time.perf_counter() - save_started,
    }


class BudgetClock:
    """Seconds a budgeted run has spent: its set-up and its epochs (not time lost to a kill).

    Args:
        plan: the run's plan.
        spent_s: what was spent before (a resumed run's saved value; ``plan.setup_s`` at first).
        guard: stop before an epoch that would overrun the budget. ``fc.fit`` guards the session
            that measured; a resumed run finishes the schedule it planned (the machine it
            resumes on may be busier or freer than the one it measured).
    """

    def __init__(self, plan: BudgetPlan, spent_s: float, *, guard: bool = True) -> None:
        self.plan, self.done, self.guard = plan, float(spent_s), guard
        self.epoch_started = time.perf_counter()
        self.last_epoch_s = 0.0
        self.previous_epoch_s: float | None = None

    def start_epoch(self) -> None:
        self.epoch_started = time.perf_counter()

    def spent(self) -> float:
        """Seconds spent, the running epoch included (what a saved state records)."""
        return self.done + time.perf_counter() - self.epoch_started

    def end_epoch(self) -> None:
        self.previous_epoch_s = self.last_epoch_s if self.last_epoch_s else None
        self.last_epoch_s = time.perf_counter() - self.epoch_started
        self.done += self.last_epoch_s
        self.epoch_started = time.perf_counter()

    def epochs_that_fit(self, epoch_s: float | None = None) -> int:
        """How many more epochs like the last one (or of ``epoch_s`` seconds) end within the budget."""
        seconds = self.last_epoch_s if epoch_s is None else epoch_s
        return int(max(self.plan.budget_s - self.done, 0.0) // max(seconds, 1e-9))

    def steady_epoch_s(self) -> float | None:
        """What a longer plan trusts: the slower of the last two epochs (``None`` before one).

        After the first epoch, the measurement stands in for the epoch before it: the slower of
        the first epoch and the epoch the plan was measured to take. A plan floored to one or two
        epochs can then take the epoch that fits after all, without trusting one quick epoch.
        """
        if not self.last_epoch_s:
            return None
        before = self.plan.epoch_s if self.previous_epoch_s is None else self.previous_epoch_s
        return max(before, self.last_epoch_s)

    def next_epoch_overruns(self) -> bool:
        """Whether another epoch like the last one would end past the budget (plus 2%)."""
        if not self.guard:
            return False
        return self.done + self.last_epoch_s > self.plan.budget_s * (1.0 + TOLERANCE)
