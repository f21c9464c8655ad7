"""Checkpoints that are damaged or describe no model: a CheckpointError naming the file (#15)."""

from __future__ import annotations

import json
import re

import pytest
import torch

import fercourse as fc
from fercourse.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from fercourse.inference import CheckpointWarning, EmotionModel
from fercourse.training.cli import evaluate_main


def _save(stem, name="baseline_cnn", val_acc=0.5, **card):
    model = fc.models.create_model(name)
    save_checkpoint(stem, model, metrics={"val_acc": val_acc}, **card)
    return stem


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "fer2013.csv"
    fc.data.write_fer2013_csv(fc.data.make_synthetic_faces(n=100, seed=0), path)
    return path


def _damage(weights, how: str) -> None:
    data = weights.read_bytes()
    cut = {
        "truncated": data[: len(data) // 2],
        "empty": b"",
        "header-cut": data[:20],  # the 8-byte header length, then part of the JSON header
    }
    weights.write_bytes(cut[how])


@pytest.mark.parametrize("how", ["truncated", "empty", "header-cut"])
def test_damaged_weights_name_the_file_everywhere(tmp_path, csv, capsys, how):
    stem = _save(tmp_path / "run" / "best")
    weights = stem.with_suffix(".safetensors")
    _damage(weights, how)
    message = re.escape(str(weights)) + r": damaged weights file"
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(stem)
    with pytest.raises(CheckpointError, match=message):
        EmotionModel.load(stem)
    with pytest.raises(CheckpointError, match=message):
        fc.training.load_run(stem.parent)
    assert evaluate_main(["--run", str(stem.parent), "--data", str(csv)]) == 1
    assert f"error: {weights}: damaged weights file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "card, message",
    [
        (
            {"model": "resnet50"},
            r"unknown model 'resnet50' in the card; fercourse builds .*baseline",
        ),
        ({"model_kwargs": {}}, r'the card has no "model"'),
        ([{"model": "baseline_cnn"}], r"the card is a JSON list, expected an object"),
        ({"model": "baseline_cnn", "model_kwargs": [1, 2]}, r'"model_kwargs" must be an object'),
        ({"model": "baseline_cnn", "model_kwargs": {"depth": 9}}, r"cannot build 'baseline_cnn'"),
    ],
)
def test_cards_that_do_not_say_what_to_build_name_the_file(tmp_path, card, message):
    stem = _save(tmp_path / "run" / "best")
    card_file = stem.with_suffix(".json")
    card_file.write_text(json.dumps(card))
    pattern = re.escape(str(card_file)) + ": " + message
    with pytest.raises(CheckpointError, match=pattern):
        load_checkpoint(stem)
    with pytest.raises(CheckpointError, match=pattern):
        EmotionModel.load(card_file)


def test_auto_skips_a_broken_checkpoint_and_takes_the_next(monkeypatch, tmp_path):
    out = fc.utils.outputs_dir()
    bundled = _save(tmp_path / "default" / "model")
    monkeypatch.setattr(fc.inference.emotion_model, "DEFAULT_MODEL_STEM", bundled)
    broken = _save(out / "full" / "baseline_cnn" / "best", val_acc=0.9)
    _damage(broken.with_suffix(".safetensors"), "truncated")
    good = _save(out / "smoke" / "baseline_cnn" / "best", val_acc=0.4)
    with pytest.warns(CheckpointWarning, match=rf"skipping checkpoint {re.escape(str(broken))}"):
        assert EmotionModel.load("auto").source == str(good)
    with pytest.warns(CheckpointWarning, match="damaged weights file"):
        assert EmotionModel.load("baseline_cnn").source == str(good)
    # Its card names an unknown model: skipped too, and the bundled model is next.
    good.with_suffix(".json").write_text(json.dumps({"model": "resnet50"}))
    with pytest.warns(CheckpointWarning) as caught:
        assert EmotionModel.load("auto").source == str(bundled)
    assert [str(w.message).split(":")[0] for w in caught] == [
        f"skipping checkpoint {broken}",
        f"skipping checkpoint {good}",
    ]
    # Nothing loadable at all: one error naming every file tried.
    _damage(bundled.with_suffix(".safetensors"), "empty")
    with pytest.raises(CheckpointError, match=r"no checkpoint found for 'auto'") as err:
        with pytest.warns(CheckpointWarning):
            EmotionModel.load("auto")
    assert all(str(s) in str(err.value) for s in (broken, good, bundled))


@pytest.mark.parametrize("value", [-1, 0, float("nan"), "1.5"])
def test_a_card_temperature_that_is_not_positive_is_refused(tmp_path, value):
    stem = _save(tmp_path / "best", temperature=value)
    with pytest.raises(CheckpointError, match=rf"best.json: temperature must be .*{value!r}"):
        EmotionModel.load(stem)
    with pytest.raises(CheckpointError, match="temperature must be"):
        EmotionModel(fc.models.create_model("baseline_cnn"), card={"temperature": value})
    assert EmotionModel.load(_save(tmp_path / "ok", temperature=2.0)).temperature == 2.0


def test_non_finite_weights_are_refused_on_load(tmp_path):
    model = fc.models.create_model("baseline_cnn")
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    save_checkpoint(tmp_path / "best", model)
    weights = tmp_path / "best.safetensors"
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(weights))}: .* NaN or infinite"):
        load_checkpoint(tmp_path / "best")
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        EmotionModel.load(tmp_path / "best")
