"""The headless runner (``python -m fercourse run``), its run files, presets and SLURM submission."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest

import fercourse as fc
from fercourse.ops import MODEL_NOTEBOOKS, NOTEBOOKS, RunFileError
from fercourse.ops.cli import main as run_main
from fercourse.ops.slurm import SLURM_DIR, sbatch_jobs, submit
from fercourse.utils import PROJECT_ROOT

RUNS_DIR = PROJECT_ROOT / "papermill_runs"


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def smoke_env(monkeypatch):
    """The notebooks run as in CI: smoke preset, synthetic faces (FERCOURSE_DATA is a tmp dir)."""
    monkeypatch.setenv("FERCOURSE_PRESET", "smoke")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def tiny_run(tmp_path: Path, order: str = "[01_data, 02_baseline]", **extra: str) -> Path:
    lines = "".join(f"{k}: {v}\n" for k, v in extra.items())
    return write_yaml(
        tmp_path / "tiny.yaml",
        f"""\
        extends: {RUNS_DIR / "common.yaml"}
        run_name: tiny
        order: {order}
        parameters:
          preset: smoke
        models:
          device: cpu
        """
        + lines,
    )


# ---------------------------------------------------------------------------------------------
# Run files
# ---------------------------------------------------------------------------------------------


def test_run_file_merges_common_models_and_notebook_sections(tmp_path):
    write_yaml(
        tmp_path / "base.yaml",
        """\
        parameters: {seed: 1, data_path: ""}
        models: {device: cpu, lr: 1.0e-3}
        """,
    )
    run = fc.ops.load_run_file(
        write_yaml(
            tmp_path / "exp.yaml",
            """\
            extends: base.yaml
            parameters: {seed: 2}
            notebooks:
              05_hybrid: {lr: 1.0e-4}
            """,
        )
    )
    assert run.name == "exp" and run.notebooks == list(NOTEBOOKS)
    assert run.parameters["01_data"] == {"seed": 2, "data_path": "", "run_name": "exp"}
    assert run.parameters["02_baseline"]["lr"] == 1e-3
    assert run.parameters["05_hybrid"] == {
        "seed": 2,
        "data_path": "",
        "device": "cpu",
        "lr": 1e-4,
        "run_name": "exp",
    }
    assert "device" not in run.parameters["08_compare"]
    assert run.out_dir == fc.utils.outputs_dir() / "exp"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("paramters: {seed: 1}\n", "unknown key(s) paramters"),
        ("order: [01_data, 10_extra]\n", "unknown notebook '10_extra'"),
        ("notebooks: {02_basline: {lr: 0.1}}\n", "unknown notebook '02_basline'"),
        ("extends: loop.yaml\n", "loops back"),
        ("[1, 2]\n", "expected a mapping"),
        # issue #15: a bare ValueError from int("one hour"); a run folder outside outputs/
        ('cell_timeout_s: "one hour"\n', "cell_timeout_s must be a number of seconds"),
        ("cell_timeout_s: -5\n", "above 0 (e.g. 3600) or null for no limit, got -5"),
        ("run_name: ../../x\n", "run_name '../../x' must be a plain folder name"),
        ("run_name: /tmp/x\n", "run_name '/tmp/x' must be a plain folder name"),
        ("run_name: ..\n", "run_name '..' must be a plain folder name"),
    ],
)
def test_malformed_run_files_are_clear_errors(tmp_path, text, message):
    path = write_yaml(tmp_path / "loop.yaml", text)
    with pytest.raises(RunFileError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        fc.ops.load_run_file(path)
    assert "loop.yaml" in str(err.value)  # every message names the file


@pytest.mark.parametrize("name", ["common", "smoke", "auto", "a100"])
def test_shipped_run_files_match_the_notebooks(name):
    run = fc.ops.load_run_file(RUNS_DIR / f"{name}.yaml")
    fc.ops.check_parameters(run)  # raises on any unknown name or wrong type
    assert run.notebooks == list(NOTEBOOKS)


def test_a100_run_has_the_full_per_model_hyperparameters():
    run = fc.ops.load_run_file(RUNS_DIR / "a100.yaml")
    cnn, hybrid, vit = (run.parameters[nb] for nb in ("02_baseline", "05_hybrid", "07_vit"))
    assert cnn["preset"] == "full" and cnn["device"] == "cuda" and cnn["optimizer"] == "adamw"
    assert cnn["lr"] == 1e-3 and cnn["epochs"] == 50 and cnn["batch_size"] >= 64
    assert (hybrid["lr"], hybrid["warmup_epochs"], hybrid["patience"]) == (1e-4, 5, 20)
    assert (vit["lr"], vit["warmup_epochs"], vit["patience"]) == (5e-5, 5, 20)


def test_unknown_parameter_names_the_notebook_and_the_key(tmp_path):
    path = tiny_run(tmp_path, notebooks="{02_baseline: {widht: 64}}")
    run = fc.ops.load_run_file(path)
    with pytest.raises(RunFileError, match=r"02_baseline: unknown parameter 'widht'"):
        fc.ops.check_parameters(run)


def test_a_float_written_as_1e_4_gets_a_yaml_hint(tmp_path):
    path = tiny_run(tmp_path, notebooks="{02_baseline: {lr: 1e-4}}")
    with pytest.raises(RunFileError, match=r"'lr' expects float or None, got str '1e-4' \(YAML"):
        fc.ops.check_parameters(fc.ops.load_run_file(path))


def test_none_is_the_presets_default_and_zero_a_real_value(tmp_path):
    """``epochs = None  # type: int|None``: null and ints pass, anything else is named."""
    ok = "{02_baseline: {patience: 0, warmup_epochs: 0, epochs: null, lr: null, data_path: null}}"
    fc.ops.check_parameters(fc.ops.load_run_file(tiny_run(tmp_path, notebooks=ok)))
    bad = "{02_baseline: {epochs: '5', patience: true, seed: null, optimizer: 1}}"
    with pytest.raises(RunFileError) as err:
        fc.ops.check_parameters(fc.ops.load_run_file(tiny_run(tmp_path, notebooks=bad)))
    message = str(err.value)
    assert "'epochs' expects int or None, got str '5'" in message
    assert "'patience' expects int or None, got bool True" in message
    assert "'seed' expects int, got NoneType None" in message  # no |None: None is refused
    assert "'optimizer' expects str or None, got int 1" in message


def test_cli_refuses_an_unknown_parameter_before_running_anything(tmp_path, capsys):
    path = tiny_run(tmp_path, notebooks="{01_data: {epochs: 3}}")
    assert run_main([str(path)]) == 2
    err = capsys.readouterr().err
    assert "01_data: unknown parameter 'epochs'" in err
    assert not (fc.utils.outputs_dir() / "tiny").exists()


def test_cli_dry_run_lists_the_plan(tmp_path, capsys):
    assert run_main([str(tiny_run(tmp_path)), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "parameters checked" in out and "01_data" in out and "02_baseline" in out
    assert run_main([str(tiny_run(tmp_path)), "--dry-run", "--only", "07_vit"]) == 2
    assert "--only names 07_vit, which this run does not execute" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Presets and small helpers
# ---------------------------------------------------------------------------------------------


class _Data:
    def __init__(self, synthetic: bool) -> None:
        self.synthetic = synthetic


def test_resolve_preset(monkeypatch, capsys):
    monkeypatch.delenv("FERCOURSE_PRESET", raising=False)
    monkeypatch.delenv("CI", raising=False)
    assert fc.course.resolve_preset("auto", _Data(synthetic=True)) == "smoke"
    assert "synthetic" in capsys.readouterr().out
    # Real FER2013: the class-period budget without a CUDA GPU, the full recipe with one.
    assert fc.course.resolve_preset("auto", _Data(synthetic=False)) == "class"
    assert "without a CUDA GPU" in capsys.readouterr().out
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    assert fc.course.resolve_preset("auto", _Data(synthetic=False)) == "full"
    monkeypatch.undo()
    monkeypatch.delenv("FERCOURSE_PRESET", raising=False)
    monkeypatch.delenv("CI", raising=False)
    assert fc.course.resolve_preset("smoke", _Data(synthetic=False)) == "smoke"
    assert fc.course.resolve_preset("full", None, verbose=False) == "full"
    monkeypatch.setenv("CI", "true")
    assert fc.course.resolve_preset("auto", _Data(synthetic=False)) == "smoke"
    monkeypatch.delenv("CI")
    monkeypatch.setenv("FERCOURSE_PRESET", "smoke")  # how nbval forces smoke next to FER2013
    assert fc.course.resolve_preset("auto", _Data(synthetic=False)) == "smoke"
    assert fc.course.resolve_preset("full", _Data(synthetic=False)) == "full"  # explicit wins
    monkeypatch.setenv("FERCOURSE_PRESET", "tiny")
    with pytest.raises(ValueError, match="FERCOURSE_PRESET"):
        fc.course.resolve_preset("auto", None)
    with pytest.raises(ValueError, match="unknown preset 'fast'"):
        fc.course.resolve_preset("fast", None)


def test_config_overrides_keep_every_value_but_none():
    got = fc.course.config_overrides(
        epochs=None, lr=1e-4, optimizer=None, device="cpu", resume=False
    )
    assert got == {"lr": 1e-4, "device": "cpu", "resume": False}
    preset = fc.TrainConfig.for_model("baseline_cnn", preset="full")
    overrides = fc.course.config_overrides(epochs=None, lr=None, batch_size=17, patience=0)
    config = fc.TrainConfig.for_model("baseline_cnn", preset="full", **overrides)
    assert (config.epochs, config.lr, config.batch_size) == (preset.epochs, preset.lr, 17)
    assert preset.patience == 10 and config.patience == 0  # 0 is a value: no early stopping
    hybrid = fc.TrainConfig.for_model(
        "hybrid_transformer", preset="full", **fc.course.config_overrides(warmup_epochs=0)
    )
    assert hybrid.warmup_epochs == 0  # its preset warms up for 5 epochs


def test_resolve_pretrained_falls_back_to_scratch_offline(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("FERCOURSE_VIT_WEIGHTS", raising=False)
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    assert fc.course.resolve_pretrained("auto") is False
    assert "FROM SCRATCH" in capsys.readouterr().out
    assert fc.course.resolve_pretrained("no") is False
    with pytest.raises(RuntimeError, match="HF_HUB_OFFLINE"):
        fc.course.resolve_pretrained("yes")


def test_summarize_runs_reads_only_the_saved_files(tmp_path):
    run_dir = tmp_path / "run"
    per_class = {e: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 1} for e in fc.EMOTIONS}
    for name, acc in (("baseline_cnn", 0.5), ("vit_tiny", 0.6)):
        d = run_dir / name
        d.mkdir(parents=True)
        metric = {"accuracy": acc, "macro_f1": acc - 0.1, "n": 10, "majority_baseline": 0.3}
        metric |= {"per_class": per_class, "data": {"synthetic": True}}
        (d / "metrics.json").write_text(json.dumps({"PrivateTest": metric}))
        (d / "best.json").write_text(json.dumps({"model": name, "num_parameters": 420_000}))
        (d / "best.safetensors").write_bytes(b"")  # a run folder: summarize never loads weights
        (d / "history.json").write_text(
            json.dumps({"best_epoch": 2, "epochs": [{"seconds": 30}] * 3})
        )
        (d / "config.json").write_text(json.dumps({"config": {"preset": "smoke"}}))
    (run_dir / "ensemble").mkdir()
    (run_dir / "ensemble" / "metrics.json").write_text("{}")  # no checkpoint: not a model
    table = fc.course.summarize_runs(run_dir)
    assert list(table.index) == ["vit_tiny", "baseline_cnn"]
    row = table.loc["baseline_cnn"]
    assert row["notebook"] == "02_baseline" and row["params_m"] == 0.42 and row["epochs"] == 3
    assert row["train_min"] == 1.5 and row["preset"] == "smoke" and bool(row["synthetic"])
    assert set(fc.course.load_metrics(run_dir)) == {"baseline_cnn", "vit_tiny"}
    anchors = fc.course.anchor_table(table)
    assert anchors.loc["vit_tiny", "accuracy %"] == 60.0
    assert anchors.loc["vit_tiny", "vs human"] == -5.0
    with pytest.raises(FileNotFoundError, match="run notebooks 02-07"):
        fc.course.summarize_runs(tmp_path / "empty")


def test_cpu_latency_is_a_positive_median():
    model = fc.create_model("baseline_cnn")
    assert 0 < fc.course.cpu_latency_ms(model, repeats=3, warmup=1) < 1000
    assert model.training  # the model itself was not switched to eval


# ---------------------------------------------------------------------------------------------
# SLURM
# ---------------------------------------------------------------------------------------------


def test_sbatch_scripts_are_valid_bash_with_the_right_resources():
    scripts = {p.name: p.read_text() for p in SLURM_DIR.glob("*.sbatch")}
    assert set(scripts) == {"01_data.sbatch", "models.sbatch", "08_compare.sbatch"}
    for name in scripts:
        done = subprocess.run(["bash", "-n", str(SLURM_DIR / name)], capture_output=True, text=True)
        assert done.returncode == 0, (name, done.stderr)
    models = scripts["models.sbatch"]
    assert "#SBATCH --gres=gpu:a100:1" in models and "#SBATCH --array=0-5" in models
    # The script's default array order is the runner's.
    assert f"NOTEBOOKS=({' '.join(MODEL_NOTEBOOKS)})" in models
    for text in scripts.values():
        assert '"$PYTHON" -m fercourse run "$RUN_FILE" --only' in text


def test_slurm_dry_run_prints_the_chained_sbatch_commands(capsys):
    submit(RUNS_DIR / "a100.yaml", dry_run=True)
    lines = [line for line in capsys.readouterr().out.splitlines() if "=$(sbatch" in line]
    assert [line.split("=", 1)[0] for line in lines] == ["JOB_DATA", "JOB_MODELS", "JOB_COMPARE"]
    data, models, compare = (shlex.split(line.split("=$(", 1)[1].rstrip(")")) for line in lines)
    assert all(argv[:2] == ["sbatch", "--parsable"] for argv in (data, models, compare))
    assert data[-2:] == [str(SLURM_DIR / "01_data.sbatch"), "papermill_runs/a100.yaml"]
    assert not any(a.startswith("--dependency") for a in data)
    assert "--array=0-5" in models and "--dependency=afterok:$JOB_DATA" in models
    assert models[-7:] == ["papermill_runs/a100.yaml", *MODEL_NOTEBOOKS]
    assert "--time=08:00:00" in models  # from the run file's slurm section
    assert "--dependency=afterok:$JOB_MODELS" in compare
    assert compare[-2] == str(SLURM_DIR / "08_compare.sbatch")


def test_slurm_submit_chains_the_job_ids(tmp_path, monkeypatch):
    log = tmp_path / "calls.txt"
    fake = tmp_path / "sbatch"
    fake.write_text(  # `sbatch --test-only` (the check before submitting) answers yes
        '#!/bin/bash\nif [ "$1" = --test-only ]; then exit 0; fi\n'
        f"echo \"$*\" >> {log}\nn=$(wc -l < {log}); echo $((100 + n))';cluster'\n"
    )
    fake.chmod(0o755)
    ids = submit(RUNS_DIR / "a100.yaml", sbatch=str(fake), echo=lambda _: None)
    assert ids == {"01_data": "101", "models": "102", "08_compare": "103"}
    calls = log.read_text().splitlines()
    assert "--dependency" not in calls[0]
    assert "--dependency=afterok:101" in calls[1] and "--dependency=afterok:102" in calls[2]
    assert len(sbatch_jobs(RUNS_DIR / "a100.yaml")) == 3


# ---------------------------------------------------------------------------------------------
# The runner, for real (papermill, the real notebooks, smoke preset)
# ---------------------------------------------------------------------------------------------


def failing_notebook(folder: Path) -> Path:
    """A notebook named like a course notebook whose second code cell raises."""
    folder.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    params = nbformat.v4.new_code_cell('run_name: str = "x"  # the run')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell('raise ValueError("the split file is corrupt")'),
        nbformat.v4.new_code_cell("print('never reached')"),
    ]
    nbformat.write(nb, folder / "01_data.ipynb")
    return folder


def test_a_failing_notebook_is_reported_with_its_cell_and_error(tmp_path, capsys):
    notebooks = failing_notebook(tmp_path / "nbs")
    path = write_yaml(
        tmp_path / "broken.yaml",
        f"""\
        notebooks_dir: {notebooks}
        order: [01_data]
        """,
    )
    assert run_main([str(path)]) == 1
    out = capsys.readouterr().out
    assert "01_data failed in cell 3" in out  # papermill's injected parameters cell counts too
    assert "ValueError: the split file is corrupt" in out
    partial = fc.utils.outputs_dir() / "broken" / "01_data.ipynb"
    assert f"partially executed notebook: {partial}" in out and partial.exists()
    record = json.loads((fc.utils.outputs_dir() / "broken" / "run.json").read_text())
    assert record["status"] == "failed"
    error = record["notebooks"]["01_data"]["error"]
    assert (error["cell_index"], error["ename"]) == (3, "ValueError")
    assert (notebooks / "01_data.ipynb").read_text().count('"outputs": []') == 4  # source untouched


@pytest.mark.slow
def test_runner_executes_skips_and_forces(tmp_path, smoke_env, capsys):
    sources = tmp_path / "notebooks"  # a copy, so the check below sees only what the runner does
    shutil.copytree(PROJECT_ROOT / "notebooks", sources, ignore=shutil.ignore_patterns("*.py"))
    before = {p.name: p.read_bytes() for p in sources.glob("*.ipynb")}
    path = tiny_run(tmp_path, order="[01_data]", notebooks_dir=str(sources))
    result = fc.ops.run_course(path)
    assert result.ok, result.failure
    assert result.status == {"01_data": "complete"}
    out_dir = fc.utils.outputs_dir() / "tiny"
    record = json.loads((out_dir / "run.json").read_text())
    assert record["status"] == "complete" and record["versions"]["torch"]
    assert record["notebooks"]["01_data"]["parameters"]["preset"] == "smoke"
    assert "git" in record and record["total_seconds"] > 0
    executed = nbformat.read(out_dir / "01_data.ipynb", as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and 'run_name = "tiny"' in injected[0].source
    out = capsys.readouterr().out
    assert "01_data       complete" in out and "total" in out  # the time table

    assert fc.ops.run_course(path).status == {"01_data": "skipped"}
    assert fc.ops.run_course(path, force=True).status == {"01_data": "complete"}
    # The sources were never written to.
    assert {p.name: p.read_bytes() for p in sources.glob("*.ipynb")} == before


@pytest.mark.slow
def test_an_interrupted_training_notebook_resumes_from_its_checkpoint(tmp_path, smoke_env):
    path = tiny_run(tmp_path, order="[02_baseline]")
    model_dir = fc.utils.outputs_dir() / "tiny" / "baseline_cnn"
    cmd = [sys.executable, "-m", "fercourse", "run", str(path)]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, env=os.environ)
    try:
        deadline = time.monotonic() + 240
        while not (model_dir / "train_state.pt").exists():  # the first epoch is saved
            assert proc.poll() is None, "the run ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 4 minutes"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the runner and its kernel, mid-training
        proc.wait()
    run = fc.ops.load_run_file(path)
    assert fc.ops.runner.read_status(run, "02_baseline")["status"] == "running"

    result = fc.ops.run_course(path)
    assert result.status == {"02_baseline": "complete"}
    executed = nbformat.read(fc.utils.outputs_dir() / "tiny" / "02_baseline.ipynb", as_version=4)
    fit_cell = next(c for c in executed.cells if "fc.fit(" in c.source)
    printed = "".join(o.get("text", "") for o in fit_cell.outputs)
    epochs = json.loads((model_dir / "config.json").read_text())["config"]["epochs"]
    assert f"epoch {epochs}/{epochs}" in printed  # it trained to the end...
    assert f"epoch 1/{epochs}" not in printed  # ...but epoch 1 came from the checkpoint
    history = json.loads((model_dir / "history.json").read_text())
    assert [row["epoch"] for row in history["epochs"]] == list(range(1, epochs + 1))
    assert {"best.safetensors", "best.json", "metrics.json"} <= {
        p.name for p in model_dir.iterdir()
    }
    record = json.loads((fc.utils.outputs_dir() / "tiny" / "run.json").read_text())
    assert record["status"] == "complete"
