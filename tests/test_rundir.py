"""The run folder: one type owns its files, one search ranks them."""

from __future__ import annotations

import pytest

import fercourse as fc
from fercourse.checkpoint import save_checkpoint
from fercourse.rundir import RunDir, course_runs, find_runs


def _run(path, model="baseline_cnn", val_acc=0.5, synthetic=False, **card):
    save_checkpoint(
        path / "best",
        fc.models.create_model(model),
        metrics={"val_acc": val_acc} if val_acc is not None else {},
        data={"synthetic": synthetic},
        **card,
    )
    return RunDir(path)


def test_find_runs_ranks_real_data_first_then_validation_accuracy(tmp_path):
    _run(tmp_path / "a", val_acc=0.9, synthetic=True)
    _run(tmp_path / "b", val_acc=0.4)
    _run(tmp_path / "c", val_acc=0.6)
    _run(tmp_path / "d" / "nested", val_acc=None)  # no accuracy recorded: after those with one
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "best.json").write_text("{}")  # a card without weights: not a run
    ranked = [r.path.relative_to(tmp_path).as_posix() for r in find_runs(tmp_path)]
    assert ranked == ["c", "b", "d/nested", "a"]
    assert [r.path.name for r in find_runs(tmp_path, model="attention_cnn")] == []


def test_course_runs_follow_the_course_order(tmp_path):
    for name in ("vit_tiny", "baseline_cnn", "attention_cnn"):
        _run(tmp_path / name, model=name)
    _run(tmp_path / "other" / "deeper")  # not a model folder of this run
    assert [r.path.name for r in course_runs(tmp_path)] == [
        "baseline_cnn",
        "attention_cnn",
        "vit_tiny",
    ]


def test_a_run_dir_reads_what_fit_wrote(tmp_path):
    run = _run(tmp_path / "run", val_acc=0.55, synthetic=True)
    run.write_config({"config": {"preset": "smoke"}})
    assert (run.model_name, run.val_accuracy, run.synthetic) == ("baseline_cnn", 0.55, True)
    assert run.config()["config"]["preset"] == "smoke"
    assert run.metrics() == {} and run.history() is None
    loaded = run.load()
    assert loaded.model.model_name == "baseline_cnn" and loaded.path == run.path
    assert RunDir(run.checkpoint().with_suffix(".safetensors")) == run  # a file names its folder
    with pytest.raises(FileNotFoundError, match="no last checkpoint"):
        run.load("last")
    run.metrics_file.write_text("{not json")
    with pytest.raises(ValueError, match=r"metrics\.json is not valid JSON"):
        run.metrics()


def test_clear_deletes_only_the_files_training_writes(tmp_path):
    run = _run(tmp_path / "run")
    (run.path / "notes.txt").write_text("mine")
    run.write_config({})
    run.clear()
    assert sorted(p.name for p in run.path.iterdir()) == ["notes.txt"]
