"""How the learning rate moves, and when training stops.

- :class:`Schedule`: linear warm-up, then one-cycle, cosine, linear decay to zero, a constant
  rate, or ReduceLROnPlateau (per epoch, after the warm-up). Every piece is a torch scheduler, so
  its ``state_dict`` is all that resume needs.
- :class:`EarlyStopping`: counts epochs without improvement of the monitored value.

A time budget sizes the schedule, and shortens it (:meth:`Schedule.end_at`) when the epochs turn
out slower than measured: see ``budget.py``.

Introduced in ``notebooks/02_baseline.ipynb``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR, ReduceLROnPlateau

__all__ = ["EarlyStopping", "Schedule"]


class Schedule:
    """The learning-rate schedule of one run, stepped after every batch and every epoch.

    Args:
        optimizer: the optimizer whose rate it sets.
        scheduler: ``"onecycle"``, ``"cosine"``, ``"linear"`` (decay to zero), ``"plateau"`` or
            ``"none"`` (see ``TrainConfig.scheduler``).
        lr: the peak rate.
        epochs: the length of the run, in epochs (the per-step schedules end there).
        steps_per_epoch: batches per epoch.
        warmup_epochs: linear warm-up length (one-cycle uses it as its rising phase).
        min_lr_factor: the cosine schedule decays to ``lr * min_lr_factor``.
        monitor, plateau_factor, plateau_patience: ReduceLROnPlateau's settings.

    Example:
        >>> opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
        >>> sched = Schedule(opt, "linear", lr=0.1, epochs=2, steps_per_epoch=5)
        >>> for _ in range(10):
        ...     sched.after_step()
        >>> opt.param_groups[0]["lr"]
        0.0
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        scheduler: str,
        *,
        lr: float,
        epochs: int,
        steps_per_epoch: int,
        warmup_epochs: int = 0,
        min_lr_factor: float = 0.01,
        monitor: str = "val_acc",
        plateau_factor: float = 0.5,
        plateau_patience: int = 5,
    ) -> None:
        warmup = warmup_epochs * steps_per_epoch
        total = max(1, epochs * steps_per_epoch)
        self.warmup_epochs = warmup_epochs
        self._warmup_steps = warmup
        # One-cycle, cosine and linear end their decay at the last step; plateau has no end.
        self.decays_to_end = scheduler in ("onecycle", "cosine", "linear")
        self.total_steps = total
        # Where a shortened decay starts (end_at): (step, rate factor there), else None.
        self.anchor: tuple[int, float] | None = None
        self.step_limit: int | None = None
        self.per_step: LRScheduler | None = None
        self.plateau: ReduceLROnPlateau | None = None
        if scheduler == "onecycle":
            pct = min(max(warmup / total, 0.01), 0.99) if warmup else 0.3
            self.per_step = OneCycleLR(optimizer, max_lr=lr, total_steps=total, pct_start=pct)
            self.step_limit = total
        elif scheduler in ("cosine", "linear"):
            floor = min_lr_factor if scheduler == "cosine" else 0.0

            def decay(step: int) -> float:
                if self.anchor is None and step < warmup:
                    return (step + 1) / warmup
                start, top = self.anchor or (warmup, 1.0)
                progress = min((step - start) / max(1, self.total_steps - start), 1.0)
                if scheduler == "linear":
                    return top * (1.0 - progress)
                return floor + (top - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

            self.per_step = LambdaLR(optimizer, decay)
        elif warmup:
            # Linear warm-up, then leave the rate to the plateau scheduler (or constant).
            self.per_step = LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
            self.step_limit = warmup
        if scheduler == "plateau":
            self.plateau = ReduceLROnPlateau(
                optimizer,
                mode="max" if monitor == "val_acc" else "min",
                factor=plateau_factor,
                patience=plateau_patience,
            )

    @classmethod
    def from_config(
        cls, optimizer: torch.optim.Optimizer, config: Any, steps_per_epoch: int
    ) -> Schedule:
        """The schedule a :class:`~fercourse.training.TrainConfig` asks for."""
        return cls(
            optimizer,
            config.scheduler,
            lr=config.lr,
            epochs=config.epochs,
            steps_per_epoch=steps_per_epoch,
            warmup_epochs=config.warmup_epochs,
            min_lr_factor=config.min_lr_factor,
            monitor=config.monitor,
            plateau_factor=config.plateau_factor,
            plateau_patience=config.plateau_patience,
        )

    def end_at(self, total_steps: int) -> None:
        """Make the per-step schedule end at ``total_steps`` (fewer or more than planned), smoothly.

        A budgeted run calls it when its epochs take longer (or shorter) than measured: the rate
        goes on from where it is now and reaches the end of its decay at the new last step,
        instead of being cut off half-way (or idling at the end). The warm-up is kept when it
        still fits.
        """
        now = self.per_step.last_epoch if self.per_step is not None else 0
        if self.step_limit is not None and self.step_limit == self.total_steps:
            self.step_limit = total_steps
        if isinstance(self.per_step, OneCycleLR):
            _shorten_one_cycle(self.per_step, now, total_steps)
        elif isinstance(self.per_step, LambdaLR) and self.step_limit is None:
            if now > self._warmup_steps:  # decaying already: go on from today's rate
                self.anchor = (now, float(self.per_step.lr_lambdas[0](now)))
        self.total_steps = total_steps

    def after_step(self) -> None:
        """Advance the per-step schedule by one batch."""
        if self.per_step is None:
            return
        if self.step_limit is None or self.per_step.last_epoch < self.step_limit:
            self.per_step.step()

    def after_epoch(self, epochs_done: int, value: float) -> None:
        """Give the plateau scheduler the epoch's monitored value (after the warm-up)."""
        if self.plateau is not None and epochs_done >= self.warmup_epochs:
            self.plateau.step(value)

    def state_dict(self) -> dict[str, Any]:
        # OneCycleLR's own state holds its (possibly shortened) phases; the decay functions of
        # the other schedules read total_steps and anchor, saved here.
        return {
            "per_step": self.per_step.state_dict() if self.per_step else None,
            "plateau": self.plateau.state_dict() if self.plateau else None,
            "total_steps": self.total_steps,
            "step_limit": self.step_limit,
            "anchor": list(self.anchor) if self.anchor is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.per_step is not None and state.get("per_step") is not None:
            self.per_step.load_state_dict(state["per_step"])
        if self.plateau is not None and state.get("plateau") is not None:
            self.plateau.load_state_dict(state["plateau"])
        if "total_steps" in state:
            self.total_steps, self.step_limit = int(state["total_steps"]), state["step_limit"]
            anchor = state["anchor"]
            self.anchor = (int(anchor[0]), float(anchor[1])) if anchor is not None else None


def _shorten_one_cycle(sched: OneCycleLR, now: int, total_steps: int) -> None:
    """End a OneCycleLR's annealing at ``total_steps``, going on from its rate at step ``now``.

    The phases are OneCycleLR's own table (each names the param-group keys it anneals between);
    a new last phase anneals from this step's rate and momentum, stored in the param groups (so
    the optimizer's state carries them into a resume), to the planned final rate.
    """
    phases = sched._schedule_phases
    warm_end = phases[0]["end_step"]
    if now <= warm_end and warm_end < total_steps - 1:
        phases[-1]["end_step"] = float(total_steps - 1)  # still warming up: decay ends sooner
    else:
        for group in sched.optimizer.param_groups:
            group["replan_lr"] = group["lr"]
            if sched.cycle_momentum:
                beta = group["betas"][0] if sched.use_beta1 else group["momentum"]
                group["replan_momentum"] = beta
        done = [phase for phase in phases if phase["end_step"] < now]
        start = {"start_lr": "replan_lr", "start_momentum": "replan_momentum"}
        sched._schedule_phases = [
            *done,
            {**phases[-1], **start, "end_lr": "replan_lr", "end_step": float(now)},
            {**phases[-1], **start, "end_step": float(total_steps - 1)},
        ]
    sched.total_steps = total_steps


class EarlyStopping:
    """Counts epochs without improvement of the monitored value.

    Args:
        monitor: ``"val_acc"`` (higher is better) or ``"val_loss"`` (lower is better).
        patience: stop after this many epochs without improvement; ``0`` never stops.
        min_delta: an improvement smaller than this does not count.
    """

    def __init__(self, monitor: str, patience: int, min_delta: float = 0.0) -> None:
        self.maximize = monitor == "val_acc"
        self.patience, self.min_delta = patience, min_delta
        self.best = -math.inf if self.maximize else math.inf
        self.bad_epochs = 0

    def update(self, value: float) -> bool:
        """Record an epoch's value; True when it is a new best."""
        if self.maximize:
            better = value > self.best + self.min_delta
        else:
            better = value < self.best - self.min_delta
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
