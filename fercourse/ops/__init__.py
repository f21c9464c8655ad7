"""Operations: running the course headless and recording results (instructors, CI, maintainers).

- :mod:`~fercourse.ops.runfile`: parameter files for headless runs (``papermill_runs/*.yaml``),
  read, merged and checked against each notebook's ``parameters`` cell;
- :func:`run_course` (``python -m fercourse run RUN_FILE``): notebooks 01-08 with papermill
  into ``outputs/<run>/``; :mod:`~fercourse.ops.slurm` (``--slurm``) submits them to a cluster
  (``notebooks/README.md``, ``papermill_runs/slurm/README.md``);
- :mod:`~fercourse.ops.edition` (``python -m fercourse student OUT``): the student edition;
  :mod:`~fercourse.ops.grader` (``python -m fercourse grade SUBMISSIONS``): grading submitted
  notebooks into a score table;
- :mod:`~fercourse.ops.record`: scoring trained runs and choosing ensembles for the course's
  recorded results (``tools/record_results.py``).
"""

from __future__ import annotations

from .record import choose_ensemble, collect_ensemble, collect_results, train_command
from .runfile import (
    MODEL_NOTEBOOKS,
    NOTEBOOKS,
    RunFileError,
    RunSpec,
    check_parameters,
    load_run_file,
)
from .runner import RunResult, run_course

__all__ = [
    "MODEL_NOTEBOOKS",
    "NOTEBOOKS",
    "RunFileError",
    "RunResult",
    "RunSpec",
    "check_parameters",
    "choose_ensemble",
    "collect_ensemble",
    "collect_results",
    "load_run_file",
    "run_course",
    "train_command",
]
