"""Submit a run to a SLURM cluster: ``python -m fercourse run RUN_FILE --slurm [--dry-run]``.

Three jobs, chained with ``afterok`` dependencies (scripts in ``papermill_runs/slurm/``):

1. ``01_data.sbatch``: notebook 01 (writes the split every model uses), CPU only;
2. ``models.sbatch``: the model notebooks 02-07 as a job array, one GPU each, after job 1;
3. ``08_compare.sbatch``: notebook 08, after every task of the array succeeded.

Each job calls the same runner (``python -m fercourse run RUN_FILE --only NOTEBOOK``), so a
SLURM run and a local run leave the same ``outputs/<run>/``. Extra ``sbatch`` options come from
the run file's ``slurm`` section: top-level keys go to every job (``partition: gpu``), a nested
mapping under ``01_data``, ``models`` or ``08_compare`` to that job only.
Introduced in ``papermill_runs/slurm/README.md``.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..utils import PROJECT_ROOT
from .runfile import MODEL_NOTEBOOKS, RunFileError, RunSpec, load_run_file

SLURM_DIR: Path = PROJECT_ROOT / "papermill_runs" / "slurm"
"""Where the three ``.sbatch`` scripts live."""

JOBS: tuple[str, ...] = ("01_data", "models", "08_compare")


@dataclass
class SbatchJob:
    """One ``sbatch`` call: its key, the job it waits for, and the command line.

    ``argv`` holds the literal ``{after}`` where the id of the job it depends on goes.
    """

    key: str
    after: str | None
    argv: list[str]

    def command(self, job_ids: dict[str, str]) -> list[str]:
        """The command line with the dependency's job id filled in."""
        after = job_ids[self.after] if self.after else ""
        return [arg.replace("{after}", after) for arg in self.argv]

    def shell_line(self) -> str:
        """The line a dry run prints: ``JOB_X=$(sbatch ... afterok:$JOB_Y ...)``."""
        placeholder = "JOBIDPLACEHOLDER"
        text = shlex.join(arg.replace("{after}", placeholder) for arg in self.argv)
        if self.after:
            text = text.replace(placeholder, f"${_var(self.after)}")
        return f"{_var(self.key)}=$({text})"


def _var(key: str | None) -> str:
    return {"01_data": "JOB_DATA", "models": "JOB_MODELS", "08_compare": "JOB_COMPARE"}[key or ""]


def _options(run: RunSpec, key: str) -> list[str]:
    shared = {k: v for k, v in run.slurm.items() if not isinstance(v, dict)}
    unknown = sorted(k for k, v in run.slurm.items() if isinstance(v, dict) and k not in JOBS)
    if unknown:
        raise RunFileError(f"{run.file}: slurm section {unknown[0]!r} is not one of {JOBS}")
    options = shared | dict(run.slurm.get(key) or {})
    return [f"--{name}={value}" for name, value in options.items()]


def _shown_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path.resolve())


def sbatch_jobs(run_file: str | Path) -> list[SbatchJob]:
    """The three ``sbatch`` command lines for a run (see the module docstring).

    Args:
        run_file: e.g. ``papermill_runs/a100.yaml``.

    Returns:
        The jobs in submission order; each one's ``argv`` starts with ``sbatch --parsable``.
    """
    run = load_run_file(run_file)
    models = [nb for nb in run.notebooks if nb in MODEL_NOTEBOOKS]
    missing = [nb for nb in ("01_data", "08_compare") if nb not in run.notebooks]
    if missing or not models:
        raise RunFileError(
            f"{run.file}: a SLURM run needs 01_data, a model notebook and 08_compare"
        )
    logs = run.out_dir / "slurm"
    run_arg = _shown_path(run.file)

    def job(key: str, after: str | None, script: str, *flags: str, args: tuple = ()) -> SbatchJob:
        argv = ["sbatch", "--parsable", f"--job-name=fer-{run.name}-{key.split('_')[-1]}"]
        argv += [*flags, *(["--dependency=afterok:{after}"] if after else [])]
        argv += [*_options(run, key), str(SLURM_DIR / script), run_arg, *args]
        return SbatchJob(key, after, argv)

    jobs = [
        job("01_data", None, "01_data.sbatch", f"--output={logs}/%x-%j.out"),
        job(
            "models",
            "01_data",
            "models.sbatch",
            f"--array=0-{len(models) - 1}",
            f"--output={logs}/%x-%A_%a.out",
            args=tuple(models),
        ),
        job("08_compare", "models", "08_compare.sbatch", f"--output={logs}/%x-%j.out"),
    ]
    return jobs


def submit(
    run_file: str | Path,
    *,
    dry_run: bool = False,
    echo: Callable[[str], Any] = print,
    sbatch: str = "sbatch",
) -> dict[str, str]:
    """Submit a run's three jobs with ``sbatch --parsable``, each after the one before.

    Args:
        run_file: e.g. ``papermill_runs/a100.yaml``.
        dry_run: print the commands as a shell script (``JOB_DATA=$(sbatch ...)``) instead of
            running them.
        echo: where the commands and job ids go.
        sbatch: the ``sbatch`` executable.

    Returns:
        Job key -> job id (``{}`` for a dry run).

    Raises:
        RuntimeError: ``sbatch`` failed; its message is included.
    """
    jobs = sbatch_jobs(run_file)
    logs = load_run_file(run_file).out_dir / "slurm"
    ids: dict[str, str] = {}
    if dry_run:
        echo(f"# from {PROJECT_ROOT}")
        echo(f"mkdir -p {shlex.quote(str(logs))}")
        for job in jobs:
            echo(job.shell_line())
        return ids
    logs.mkdir(parents=True, exist_ok=True)
    for job in jobs:
        argv = job.command(ids)
        argv[0] = sbatch
        done = subprocess.run(argv, cwd=PROJECT_ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{shlex.join(argv)} failed: {done.stderr.strip()}")
        ids[job.key] = done.stdout.strip().split(";")[0]  # --parsable: "id" or "id;cluster"
        echo(f"submitted {job.key}: job {ids[job.key]}")
    echo(f"logs: {logs}/   results: {logs.parent}/run.json")
    return ids
