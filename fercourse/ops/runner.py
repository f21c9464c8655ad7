"""Execute the course notebooks headless with papermill: ``python -m fercourse run RUN_FILE``.

What a run leaves in ``outputs/<run>/``:

- ``<notebook>.ipynb``: the executed copy (the sources in ``notebooks/`` are never written);
- ``<model>/``: what each model notebook saved (checkpoints, ``history.json``, ``metrics.json``);
- ``.status/<notebook>.json``: one marker per notebook (``running``, ``complete`` or ``failed``,
  with its time, parameter hash, and who runs it: host and process, or the SLURM job). A notebook
  that is ``complete`` with the same parameters is skipped on the next run unless forced (08 runs
  again whenever a model notebook finished after 08 last started). An interrupted one is simply
  executed again: its training resumes from the checkpoint in ``outputs/<run>/<model>/``
  (``fc.fit(resume=True)``). One whose marker says ``running`` while that process or SLURM job
  is still alive is never started a second time: the run stops there and says where it runs;
- ``run.json``: the status of every notebook, times, parameters, library versions, git commit.

Introduced in ``notebooks/README.md``.
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..utils import PROJECT_ROOT, atomic_write_json, library_versions
from .runfile import MODEL_NOTEBOOKS, RunSpec, check_parameters, load_run_file, select_notebooks

STATUS_DIR = ".status"


@dataclass
class NotebookFailure:
    """Where and why a notebook failed (from ``papermill.PapermillExecutionError``).

    Attributes:
        notebook: e.g. ``"02_baseline"``.
        cell_index: index of the failing cell in the executed notebook (papermill's injected
            parameters cell counts too); ``None`` when the kernel died outside a cell.
        exec_count: the ``In [n]`` number shown next to the failing cell.
        ename: the exception's class name, e.g. ``"ValueError"``.
        evalue: the exception's message.
        source: the failing cell's source.
        output: the partially executed notebook, to open and read.
    """

    notebook: str
    cell_index: int | None
    exec_count: int | None
    ename: str
    evalue: str
    source: str
    output: Path

    @classmethod
    def from_exception(cls, notebook: str, err: Exception, output: Path) -> NotebookFailure:
        """From papermill's ``PapermillExecutionError`` (a cell raised) or any other error."""
        return cls(
            notebook=notebook,
            cell_index=getattr(err, "cell_index", None),
            exec_count=getattr(err, "exec_count", None),
            ename=getattr(err, "ename", type(err).__name__),
            evalue=getattr(err, "evalue", str(err)),
            source=getattr(err, "source", ""),
            output=output,
        )

    def to_dict(self) -> dict[str, Any]:
        """What ``run.json`` records."""
        keys = ("cell_index", "exec_count", "ename", "evalue")
        return {key: getattr(self, key) for key in keys} | {"output": str(self.output)}

    def __str__(self) -> str:
        first_line = (self.source.strip().splitlines() or [""])[0]
        where = (
            f"in cell {self.cell_index} (In [{self.exec_count}]: {first_line!r})"
            if self.cell_index is not None
            else "outside any cell"
        )
        return (
            f"{self.notebook} failed {where}: {self.ename}: {self.evalue}\n"
            f"  partially executed notebook: {self.output}"
        )


@dataclass
class RunResult:
    """What :func:`run_course` did: per-notebook status and seconds, and the first failure.

    ``busy`` names a notebook that was not started because it is running elsewhere right now
    (another process, or a SLURM job that is still alive), with where.
    """

    run: RunSpec
    status: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    failure: NotebookFailure | None = None
    total_seconds: float = 0.0
    busy: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no notebook failed and none was left alone because it runs elsewhere."""
        return self.failure is None and not self.busy

    def table(self) -> str:
        """A per-notebook time table with the total, as the runner prints it."""
        lines = [f"{'notebook':<14}{'status':<10}{'time':>10}", "-" * 34]
        for nb in self.run.notebooks:
            status = self.status.get(nb, "not run")
            secs = self.seconds.get(nb)
            shown = f"{secs:8.1f} s" if secs is not None and status != "skipped" else ""
            lines.append(f"{nb:<14}{status:<10}{shown:>10}")
        lines += ["-" * 34, f"{'total':<24}{self.total_seconds:8.1f} s"]
        lines.append(f"({_minutes(self.total_seconds)} wall clock for this invocation)")
        return "\n".join(lines)


def _minutes(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _git_commit() -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    try:
        return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "-s"))}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def status_path(run: RunSpec, notebook: str) -> Path:
    """The completion marker of ``notebook`` in ``run``."""
    return run.out_dir / STATUS_DIR / f"{notebook}.json"


def read_status(run: RunSpec, notebook: str) -> dict[str, Any]:
    """The marker of ``notebook`` (``{}`` when it never ran)."""
    import json

    path = status_path(run, notebook)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}


def is_complete(run: RunSpec, notebook: str) -> bool:
    """True when ``notebook`` completed with the parameters it would get now."""
    marker = read_status(run, notebook)
    return (
        marker.get("status") == "complete"
        and marker.get("params_hash") == run.params_hash(notebook)
        and (run.out_dir / f"{notebook}.ipynb").exists()
    )


def compare_is_stale(run: RunSpec) -> bool:
    """True when a model notebook finished after ``08_compare`` last started (08 must run again).

    Read from the markers, so it holds across invocations: a SLURM array task that re-trained a
    model, or ``--only 02_baseline`` run by hand, makes the next 08 run instead of being skipped.
    """
    started = read_status(run, "08_compare").get("started")
    if not started:
        return False
    return any(
        (read_status(run, nb).get("finished") or "") > started
        for nb in MODEL_NOTEBOOKS
        if nb in run.notebooks
    )


def _who_runs_it() -> dict[str, Any]:
    """What a ``running`` marker records about this process (and its SLURM job, in one)."""
    who: dict[str, Any] = {"host": platform.node(), "pid": os.getpid()}
    job_id = os.environ.get("SLURM_JOB_ID")
    if job_id:
        array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
        who["slurm"] = {
            "job_id": job_id,  # the scheduler's own id, unique per array task
            "job": f"{array}_{task}" if array and task else job_id,  # as squeue shows it
            "name": os.environ.get("SLURM_JOB_NAME", ""),
        }
    return who


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    try:  # a reused pid is some other program: only a fercourse process counts
        return b"fercourse" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True


def running_elsewhere(marker: dict[str, Any], *, scontrol: str = "scontrol") -> str | None:
    """Where a notebook whose marker says ``running`` is still running, or ``None``.

    ``None`` means the run that wrote the marker is gone (killed, cancelled, timed out): the
    notebook was interrupted and may run again (its training resumes). A SLURM job is asked
    about through ``scontrol``; a local process by its pid, on the same host only.
    """
    if marker.get("status") != "running":
        return None
    slurm = marker.get("slurm")
    if slurm:
        if slurm.get("job_id") == os.environ.get("SLURM_JOB_ID"):
            return None  # this very job, requeued: it is the run that was interrupted
        from .slurm import SchedulerError, job_info

        try:
            info = job_info(str(slurm.get("job_id")), scontrol=scontrol)
        except SchedulerError:
            return None  # no scheduler to ask here: as before, treat it as interrupted
        if info is not None and info.active:
            return f"SLURM job {slurm.get('job')} ({info.state}, on {info.node or '?'})"
        return None
    pid = marker.get("pid")
    if marker.get("host") == platform.node() and pid and pid != os.getpid() and _pid_alive(pid):
        return f"process {pid} on this machine"
    return None


def write_run_json(run: RunSpec) -> Path:
    """(Re)write ``outputs/<run>/run.json`` from the per-notebook markers.

    Markers are the source of truth, so SLURM array tasks finishing at the same time never lose
    each other's status: every rewrite reads all of them.
    """
    notebooks = {nb: read_status(run, nb) or {"status": "not run"} for nb in run.notebooks}
    states = [m.get("status") for m in notebooks.values()]
    overall = (
        "failed"
        if "failed" in states
        else "complete"
        if all(s == "complete" for s in states)
        else "incomplete"
    )
    done = [m.get("seconds", 0.0) for m in notebooks.values() if m.get("status") == "complete"]
    record = {
        "run": run.name,
        "run_file": str(run.file),
        "status": overall,
        "updated": _now(),
        "total_seconds": round(sum(done), 1),
        "notebooks": notebooks,
        "parameters": run.parameters,
        "versions": library_versions(),
        "git": _git_commit(),
        "host": platform.node(),
        "python": sys.executable,
    }
    return atomic_write_json(run.out_dir / "run.json", record)


@contextlib.contextmanager
def _kernel_environment() -> Iterator[None]:
    """The kernel inherits this process's environment: one line per epoch, not tqdm widgets."""
    before = os.environ.get("FERCOURSE_PROGRESS")
    os.environ.setdefault("FERCOURSE_PROGRESS", "0")
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("FERCOURSE_PROGRESS", None)


def _execute(run: RunSpec, nb: str, log_output: bool) -> None:
    import papermill

    kwargs: dict[str, Any] = {}
    if run.cell_timeout_s:
        kwargs["execution_timeout"] = run.cell_timeout_s
    if log_output:
        # The cells' stdout/stderr straight into ours (a SLURM job's log): the epoch lines too.
        # papermill's own log_output only hands them to a logger nobody has configured.
        kwargs |= {"stdout_file": sys.stdout, "stderr_file": sys.stderr}
    with _kernel_environment():
        papermill.execute_notebook(
            str(run.source(nb)),
            str(run.out_dir / f"{nb}.ipynb"),
            parameters=run.parameters[nb],
            kernel_name=run.kernel,
            progress_bar=False,
            request_save_on_cell_execute=True,  # a killed run leaves a readable partial notebook
            cwd=str(run.source(nb).parent),
            **kwargs,
        )


def run_course(
    run_file: str | Path,
    *,
    force: bool = False,
    only: list[str] | None = None,
    log_output: bool = False,
    echo: Callable[[str], Any] = print,
) -> RunResult:
    """Execute a run's notebooks in order with papermill into ``outputs/<run>/``.

    Args:
        run_file: e.g. ``papermill_runs/smoke.yaml`` (see :mod:`fercourse.ops.runfile`).
        force: execute notebooks that are already complete too.
        only: execute just these notebooks (names such as ``"02_baseline"``), in run order.
        log_output: write the notebooks' output (the epoch lines too) to this process's stdout
            and stderr, as it arrives (SLURM jobs do: it lands in the job's log).
        echo: where progress lines go.

    Returns:
        A :class:`RunResult`; ``result.failure`` says which notebook failed, in which cell, why,
        and where its partial output is; ``result.busy`` names a notebook left alone because it
        is running elsewhere right now. Execution stops at the first of either.

    Raises:
        RunFileError: before anything runs, for a malformed run file or a parameter a notebook
            does not declare.

    Example:
        >>> result = fc.ops.run_course("papermill_runs/smoke.yaml")  # doctest: +SKIP
        >>> print(result.table())  # doctest: +SKIP
    """
    run = load_run_file(run_file)
    selected = select_notebooks(run, only)
    check_parameters(run, selected)
    run.out_dir.mkdir(parents=True, exist_ok=True)
    result = RunResult(run)
    started = time.perf_counter()
    echo(f"run {run.name!r} from {run.file} -> {run.out_dir}")
    for nb in selected:
        # 08 compares the models: when one of them was just (re)trained, 08 runs again too.
        stale = nb == "08_compare" and (
            any(result.status.get(m) == "complete" for m in MODEL_NOTEBOOKS)
            or compare_is_stale(run)
        )
        if not force and not stale and is_complete(run, nb):
            result.status[nb] = "skipped"
            echo(f"  {nb:<14} complete already, skipped (--force to run it again)")
            continue
        if not _run_notebook(run, nb, result, log_output, echo):
            break
    result.total_seconds = time.perf_counter() - started
    write_run_json(run)
    echo(result.table())
    echo(f"run.json: {run.out_dir / 'run.json'}")
    return result


def _run_notebook(
    run: RunSpec, nb: str, result: RunResult, log_output: bool, echo: Callable[[str], Any]
) -> bool:
    """Execute one notebook with its status marker; False when the run must stop here."""
    previous = read_status(run, nb)
    elsewhere = running_elsewhere(previous)
    if elsewhere:  # never the same notebook twice at once (same outputs, same checkpoint)
        result.status[nb] = "busy"
        result.busy[nb] = elsewhere
        echo(
            f"  {nb:<14} is running in {elsewhere} since {previous.get('started')}: "
            "not started a second time; wait for it (or cancel it) and run again"
        )
        return False
    if previous.get("status") == "running":
        echo(f"  {nb:<14} was interrupted last time; running it again (training resumes)")
    marker = {
        "status": "running",
        "started": _now(),
        "params_hash": run.params_hash(nb),
        "parameters": run.parameters[nb],
        "output": str(run.out_dir / f"{nb}.ipynb"),
        **_who_runs_it(),
    }
    atomic_write_json(status_path(run, nb), marker)
    echo(f"  {nb:<14} running ...")
    t0 = time.perf_counter()
    try:
        _execute(run, nb, log_output)
    except Exception as err:  # a cell raised (PapermillExecutionError), the kernel died...
        result.failure = NotebookFailure.from_exception(nb, err, run.out_dir / f"{nb}.ipynb")
        result.status[nb] = "failed"
        result.seconds[nb] = round(time.perf_counter() - t0, 1)
        marker |= {"status": "failed", "seconds": result.seconds[nb]}
        marker["error"] = result.failure.to_dict()
        atomic_write_json(status_path(run, nb), marker)
        echo(f"  {nb:<14} FAILED\n{result.failure}")
        return False
    seconds = round(time.perf_counter() - t0, 1)
    marker |= {"status": "complete", "finished": _now(), "seconds": seconds}
    atomic_write_json(status_path(run, nb), marker)
    result.status[nb] = "complete"
    result.seconds[nb] = seconds
    echo(f"  {nb:<14} complete in {seconds:.1f} s")
    write_run_json(run)
    return True
