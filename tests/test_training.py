"""Training: configs, short CPU runs that learn, checkpoints, and exact resume after SIGKILL."""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

import fercourse as fc
from fercourse.checkpoint import CheckpointError, load_checkpoint, load_state_dict, read_card
from fercourse.training import (
    History,
    ResumeError,
    Schedule,
    TrainConfig,
    fit,
    load_run,
    load_train_state,
    parse_overrides,
)

# A small model and dataset for the mechanics tests (seconds, not minutes, on 2 shared cores).
TINY = {"width": 8, "hidden": 32}


def _tiny_config(**overrides) -> TrainConfig:
    values = dict(
        epochs=2,
        batch_size=16,
        max_train_samples=96,
        max_val_samples=32,
        checkpoint_every_steps=2,
        patience=0,
    )
    values.update(overrides)
    return TrainConfig.for_model("baseline_cnn", **values)


@pytest.fixture(scope="module")
def faces():
    return fc.data.make_synthetic_faces(n=400, seed=0)


# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------


def test_per_model_defaults_and_presets():
    cnn = TrainConfig.for_model("baseline_cnn")
    assert (cnn.lr, cnn.batch_size, cnn.epochs, cnn.optimizer, cnn.scheduler) == (
        1e-3,
        64,
        50,
        "adamw",
        "plateau",
    )
    assert cnn.class_weighted and cnn.mixup_alpha == 0 and cnn.cutmix_alpha == 0
    hybrid = TrainConfig.for_model("hybrid_transformer")
    assert (hybrid.lr, hybrid.warmup_epochs, hybrid.patience) == (1e-4, 5, 20)
    vit = TrainConfig.for_model("vit_tiny")
    assert (vit.lr, vit.warmup_epochs, vit.patience) == (5e-5, 5, 20)
    smoke = TrainConfig.for_model("vit_tiny", preset="smoke", label_smoothing=0.1)
    assert smoke.epochs <= 5 and smoke.max_train_samples and smoke.label_smoothing == 0.1
    assert smoke.preset == "smoke" and smoke.warmup_epochs <= 1
    assert json.loads(json.dumps(smoke.to_dict())) == smoke.to_dict()
    assert TrainConfig.from_dict(smoke.to_dict()) == smoke


def test_the_augmentation_recipe_reaches_the_training_loader(faces, tmp_path):
    from fercourse.runtime import resolve_runtime
    from fercourse.training.fit import _make_loaders

    assert TrainConfig.for_model("baseline_cnn", preset="class").augment_recipe == "light"
    assert TrainConfig.for_model("baseline_cnn", preset="full").augment_recipe == "standard"
    split = fc.data.make_split(faces, path=tmp_path / "split.json")
    for recipe, settings in fc.data.AUGMENT_RECIPES.items():
        config = TrainConfig.for_model("baseline_cnn", preset="full", augment_recipe=recipe)
        loaders = _make_loaders(faces, split, config, resolve_runtime("cpu"))
        assert loaders.train.augment.settings == settings
    assert fc.data.LIGHT_AUGMENT.color_p == fc.data.LIGHT_AUGMENT.erase_p == 0
    assert fc.data.LIGHT_AUGMENT.flip_p > 0 and fc.data.LIGHT_AUGMENT.affine_p > 0
    with pytest.raises(ValueError, match="augment_recipe must be one of standard, light"):
        TrainConfig(augment_recipe="heavy")


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="did you mean 'lr'"):
        TrainConfig.for_model("baseline_cnn", lrr=0.1)
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        TrainConfig.for_model("resnet")
    with pytest.raises(ValueError, match="scheduler must be one of"):
        TrainConfig(scheduler="step")
    with pytest.raises(ValueError, match="ema"):
        TrainConfig(ema=1.5)
    assert parse_overrides(
        ["lr=3e-4", "ema=0.999", "grad_clip=none", "optimizer=sgd", "nesterov=true"]
    ) == {
        "lr": 3e-4,
        "ema": 0.999,
        "grad_clip": None,
        "optimizer": "sgd",
        "nesterov": True,
    }
    with pytest.raises(ValueError, match="unknown TrainConfig field"):
        parse_overrides(["epochz=3"])


def _lrs(config: TrainConfig, steps_per_epoch: int = 4) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=config.lr, momentum=0.9)
    schedule = Schedule.from_config(opt, config, steps_per_epoch)
    out = []
    for epoch in range(config.epochs):
        for _ in range(steps_per_epoch):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            schedule.after_step()
        schedule.after_epoch(epoch + 1, 0.5)  # a flat validation score: the plateau kicks in
    return out


def test_learning_rate_schedules():
    warm = _lrs(
        TrainConfig(lr=1.0, epochs=4, warmup_epochs=1, scheduler="plateau", plateau_patience=1)
    )
    assert warm[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])  # linear warm-up per step
    assert warm[4:8] == pytest.approx([1.0] * 4) and warm[-1] == pytest.approx(0.5)
    cosine = _lrs(TrainConfig(lr=1.0, epochs=3, scheduler="cosine", min_lr_factor=0.0))
    assert cosine[0] == pytest.approx(1.0) and cosine[-1] < 0.05
    assert all(a >= b for a, b in itertools.pairwise(cosine))
    onecycle = _lrs(TrainConfig(lr=1.0, epochs=3, scheduler="onecycle", optimizer="sgd"))
    peak = int(np.argmax(onecycle))
    assert 0 < peak < len(onecycle) - 1 and max(onecycle) == pytest.approx(1.0, rel=0.05)
    assert _lrs(TrainConfig(lr=1.0, epochs=2, scheduler="none")) == [1.0] * 8


# ---------------------------------------------------------------------------------------------
# Short runs that learn
# ---------------------------------------------------------------------------------------------

LEARN_N = 2000  # 1,440 Training faces after val; the smoke preset trains on 1,200 (baseline)


@pytest.fixture(scope="module")
def learn_data():
    return fc.data.make_synthetic_faces(n=LEARN_N, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["baseline_cnn", "attention_cnn"])
def test_short_cpu_run_beats_chance(name, learn_data, tmp_path):
    fc.setup(seed=0)
    split = fc.data.make_split(learn_data, path=tmp_path / "split.json")
    # The smoke recipe, one epoch longer, on half-width models: ~4x cheaper per image and they
    # learn as fast per step (measured: val ~0.5 against a majority rate of 0.25).
    config = TrainConfig.for_model(name, preset="smoke", epochs=5)
    model = fc.models.create_model(name, width=16)
    history = fit(model, learn_data, config, split=split, out_dir=tmp_path / name)
    val_labels = learn_data.labels[split.val]
    majority = np.bincount(val_labels).max() / len(val_labels)
    assert history.best_val_acc > majority + 0.12, (history, majority)
    test = fc.evaluate(model, learn_data, "PrivateTest", split_obj=split)
    assert test["accuracy"] > test["majority_baseline"] + 0.1, test["accuracy"]


# ---------------------------------------------------------------------------------------------
# Run folder, checkpoints, resume
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(faces, tmp_path_factory):
    """One tiny run (2 epochs, EMA, mixup) shared by the checkpoint tests."""
    root = tmp_path_factory.mktemp("tiny_run")
    split = fc.data.make_split(faces, path=root / "split.json")
    fc.utils.seed_everything(0)
    model = fc.models.create_model("baseline_cnn", **TINY)
    config = _tiny_config(ema=0.9, mixup_alpha=0.2, label_smoothing=0.1)
    history = fit(model, faces, config, split=split, out_dir=root / "run", progress=False)
    return {
        "dir": root / "run",
        "split": split,
        "config": config,
        "history": history,
        "model": model,
    }


def test_run_folder_and_checkpoint_card(tiny_run):
    run_dir = tiny_run["dir"]
    for name in (
        "best.safetensors",
        "best.json",
        "last.safetensors",
        "last.json",
        "train_state.pt",
        "history.json",
        "history.csv",
        "config.json",
    ):
        assert (run_dir / name).is_file(), name
    card = read_card(run_dir / "best")
    for key in (
        "model",
        "model_kwargs",
        "classes",
        "preprocessing",
        "metrics",
        "split_hash",
        "versions",
    ):
        assert key in card, key
    assert card["model"] == "baseline_cnn" and card["model_kwargs"]["width"] == 8
    assert card["classes"] == list(fc.EMOTIONS) and card["split_hash"] == tiny_run["split"].hash
    assert card["selected_on"] == "val" and card["data"]["synthetic"] is True
    assert 0.0 <= card["metrics"]["val_acc"] <= 1.0 and card["config"]["ema"] == 0.9
    config_json = json.loads((run_dir / "config.json").read_text())
    assert (
        config_json["config"] == tiny_run["config"].to_dict() and "torch" in config_json["versions"]
    )

    history = tiny_run["history"]
    assert isinstance(history, History) and len(history) == 2 and history.finished
    assert set(history.epochs[0]) >= {
        "epoch",
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "lr",
        "seconds",
    }
    assert History.load(run_dir).epochs == history.epochs
    assert list(history.to_frame().index) == [1, 2] and "best val_acc" in repr(history)
    assert (run_dir / "history.csv").read_text().startswith("epoch,train_loss")

    # The training state is plain data: it loads with weights_only=True.
    state = torch.load(run_dir / "train_state.pt", weights_only=True)
    assert state["finished"] and state["epoch"] == 2 and state["ema"] is not None


def test_checkpoint_round_trip_and_wrong_architecture(tiny_run):
    run = load_run(tiny_run["dir"])
    assert run.model.model_name == "baseline_cnn" and run.model.selected_on == "val"
    for key, value in load_state_dict(tiny_run["dir"] / "best").items():
        assert torch.equal(run.model.state_dict()[key], value)
    # fit() leaves the model holding the best epoch's weights.
    for key, value in run.model.state_dict().items():
        assert torch.equal(tiny_run["model"].state_dict()[key].cpu(), value)
    x = fc.preprocessing.to_tensor(np.zeros((2, 48, 48), np.uint8))
    assert torch.allclose(run.model(x), tiny_run["model"].eval()(x))

    with pytest.raises(CheckpointError, match="does not fit model 'attention_cnn'"):
        load_checkpoint(tiny_run["dir"] / "best", fc.models.create_model("attention_cnn"))
    with pytest.raises(CheckpointError, match="another shape"):
        load_checkpoint(tiny_run["dir"] / "best", fc.models.create_model("baseline_cnn", width=16))


def test_finished_run_resumes_as_a_no_op(tiny_run, faces):
    last = tiny_run["dir"] / "last.safetensors"
    stamp = last.stat().st_mtime_ns
    model = fc.models.create_model("baseline_cnn", **TINY)
    started = time.perf_counter()
    history = fit(
        model, faces, tiny_run["config"], split=tiny_run["split"], out_dir=tiny_run["dir"]
    )
    assert time.perf_counter() - started < 10
    assert history.epochs == tiny_run["history"].epochs and last.stat().st_mtime_ns == stamp
    for key, value in load_state_dict(tiny_run["dir"] / "best").items():
        assert torch.equal(model.state_dict()[key], value)


def test_resume_refuses_another_config_or_model(tiny_run, faces):
    other = tiny_run["config"].replace(lr=5e-4)
    with pytest.raises(ResumeError, match=r"lr: 0\.001 there, 0\.0005 here"):
        fit(
            fc.models.create_model("baseline_cnn", **TINY),
            faces,
            other,
            split=tiny_run["split"],
            out_dir=tiny_run["dir"],
        )
    with pytest.raises(ResumeError, match="model_kwargs"):
        fit(
            fc.models.create_model("baseline_cnn", width=16),
            faces,
            tiny_run["config"],
            split=tiny_run["split"],
            out_dir=tiny_run["dir"],
        )


def test_resume_false_starts_afresh(faces, tmp_path):
    split = fc.data.make_split(faces, path=tmp_path / "split.json")
    config = _tiny_config(epochs=1)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "train_state.pt").write_bytes(b"not a training state")
    with pytest.raises(ResumeError, match="cannot read"):
        fit(
            fc.models.create_model("baseline_cnn", **TINY),
            faces,
            config,
            split=split,
            out_dir=tmp_path / "run",
        )
    history = fit(
        fc.models.create_model("baseline_cnn", **TINY),
        faces,
        config,
        split=split,
        out_dir=tmp_path / "run",
        resume=False,
    )
    assert len(history) == 1 and load_train_state(tmp_path / "run")["finished"]


@pytest.mark.parametrize("monitor", ["val_acc", "val_loss"])
def test_early_stopping(monitor, faces, tmp_path):
    split = fc.data.make_split(faces, path=tmp_path / "split.json")
    # min_delta 10: no epoch after the first can count as an improvement.
    config = _tiny_config(
        epochs=5, patience=1, min_delta=10.0, monitor=monitor, checkpoint_every_steps=0
    )
    model = fc.models.create_model("baseline_cnn", **TINY)
    history = fit(model, faces, config, split=split, out_dir=tmp_path / "run", progress=False)
    assert len(history) == 2 and history.stopped_early and history.best_epoch == 1
    assert read_card(tmp_path / "run" / "best")["epoch"] == 1
    assert read_card(tmp_path / "run" / "last")["epoch"] == 2


# The worker the resume test runs. With a third argument N it SIGKILLs itself in the middle of
# its N-th forward pass (a real SIGKILL at a known point, so the test never races the clock).
# 160 training images in batches of 16: 10 steps and one validation forward per epoch; the
# resumable state is saved every 3 steps and at the end of each epoch.
_WORKER = textwrap.dedent(
    """
    import os, signal, sys, torch
    import fercourse as fc
    out, split_path, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(1)
    fc.setup(seed=0)
    data = fc.data.make_synthetic_faces(n=400, seed=0)
    split = fc.data.make_split(data, path=split_path)
    model = fc.models.create_model("baseline_cnn", width=8, hidden=32)
    calls = [0]

    def maybe_die(module, args):
        calls[0] += 1
        if calls[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    model.register_forward_pre_hook(maybe_die)
    config = fc.TrainConfig.for_model(
        "baseline_cnn", epochs=3, batch_size=16, max_train_samples=160, max_val_samples=32,
        checkpoint_every_steps=3, patience=0, warmup_epochs=1, plateau_patience=0,
        ema=0.9, mixup_alpha=0.2, label_smoothing=0.1,
    )
    fc.fit(model, data, config, split=split, out_dir=out, progress=False)
    """
)


def _worker(out: Path, split_path: Path, kill_at: int = 0) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _WORKER, str(out), str(split_path), str(kill_at)],
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _finish(process: subprocess.Popen) -> int:
    _, err = process.communicate(timeout=300)
    assert process.returncode in (0, -signal.SIGKILL), err.decode()[-2000:]
    return process.returncode


@pytest.mark.slow
def test_resume_after_sigkill_gives_identical_weights(faces, tmp_path):
    split_path = tmp_path / "split.json"
    fc.data.make_split(faces, path=split_path)  # every run reads the same split file
    reference = _worker(tmp_path / "reference", split_path)
    victim = tmp_path / "victim"

    # Killed in step 5 of epoch 2 (forward 16): the last state is 3 steps into epoch 2.
    assert _finish(_worker(victim, split_path, kill_at=16)) == -signal.SIGKILL
    state = load_train_state(victim)
    assert (state["epoch"], state["step_in_epoch"], state["finished"]) == (1, 3, False)
    # Resumed mid-epoch, then killed in the first step of epoch 3: resume from an epoch's end.
    assert _finish(_worker(victim, split_path, kill_at=9)) == -signal.SIGKILL
    state = load_train_state(victim)
    assert (state["epoch"], state["step_in_epoch"], state["finished"]) == (2, 0, False)
    assert _finish(_worker(victim, split_path)) == 0
    assert _finish(reference) == 0

    for stem in ("last", "best"):
        ours = load_state_dict(victim / stem)
        theirs = load_state_dict(tmp_path / "reference" / stem)
        assert ours.keys() == theirs.keys()
        for key in ours:
            assert torch.equal(ours[key], theirs[key]), (stem, key)
    a, b = History.load(victim), History.load(tmp_path / "reference")
    assert len(a) == 3 and a.finished
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in a.epochs]
    assert strip == [{k: v for k, v in row.items() if k != "seconds"} for row in b.epochs]
    assert a.best_epoch == b.best_epoch and not math.isnan(a.best_val_acc)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("lr", "abc", "TrainConfig.lr must be a number, got 'abc'"),
        ("lr", "1e-4", "TrainConfig.lr must be a number, got '1e-4' (a string"),
        ("lr", float("nan"), "TrainConfig.lr must be a finite number, got nan"),
        ("epochs", "ten", "TrainConfig.epochs must be an integer, got 'ten'"),
        ("batch_size", 8.5, "TrainConfig.batch_size must be an integer, got 8.5"),
        ("epochs", True, "TrainConfig.epochs must be an integer, got True"),
        ("class_weighted", "yes", "TrainConfig.class_weighted must be true or false, got 'yes'"),
        ("ema", "high", "TrainConfig.ema must be a number or None, got 'high'"),
        ("augment", "flip", "TrainConfig.augment must be one of batch, albumentations, None"),
        ("momentum", 1.5, "TrainConfig.momentum must be in [0, 1), got 1.5"),
        ("max_train_samples", 0, "TrainConfig.max_train_samples must be at least 1 or None"),
        ("seed", -1, "TrainConfig.seed must be 0 or more, got -1"),
    ],
)
def test_config_checks_types_and_ranges_naming_the_field(field, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainConfig.for_model("baseline_cnn", **{field: value})
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainConfig(**{field: value})


def test_config_types_are_normalised():
    config = TrainConfig(lr=1, grad_clip=2, ema=None, channels_last=True)
    assert (type(config.lr), config.grad_clip, config.channels_last) == (float, 2.0, True)
    assert TrainConfig.from_dict(config.to_dict()) == config


# ---------------------------------------------------------------------------------------------
# A seventh model: one file, no other edit
# ---------------------------------------------------------------------------------------------

_SEVENTH = '''
from torch import nn

import fercourse as fc


@fc.models.register_model(
    name="tiny_mlp",
    notebook=None,
    recipes={"smoke": {"lr": 1e-3, "max_train_samples": 32, "max_val_samples": 16}},
)
class TinyMLP(fc.models.FERModel):
    """A model registered from outside the package, with its recipe next to it."""

    def __init__(self, *, hidden: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(48 * 48, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, fc.NUM_CLASSES)

    def forward_features(self, x):
        return self.body(x)

    def forward_head(self, features):
        return self.head(features)

    def gradcam_target_layer(self):
        return self.body[1]
'''


def test_a_seventh_model_in_its_own_module_trains_through_fit(faces, tmp_path, monkeypatch):
    (tmp_path / "seventh_model.py").write_text(_SEVENTH)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    importlib.import_module("seventh_model")
    try:
        assert "tiny_mlp" in fc.models.list_models()
        config = TrainConfig.for_model("tiny_mlp", preset="smoke", epochs=1, batch_size=32)
        assert (config.lr, config.max_train_samples) == (1e-3, 32)
        model = fc.models.create_model("tiny_mlp", hidden=8)
        history = fit(model, faces, config, out_dir=tmp_path / "run", progress=False)
        assert len(history) == 1 and history.finished
        run = fc.rundir.RunDir(tmp_path / "run")
        assert run.model_name == "tiny_mlp" and run.load().model.model_kwargs == {"hidden": 8}
    finally:
        fc.models.unregister_model("tiny_mlp")
        sys.modules.pop("seventh_model", None)


# ---------------------------------------------------------------------------------------------
# Budgeted training
# ---------------------------------------------------------------------------------------------


def _budget_config(minutes: float) -> TrainConfig:
    return TrainConfig.for_model(
        "baseline_cnn",
        preset="smoke",
        budget_minutes=minutes,
        epochs=100,
        batch_size=32,
        max_train_samples=320,
        max_val_samples=32,
        checkpoint_every_steps=4,
        scheduler="linear",
    )


def test_a_budgeted_run_ends_on_time_with_its_schedule_at_zero(faces, tmp_path):
    budget = 0.5  # minutes
    model = fc.models.create_model("baseline_cnn", **TINY)
    started = time.perf_counter()
    history = fit(model, faces, _budget_config(budget), out_dir=tmp_path / "run", progress=False)
    elapsed = time.perf_counter() - started
    assert elapsed <= budget * 60 * 1.10, elapsed  # the budget, plus a small tolerance
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    plan = config["budget"]
    assert plan["budget_s"] == 30.0 and plan["epochs"] >= 2
    assert plan["steps"] == plan["epochs"] * 9  # the 288 training faces / batch 32
    # The schedule was sized to the epochs that fit, and it finished: the rate is back at zero.
    assert len(history) == plan["epochs"] and not history.stopped_early
    assert history.last["lr"] == 0.0


class _SlowingDown(fc.models.baseline_cnn.BaselineCNN):
    """The baseline on a machine that gets busy: after its first 30 training batches (the
    throughput measurement takes 14), every training batch takes 0.1 s longer."""

    batches: ClassVar[list[int]] = [0]  # shared by the measurement's deep copy and the run

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.batches[0] += 1
            if self.batches[0] > 30:
                time.sleep(0.1)
        return super().forward_features(x)


def test_a_budgeted_run_that_slows_down_shortens_its_schedule_and_still_ends_at_zero(
    faces, tmp_path
):
    budget = 0.4  # minutes
    model = _SlowingDown(**TINY)
    template = fc.models.create_model("baseline_cnn", **TINY)  # what create_model declares
    model.model_name, model.model_kwargs = template.model_name, template.model_kwargs
    started = time.perf_counter()
    with warnings.catch_warnings():  # the last-resort stop before an overrun must not be needed
        warnings.filterwarnings("error", message=".*did not reach its end")
        history = fit(
            model, faces, _budget_config(budget), out_dir=tmp_path / "run", progress=False
        )
    elapsed = time.perf_counter() - started
    assert elapsed <= budget * 60 * 1.10, elapsed
    plan = json.loads((tmp_path / "run" / "config.json").read_text())["budget"]
    # Planned from the fast first batches, then shortened once the epochs took longer ...
    assert plan["measured_epochs"] is not None and plan["epochs"] < plan["measured_epochs"], plan
    # ... so the run did every epoch of its new plan and its rate decayed all the way to zero.
    assert len(history) == plan["epochs"] and not history.stopped_early
    assert history.last["lr"] == 0.0
    rates = [row["lr"] for row in history.epochs]
    assert all(a >= b for a, b in itertools.pairwise(rates)), rates  # no jump back up


class _BusyAtFirst(fc.models.baseline_cnn.BaselineCNN):
    """The baseline on a machine that is busy for a while: after the throughput measurement's 14
    batches, the next 30 training batches take 0.1 s longer each, then it is quick again."""

    batches: ClassVar[list[int]] = [0]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.batches[0] += 1
            if 14 < self.batches[0] <= 44:
                time.sleep(0.1)
        return super().forward_features(x)


def test_a_budgeted_run_that_speeds_up_again_lengthens_its_schedule(faces, tmp_path, capsys):
    budget = 0.4  # minutes
    model = _BusyAtFirst(**TINY)
    template = fc.models.create_model("baseline_cnn", **TINY)
    model.model_name, model.model_kwargs = template.model_name, template.model_kwargs
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*did not reach its end")
        history = fit(
            model, faces, _budget_config(budget), out_dir=tmp_path / "run", progress=False
        )
    elapsed = time.perf_counter() - started
    out = capsys.readouterr().out
    assert elapsed <= budget * 60 * 1.10, elapsed
    # Shortened while the machine was busy, lengthened once two epochs were quick again ...
    assert "longer than measured" in out and "shorter than measured" in out, out
    plan = json.loads((tmp_path / "run" / "config.json").read_text())["budget"]
    shortest = min(int(line.split(" epochs fit")[0].split()[-1]) for line in out.splitlines()
                   if "longer than measured" in line)  # fmt: skip
    assert plan["epochs"] > shortest, (plan, shortest)
    # ... and still did every epoch of its final plan, its rate decaying to zero, never jumping up.
    assert len(history) == plan["epochs"] and not history.stopped_early
    assert history.last["lr"] == 0.0
    rates = [row["lr"] for row in history.epochs]
    assert all(a >= b for a, b in itertools.pairwise(rates)), rates


def test_after_one_epoch_a_plan_floored_to_it_takes_the_epoch_that_still_fits():
    from fercourse.training.budget import BudgetClock, plan_budget

    # 600 s, 20 s set-up, epochs measured at 290 s: the 5% margin floors the plan to one epoch.
    plan = plan_budget(600, setup_s=20, train_images=25_800, val_images=2_900,
                       steps_per_epoch=404, train_images_per_s=90, val_images_per_s=1000)  # fmt: skip
    assert plan.epochs == 1
    clock = BudgetClock(plan, plan.setup_s)
    assert clock.steady_epoch_s() is None  # nothing run yet
    clock.done, clock.last_epoch_s = plan.setup_s + 285.0, 285.0  # a little quicker than measured
    steady = clock.steady_epoch_s()
    assert steady == plan.epoch_s == pytest.approx(plan.train_s_per_epoch + plan.val_s_per_epoch)
    assert clock.epochs_that_fit(steady) == 1  # 295 s left: the second epoch fits after all
    clock.last_epoch_s = 330.0  # a first epoch slower than measured is what is trusted then
    assert clock.steady_epoch_s() == 330.0
    clock.previous_epoch_s, clock.last_epoch_s = 250.0, 240.0  # after two: the slower of the two
    assert clock.steady_epoch_s() == 250.0


_BUDGET_WORKER = textwrap.dedent(
    """
    import sys
    import torch
    import fercourse as fc

    out, split_path = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    data = fc.data.make_synthetic_faces(n=400, seed=0)
    split = fc.data.make_split(data, path=split_path)
    model = fc.models.create_model("baseline_cnn", width=8, hidden=32)
    config = fc.TrainConfig.for_model(
        "baseline_cnn", preset="smoke", budget_minutes=0.4, epochs=100, batch_size=32,
        max_train_samples=320, max_val_samples=32, checkpoint_every_steps=4, scheduler="linear",
    )
    fc.fit(model, data, config, split=split, out_dir=out, progress=False)
    """
)


def test_a_budgeted_run_resumes_with_the_same_schedule(faces, tmp_path):
    out, split_path = tmp_path / "run", tmp_path / "split.json"
    split = fc.data.make_split(faces, path=split_path)
    worker = subprocess.Popen(
        [sys.executable, "-c", _BUDGET_WORKER, str(out), str(split_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    while time.time() < deadline:  # kill it once it has finished an epoch
        state = load_train_state(out) if (out / "train_state.pt").is_file() else None
        if state is not None and state["epoch"] >= 1:
            break
        time.sleep(0.2)
    worker.kill()
    worker.communicate(timeout=60)
    state = load_train_state(out)
    assert not state["finished"], "the run ended before it could be interrupted"
    planned = json.loads((out / "config.json").read_text())["budget"]

    model = fc.models.create_model("baseline_cnn", **TINY)
    history = fit(model, faces, _budget_config(0.4), split=split, out_dir=out, progress=False)
    # The resumed run kept the plan it measured (it did not measure again) and finished it.
    assert json.loads((out / "config.json").read_text())["budget"] == planned
    assert len(history) == planned["epochs"] and history.last["lr"] == 0.0
