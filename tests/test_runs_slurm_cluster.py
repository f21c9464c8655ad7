"""The GPU-cluster path on a real SLURM scheduler: a single-node cluster started on this machine.

Needs Debian's ``slurm-wlm`` and ``munge`` (``.ci/run`` installs them) and root; skipped, with
the reason, where they are missing (a failure on CI). The cluster is CPU-only, like a student's
laptop or a small department cluster, so the course is submitted with
``papermill_runs/slurm/cpu-example.yaml`` (the README's example): the shipped GPU scripts are
refused before anything is submitted, the CPU example runs all eight notebooks in dependency
order, a task cancelled mid-training resumes when the same command is submitted again, and
``--status`` says what happened. Order and times come from the scheduler's own record
(``scontrol show job``), not from the runner. Run with ``-s`` to see the measured times.
"""

from __future__ import annotations

import json
import textwrap
import time
from datetime import datetime
from pathlib import Path

import pytest
from slurm_cluster import SlurmCluster, missing_tools

import fercourse as fc
from fercourse.course import exercises_of
from fercourse.ops import MODEL_NOTEBOOKS, NOTEBOOKS
from fercourse.ops.cli import main as run_main
from fercourse.ops.edition import write_student_edition
from fercourse.ops.runner import read_status
from fercourse.ops.slurm import job_info, plan_submission, read_submissions, scontrol_jobs
from fercourse.ops.slurm_status import run_status
from fercourse.utils import PROJECT_ROOT

pytestmark = pytest.mark.slurm

RUNS_DIR = PROJECT_ROOT / "papermill_runs"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    missing = missing_tools()
    if missing:
        if fc.utils.in_ci():
            pytest.fail("SLURM test prerequisites missing in CI: " + ", ".join(missing))
        pytest.skip("needs a SLURM cluster: " + ", ".join(missing))
    with SlurmCluster(tmp_path_factory.mktemp("slurm")) as running:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("SLURM_CONF", str(running.conf))  # sbatch, scontrol... find it here
            yield running


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def wait_for(what: str, ready, timeout: float, cluster: SlurmCluster, poll=1.0, failed=None):
    """Poll ``ready()``; fail at the timeout, or as soon as ``failed()`` returns a message."""
    deadline = time.monotonic() + timeout
    while True:
        value = ready()
        if value:
            return value
        problem = failed() if failed else None
        if problem:
            pytest.fail(f"while waiting for {what}: {problem}")
        if time.monotonic() > deadline:
            squeue = cluster.run("squeue", "-a", check=False).stdout
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{squeue}")
        time.sleep(poll)


def failed_jobs(run) -> str | None:
    """The notebooks of ``run`` whose job failed, with the end of their logs (else ``None``)."""
    bad = [s for s in run_status(run.file) if s.state == "failed"]
    tails = []
    for s in bad:
        log = Path(s.log).read_text(errors="replace")[-3000:] if s.log else "(no log)"
        tails.append(f"{s.notebook} ({s.job}): {s.detail}\n{log}")
    return "\n".join(tails) or None


def when(stamp: str | None) -> datetime:
    assert stamp, "the scheduler has no time for this job"
    return datetime.fromisoformat(stamp)


def test_the_shipped_gpu_and_cpu_requests_are_refused_before_anything_is_submitted(
    cluster, tmp_path, capsys
):
    before = cluster.run("squeue", "-h", "-o", "%i").stdout
    # As a new user would: the smoke course, the scripts' own resources (an A100 per model).
    assert run_main([str(RUNS_DIR / "smoke.yaml"), "--slurm"]) == 2
    err = capsys.readouterr().err
    assert "nothing was submitted" in err and "generic resource" in err
    assert "gres: none" in err  # the hint names the fix
    # Without the GPU, 01 and 08 still ask for 4 CPUs and 16G: more than this node has.
    path = write_yaml(
        tmp_path / "no-gpu.yaml",
        """\
        extends: smoke.yaml
        run_name: no-gpu
        slurm:
          models: {gres: none}
        """,
    )
    assert run_main([str(path), "--slurm"]) == 2
    err = capsys.readouterr().err
    assert "the 01_data job: " in err and "node configuration is not available" in err
    assert "cpus-per-task" in err
    assert cluster.run("squeue", "-h", "-o", "%i").stdout == before  # nothing was queued
    assert not read_submissions(fc.ops.load_run_file(path))


def test_a_notebook_running_in_a_live_job_is_not_started_a_second_time(cluster, tmp_path, capsys):
    path = write_yaml(
        tmp_path / "busy.yaml",
        """\
        extends: slurm/cpu-example.yaml
        run_name: busy
        """,
    )
    run = fc.ops.load_run_file(path)
    # A job of an earlier submission, still training 02 (here: a job that sleeps).
    sleeper = ["--parsable", "--mem=100M", f"--output={tmp_path}/%j.out", "--wrap", "sleep 300"]
    job = cluster.run("sbatch", *sleeper).stdout.strip()
    running = lambda: getattr(job_info(job), "state", "") == "RUNNING"  # noqa: E731
    wait_for("the job to run", running, 60, cluster, poll=0.3)
    marker = {"status": "running", "started": "2026-01-01T00:00:00+00:00"}
    marker["slurm"] = {"job_id": job, "job": job, "name": "fer-busy-models"}
    fc.utils.atomic_write_json(run.out_dir / ".status" / "02_baseline.json", marker)

    result = fc.ops.run_course(path, only=["02_baseline"])
    assert result.status == {"02_baseline": "busy"} and not result.ok
    assert f"SLURM job {job} (RUNNING" in result.busy["02_baseline"]
    assert not (run.out_dir / "02_baseline.ipynb").exists()  # no kernel was started
    assert "not started a second time" in capsys.readouterr().out

    plan = plan_submission(path)  # submitting again waits for it instead of running it twice
    assert plan.skipped["02_baseline"] == f"queued or running in job {job}: waiting for it"
    models = next(j for j in plan.jobs if j.key == "models")
    assert "02_baseline" not in models.notebooks
    compare = next(j for j in plan.jobs if j.key == "08_compare")
    assert compare.after == ["models"] and compare.after_jobs == [job]
    assert run_main([str(path), "--status"]) == 0
    assert "02_baseline   running" in capsys.readouterr().out

    cluster.run("scancel", job)
    wait_for("the job to end", lambda: not job_info(job).active, 60, cluster, poll=0.3)
    plan = plan_submission(path)  # now it was interrupted: it is submitted, to resume
    assert "02_baseline" in next(j for j in plan.jobs if j.key == "models").notebooks


@pytest.mark.slow
def test_the_smoke_course_through_slurm_with_a_cancelled_task(cluster, tmp_path, capsys):
    """All eight notebooks on the CPU example, one task cancelled mid-training and resumed.

    The course submitted is the student edition (what a class runs): it must run top to bottom
    with every exercise unanswered, and each of its checks must say so.
    """
    started = time.monotonic()
    student = tmp_path / "student"
    write_student_edition(student)
    # Kept outside papermill_runs/, as a user's own file: `extends:` finds the shipped one.
    path = write_yaml(
        tmp_path / "course.yaml",
        f"""\
        extends: slurm/cpu-example.yaml
        run_name: slurm-course
        notebooks_dir: {student}
        notebooks:        # one epoch where the notebook does not check that the model learns
          05_hybrid: {{epochs: 1}}
          07_vit: {{epochs: 1}}
        """,
    )
    run = fc.ops.load_run_file(path)
    out = run.out_dir
    model_dir = out / "baseline_cnn"

    assert run_main([str(path), "--slurm"]) == 0
    first = read_submissions(run)[-1]
    assert set(first["jobs"]) == {"01_data", "models", "08_compare"}
    data_job, array, compare_job = (first["jobs"][k] for k in ("01_data", "models", "08_compare"))
    task_02 = first["notebooks"]["02_baseline"]["job"]
    assert task_02 == f"{array}_0"

    # Cancel 02 (4 epochs) once its first epoch is checkpointed, while it trains the next.
    def checkpointed():
        marker = read_status(run, "02_baseline")
        return marker.get("status") == "running" and (model_dir / "train_state.pt").exists()

    wait_for("02_baseline's first checkpoint", checkpointed, 1200, cluster, poll=0.2)
    interrupted = json.loads((model_dir / "history.json").read_text())
    cluster.run("scancel", task_02)
    cancelled_at = time.monotonic()
    wait_for("the cancelled task to end", lambda: not job_info(task_02).active, 60, cluster, 0.3)
    assert job_info(task_02).state == "CANCELLED"
    done_epochs = [row["epoch"] for row in interrupted["epochs"]]
    assert done_epochs and done_epochs[-1] < 4, "02 finished before it could be cancelled"

    # The other five tasks end; the compare job can then never start. --status says so.
    def array_done():
        tasks = [i for i in scontrol_jobs(array) if i.job != task_02]
        return len(tasks) == 5 and all(not i.active for i in tasks)

    wait_for("the other model tasks", array_done, 3600, cluster, failed=lambda: failed_jobs(run))
    wait_for(
        "the compare job to be blocked", lambda: job_info(compare_job).never_starts, 60, cluster
    )
    first_pass = time.monotonic() - started
    capsys.readouterr()
    assert run_main([str(path), "--status"]) == 0
    status = capsys.readouterr().out
    assert "02_baseline   interrupted  " + task_02 in status
    assert "job CANCELLED" in status
    assert "08_compare    blocked      " + compare_job in status
    assert "SLURM will never start it" in status and f"scancel {compare_job}" in status
    for nb in ("01_data", "03_attention", "07_vit"):
        assert f"{nb:<14}complete" in status

    # The same command again: complete notebooks are not submitted, 02 resumes, 08 follows.
    assert run_main([str(path), "--slurm"]) == 0
    resubmitted = capsys.readouterr().out
    second = read_submissions(run)[-1]
    assert set(second["notebooks"]) == {"02_baseline", "08_compare"}
    for nb in ("01_data", "03_attention", "04_multiscale", "05_hybrid", "06_ensemble", "07_vit"):
        assert f"{nb:<14} not submitted: complete" in resubmitted
    assert f"cancelled job {compare_job} of an earlier submission" in resubmitted
    new_02, new_compare = second["notebooks"]["02_baseline"]["job"], second["jobs"]["08_compare"]

    compare_done = lambda: not job_info(new_compare).active  # noqa: E731
    wait_for("the new compare job", compare_done, 3600, cluster, failed=lambda: failed_jobs(run))
    total = time.monotonic() - started

    # The scheduler's record: every job completed, each after what it depends on.
    jobs = {"01_data": job_info(data_job)}
    jobs |= {nb: job_info(f"{array}_{i}") for i, nb in enumerate(MODEL_NOTEBOOKS) if i}
    jobs |= {"02_baseline": job_info(new_02), "08_compare": job_info(new_compare)}
    assert {nb: info.state for nb, info in jobs.items()} == dict.fromkeys(NOTEBOOKS, "COMPLETED")
    assert job_info(compare_job).state == "CANCELLED"  # the blocked one, replaced
    for nb in MODEL_NOTEBOOKS:
        assert when(jobs["01_data"].end) <= when(jobs[nb].start), nb
        assert when(jobs[nb].end) <= when(jobs["08_compare"].start), nb
    assert when(job_info(task_02).end) <= when(jobs["02_baseline"].start)
    order = sorted(jobs, key=lambda nb: (when(jobs[nb].start), nb))
    report = ["", "the scheduler's record (scontrol show job), in start order:"]
    report += [
        f"  {nb:<14} job {jobs[nb].job:<6} {jobs[nb].start} -> {jobs[nb].end}" for nb in order
    ]
    cancelled = job_info(task_02)
    report.append(f"  (02_baseline cancelled: job {task_02} {cancelled.start} -> {cancelled.end})")

    # What a local run leaves, in the same place.
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "complete"
    assert {nb: m["status"] for nb, m in record["notebooks"].items()} == dict.fromkeys(
        NOTEBOOKS, "complete"
    )
    assert record["notebooks"]["02_baseline"]["slurm"]["job"] == new_02
    for nb in NOTEBOOKS:
        assert (out / f"{nb}.ipynb").is_file(), nb
        checks = [
            "".join(o.get("data", {}).get("text/plain", ""))
            for c in json.loads((out / f"{nb}.ipynb").read_text())["cells"]
            if "fc.check(" in "".join(c["source"])
            for o in c["outputs"]
        ]
        assert len(checks) == len(exercises_of(nb)) and all("not answered" in c for c in checks), nb
    for model in MODEL_NOTEBOOKS.values():
        files = {p.name for p in (out / model).iterdir()}
        assert {"best.safetensors", "history.json", "metrics.json", "train_state.pt"} <= files

    # Resumed, not restarted: the epochs before the cancel are the interrupted run's own.
    history = json.loads((model_dir / "history.json").read_text())
    assert [row["epoch"] for row in history["epochs"]] == [1, 2, 3, 4]
    assert history["epochs"][: len(interrupted["epochs"])] == interrupted["epochs"]

    # The logs, in outputs/<run>/slurm/, hold the training progress of each task.
    logs = out / "slurm"
    log = {nb: Path(e["log"]) for s in read_submissions(run) for nb, e in s["notebooks"].items()}
    first_02_log = Path(first["notebooks"]["02_baseline"]["log"])
    assert all(p.parent == logs and p.is_file() for p in [*log.values(), first_02_log])
    assert "[baseline_cnn] epoch 1/4" in first_02_log.read_text()
    resumed_log = log["02_baseline"].read_text()
    assert "was interrupted last time" in resumed_log
    assert "[baseline_cnn] epoch 4/4" in resumed_log and "epoch 1/4" not in resumed_log
    for nb, model in MODEL_NOTEBOOKS.items():
        epochs = json.loads((out / model / "config.json").read_text())["config"]["epochs"]
        assert f"[{model}] epoch {epochs}/{epochs}" in log[nb].read_text(), nb

    capsys.readouterr()
    assert run_main([str(path), "--status"]) == 0
    final = capsys.readouterr().out
    assert all(f"{nb:<14}complete" in final for nb in NOTEBOOKS), final
    report.append(
        f"first pass (to the blocked compare job) {first_pass:.0f} s, cancel at "
        f"{cancelled_at - started:.0f} s, whole test {total:.0f} s; "
        f"02 interrupted after epoch(s) {done_epochs}, resumed to {len(history['epochs'])}"
    )
    with capsys.disabled():  # shown with -s
        print("\n".join(report))
