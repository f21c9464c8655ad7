"""What a student calls from the notebooks besides models and training.

- :func:`resolve_preset`, :func:`config_overrides`: what a notebook's parameters mean
  (``notebooks/01_data.ipynb``, ``notebooks/02_baseline.ipynb``); :func:`resolve_pretrained`:
  whether ``07_vit`` starts from ImageNet weights;
- :func:`check` (also ``fc.check``): the graded checks under each notebook's exercises, whose
  expected values live in :mod:`~fercourse.course.exercise_bank`, not in the notebooks;
- :func:`summarize_runs`, :func:`load_trained_models`, :func:`load_metrics`,
  :func:`cpu_latency_ms`, :func:`anchor_table`: the comparison in ``08_compare``;
- :func:`reference_results`, :func:`reference_history`, :func:`reference_ensemble`,
  :func:`results_markdown`: the course team's measured FER2013 results
  (``fer2013_results.json``, recorded by ``tools/record_results.py``).

The figures are in :mod:`fercourse.explain`; running the course headless (papermill, SLURM) and
recording results are operations, in :mod:`fercourse.ops`.
"""

from __future__ import annotations

from . import exercise_bank  # noqa: F401  (registers every exercise)
from .checks import EXERCISES, CheckResult, check, exercises_of
from .presets import PRESETS, config_overrides, resolve_preset, resolve_pretrained
from .reference import (
    ORIGINAL_PROJECT,
    REFERENCE_RESULTS_PATH,
    init_label,
    reference_ensemble,
    reference_history,
    reference_results,
    results_markdown,
)
from .summary import (
    ANCHORS,
    anchor_table,
    cpu_latency_ms,
    load_metrics,
    load_trained_models,
    model_dirs,
    summarize_runs,
)

__all__ = [
    "ANCHORS",
    "EXERCISES",
    "ORIGINAL_PROJECT",
    "PRESETS",
    "REFERENCE_RESULTS_PATH",
    "CheckResult",
    "anchor_table",
    "check",
    "config_overrides",
    "cpu_latency_ms",
    "exercises_of",
    "init_label",
    "load_metrics",
    "load_trained_models",
    "model_dirs",
    "reference_ensemble",
    "reference_history",
    "reference_results",
    "resolve_preset",
    "resolve_pretrained",
    "results_markdown",
    "summarize_runs",
]
