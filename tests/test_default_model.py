"""The model bundled with the package (``fercourse/inference/default_model/``).

It was trained on the real FER2013 (which CI never has), so these tests check what can be checked
without the data: it ships, loads, documents itself completely, agrees with the recorded
results, and still says on a fixed real photo exactly what it said when it was bundled.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import fercourse as fc
from fercourse.inference.bundle import REQUIRED_CARD_KEYS, reference_prediction
from fercourse.inference.emotion_model import DEFAULT_MODEL_STEM, EmotionModel
from fercourse.mirror.app import BUNDLED_MODEL_MESSAGE, Mirror, snapshot
from fercourse.preprocessing import IMAGE_SIZE, MEAN, STD


@pytest.fixture(scope="module")
def card() -> dict:
    stem = fc.inference.default_checkpoint()
    assert stem == DEFAULT_MODEL_STEM, f"no model bundled at {DEFAULT_MODEL_STEM}.safetensors"
    return json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))


def test_it_is_small_and_a_state_dict():
    weights = DEFAULT_MODEL_STEM.with_suffix(".safetensors")
    assert weights.stat().st_size < 8 * 2**20  # a few MB at most in the package
    from safetensors.torch import load_file

    state = load_file(weights)  # plain tensors, nothing to unpickle
    assert state and all(hasattr(t, "dtype") for t in state.values())


def test_its_card_is_complete(card):
    assert card["classes"] == list(fc.EMOTIONS)
    assert card["data"]["name"] == "FER2013" and card["data"]["synthetic"] is False
    assert "source" not in card["data"]  # no paths of the machine it was trained on
    pre = card["preprocessing"]
    assert (pre["image_size"], pre["mean"], pre["std"]) == (IMAGE_SIZE, MEAN, STD)
    assert set(REQUIRED_CARD_KEYS) <= set(card["model_card"])
    assert card["model_card"]["command"].startswith("python -m fercourse train")
    assert card["config"]["seed"] == card["model_card"]["recipe"]["seed"]
    assert card["selected_on"] == "val"  # chosen on validation, never on a test split
    for key in ("PrivateTest", "PrivateTest+flip", "PublicTest", "val"):
        assert 0.0 < card["results"][key]["accuracy"] < 1.0
    assert card["versions"]["torch"]
    assert (DEFAULT_MODEL_STEM.parent / "MODEL_CARD.md").is_file()


def test_its_results_are_the_recorded_ones(card):
    table = fc.course.reference_results()
    row = table.loc[card["model"]]
    assert row["private_acc"] == pytest.approx(card["results"]["PrivateTest"]["accuracy"])
    assert row["private_acc_flip"] == pytest.approx(card["results"]["PrivateTest+flip"]["accuracy"])
    # It beats the original project's figure for the same architecture.
    assert row["private_acc"] > row["original_project"]


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_it_predicts_as_recorded_on_a_fixed_real_photo(card, backend):
    model = EmotionModel.load("default", backend=backend)
    assert model.name == card["model"]
    now = reference_prediction(model)
    recorded = card["reference_prediction"]
    assert now["box"] == recorded["box"] and now["emotion"] == recorded["emotion"]
    np.testing.assert_allclose(
        list(now["probabilities"].values()), list(recorded["probabilities"].values()), atol=1e-4
    )


def test_load_auto_falls_back_to_it_and_the_mirror_says_so():
    # The tests' outputs/ folder is empty: the student has trained nothing.
    model = EmotionModel.load("auto")
    assert model.source == str(DEFAULT_MODEL_STEM)
    shot = snapshot(fc.mirror.sample_photo())
    assert shot.faces and shot.faces[0].probabilities is not None
    assert shot.message and "bundled with fercourse" in shot.message
    assert "PrivateTest" in shot.message
    mirror = Mirror(running=False)
    assert mirror.model_dropdown.value == "default"
    assert mirror.tap.message == shot.message
    assert BUNDLED_MODEL_MESSAGE.split("{")[0] in mirror.tap.message
