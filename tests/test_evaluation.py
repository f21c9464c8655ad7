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


@pytest.mark.parametrize("native", [True, False])
def test_native_amp_is_bf16_only_on_a_cpu_that_has_it(monkeypatch, native):
    # The smoke and class presets train with amp="native"; inference ("auto") stays in float32.
    import fercourse.runtime

    monkeypatch.setattr(fercourse.runtime, "cpu_has_native_bf16", lambda: native)
    expected = torch.bfloat16 if native else None
    assert resolve_runtime("cpu", amp="native").amp_dtype == expected
    assert resolve_runtime("cpu").amp_dtype is None
    for preset in ("smoke", "class"):
        config = fc.TrainConfig.for_model("baseline_cnn", preset=preset)
        assert config.amp == "native"
        assert resolve_runtime("cpu", config.amp).amp_dtype == expected
    assert fc.TrainConfig.for_model("baseline_cnn", preset="full").amp == "auto"


# ---------------------------------------------------------------------------------------------
# Is a difference real? Bootstrap intervals and McNemar's paired test (08_compare)


def _right_wrong(n_right: int, n: int, seed: int = 0) -> np.ndarray:
    correct = np.zeros(n, dtype=bool)
    correct[:n_right] = True
    return np.random.default_rng(seed).permutation(correct)


def test_bootstrap_ci_is_the_percentile_interval_of_resampled_accuracies():
    from fercourse.evaluation import bootstrap_accuracies, bootstrap_ci

    correct = _right_wrong(560, 800)
    rng = np.random.default_rng(3)  # by hand: one resample of the 800 faces at a time
    by_hand = [correct[rng.integers(0, 800, size=800)].mean() for _ in range(200)]
    assert np.allclose(bootstrap_accuracies(correct, n_resamples=200, seed=3), by_hand)
    low, high = bootstrap_ci(correct, n_resamples=200, seed=3)
    assert (low, high) == tuple(np.percentile(by_hand, [2.5, 97.5]))
    assert low < 0.7 < high
    # The normal approximation +-1.96 sqrt(p (1 - p) / n) is ~3.2 points here.
    half = 1.96 * np.sqrt(0.7 * 0.3 / 800)
    low, high = bootstrap_ci(correct, n_resamples=2000)
    assert abs((high - low) / 2 - half) < 0.005
    assert bootstrap_ci(correct, n_resamples=2000) == (low, high)  # seeded
    narrow = bootstrap_ci(_right_wrong(5600, 8000), n_resamples=500)
    assert narrow[1] - narrow[0] < (high - low) / 2  # 10x the faces: ~3x narrower
    lo90, hi90 = bootstrap_ci(correct, n_resamples=2000, level=0.9)
    assert low < lo90 < hi90 < high
    assert bootstrap_ci(np.ones(50, bool)) == (1.0, 1.0)


def test_bootstrap_ci_refuses_what_is_not_right_or_wrong():
    from fercourse.evaluation import bootstrap_ci

    with pytest.raises(ValueError, match="booleans"):
        bootstrap_ci(np.array([0.2, 0.9]))
    with pytest.raises(ValueError, match="1-D"):
        bootstrap_ci(np.zeros((2, 3), bool))
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(np.ones(5, bool), level=95)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_ci(np.ones(5, bool), n_resamples=0)


def test_mcnemar_counts_the_discordant_faces_and_tests_them_exactly():
    import math

    from fercourse.evaluation import mcnemar

    # 100 faces: both right on 50, only A on 15, only B on 5, both wrong on 30.
    a = np.array([1] * 50 + [1] * 15 + [0] * 5 + [0] * 30, bool)
    b = np.array([1] * 50 + [0] * 15 + [1] * 5 + [0] * 30, bool)
    result = mcnemar(a, b)
    assert result.table.tolist() == [[50, 15], [5, 30]]
    assert (result.only_a, result.only_b, result.method) == (15, 5, "exact")
    by_hand = 2 * sum(math.comb(20, k) for k in range(6)) / 2**20  # two-sided binomial
    assert result.p_value == pytest.approx(by_hand) and result.p_value == pytest.approx(
        0.0414, abs=1e-4
    )
    assert mcnemar(b, a).p_value == pytest.approx(result.p_value)  # symmetric
    chi2 = mcnemar(a, b, exact=False)  # (|15 - 5| - 1)^2 / 20 = 4.05, p = 0.0442
    assert chi2.statistic == pytest.approx(4.05) and chi2.p_value == pytest.approx(
        0.04417, abs=1e-4
    )
    same = mcnemar(a, a)
    assert (same.only_a, same.only_b, same.p_value) == (0, 0, 1.0)
    assert mcnemar(a, a, exact=False).p_value == 1.0
    # Equal accuracies, different faces: nothing to tell them apart.
    assert mcnemar(a, np.roll(a, 1)).p_value > 0.5
    with pytest.raises(ValueError, match="different faces"):
        mcnemar(a, b[:-1])


def test_significance_table_tests_every_model_against_the_best():
    from fercourse.evaluation import bootstrap_ci, mcnemar, significance_table

    labels_right = {
        "good": _right_wrong(600, 800, seed=1),
        "close": _right_wrong(590, 800, seed=2),
        "chance": _right_wrong(200, 800, seed=3),
    }
    table = significance_table(labels_right, n_resamples=300, seed=5)
    assert list(table.index) == ["good", "close", "chance"] and table.attrs["reference"] == "good"
    assert table.attrs["n"] == 800
    assert table.loc["good", "accuracy"] == pytest.approx(0.75)
    assert np.isnan(table.loc["good", "p_value"])
    assert (table.loc["good", "ci_low"], table.loc["good", "ci_high"]) == bootstrap_ci(
        labels_right["good"], n_resamples=300, seed=5
    )
    close = mcnemar(labels_right["good"], labels_right["close"])
    assert table.loc["close", "p_value"] == pytest.approx(close.p_value)
    assert table.loc["close", "only_reference_right"] == close.only_a
    assert table.loc["close", "p_value"] > 0.05 and table.loc["chance", "p_value"] < 1e-10
    against = significance_table(labels_right, reference="chance", n_resamples=50)
    assert against.attrs["reference"] == "chance" and np.isnan(against.loc["chance", "p_value"])
    with pytest.raises(KeyError, match="reference"):
        significance_table(labels_right, reference="missing")
    with pytest.raises(ValueError, match="different numbers"):
        significance_table({"a": np.ones(5, bool), "b": np.ones(6, bool)})


def test_summarize_runs_says_what_each_model_trained_on(tmp_path):
    """08_compare's fair-comparison table: each run's own subset sizes, from its config.json."""
    import json

    import fercourse as fc

    run_dir = tmp_path / "run"
    for name, train, val in (("baseline_cnn", 3000, 400), ("multiscale", 1000, 200)):
        d = run_dir / name
        d.mkdir(parents=True)
        metric = {"accuracy": 0.5, "macro_f1": 0.4, "n": 10, "ece": 0.07, "majority_baseline": 0.3}
        (d / "metrics.json").write_text(json.dumps({"PrivateTest": metric}))
        (d / "best.json").write_text(json.dumps({"model": name, "num_parameters": 1000}))
        (d / "best.safetensors").write_bytes(b"")
        (d / "history.json").write_text(json.dumps({"best_epoch": 4, "epochs": [{}] * 4}))
        config = {"preset": "smoke", "batch_size": 64}
        (d / "config.json").write_text(
            json.dumps({"config": config, "split": {"train": train, "val": val}})
        )
    table = fc.course.summarize_runs(run_dir)
    assert table.loc["baseline_cnn", ["train_faces", "val_faces"]].tolist() == [3000, 400]
    assert table.loc["multiscale", ["train_faces", "val_faces"]].tolist() == [1000, 200]
    assert table.loc["multiscale", "batch_size"] == 64 and table.loc["multiscale", "ece"] == 0.07


def test_evaluate_ensemble_averages_given_member_probabilities():
    """08_compare scores the members once, then hands their probabilities to the ensemble."""
    a = Constant([2.0, 0, 0, 0, 0, 0, 0], "a")
    b = Constant([0, 0, 0, 3.0, 0, 0, 0], "b")
    data = _dataset([0, 0, 0], [3, 3, 0])
    faces = data.images[fc.evaluation.split_indices(data, "PrivateTest")]
    probs = [predict_proba(m, faces, device="cpu") for m in (a, b)]
    given = evaluate_ensemble([a, b], data, device="cpu", member_probs=probs)
    predicted = evaluate_ensemble([a, b], data, device="cpu")
    assert given["accuracy"] == predicted["accuracy"] == pytest.approx(2 / 3)
    assert given["confusion"] == predicted["confusion"] and given["members"] == ["a", "b"]
    weighted = evaluate_ensemble([a, b], data, weights=[1, 0], device="cpu", member_probs=probs)
    assert weighted["accuracy"] == evaluate(a, data, device="cpu")["accuracy"]
    with pytest.raises(ValueError, match="member_probs"):
        evaluate_ensemble([a, b], data, tta="flip", member_probs=probs)
    with pytest.raises(ValueError, match="member_probs"):
        evaluate_ensemble([a, b], data, member_probs=probs[:1])
