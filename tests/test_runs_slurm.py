"""``--slurm`` without a cluster: checks before submitting, options, plans, partial failures.

The scheduler's side is played by small fake ``sbatch`` / ``scancel`` / ``scontrol`` scripts on
``$PATH``; ``tests/test_runs_slurm_cluster.py`` runs the same path on a real cluster.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
import yaml

import fercourse as fc
from fercourse.ops import MODEL_NOTEBOOKS, RunFileError
from fercourse.ops.cli import main as run_main
from fercourse.ops.runner import compare_is_stale, running_elsewhere, status_path
from fercourse.ops.slurm import _fields, _task_ids, plan_submission, sbatch_options, submit
from fercourse.utils import PROJECT_ROOT, atomic_write_json

RUNS_DIR = PROJECT_ROOT / "papermill_runs"
CPU_EXAMPLE = RUNS_DIR / "slurm" / "cpu-example.yaml"


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """Fake sbatch/scancel/scontrol first on $PATH; every call is appended to calls.txt.

    ``sbatch`` answers job ids 101, 102...; ``$FAIL_SBATCH_AT=n`` makes its n-th real call (not
    ``--test-only``) fail, ``$REFUSE_TEST_ONLY=1`` makes ``--test-only`` refuse. ``scontrol``
    knows no job.
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.txt"
    calls.touch()
    scripts = {
        "sbatch": f"""\
            echo "sbatch $*" >> {calls}
            if [ "$1" = --test-only ]; then
              if [ -n "${{REFUSE_TEST_ONLY:-}}" ]; then
                echo "sbatch: error: Invalid generic resource (gres) specification" >&2; exit 1
              fi
              exit 0
            fi
            n=$(grep -c '^sbatch --parsable' {calls})
            if [ "$n" = "${{FAIL_SBATCH_AT:-0}}" ]; then
              echo "sbatch: error: Batch job submission failed: Invalid account" >&2; exit 1
            fi
            echo $((100 + n))
            """,
        "scancel": f'echo "scancel $*" >> {calls}\n',
        "scontrol": (
            f'echo "scontrol $*" >> {calls}\n'
            'echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1\n'
        ),
    }
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text("#!/bin/bash\n" + textwrap.dedent(body))
        path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def read() -> list[str]:
        return calls.read_text().splitlines()

    return read


def tiny_course(tmp_path: Path, extra: str = "") -> Path:
    """A user's own run file, outside papermill_runs/, on top of the CPU example."""
    text = "extends: slurm/cpu-example.yaml\nrun_name: course\n" + textwrap.dedent(extra)
    return write_yaml(tmp_path / "course.yaml", text)


def dry_run_lines(capsys) -> dict[str, list[str]]:
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "=$(sbatch" in ln]
    return {ln.split("=", 1)[0]: shlex.split(ln.split("=$(", 1)[1].rstrip(")")) for ln in lines}


def mark_complete(run, nb: str, started: str = "00:00:00", finished: str = "00:00:10") -> None:
    marker = {"status": "complete", "params_hash": run.params_hash(nb)}
    marker |= {"started": f"2026-01-01T{started}+00:00", "finished": f"2026-01-01T{finished}+00:00"}
    atomic_write_json(status_path(run, nb), marker)
    (run.out_dir / f"{nb}.ipynb").write_text("{}")


# ---------------------------------------------------------------------------------------------
# Checked before the first sbatch
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dry_run", [False, True])
def test_slurm_refuses_what_a_local_run_refuses(tmp_path, fake_slurm, capsys, dry_run):
    path = tiny_course(tmp_path, 'models:\n  epochs: "ten"\n')
    assert run_main([str(path), "--slurm", *(["--dry-run"] if dry_run else [])]) == 2
    err = capsys.readouterr().err
    assert "02_baseline: parameter 'epochs' expects int or None, got str 'ten'" in err
    assert "07_vit: parameter 'epochs'" in err
    assert fake_slurm() == []  # not even a --test-only


def test_slurm_asks_the_scheduler_before_submitting_anything(tmp_path, fake_slurm, capsys):
    os.environ["REFUSE_TEST_ONLY"] = "1"
    try:
        assert run_main([str(tiny_course(tmp_path)), "--slurm"]) == 2
    finally:
        del os.environ["REFUSE_TEST_ONLY"]
    err = capsys.readouterr().err
    assert "nothing was submitted" in err and "Invalid generic resource" in err
    assert "gres: none" in err  # the hint
    assert all("--test-only" in call for call in fake_slurm())


def test_an_sbatch_failing_part_way_cancels_what_was_submitted(
    tmp_path, fake_slurm, capsys, monkeypatch
):
    monkeypatch.setenv("FAIL_SBATCH_AT", "2")  # the models job
    assert run_main([str(tiny_course(tmp_path)), "--slurm"]) == 2
    err = capsys.readouterr().err
    assert "Invalid account" in err
    assert "cancelled what this submission had already submitted: 01_data (job 101)" in err
    calls = fake_slurm()
    assert calls[-1] == "scancel 101"
    assert sum(c.startswith("sbatch --parsable") for c in calls) == 2
    run = fc.ops.load_run_file(tiny_course(tmp_path))
    assert not (run.out_dir / "slurm" / "submissions.json").exists()  # nothing on record


def test_a_submission_is_recorded_with_its_jobs_and_logs(tmp_path, fake_slurm, capsys):
    path = tiny_course(tmp_path)
    assert run_main([str(path), "--slurm"]) == 0
    run = fc.ops.load_run_file(path)
    record = json.loads((run.out_dir / "slurm" / "submissions.json").read_text())[-1]
    assert record["jobs"] == {"01_data": "101", "models": "102", "08_compare": "103"}
    logs = run.out_dir / "slurm"
    assert record["notebooks"]["01_data"]["log"] == str(logs / "fer-course-data-101.out")
    assert record["notebooks"]["04_multiscale"]["job"] == "102_2"
    assert record["notebooks"]["04_multiscale"]["log"] == str(logs / "fer-course-models-102_2.out")
    calls = [c for c in fake_slurm() if c.startswith("sbatch --parsable")]
    assert "--dependency=afterok:101" in calls[1] and "--dependency=afterok:102" in calls[2]
    assert "--status" in capsys.readouterr().out  # it says how to follow the run


# ---------------------------------------------------------------------------------------------
# Options for real clusters
# ---------------------------------------------------------------------------------------------


def options(tmp_path: Path, slurm: str, key: str = "models") -> list[str]:
    path = write_yaml(tmp_path / "opts.yaml", "slurm:\n" + textwrap.indent(slurm, "  "))
    return sbatch_options(fc.ops.load_run_file(path), key)


@pytest.mark.parametrize("value", ["none", '""', "0", "gpu:0", "null", "false"])
def test_gres_none_removes_the_gpu_request(tmp_path, value):
    assert options(tmp_path, f"models:\n  gres: {value}\n") == ["--gres=none"]


def test_cluster_options_reach_sbatch(tmp_path):
    slurm = """\
        partition: gpu
        account: my-project
        qos: short
        cpus_per_task: 2
        models:
          gpus: 1
          time: "04:00:00"
          mem: 24G
          exclusive: true
        """
    got = options(tmp_path, textwrap.dedent(slurm))
    # --gpus next to the script's --gres=gpu:a100:1 is refused by sbatch: the gres goes.
    assert got == [
        "--gres=none",
        "--partition=gpu",
        "--account=my-project",
        "--qos=short",
        "--cpus-per-task=2",
        "--gpus=1",
        "--time=04:00:00",
        "--mem=24G",
        "--exclusive",
    ]
    assert options(tmp_path, "models: {gres: 'gpu:v100:2'}\n") == ["--gres=gpu:v100:2"]
    assert options(tmp_path, "models: {gpus: 0}\n") == ["--gres=none"]
    assert options(tmp_path, "models: {gres: none}\n", key="01_data") == []


@pytest.mark.parametrize(
    ("slurm", "message"),
    [
        ("output: x.out\n", "'output' is set by the submission itself"),
        ("models: {dependency: 'afterok:1'}\n", "'dependency' is set by the submission"),
        ("mem: ''\n", "'mem' is empty"),
        ("model: {gres: none}\n", "section 'model' is not one of"),
        ("'--mem': 4G\n", "not an sbatch long option name"),
    ],
)
def test_bad_cluster_options_are_refused(tmp_path, slurm, message):
    with pytest.raises(RunFileError, match=message):
        options(tmp_path, slurm)


def test_the_cpu_example_fits_a_cpu_only_node(capsys):
    submit(CPU_EXAMPLE, dry_run=True)
    jobs = dry_run_lines(capsys)
    for key, argv in jobs.items():
        cpus = 2 if key == "JOB_MODELS" else 1
        assert f"--cpus-per-task={cpus}" in argv and "--mem=4G" in argv, key
    assert "--gres=none" in jobs["JOB_MODELS"]
    run = fc.ops.load_run_file(CPU_EXAMPLE)
    fc.ops.check_parameters(run)
    assert all(run.parameters[nb]["device"] == "cpu" for nb in MODEL_NOTEBOOKS)
    # The README shows this file's cluster options as they are.
    readme = (RUNS_DIR / "slurm" / "README.md").read_text()
    shown = readme.split("### A CPU-only cluster", 1)[1].split("```yaml\n", 1)[1].split("```")[0]
    assert yaml.safe_load(shown)["slurm"] == run.slurm
    assert yaml.safe_load(shown)["extends"] == yaml.safe_load(CPU_EXAMPLE.read_text())["extends"]


# ---------------------------------------------------------------------------------------------
# --only, --force, and what is already done
# ---------------------------------------------------------------------------------------------


def test_only_limits_the_submission(tmp_path, capsys):
    path = tiny_course(tmp_path)
    assert run_main([str(path), "--slurm", "--dry-run", "--only", "02_baseline,08_compare"]) == 0
    jobs = dry_run_lines(capsys)
    assert list(jobs) == ["JOB_MODELS", "JOB_COMPARE"]
    models = jobs["JOB_MODELS"]
    assert "--array=0-0" in models and models[-1] == "02_baseline"
    assert not any(a.startswith("--dependency") for a in models)
    assert "--dependency=afterok:$JOB_MODELS" in jobs["JOB_COMPARE"]
    assert run_main([str(path), "--slurm", "--dry-run", "--only", "09_mirror"]) == 2


def test_complete_notebooks_are_not_submitted_unless_forced(tmp_path, capsys):
    path = tiny_course(tmp_path)
    run = fc.ops.load_run_file(path)
    run.out_dir.mkdir(parents=True)
    for nb in ("01_data", "02_baseline", "03_attention"):
        mark_complete(run, nb)
    plan = plan_submission(path)
    assert [j.key for j in plan.jobs] == ["models", "08_compare"]
    assert plan.jobs[0].notebooks == ["04_multiscale", "05_hybrid", "06_ensemble", "07_vit"]
    assert plan.jobs[0].after == [] and plan.jobs[1].after == ["models"]
    assert plan.skipped["02_baseline"].startswith("complete")

    for nb in MODEL_NOTEBOOKS:
        mark_complete(run, nb)
    mark_complete(run, "08_compare", started="00:00:15", finished="00:00:20")
    assert plan_submission(path).jobs == []
    assert run_main([str(path), "--slurm"]) == 0
    assert "nothing to submit" in capsys.readouterr().out

    assert run_main([str(path), "--slurm", "--dry-run", "--force"]) == 0
    jobs = dry_run_lines(capsys)
    assert list(jobs) == ["JOB_DATA", "JOB_MODELS", "JOB_COMPARE"]
    assert jobs["JOB_DATA"][-1] == "--force"  # the job runs its notebook again too
    assert jobs["JOB_MODELS"][-7] == "--force" and jobs["JOB_MODELS"][-6:] == list(MODEL_NOTEBOOKS)


def test_08_runs_again_when_a_model_finished_after_it_started(tmp_path):
    run = fc.ops.load_run_file(tiny_course(tmp_path))
    run.out_dir.mkdir(parents=True)
    for nb in run.notebooks:
        mark_complete(run, nb)
    mark_complete(run, "08_compare", started="00:00:15", finished="00:00:20")
    assert not compare_is_stale(run)
    mark_complete(run, "04_multiscale", started="00:01:00", finished="00:02:00")  # re-trained
    assert compare_is_stale(run)
    plan = plan_submission(run.file, only=["08_compare"])
    assert [j.key for j in plan.jobs] == ["08_compare"]


# ---------------------------------------------------------------------------------------------
# Never the same notebook twice at once
# ---------------------------------------------------------------------------------------------


def test_a_notebook_running_in_a_live_process_is_not_started_again(tmp_path, capsys):
    path = tiny_course(tmp_path)
    run = fc.ops.load_run_file(path)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "fercourse"])
    try:
        marker = {"status": "running", "started": "2026-01-01T00:00:00+00:00"}
        marker |= {"host": platform.node(), "pid": sleeper.pid}
        atomic_write_json(status_path(run, "01_data"), marker)
        assert running_elsewhere(marker) == f"process {sleeper.pid} on this machine"
        result = fc.ops.run_course(path, only=["01_data"])
        assert result.status == {"01_data": "busy"} and not result.ok
        assert "not started a second time" in capsys.readouterr().out
        assert not (run.out_dir / "01_data.ipynb").exists()
        with pytest.raises(RunFileError, match="outside SLURM: let it finish first"):
            plan_submission(path)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert running_elsewhere(marker) is None  # gone: the notebook was interrupted


def test_a_marker_of_a_job_the_scheduler_no_longer_knows_counts_as_interrupted(fake_slurm):
    marker = {"status": "running", "slurm": {"job_id": "77", "job": "70_3"}}
    assert running_elsewhere(marker) is None
    assert "scontrol show job -o 77" in fake_slurm()


def test_scontrol_lines_are_read_with_array_tasks():
    line = (
        "JobId=120 ArrayJobId=120 ArrayTaskId=1-3,5%2 JobName=fer-x-models JobState=PENDING "
        "Reason=Dependency Dependency=afterok:119(unfulfilled) StdOut=/a b/x-%A_%a.out"
    )
    fields = _fields(line)
    assert fields["ArrayTaskId"] == "1-3,5%2" and fields["StdOut"] == "/a b/x-%A_%a.out"
    assert _task_ids(fields["ArrayTaskId"]) == [1, 2, 3, 5]


# ---------------------------------------------------------------------------------------------
# Notebook output into the job's log
# ---------------------------------------------------------------------------------------------


def test_log_output_sends_the_cells_output_to_stdout(tmp_path, capfd):
    folder = tmp_path / "nbs"
    folder.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    params = nbformat.v4.new_code_cell('run_name: str = "x"  # the run')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("print('[m] epoch 1/1  train loss 0.5')")]
    nbformat.write(nb, folder / "01_data.ipynb")
    path = write_yaml(tmp_path / "log.yaml", f"notebooks_dir: {folder}\norder: [01_data]\n")
    assert fc.ops.run_course(path, log_output=True).ok
    assert "[m] epoch 1/1  train loss 0.5" in capfd.readouterr().out


# ---------------------------------------------------------------------------------------------
# extends: from anywhere
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["smoke.yaml", "slurm/cpu-example.yaml", "papermill_runs/smoke.yaml", "../x/smoke.yaml"]
)
def test_extends_finds_the_shipped_run_files_from_anywhere(tmp_path, name):
    (tmp_path / "x").mkdir()
    write_yaml(tmp_path / "x" / "smoke.yaml", "parameters: {seed: 7}\n")  # next to it: wins
    own = tmp_path / "mine"
    own.mkdir()
    run = fc.ops.load_run_file(write_yaml(own / "mine.yaml", f"extends: {name}\n"))
    params = run.parameters["02_baseline"]
    if name.startswith("../"):  # relative to the file that says it
        assert params == {"seed": 7, "run_name": "mine"}
    else:  # a shipped run file
        assert params["preset"] == "smoke" and params["device"] == "cpu"


def test_extends_a_missing_file_names_where_it_looked(tmp_path):
    path = write_yaml(tmp_path / "mine.yaml", "extends: smok.yaml\n")
    with pytest.raises(RunFileError, match=r"extends 'smok\.yaml', which is in none of") as err:
        fc.ops.load_run_file(path)
    assert str(RUNS_DIR / "smok.yaml") in str(err.value)
