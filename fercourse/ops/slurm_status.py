"""Where a run stands: ``python -m fercourse run RUN_FILE --status``.

Per notebook, from the run's outputs (the markers in ``outputs/<run>/.status/`` and the
submissions recorded in ``outputs/<run>/slurm/submissions.json``) and from the scheduler
(``scontrol show job``): ``complete``, ``running``, ``queued``, ``blocked`` (queued behind a job
that failed: SLURM will never start it), ``failed``, ``interrupted`` (its job was cancelled,
timed out or lost its node: submitting again resumes the training), or ``not run``; with the
job id and the log file, and what to do next. Works for local runs too (markers only).
Introduced in ``papermill_runs/slurm/README.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .runfile import MODEL_NOTEBOOKS, RunSpec, load_run_file
from .slurm import NEVER_STARTS, JobInfo, _Scheduler, _shown_path, latest_jobs


@dataclass
class NotebookStatus:
    """One line of ``--status``.

    Attributes:
        notebook: e.g. ``"02_baseline"``.
        state: ``complete``, ``running``, ``queued``, ``blocked``, ``failed``, ``interrupted``
            or ``not run``.
        job: the SLURM job that ran or will run it (``"120_4"`` for an array task), if any.
        log: that job's log file, if any.
        detail: why, in a few words (the error, the scheduler's reason...).
        job_info: what the scheduler says about ``job`` (``None``: unknown or not asked).
    """

    notebook: str
    state: str
    job: str | None = None
    log: str | None = None
    detail: str = ""
    job_info: JobInfo | None = None


def _ended(info: JobInfo) -> str:
    code = f", exit {info.exit_code}" if info.exit_code not in ("", "0:0") else ""
    return f"job {info.state}{code}"


def notebook_status(run: RunSpec, nb: str, scheduler: _Scheduler) -> NotebookStatus:
    """The state of one notebook of ``run`` (see the module docstring)."""
    from .runner import is_complete, read_status

    marker = read_status(run, nb)
    entry = latest_jobs(run).get(nb, {})
    job = entry.get("job") or (marker.get("slurm") or {}).get("job")
    log = entry.get("log")
    info = scheduler.lookup(job)
    status = NotebookStatus(nb, "not run", job, log, job_info=info)
    if info is not None and info.stdout and info.stdout != "(null)":
        status.log = info.stdout
    if info is not None and info.never_starts:
        status.state, status.detail = "blocked", f"pending for ever ({NEVER_STARTS})"
    elif info is not None and info.state == "PENDING":
        status.state, status.detail = "queued", f"waiting: {info.reason}"
    elif info is not None and info.active:
        status.state = "running"
        status.detail = f"{info.state.lower()} on {info.node or '?'} since {info.start or '?'}"
    elif is_complete(run, nb):
        status.state, status.detail = "complete", f"in {marker.get('seconds', '?')} s"
    elif marker.get("status") == "failed":
        error = marker.get("error") or {}
        status.state = "failed"
        status.detail = (
            f"{error.get('ename')}: {error.get('evalue')} (cell {error.get('cell_index')})"
        )
    elif marker.get("status") == "running":
        # Not alive any more (or the scheduler was not asked): the run that wrote it is gone.
        why = _ended(info) if info is not None else "its run ended without finishing"
        status.state = "interrupted"
        status.detail = f"{why}; submitting again resumes it"
    elif info is not None and info.state != "COMPLETED":
        status.state, status.detail = "failed", f"{_ended(info)} before the notebook ran"
    elif marker.get("status") == "complete":
        status.detail = "complete with other parameters than the run file's now"
    return status


def run_status(run_file: str | Path, *, scontrol: str = "scontrol") -> list[NotebookStatus]:
    """The state of every notebook of a run, asking the scheduler when there is one.

    Args:
        run_file: e.g. ``papermill_runs/slurm/cpu-example.yaml``.
        scontrol: the ``scontrol`` executable.

    Returns:
        One :class:`NotebookStatus` per notebook of the run, in run order.
    """
    return _statuses(load_run_file(run_file), scontrol)[0]


def _statuses(run: RunSpec, scontrol: str) -> tuple[list[NotebookStatus], str | None]:
    from .runner import read_status

    # A local run (no submission, no marker written in a SLURM job) needs no scheduler.
    slurm_used = bool(latest_jobs(run)) or any(
        read_status(run, nb).get("slurm") for nb in run.notebooks
    )
    scheduler = _Scheduler(scontrol, enabled=slurm_used)
    statuses = [notebook_status(run, nb, scheduler) for nb in run.notebooks]
    # SLURM says DependencyNeverSatisfied only once the whole array has ended; a job queued
    # behind a notebook that failed or was interrupted (and not submitted again) is doomed now.
    stage = {"01_data": 0, **dict.fromkeys(MODEL_NOTEBOOKS, 1), "08_compare": 2}
    broken = [s for s in statuses if s.state in ("failed", "interrupted")]
    for s in statuses:
        before = [b.notebook for b in broken if stage[b.notebook] < stage[s.notebook]]
        if s.state == "queued" and before:
            s.state = "blocked"
            s.detail = f"waits (afterok) for {', '.join(before)}, which did not succeed"
    return statuses, None if scheduler.error == "not asked" else scheduler.error


def _shown(path: str | None) -> str:
    if not path:
        return ""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


def print_status(
    run_file: str | Path, *, echo: Callable[[str], Any] = print, scontrol: str = "scontrol"
) -> list[NotebookStatus]:
    """Print :func:`run_status` as a table, then what to do about blocked or failed notebooks.

    Returns:
        The statuses it printed.
    """
    run = load_run_file(run_file)
    statuses, error = _statuses(run, scontrol)
    echo(f"run {run.name!r} -> {run.out_dir}")
    if error:
        echo(f"(the scheduler could not be asked, so this is from the outputs alone: {error})")
    echo(f"{'notebook':<14}{'state':<13}{'job':<12}{'log'}")
    for s in statuses:
        echo(f"{s.notebook:<14}{s.state:<13}{s.job or '':<12}{_shown(s.log)}")
        if s.detail:
            echo(f"{'':<14}{s.detail}")
    resubmit = f"python -m fercourse run {_shown_path(run.file)} --slurm"
    broken = [s for s in statuses if s.state in ("failed", "interrupted")]
    for s in statuses:
        if s.state == "failed":
            where = f": read {_shown(s.log)}" if s.log else ""
            partial = run.out_dir / f"{s.notebook}.ipynb"
            echo(f"\n{s.notebook} failed{where} (partial notebook: {_shown(str(partial))})")
    blocked = [s for s in statuses if s.state == "blocked"]
    for s in blocked:
        culprits = ", ".join(b.notebook for b in broken) or "a job it waits for"
        echo(
            f"\n{s.notebook} (job {s.job}) waits (afterok) for jobs that did not succeed "
            f"({culprits}): SLURM will never start it.\n"
            f"  Submit again, `{resubmit}`: complete notebooks are skipped, interrupted training "
            f"resumes, and job {s.job} is cancelled and replaced. Or cancel it: `scancel {s.job}`."
        )
    if broken and not blocked:
        echo(f"\nto run what is left again: {resubmit}")
    if not latest_jobs(run):
        echo(f"(no SLURM submission recorded in {run.out_dir / 'slurm'})")
    return statuses
