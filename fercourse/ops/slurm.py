"""Submit a run to a SLURM cluster: ``python -m fercourse run RUN_FILE --slurm [--dry-run]``.

Three jobs, chained with ``afterok`` dependencies (scripts in ``papermill_runs/slurm/``):

1. ``01_data.sbatch``: notebook 01 (writes the split every model uses), CPU only;
2. ``models.sbatch``: the model notebooks 02-07 as a job array, one GPU each, after job 1;
3. ``08_compare.sbatch``: notebook 08, after every task of the array succeeded.

Each job calls the same runner (``python -m fercourse run RUN_FILE --only NOTEBOOK``), so a
SLURM run and a local run leave the same ``outputs/<run>/``. Before the first ``sbatch`` the
submission checks what a local run checks (the run file, every parameter against the notebooks)
and asks the scheduler whether it would accept each job (``sbatch --test-only``); if an
``sbatch`` still fails part-way, the jobs already submitted are cancelled.

Submitting again is how a failed or cancelled task is re-run: notebooks that are complete are
not submitted, one that is queued or running in an earlier job is waited for (never run twice),
and a job of an earlier submission that can never start (``afterok`` on a task that failed) is
cancelled and replaced. Every submission is recorded in ``outputs/<run>/slurm/submissions.json``
(job ids and log files per notebook), which ``--status`` reads (:mod:`.slurm_status`).

Extra ``sbatch`` options come from the run file's ``slurm`` section: top-level keys go to every
job (``partition: gpu``), a nested mapping under ``01_data``, ``models`` or ``08_compare`` to
that job only; ``gres: none`` removes the scripts' GPU request (see :func:`sbatch_options`).
Introduced in ``papermill_runs/slurm/README.md``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..utils import PROJECT_ROOT, atomic_write_json
from .runfile import (
    MODEL_NOTEBOOKS,
    RunFileError,
    RunSpec,
    check_parameters,
    load_run_file,
    select_notebooks,
)

SLURM_DIR: Path = PROJECT_ROOT / "papermill_runs" / "slurm"
"""Where the three ``.sbatch`` scripts live."""

JOBS: tuple[str, ...] = ("01_data", "models", "08_compare")
"""The jobs of a submission, in order; also the names of the run file's ``slurm`` sections."""

SUBMISSIONS = "submissions.json"
"""In ``outputs/<run>/slurm/``: every submission's job ids and log files, per notebook."""

ACTIVE_STATES = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "COMPLETING",
        "SUSPENDED",
        "REQUEUED",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "RESIZING",
        "SIGNALING",
        "STAGE_OUT",
        "STOPPED",
    }
)
"""Job states in which a job may still run its notebook (anything else has ended)."""

NEVER_STARTS = "DependencyNeverSatisfied"
"""The reason SLURM gives a job whose ``afterok`` dependency failed: it stays pending for ever."""

# Options the submission sets itself; one in the run file would break the chain or the logs.
_RESERVED = {"array", "dependency", "output", "error", "job-name", "parsable", "test-only", "wrap"}
_GPU_OPTIONS = {"gpus", "gpus-per-node", "gpus-per-task", "gpus-per-socket"}
_NO_GPU = {"", "none", "0", "gpu:0", "false", "no"}


class SchedulerError(RuntimeError):
    """The scheduler could not be asked (``scontrol`` missing, or the controller unreachable)."""


# ---------------------------------------------------------------------------------------------
# Asking the scheduler
# ---------------------------------------------------------------------------------------------


@dataclass
class JobInfo:
    """One job (or one array task) as ``scontrol show job`` reports it.

    Attributes:
        job: how to name it to SLURM: ``"123"``, or ``"120_4"`` for task 4 of array 120.
        job_id: the scheduler's own ``JobId`` (an array task that started has its own).
        state: ``JobState``, e.g. ``"RUNNING"``, ``"COMPLETED"``, ``"CANCELLED"``.
        reason: ``Reason``, e.g. ``"Dependency"``, ``"DependencyNeverSatisfied"``, ``"None"``.
        start: ``StartTime`` (``None`` while unknown), ISO format without a time zone.
        end: ``EndTime`` (``None`` while unknown).
        stdout: the job's log file (``StdOut``).
        exit_code: ``ExitCode``, e.g. ``"0:0"``, ``"1:0"``, ``"0:15"`` (signal 15).
        node: ``NodeList`` (empty while pending).
    """

    job: str
    job_id: str
    state: str
    reason: str = ""
    start: str | None = None
    end: str | None = None
    stdout: str | None = None
    exit_code: str = ""
    node: str = ""

    @property
    def active(self) -> bool:
        """True while the job may still run (pending, running, requeued...)."""
        return self.state in ACTIVE_STATES

    @property
    def never_starts(self) -> bool:
        """True for a pending job whose dependency can no longer be met."""
        return self.state == "PENDING" and self.reason == NEVER_STARTS


def _fields(line: str) -> dict[str, str]:
    # "Key=value Key2=value with spaces ..." -> dict; a value runs up to the next " Key=".
    parts = re.split(r" +(?=[A-Za-z][\w:/]*=)", line.strip())
    return dict(part.split("=", 1) for part in parts if "=" in part)


def _task_ids(text: str) -> list[int]:
    # "3", "1-5", "0,2-4", "1-5%2" (a throttled array): the task indices.
    ids: list[int] = []
    for item in text.split("%")[0].split(","):
        low, _, high = item.partition("-")
        if low.isdigit():
            ids.extend(range(int(low), int(high or low) + 1))
    return ids


def _time(value: str | None) -> str | None:
    return value if value and value[0].isdigit() else None  # "Unknown", "None", "N/A"


def scontrol_jobs(job: str, *, scontrol: str = "scontrol") -> list[JobInfo]:
    """Every job ``scontrol show job -o JOB`` knows under ``job`` (all tasks of an array).

    A pending range of array tasks (``ArrayTaskId=1-5``) comes back as one entry per task.

    Args:
        job: a job id (``"123"``), an array (``"120"``) or an array task (``"120_4"``).
        scontrol: the ``scontrol`` executable.

    Returns:
        The jobs, ``[]`` when the controller does not know ``job`` (never submitted, or
        finished longer ago than the cluster's ``MinJobAge``).

    Raises:
        SchedulerError: ``scontrol`` is missing or cannot reach the controller.
    """
    try:
        done = subprocess.run(
            [scontrol, "show", "job", "-o", job], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError) as err:
        raise SchedulerError(f"cannot run {scontrol}: {err}") from None
    if done.returncode != 0:
        if "Invalid job id" in done.stderr:
            return []
        raise SchedulerError(f"{scontrol} show job {job}: {done.stderr.strip()}")
    jobs = []
    for line in done.stdout.splitlines():
        if not line.strip():
            continue
        f = _fields(line)
        common = {
            "job_id": f.get("JobId", ""),
            "state": f.get("JobState", ""),
            "reason": f.get("Reason", ""),
            "start": _time(f.get("StartTime")),
            "end": _time(f.get("EndTime")),
            "stdout": f.get("StdOut"),
            "exit_code": f.get("ExitCode", ""),
            "node": "" if f.get("NodeList") in (None, "(null)") else f["NodeList"],
        }
        array, tasks = f.get("ArrayJobId"), f.get("ArrayTaskId")
        if array and tasks:
            jobs += [JobInfo(job=f"{array}_{t}", **common) for t in _task_ids(tasks)]
        else:
            jobs.append(JobInfo(job=common["job_id"], **common))
    return jobs


def job_info(job: str, *, scontrol: str = "scontrol") -> JobInfo | None:
    """The one job (or array task, ``"120_4"``) named ``job``; ``None`` when unknown.

    Raises:
        SchedulerError: the scheduler cannot be asked.
    """
    for info in scontrol_jobs(job.split("_")[0] if "_" in job else job, scontrol=scontrol):
        if job in (info.job, info.job_id):
            return info
    return None


class _Scheduler:
    """Cached look-ups for one submission or status report (one ``scontrol`` call per job)."""

    def __init__(self, scontrol: str = "scontrol", *, enabled: bool = True) -> None:
        self.scontrol, self.enabled = scontrol, enabled
        self.cache: dict[str, list[JobInfo]] = {}
        self.error: str | None = None if enabled else "not asked"

    def lookup(self, job: str | None) -> JobInfo | None:
        if not job or self.error:
            return None
        base = job.split("_")[0]
        if base not in self.cache:
            try:
                self.cache[base] = scontrol_jobs(base, scontrol=self.scontrol)
            except SchedulerError as err:
                self.error = str(err)
                return None
        return next((i for i in self.cache[base] if job in (i.job, i.job_id)), None)


# ---------------------------------------------------------------------------------------------
# The sbatch command lines
# ---------------------------------------------------------------------------------------------


def sbatch_options(run: RunSpec, key: str) -> list[str]:
    """The ``sbatch`` options the run file's ``slurm`` section gives job ``key``.

    Top-level keys apply to every job, a mapping under ``01_data``, ``models`` or
    ``08_compare`` to that job (and wins). Names are ``sbatch``'s long options (``mem``,
    ``cpus-per-task`` or ``cpus_per_task``, ``partition``, ``account``, ``qos``, ``time``,
    ``gres``, ``gpus``...); ``true`` gives a bare flag (``exclusive: true``), ``false`` none.

    The model script asks for ``--gres=gpu:a100:1``. ``gres: none`` (or ``""``, ``0``,
    ``gpu:0``) removes it (``--gres=none``); any ``gpus*`` option replaces it (sbatch refuses
    ``--gpus`` next to ``--gres=gpu``, so ``--gres=none`` is added), ``gpus: 0`` removes it.

    Raises:
        RunFileError: an unknown section, an option the submission sets itself (``array``,
            ``dependency``, ``output``, ``job-name``...), a malformed name or an empty value.
    """
    where = f"{run.file}: slurm"
    unknown = sorted(k for k, v in run.slurm.items() if isinstance(v, dict) and k not in JOBS)
    if unknown:
        raise RunFileError(f"{where} section {unknown[0]!r} is not one of {', '.join(JOBS)}")
    shared = {k: v for k, v in run.slurm.items() if not isinstance(v, dict)}
    merged = {str(k).replace("_", "-"): v for k, v in shared.items()}
    merged |= {str(k).replace("_", "-"): v for k, v in (run.slurm.get(key) or {}).items()}
    options: list[str] = []
    no_gres = False
    for name, value in merged.items():
        if not re.fullmatch(r"[a-z][a-z0-9-]*", name):
            raise RunFileError(f"{where} option {name!r}: not an sbatch long option name")
        if name in _RESERVED:
            raise RunFileError(
                f"{where} option {name!r} is set by the submission itself; remove it "
                "(logs go to outputs/<run>/slurm/)"
            )
        text = "" if value is None else str(value).strip()
        if name == "gres" or name in _GPU_OPTIONS:
            no_gres = True  # the script's own --gres=gpu:a100:1 goes in either case
            if value is False or text.lower() in _NO_GPU:
                continue
            if name == "gres":
                no_gres = False
        if value is True:
            options.append(f"--{name}")
        elif value is False:
            continue
        elif text == "":
            raise RunFileError(
                f"{where} option {name!r} is empty: give it a value or delete the line"
            )
        else:
            options.append(f"--{name}={text}")
    if no_gres and not any(o.startswith("--gres=") for o in options):
        options.insert(0, "--gres=none")
    return options


@dataclass
class SbatchJob:
    """One ``sbatch`` call of a submission.

    Attributes:
        key: ``"01_data"``, ``"models"`` or ``"08_compare"``.
        notebooks: what it runs (one per array task for ``models``).
        after: keys of jobs of the same submission it waits for (``afterok``).
        after_jobs: jobs of earlier submissions it waits for (still queued or running).
        argv: the command line without the dependency; it starts ``sbatch --parsable``.
    """

    key: str
    notebooks: list[str]
    after: list[str]
    argv: list[str]
    after_jobs: list[str] = field(default_factory=list)

    def _with_dependency(self, ids: list[str]) -> list[str]:
        if not ids:
            return list(self.argv)
        return [*self.argv[:3], "--dependency=afterok:" + ":".join(ids), *self.argv[3:]]

    def command(self, job_ids: dict[str, str]) -> list[str]:
        """The command line with the ids of the jobs it waits for filled in."""
        return self._with_dependency([job_ids[k] for k in self.after] + self.after_jobs)

    def test_command(self) -> list[str]:
        """``sbatch --test-only``: would the scheduler accept it? (Nothing is submitted.)"""
        return [self.argv[0], "--test-only", *self.argv[2:]]

    def shell_line(self) -> str:
        """The line a dry run prints: ``JOB_X=$(sbatch ... afterok:$JOB_Y ...)``."""
        argv = self._with_dependency([f"@{k}@" for k in self.after] + self.after_jobs)
        text = shlex.join(argv)
        for key in self.after:
            text = text.replace(f"@{key}@", f"${_var(key)}")
        return f"{_var(self.key)}=$({text})"


def _var(key: str) -> str:
    return {"01_data": "JOB_DATA", "models": "JOB_MODELS", "08_compare": "JOB_COMPARE"}[key]


def _shown_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path.resolve())


def _job_name(run: RunSpec, key: str) -> str:
    return f"fer-{run.name}-{key.split('_')[-1]}"


def log_path(run: RunSpec, key: str, job_id: str, task: int | None = None) -> Path:
    """Where SLURM writes the log of a job (``--output`` below): ``outputs/<run>/slurm/...``."""
    suffix = f"{job_id}_{task}" if task is not None else job_id
    return run.out_dir / "slurm" / f"{_job_name(run, key)}-{suffix}.out"


def _make_job(run: RunSpec, key: str, notebooks: list[str], force: bool) -> SbatchJob:
    logs = run.out_dir / "slurm"
    argv = ["sbatch", "--parsable", f"--job-name={_job_name(run, key)}"]
    if key == "models":
        argv += [f"--array=0-{len(notebooks) - 1}", f"--output={logs}/%x-%A_%a.out"]
    else:
        argv.append(f"--output={logs}/%x-%j.out")
    argv += sbatch_options(run, key)
    argv += [str(SLURM_DIR / f"{key}.sbatch"), _shown_path(run.file)]
    argv += ["--force"] if force else []
    argv += notebooks if key == "models" else []
    return SbatchJob(key, notebooks, [], argv)


# ---------------------------------------------------------------------------------------------
# What to submit
# ---------------------------------------------------------------------------------------------


def read_submissions(run: RunSpec) -> list[dict[str, Any]]:
    """Every recorded submission of ``run``, oldest first (``[]`` when there is none)."""
    path = run.out_dir / "slurm" / SUBMISSIONS
    try:
        return list(json.loads(path.read_text(encoding="utf-8")))
    except (FileNotFoundError, ValueError):
        return []


def latest_jobs(run: RunSpec) -> dict[str, dict[str, str]]:
    """Notebook -> ``{"job": ..., "log": ...}`` of the latest submission that included it."""
    latest: dict[str, dict[str, str]] = {}
    for record in read_submissions(run):
        latest.update(record.get("notebooks", {}))
    return latest


@dataclass
class SlurmPlan:
    """What a submission will do, decided before anything is submitted.

    Attributes:
        run: the run file, merged and checked.
        jobs: the ``sbatch`` calls, in order (empty when there is nothing to run).
        skipped: notebook -> why it is not submitted (complete, or queued/running in a job).
        replace: jobs of earlier submissions to cancel once this one is in (they can never
            start, or would run 08 before the new models), with why.
        scheduler: ``None`` when the scheduler was asked, else why it could not be.
    """

    run: RunSpec
    jobs: list[SbatchJob]
    skipped: dict[str, str]
    replace: dict[str, str]
    scheduler: str | None


def plan_submission(
    run_file: str | Path,
    *,
    only: list[str] | None = None,
    force: bool = False,
    scontrol: str = "scontrol",
    ask_scheduler: bool = True,
) -> SlurmPlan:
    """Check a run file and decide its jobs, as :func:`submit` and the dry run do.

    Everything a local run checks is checked here first (:func:`~.runfile.load_run_file`,
    :func:`~.runfile.select_notebooks` for ``only``, :func:`~.runfile.check_parameters`,
    and the ``slurm`` section). Then, per notebook: complete (same parameters) is skipped
    unless ``force``; queued or running in a job that is still alive is waited for, never
    submitted twice; anything else is submitted. ``08_compare`` is submitted again whenever a
    model notebook is (it compares them).

    Args:
        run_file: e.g. ``papermill_runs/slurm/cpu-example.yaml``.
        only: submit just these notebooks (``--only``).
        force: submit complete notebooks too; their jobs run with ``--force``.
        scontrol: the ``scontrol`` executable.
        ask_scheduler: ``False`` plans from the outputs alone (no scheduler here).

    Raises:
        RunFileError: the run file or a parameter is wrong, or a notebook is being run by a
            process outside SLURM right now.
    """
    run = load_run_file(run_file)
    selected = select_notebooks(run, only)
    check_parameters(run, selected)
    for key in JOBS:
        sbatch_options(run, key)  # a bad slurm section is an error even for a job not submitted
    scheduler = _Scheduler(scontrol, enabled=ask_scheduler)
    alive, replace = _live_jobs(run, scheduler, scontrol, ask_scheduler)
    stages = {
        "01_data": [nb for nb in run.notebooks if nb == "01_data"],
        "models": [nb for nb in run.notebooks if nb in MODEL_NOTEBOOKS],
        "08_compare": [nb for nb in run.notebooks if nb == "08_compare"],
    }
    skipped: dict[str, str] = {}
    chosen = {
        key: [nb for nb in stages[key] if _wanted(run, nb, selected, alive, force, skipped)]
        for key in JOBS[:2]
    }
    chosen["08_compare"], compare_waits = [], []
    if stages["08_compare"] and "08_compare" in selected:
        chosen["08_compare"], compare_waits = _compare_job(
            run, stages, chosen, alive, replace, skipped, scheduler, force
        )
    jobs: list[SbatchJob] = []
    waits: list[str] = []  # jobs of earlier submissions that later stages must wait for
    for key in JOBS:
        if chosen[key]:
            job = _make_job(run, key, chosen[key], force)
            job.after = [jobs[-1].key] if jobs else []
            job.after_jobs = [*waits, *(compare_waits if key == "08_compare" else [])]
            jobs.append(job)
        waits += [alive[nb] for nb in stages[key] if nb in alive]
    return SlurmPlan(run, jobs, skipped, replace, scheduler.error)


def _live_jobs(
    run: RunSpec, scheduler: _Scheduler, scontrol: str, ask_scheduler: bool
) -> tuple[dict[str, str], dict[str, str]]:
    """Notebooks queued or running in a job still alive (notebook -> job), and the jobs to
    replace (job -> why: pending for ever behind a failed one)."""
    from .runner import read_status, running_elsewhere

    previous = latest_jobs(run)
    alive: dict[str, str] = {}
    replace: dict[str, str] = {}
    for nb in run.notebooks:
        marker = read_status(run, nb)
        elsewhere = running_elsewhere(marker, scontrol=scontrol) if ask_scheduler else None
        if elsewhere and not marker.get("slurm"):
            raise RunFileError(
                f"{nb} is running in {elsewhere}, outside SLURM: let it finish first"
            )
        if elsewhere:
            alive[nb] = str(marker["slurm"]["job"])
            continue
        info = scheduler.lookup(previous.get(nb, {}).get("job"))
        if info is not None and info.never_starts:
            replace[info.job] = f"{nb}: pending for ever ({NEVER_STARTS})"
        elif info is not None and info.active:
            alive[nb] = info.job
    return alive, replace


def _wanted(
    run: RunSpec,
    nb: str,
    selected: list[str],
    alive: dict[str, str],
    force: bool,
    skipped: dict[str, str],
) -> bool:
    """Whether ``nb`` is submitted now; when not (and it was asked for), ``skipped`` says why."""
    from .runner import is_complete

    if nb not in selected:
        return False
    if nb in alive:
        skipped[nb] = f"queued or running in job {alive[nb]}: waiting for it"
    elif not force and is_complete(run, nb):
        skipped[nb] = "complete (--force to run it again)"
    else:
        return True
    return False


def _compare_job(
    run: RunSpec,
    stages: dict[str, list[str]],
    chosen: dict[str, list[str]],
    alive: dict[str, str],
    replace: dict[str, str],
    skipped: dict[str, str],
    scheduler: _Scheduler,
    force: bool,
) -> tuple[list[str], list[str]]:
    """Whether ``08_compare`` is submitted (it compares the models, so it follows them), and
    the earlier jobs it must wait for."""
    from .runner import compare_is_stale, is_complete

    old = alive.get("08_compare")
    old_info = scheduler.lookup(old) if old else None
    if old and chosen["models"] and old_info is not None and old_info.state == "PENDING":
        # It waits for the old model tasks only: 08 would run before the new ones end.
        replace[old] = "08_compare: it would not wait for the models submitted now"
        old = None
        del alive["08_compare"]
    if old and chosen["models"]:  # 08 runs now, and the new models will make it stale
        return ["08_compare"], [old]
    if old:
        skipped["08_compare"] = f"queued or running in job {old}: waiting for it"
        return [], []
    if (
        force
        or chosen["models"]
        or any(nb in alive for nb in stages["models"])
        or not is_complete(run, "08_compare")
        or compare_is_stale(run)
    ):
        return ["08_compare"], []
    skipped["08_compare"] = "complete (--force to run it again)"
    return [], []


def sbatch_jobs(
    run_file: str | Path, *, only: list[str] | None = None, force: bool = False
) -> list[SbatchJob]:
    """The ``sbatch`` command lines of a run, planned from its outputs alone (no scheduler).

    Args:
        run_file: e.g. ``papermill_runs/a100.yaml``.
        only: just these notebooks; force: complete ones too (see :func:`plan_submission`).

    Returns:
        The jobs in submission order; each one's ``argv`` starts with ``sbatch --parsable``.
    """
    return plan_submission(run_file, only=only, force=force, ask_scheduler=False).jobs


# ---------------------------------------------------------------------------------------------
# Submitting
# ---------------------------------------------------------------------------------------------


def _hint(message: str) -> str:
    if "generic resource" in message or "GRES" in message:
        return (
            "\n  hint: a cluster without GPUs (or with other GPU names): set `gres: none`, or "
            "e.g. `gpus: 1`, under `slurm: models:` in the run file (papermill_runs/slurm/README.md)"
        )
    if "node configuration" in message or "Memory specification" in message:
        return (
            "\n  hint: the scripts ask for 4-8 CPUs and 16-32G; set `cpus-per-task` and `mem` in "
            "the run file's `slurm:` section to what your nodes have (papermill_runs/slurm/README.md)"
        )
    return ""


def _sbatch_error(done: subprocess.CompletedProcess) -> str:
    lines = [line.removeprefix("sbatch: error: ") for line in done.stderr.strip().splitlines()]
    return "; ".join(line for line in lines if line) or f"exit status {done.returncode}"


def submit(
    run_file: str | Path,
    *,
    only: list[str] | None = None,
    force: bool = False,
    dry_run: bool = False,
    echo: Callable[[str], Any] = print,
    sbatch: str = "sbatch",
    scancel: str = "scancel",
    scontrol: str = "scontrol",
    preflight: bool = True,
) -> dict[str, str]:
    """Check a run, then submit its jobs with ``sbatch --parsable``, each after the one before.

    Nothing is submitted unless every check passes: the run file and parameters (as a local
    run checks them, :func:`plan_submission`), then ``sbatch --test-only`` for each job (the
    cluster's own answer to its resources). If an ``sbatch`` fails anyway, the jobs already
    submitted are cancelled (``scancel``) and the error says so.

    Args:
        run_file: e.g. ``papermill_runs/a100.yaml``.
        only: submit just these notebooks (``--only``); force: complete ones too (``--force``).
        dry_run: print the commands as a shell script (``JOB_DATA=$(sbatch ...)``) instead of
            running them.
        echo: where the commands and job ids go.
        sbatch, scancel, scontrol: the SLURM executables.
        preflight: ask ``sbatch --test-only`` first.

    Returns:
        Job key -> job id (``{}`` for a dry run, or when everything is complete already).

    Raises:
        RunFileError: the run file is wrong (nothing was submitted).
        RuntimeError: the scheduler refused a job; the message says which, why, and what was
            cancelled.
    """
    plan = plan_submission(run_file, only=only, force=force, scontrol=scontrol)
    run = plan.run
    logs = run.out_dir / "slurm"
    # The jobs run the interpreter that submitted them (the scripts fall back to `python`).
    env_line = f"export FERCOURSE_PYTHON={shlex.quote(sys.executable)}"
    if dry_run:
        echo(f"# run {run.name!r}: parameters checked; from {PROJECT_ROOT}")
        for nb, why in plan.skipped.items():
            echo(f"# {nb}: not submitted, {why}")
        if not plan.jobs:
            echo("# nothing to submit")
            return {}
        echo(env_line)
        echo(f"mkdir -p {shlex.quote(str(logs))}")
        for job in plan.jobs:
            echo(job.shell_line())
        return {}

    for nb, why in plan.skipped.items():
        echo(f"  {nb:<14} not submitted: {why}")
    if plan.scheduler and plan.scheduler != "not asked" and read_submissions(run):
        echo(f"  (the scheduler could not be asked about earlier jobs: {plan.scheduler})")
    if not plan.jobs:
        echo(f"nothing to submit for run {run.name!r}")
        return {}
    env = {**os.environ, "FERCOURSE_PYTHON": sys.executable}
    if preflight:
        refused = []
        for job in plan.jobs:
            argv = job.test_command()
            argv[0] = sbatch
            done = subprocess.run(argv, cwd=PROJECT_ROOT, capture_output=True, text=True, env=env)
            if done.returncode != 0:
                message = _sbatch_error(done)
                refused.append(f"the {job.key} job: {message}{_hint(message)}")
        if refused:
            raise RuntimeError(
                "SLURM would refuse this run, so nothing was submitted (sbatch --test-only):\n  "
                + "\n  ".join(refused)
            )
    logs.mkdir(parents=True, exist_ok=True)
    ids: dict[str, str] = {}
    for job in plan.jobs:
        argv = job.command(ids)
        argv[0] = sbatch
        done = subprocess.run(argv, cwd=PROJECT_ROOT, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            message = f"{shlex.join(argv)} failed: {_sbatch_error(done)}"
            raise RuntimeError(message + _cancel(ids, scancel) + _hint(message))
        ids[job.key] = done.stdout.strip().split(";")[0]  # --parsable: "id" or "id;cluster"
        echo(f"submitted {job.key}: job {ids[job.key]} ({', '.join(job.notebooks)})")
    for old, why in plan.replace.items():
        done = subprocess.run([scancel, old], capture_output=True, text=True)
        state = "cancelled" if done.returncode == 0 else f"could not cancel ({done.stderr.strip()})"
        echo(f"  {state} job {old} of an earlier submission: {why}")
    _record(plan, ids)
    echo(f"logs: {logs}/   status: python -m fercourse run {_shown_path(run.file)} --status")
    return ids


def _cancel(ids: dict[str, str], scancel: str) -> str:
    if not ids:
        return "\nnothing had been submitted yet"
    done = subprocess.run([scancel, *ids.values()], capture_output=True, text=True)
    listed = ", ".join(f"{key} (job {job})" for key, job in ids.items())
    if done.returncode == 0:
        return f"\ncancelled what this submission had already submitted: {listed}"
    return f"\nALSO FAILED to cancel {listed}: {done.stderr.strip()}; cancel them with scancel"


def _record(plan: SlurmPlan, ids: dict[str, str]) -> None:
    run = plan.run
    notebooks: dict[str, dict[str, str]] = {}
    for job in plan.jobs:
        job_id = ids[job.key]
        for task, nb in enumerate(job.notebooks):
            if job.key == "models":
                entry = {
                    "job": f"{job_id}_{task}",
                    "log": str(log_path(run, job.key, job_id, task)),
                }
            else:
                entry = {"job": job_id, "log": str(log_path(run, job.key, job_id))}
            notebooks[nb] = entry | {"key": job.key}
    record = {
        "submitted": datetime.now(UTC).isoformat(timespec="seconds"),
        "jobs": {job.key: ids[job.key] for job in plan.jobs},
        "notebooks": notebooks,
        "skipped": plan.skipped,
        "cancelled": plan.replace,
    }
    path = run.out_dir / "slurm" / SUBMISSIONS
    atomic_write_json(path, [*read_submissions(run), record])
