"""Running the course: presets, headless papermill runs, SLURM, and the summary notebook 08 reads.

- :func:`resolve_preset`, :func:`config_overrides`: what a notebook's parameters mean
  (``notebooks/01_data.ipynb``, ``notebooks/02_baseline.ipynb``);
- :func:`run_course` (``python -m fercourse run RUN_FILE``) and :mod:`~fercourse.runs.slurm`
  (``--slurm``): execute notebooks 01-08 into ``outputs/<run>/`` (``notebooks/README.md``);
- :func:`summarize_runs`, :func:`load_trained_models`, :func:`load_metrics`,
  :func:`cpu_latency_ms`, :func:`anchor_table`, :func:`plot_comparison`: ``08_compare``;
- :func:`resolve_pretrained`: whether ``07_vit`` starts from ImageNet weights;
- :func:`plot_samples`: faces per emotion (``01_data``);
- :func:`reference_results`, :func:`plot_reference_results`: the course team's measured FER2013
  results (``fer2013_results.json``, written by ``tools/record_results.py``), in ``08_compare``;
- :func:`check_answer`: the self-check cells under each notebook's exercises.
"""

from __future__ import annotations

from .exercises import check_answer
from .figures import plot_comparison, plot_reference_results, plot_samples
from .presets import PRESETS, config_overrides, resolve_preset, resolve_pretrained
from .reference import (
    ORIGINAL_PROJECT,
    REFERENCE_RESULTS_PATH,
    choose_ensemble,
    collect_ensemble,
    collect_results,
    reference_ensemble,
    reference_history,
    reference_results,
    results_markdown,
)
from .runfile import (
    MODEL_NOTEBOOKS,
    NOTEBOOKS,
    RunFileError,
    RunSpec,
    check_parameters,
    load_run_file,
)
from .runner import RunResult, run_course
from .summary import (
    ANCHORS,
    anchor_table,
    cpu_latency_ms,
    load_metrics,
    load_trained_models,
    summarize_runs,
)

__all__ = [
    "ANCHORS",
    "MODEL_NOTEBOOKS",
    "NOTEBOOKS",
    "ORIGINAL_PROJECT",
    "PRESETS",
    "REFERENCE_RESULTS_PATH",
    "RunFileError",
    "RunResult",
    "RunSpec",
    "anchor_table",
    "check_answer",
    "check_parameters",
    "choose_ensemble",
    "collect_ensemble",
    "collect_results",
    "config_overrides",
    "cpu_latency_ms",
    "load_metrics",
    "load_run_file",
    "load_trained_models",
    "plot_comparison",
    "plot_reference_results",
    "plot_samples",
    "reference_ensemble",
    "reference_history",
    "reference_results",
    "resolve_preset",
    "resolve_pretrained",
    "results_markdown",
    "run_course",
    "summarize_runs",
]
