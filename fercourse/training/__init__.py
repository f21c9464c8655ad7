"""Training: the step, the epoch, and ``fc.fit(model, data, config) -> History``.

The pieces, from the smallest up (each its own module):

- ``steps.py``: :func:`train_step` (forward, loss, ``zero_grad``, ``backward``, ``step``),
  :func:`train_one_epoch` and :func:`evaluate_epoch`, returning plain numbers;
- ``schedule.py``: warm-up and learning-rate schedules, early stopping;
- ``budget.py``: training for a wall-clock budget (measure, plan the epochs, keep to the plan);
- ``distill.py``: DeiT-style distillation from a teacher;
- ``state.py``: resume and random-generator state;
- ``fit.py``: :func:`fit`, a short loop over the epoch functions plus checkpoints, resume,
  schedule, early stopping and EMA, writing a :class:`~fercourse.rundir.RunDir`;
- ``config.py``: :class:`TrainConfig`, with each model's recipe from the model registry.

Introduced in ``notebooks/02_baseline.ipynb``.
"""

from __future__ import annotations

from pathlib import Path

from ..history import History
from ..rundir import Run, RunDir, default_run_dir, find_runs
from .budget import BudgetPlan, measure_throughput, plan_budget
from .config import PRESETS, TrainConfig, parse_overrides
from .distill import DistillationLoss, load_teacher
from .fit import fit, make_optimizer
from .schedule import EarlyStopping, Schedule
from .state import ResumeError, load_train_state
from .steps import EpochTally, evaluate_epoch, train_one_epoch, train_step


def load_run(path: str | Path, which: str = "best", *, map_location: str = "cpu") -> Run:
    """Load a run folder written by :func:`fit` (``RunDir(path).load(which)``).

    Example:
        >>> run = fc.training.load_run("outputs/runs/baseline_cnn")  # doctest: +SKIP
        >>> fc.evaluate(run.model, data, save_to=run.path)  # doctest: +SKIP
    """
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):  # a checkpoint file: its folder and its name
        which = path.stem
    return RunDir(path).load(which, map_location=map_location)


__all__ = [
    "PRESETS",
    "BudgetPlan",
    "DistillationLoss",
    "EarlyStopping",
    "EpochTally",
    "History",
    "ResumeError",
    "Run",
    "RunDir",
    "Schedule",
    "TrainConfig",
    "default_run_dir",
    "evaluate_epoch",
    "find_runs",
    "fit",
    "load_run",
    "load_teacher",
    "load_train_state",
    "make_optimizer",
    "measure_throughput",
    "parse_overrides",
    "plan_budget",
    "train_one_epoch",
    "train_step",
]
