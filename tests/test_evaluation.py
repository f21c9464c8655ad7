"""Evaluation: scores match scikit-learn on hand-made cases, TTA, calibration, ensembles, metrics.json."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support
from torch import nn

import fercourse as fc
from fercourse.evaluation import (
    compute_metrics,
    ensemble_proba,
    evaluate,
    evaluate_ensemble,
    expected_calibration_error,
    fit_temperature,
    predict_proba,
    temperature_from_logits,
    ten_crop_views,
    tta_views,
)
from fercourse.preprocessing import MEAN, STD
from fercourse.runtime import resolve_runtime


def _level(code: int) -> int:
    return 10 + 30 * code


class GreyLevelModel(nn.Module):
    """Predicts the class encoded in a face's mean grey level (10 + 30 * code), confidently.

    Crops, flips and resizes of a constant face keep its grey level, so every TTA view agrees.
    """

    model_name = "grey_level"

    def __init__(self, confidence: float = 4.0) -> None:
        super().__init__()
        self.confidence = confidence
        self.dummy = nn.Parameter(torch.zeros(1))  # so the model has a device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grey = (x.float().mean(dim=(1, 2, 3)) * STD + MEAN) * 255.0
        code = ((grey - 10.0) / 30.0).round().clamp(0, 6).long()
        return nn.functional.one_hot(code, 7).float() * self.confidence + self.dummy


def _dataset(predicted: list[int], labels: list[int], usage: str = "PrivateTest"):
    images = np.stack([np.full((48, 48), _level(c), np.uint8) for c in predicted])
    return fc.data.FER2013(
        images=images,
        labels=np.asarray(labels),
        usage=np.array([usage] * len(labels)),
        source="test",
        format="test",
        synthetic=True,
    )


PRED = [0, 0, 1, 3, 3, 3, 4, 6, 6, 2, 5, 3]
TRUE = [0, 1, 1, 3, 3, 4, 4, 6, 0, 2, 5, 3]


def test_evaluate_matches_sklearn_on_a_hand_checked_case():
    data = _dataset(PRED, TRUE)
    m = evaluate(GreyLevelModel(), data, "PrivateTest", device="cpu")
    assert m["n"] == 12 and m["split"] == "PrivateTest"
    assert m["accuracy"] == pytest.approx(9 / 12)  # three mistakes, counted by hand
    assert m["macro_f1"] == pytest.approx(f1_score(TRUE, PRED, labels=range(7), average="macro"))
    assert m["confusion"] == confusion_matrix(TRUE, PRED, labels=range(7)).tolist()
    assert m["confusion"][1] == [1, 1, 0, 0, 0, 0, 0]  # one disgust face called angry
    p, r, f, s = precision_recall_fscore_support(TRUE, PRED, labels=range(7), zero_division=0)
    assert m["per_class"]["happy"] == pytest.approx(
        {"precision": p[3], "recall": r[3], "f1": f[3], "support": s[3]}
    )
    assert m["majority_baseline"] == pytest.approx(3 / 12)  # happy: 3 of 12
    assert m["data"]["synthetic"] is True and m["tta"] is None


def test_tta_views_and_ten_crop_geometry():
    x = torch.arange(2 * 48 * 48, dtype=torch.float32).reshape(2, 1, 48, 48)
    assert tta_views(x, None).shape == (1, 2, 1, 48, 48)
    flip = tta_views(x, "flip")
    assert flip.shape == (2, 2, 1, 48, 48) and torch.equal(flip[1], x.flip(-1))
    views = ten_crop_views(x, crop_size=44)
    assert views.shape == (10, 2, 1, 48, 48)
    # torchvision crops the mirrored face: its top-left crop is the mirrored top-right one, ...
    for i, j in enumerate([1, 0, 3, 2, 4]):
        assert torch.allclose(views[5 + i], views[j].flip(-1))
    centre = nn.functional.interpolate(x[..., 2:46, 2:46], size=(48, 48), mode="bilinear")
    assert torch.allclose(views[4], centre)
    assert torch.allclose(
        views[0], nn.functional.interpolate(x[..., :44, :44], size=(48, 48), mode="bilinear")
    )
    with pytest.raises(ValueError, match="unknown TTA"):
        tta_views(x, "rotate")


@pytest.mark.parametrize("tta", ["flip", "tencrop"])
def test_tta_keeps_a_view_invariant_models_predictions(tta):
    data = _dataset(PRED, TRUE)
    plain = evaluate(GreyLevelModel(), data, device="cpu")
    with_tta = evaluate(GreyLevelModel(), data, tta=tta, device="cpu", batch_size=5)
    assert with_tta["tta"] == tta and with_tta["key"] == f"PrivateTest+{tta}"
    assert with_tta["accuracy"] == plain["accuracy"]
    assert with_tta["confusion"] == plain["confusion"]


def test_predict_proba_inputs():
    model = GreyLevelModel()
    faces = np.stack([np.full((48, 48), _level(c), np.uint8) for c in (3, 5)])
    p = predict_proba(model, faces, device="cpu")
    assert p.shape == (2, 7) and np.allclose(p.sum(1), 1, atol=1e-6)
    assert list(p.argmax(1)) == [3, 5]
    assert predict_proba(model, faces[0], device="cpu").shape == (1, 7)
    tensor = fc.preprocessing.to_tensor(faces)
    assert np.allclose(predict_proba(model, tensor, device="cpu"), p)
    soft = predict_proba(model, faces, temperature=4.0, device="cpu")
    assert soft.max() < p.max()  # a temperature above 1 softens


def test_expected_calibration_error_toys():
    # 70 % confident and right 70 % of the time: perfectly calibrated.
    probs = np.tile([[0.7, 0.3, 0, 0, 0, 0, 0]], (10, 1))
    labels = np.array([0] * 7 + [1] * 3)
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0, abs=1e-12)
    # Certain but right half the time: ECE 0.5.
    certain = np.tile(np.eye(7)[0], (10, 1))
    half = np.array([0] * 5 + [2] * 5)
    assert expected_calibration_error(certain, half) == pytest.approx(0.5)


def test_temperature_scaling_repairs_an_over_confident_model():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4000, 7)) * 1.5
    probs = torch.softmax(torch.as_tensor(logits), 1).numpy()
    labels = np.array([rng.choice(7, p=row) for row in probs])  # calibrated by construction
    overconfident = logits * 3.0
    t = temperature_from_logits(overconfident, labels)
    assert t == pytest.approx(3.0, rel=0.15)

    def nll(z: np.ndarray) -> float:
        return float(nn.functional.cross_entropy(torch.as_tensor(z), torch.as_tensor(labels)))

    assert nll(overconfident / t) < nll(overconfident) - 0.1


def test_fit_temperature_on_a_model_lowers_nll():
    # A confident model that is wrong a third of the time on "val".
    data = _dataset([0, 1, 2] * 20, [0, 1, 0] * 20, usage="Training")
    split = type("S", (), {"val": np.arange(60), "train": np.arange(0)})()
    model = GreyLevelModel(confidence=8.0)
    t = fit_temperature(model, data, split, device="cpu")
    assert t > 1.0
    before = evaluate(model, data, "val", split_obj=split, device="cpu")
    after = evaluate(model, data, "val", split_obj=split, temperature=t, device="cpu")
    assert after["nll"] < before["nll"] and after["accuracy"] == before["accuracy"]
    assert after["key"] == "val+temperature"


class Constant(nn.Module):
    def __init__(self, logits: list[float], name: str) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.tensor(logits))
        self.model_name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(x), -1)


def test_ensemble_averages_probabilities():
    a = Constant([2.0, 0, 0, 0, 0, 0, 0], "a")
    b = Constant([0, 0, 0, 3.0, 0, 0, 0], "b")
    faces = np.zeros((3, 48, 48), np.uint8)
    pa, pb = predict_proba(a, faces, device="cpu"), predict_proba(b, faces, device="cpu")
    assert np.allclose(ensemble_proba([a, b], faces, device="cpu"), (pa + pb) / 2, atol=1e-6)
    weighted = ensemble_proba([a, b], faces, weights=[3, 1], device="cpu")
    assert np.allclose(weighted, 0.75 * pa + 0.25 * pb, atol=1e-6)
    with pytest.raises(ValueError, match="weight"):
        ensemble_proba([a, b], faces, weights=[1.0])
    data = _dataset([0, 0, 0], [3, 3, 0])
    m = evaluate_ensemble([a, b], data, device="cpu")
    assert m["members"] == ["a", "b"] and m["model"] == "ensemble"
    assert m["accuracy"] == pytest.approx(2 / 3)  # b's happy wins the average
    assert m["key"] == "ensemble:PrivateTest" and m["n"] == 3 and m["data"]["synthetic"] is True
    flipped = evaluate_ensemble([a, b], data, tta="flip", device="cpu")
    assert flipped["key"] == "ensemble:PrivateTest+flip" and flipped["tta"] == "flip"


def test_metrics_json_merges_results(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"someone-else": {"accuracy": 0.5}}))
    data = _dataset(PRED, TRUE)
    evaluate(GreyLevelModel(), data, save_to=tmp_path, device="cpu")
    evaluate(GreyLevelModel(), data, tta="flip", save_to=tmp_path, device="cpu")
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert set(saved) == {"someone-else", "PrivateTest", "PrivateTest+flip"}
    assert saved["PrivateTest"]["accuracy"] == pytest.approx(0.75)


def test_compute_metrics_checks_shapes_and_splits():
    with pytest.raises(ValueError, match="shape"):
        compute_metrics(np.ones((3, 5)) / 5, np.zeros(3))
    with pytest.raises(ValueError, match="unknown split"):
        evaluate(GreyLevelModel(), _dataset(PRED, TRUE), "test")


def test_runtime_on_cpu():
    rt = resolve_runtime("cpu")
    assert rt.amp_dtype is None and rt.channels_last is False
    assert resolve_runtime("cpu", amp="bf16").amp_dtype == torch.bfloat16
    with pytest.raises(ValueError, match="fp16"):
        resolve_runtime("cpu", amp="fp16")
    described = rt.describe()  # what config.json records next to every run
    assert described["device"] == "cpu" and described["cpu_threads"] == torch.get_num_threads()
    assert described["hardware"].endswith(f"({len(os.sched_getaffinity(0))} cores)")
