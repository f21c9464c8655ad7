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


def _train_vit(csv, out, pretrained: str) -> int:
    return train_main(
        [
            *("--model", "vit_tiny", "--data", str(csv), "--out", str(out)),
            *("--pretrained", pretrained, "--epochs", "1", "--no-progress", "--no-evaluate"),
            *("--set", "max_train_samples=32", "--set", "max_val_samples=16"),
            *("--set", "batch_size=16"),
        ]
    )


def test_train_pretrained_choice_is_used_and_recorded(csv, tmp_path, monkeypatch, capsys):
    import timm
    from huggingface_hub import constants
    from safetensors.torch import save_file

    from fercourse.models import vit_tiny as vit_module

    # No weights anywhere (offline, empty cache, no file): "yes" fails with the message that
    # says how to get them, "auto" trains from scratch and says so; both record what they did.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv(vit_module.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    assert _train_vit(csv, tmp_path / "yes", "yes") == 1
    assert vit_module.WEIGHTS_ENV in capsys.readouterr().err
    assert not (tmp_path / "yes" / "vit_tiny").exists()
    assert _train_vit(csv, tmp_path / "auto", "auto") == 0
    assert "FROM SCRATCH" in capsys.readouterr().out
    run = tmp_path / "auto" / "vit_tiny"
    assert json.loads((run / "config.json").read_text())["init"] == "scratch"
    assert json.loads((run / "best.json").read_text())["init"] == "scratch"

    # A local weights file (a stand-in for the hub's, in its format): "yes" starts from it.
    file = tmp_path / "model.safetensors"
    state = timm.create_model(vit_module.TIMM_NAME, pretrained=False).state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(file))
    monkeypatch.setenv(vit_module.WEIGHTS_ENV, str(file))
    assert _train_vit(csv, tmp_path / "file", "yes") == 0
    card = json.loads((tmp_path / "file" / "vit_tiny" / "best.json").read_text())
    assert card["init"] == f"pretrained: {vit_module.HF_WEIGHTS} (file model.safetensors)"
    # Resuming that run as a from-scratch model is refused: its weights started elsewhere.
    with pytest.raises(fc.training.ResumeError, match="started from"):
        fc.fit(
            fc.models.create_model("vit_tiny"),
            fc.data.load_fer2013(csv),
            fc.training.TrainConfig(**card["config"]),
            split=fc.data.make_split(fc.data.load_fer2013(csv)),
            out_dir=tmp_path / "file" / "vit_tiny",
        )


def test_train_pretrained_yes_for_a_model_without_weights(capsys):
    with pytest.raises(SystemExit) as exc:
        train_main(["--model", "baseline_cnn,vit_tiny", "--pretrained", "yes"])
    assert (
        exc.value.code == 2 and "baseline_cnn has no pretrained weights" in capsys.readouterr().err
    )


# --- issue #15: training settings are checked, conflicting flags refused ---------------------


@pytest.mark.parametrize(
    "setting, message",
    [
        ("lr=abc", "TrainConfig.lr must be a number, got 'abc'"),
        ("epochs=ten", "TrainConfig.epochs must be an integer, got 'ten'"),
        ("batch_size=8.5", "TrainConfig.batch_size must be an integer, got 8.5"),
        ("nesterov=yes", "TrainConfig.nesterov must be true or false, got 'yes'"),
        ("lr=-1", "TrainConfig.lr must be positive, got -1.0"),
    ],
)
def test_train_set_values_are_type_checked_naming_the_field(capsys, setting, message):
    with pytest.raises(SystemExit) as exc:
        train_main(["--model", "baseline_cnn", "--set", setting])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and message in err and "Traceback" not in err


def test_train_refuses_one_field_set_twice(capsys):
    with pytest.raises(SystemExit) as exc:
        train_main(["--model", "baseline_cnn", "--epochs", "3", "--set", "epochs=5"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--epochs 3 and --set epochs=5 both set" in err
    with pytest.raises(SystemExit):
        train_main(["--model", "baseline_cnn", "--set", "lr=0.1", "--set", "lr=0.2"])
    assert "--set lr=0.1 and --set lr=0.2 both set lr" in capsys.readouterr().err


def test_train_says_it_resumed_and_gives_the_cli_flag(csv, tmp_path, capsys):
    out = tmp_path / "runs"
    args = [
        *("--model", "baseline_cnn", "--data", str(csv), "--out", str(out), "--no-progress"),
        *("--no-evaluate", "--set", "max_train_samples=64", "--set", "max_val_samples=32"),
        *("--set", "batch_size=32"),
    ]
    assert train_main([*args, "--epochs", "1"]) == 0
    capsys.readouterr()
    state = out / "baseline_cnn" / "train_state.pt"
    assert train_main([*args, "--epochs", "1"]) == 0
    printed = capsys.readouterr().out
    assert f"baseline_cnn: {state} holds a finished run (1/1 epochs)" in printed
    assert "--no-resume on the command line, to train it again" in printed
    # Another config in the same folder: the hint names the command-line flags.
    assert train_main([*args, "--epochs", "2"]) == 1
    err = capsys.readouterr().err
    assert "trained with another config (epochs: 1 there, 2 here)" in err
    assert "`python -m fercourse train --no-resume`" in err


def test_resume_message_says_from_where():
    from fercourse.training.state import resume_message

    state = {"model": "vit_tiny", "epoch": 3, "step_in_epoch": 120, "config": {"epochs": 10}}
    assert resume_message("runs/vit_tiny/train_state.pt", state) == (
        "vit_tiny: resuming from runs/vit_tiny/train_state.pt: 3/10 epochs done, continuing at "
        "epoch 4, step 120 (pass resume=False to start afresh)"
    )
