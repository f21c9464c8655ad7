"""Training: ``fc.fit(model, data, config) -> History``, resumable, with per-model defaults.

``TrainConfig.for_model(name, preset="smoke")`` gives the recipe; ``fit`` runs it and writes a run
folder (checkpoints, history, config); ``load_run`` reads one back. Introduced in
``notebooks/02_baseline.ipynb``.
"""

from __future__ import annotations

from .config import TrainConfig, parse_overrides
from .engine import (
    ResumeError,
    Run,
    default_run_dir,
    find_runs,
    fit,
    load_run,
    load_train_state,
)
from .history import History

__all__ = [
    "History",
    "ResumeError",
    "Run",
    "TrainConfig",
    "default_run_dir",
    "find_runs",
    "fit",
    "load_run",
    "load_train_state",
    "parse_overrides",
]
