"""``python -m fercourse train`` / ``evaluate``: thin wrappers, tried on a tiny run."""

from __future__ import annotations

import json

import pytest

import fercourse as fc
from fercourse.cli import main as cli_main
from fercourse.training.cli import evaluate_main, train_main


@pytest.fixture
def csv(tmp_path):
    path = tmp_path / "fer2013.csv"
    fc.data.write_fer2013_csv(fc.data.make_synthetic_faces(n=300, seed=0), path)
    return path


def test_train_then_evaluate(csv, tmp_path, capsys):
    out = tmp_path / "runs"
    code = train_main(
        [
            "--model",
            "baseline_cnn",
            "--data",
            str(csv),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--set",
            "max_train_samples=64",
            "--set",
            "max_val_samples=32",
            "--set",
            "batch_size=32",
            "--no-progress",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    run = out / "baseline_cnn"
    assert (run / "best.safetensors").is_file() and (run / "history.json").is_file()
    assert (
        "baseline_cnn" in printed
        and "PrivateTest" in printed
        and str(run / "best.safetensors") in printed
    )
    saved = json.loads((run / "metrics.json").read_text())
    assert {"PrivateTest", "PublicTest"} <= set(saved)
    assert (
        saved["PrivateTest"]["selected_on"] == "val" and saved["PrivateTest"]["data"]["synthetic"]
    )

    code = evaluate_main(
        [
            "--model",
            "baseline_cnn",
            "--root",
            str(out),
            "--data",
            str(csv),
            "--split",
            "val",
            "--tta",
            "flip",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "accuracy" in printed and "flip" in printed and "synthetic" in printed
    saved = json.loads((run / "metrics.json").read_text())
    assert "val+flip" in saved and "PrivateTest" in saved  # merged, not overwritten

    # The top-level dispatcher reaches the same function.
    assert cli_main(["evaluate", "--run", str(run), "--data", str(csv), "--calibrate"]) == 0
    assert "PrivateTest+temperature" in json.loads((run / "metrics.json").read_text())


def test_cli_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        train_main(["--model", "resnet"])
    assert "unknown model 'resnet'" in str(exc.value)
    with pytest.raises(SystemExit) as exc:
        train_main(["--set", "lrr=1"])
    assert exc.value.code == 2 and "did you mean 'lr'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        evaluate_main(["--model", "vit_tiny"])
    assert "no trained vit_tiny" in str(exc.value)
