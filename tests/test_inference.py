"""Inference: face detection, EmotionModel, the one preprocessing path, the ONNX backend."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

import fercourse as fc
from fercourse.inference import (
    EmotionModel,
    FaceDetector,
    NoModelError,
    Prediction,
    find_checkpoints,
    iou,
)
from fercourse.mirror import FrameProcessor, FrameTap, browser_frame, sample_photo


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return sample_photo()


@pytest.fixture(scope="module")
def face_box(photo) -> tuple[int, int, int, int]:
    boxes = FaceDetector().detect(photo)
    assert len(boxes) == 1, boxes
    return boxes[0]


def _save(stem, name="baseline_cnn", val_acc=0.5, synthetic=False, **kwargs):
    model = fc.models.create_model(name, **kwargs)
    fc.checkpoint.save_checkpoint(
        stem, model, metrics={"val_acc": val_acc}, data={"synthetic": synthetic}
    )
    return model


# ------------------------------------------------------------------------------------------------
# FaceDetector


def test_detector_finds_the_face_in_a_real_photo(photo, face_box):
    _, _, w, h = face_box
    assert w == h and 0.3 * photo.shape[1] < w < 0.6 * photo.shape[1]
    # Scanning a shrunk copy gives (nearly) the same box in the photo's pixels.
    small = FaceDetector(detect_width=160, min_neighbors=3).detect(photo)
    assert small and iou(small[0], face_box) > 0.7
    # BGR input: same gray image, same box.
    assert FaceDetector().detect(photo[:, :, ::-1].copy(), channel_order="BGR") == [face_box]


def test_detector_finds_nothing_in_a_blank_frame():
    assert FaceDetector().detect(np.full((240, 320, 3), 128, np.uint8)) == []


def test_detect_near_follows_a_moving_face(photo, face_box):
    shifted = np.roll(photo, (12, -15), axis=(0, 1))
    found = FaceDetector().detect_near(shifted, face_box)
    assert found is not None
    moved = (face_box[0] - 15, face_box[1] + 12, face_box[2], face_box[3])
    assert iou(found, moved) > 0.6
    assert FaceDetector().detect_near(np.zeros_like(photo), face_box) is None


def test_crop_is_prepare_face(photo, face_box):
    crop = FaceDetector().crop(photo, face_box)
    assert crop.shape == (48, 48) and crop.dtype == np.uint8
    assert np.array_equal(crop, fc.prepare_face(photo, face_box))
    boxes, faces = FaceDetector().faces(photo)
    assert boxes == [face_box] and np.array_equal(faces[0], crop)


def test_detector_errors_are_clear():
    with pytest.raises(FileNotFoundError, match="opencv-python-headless<5"):
        FaceDetector("no_such_cascade.xml")
    with pytest.raises(ValueError, match="scale_factor"):
        FaceDetector(scale_factor=1.0)


@pytest.mark.parametrize("shape", [(0, 0), (0, 0, 3), (0, 640, 3), (480, 0)])
def test_an_empty_image_is_refused_naming_its_shape(shape):
    # It used to crash inside OpenCV (cv2.resize / detectMultiScale assertions).
    image = np.zeros(shape, np.uint8)
    message = re.escape(f"the image is empty (shape {shape})")
    with pytest.raises(ValueError, match=message):
        fc.prepare_face(image)
    with pytest.raises(ValueError, match=message):
        FaceDetector().detect(image)
    with pytest.raises(ValueError, match=message):
        EmotionModel(fc.models.create_model("baseline_cnn")).predict(image)


@pytest.mark.parametrize(
    "box, message",
    [
        ((700, 100, 80, 80), "face box (700, 100, 80, 80) is wholly outside the 640x480 image"),
        (
            (-60, 100, 80, 80),
            "face box (-60, 100, 80, 80) is mostly outside the 640x480 image (25%",
        ),
        ((100, 100, 0, 80), "empty face box (100, 100, 0, 80)"),
        ((100, 100, 80), "a face box is (x, y, w, h), got (100, 100, 80)"),
    ],
)
def test_a_face_box_outside_the_image_is_refused_naming_it(box, message):
    # It used to be moved inside the image and classified as if it were a face.
    frame = np.full((480, 640, 3), 128, np.uint8)
    model = EmotionModel(fc.models.create_model("baseline_cnn"))
    with pytest.raises(ValueError, match=re.escape(message)):
        model.predict(frame, box)
    with pytest.raises(ValueError, match=re.escape(message)):
        fc.prepare_face(frame, box)


def test_a_box_at_the_border_is_cropped_from_inside_the_image():
    image = np.zeros((100, 100), np.uint8)
    image[:, 90:] = 255
    # A face at the right edge, its box rounded one pixel over the border: accepted; the squared
    # crop with its margin is moved inside the image (never padded).
    face = fc.prepare_face(image, (80, 40, 21, 20))
    assert face.shape == (48, 48) and face[:, -5:].min() == 255 and face[:, :5].max() == 0


# ------------------------------------------------------------------------------------------------
# Prediction and EmotionModel


def test_prediction_from_probabilities():
    p = np.array([0.05, 0.05, 0.1, 0.6, 0.1, 0.05, 0.05])
    pred = Prediction.from_probabilities(p)
    assert pred.emotion == "happy" and pred.emoji == fc.EMOJI["happy"]
    assert pred.confidence == pytest.approx(0.6)
    assert list(pred.probabilities) == list(fc.EMOTIONS)
    assert repr(pred) == f"Prediction(happy {fc.EMOJI['happy']} 0.60)"
    assert fc.EMOJI["happy"] in pred._repr_html_()
    assert pred.top(2)[0] == ("happy", pytest.approx(0.6))
    with pytest.raises(ValueError, match="7 probabilities"):
        Prediction.from_probabilities([0.5, 0.5])


def test_predict_and_predict_batch_agree(photo, face_box):
    model = EmotionModel(fc.models.create_model("baseline_cnn"))
    single = model.predict(photo, face_box)
    assert single.emotion in fc.EMOTIONS
    assert sum(single.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    # Several faces in one forward pass give the same answers as one at a time.
    faces = np.stack([fc.prepare_face(photo, face_box), fc.prepare_face(photo[::-1].copy())])
    batch = model.predict_batch(faces)
    assert len(batch) == 2
    assert batch[0].probabilities == pytest.approx(single.probabilities, abs=1e-5)
    framed = model.predict_batch(photo, [face_box, face_box])
    assert [p.emotion for p in framed] == [single.emotion] * 2
    assert model.predict_batch(np.zeros((0, 48, 48), np.uint8)) == []


def test_load_by_auto_name_and_path(tmp_path, monkeypatch):
    out = fc.utils.outputs_dir()
    _save(out / "smoke" / "baseline_cnn" / "best", val_acc=0.40)
    _save(out / "full" / "baseline_cnn" / "best", val_acc=0.60)
    _save(out / "smoke" / "attention_cnn" / "best", "attention_cnn", val_acc=0.90, synthetic=True)
    found = find_checkpoints()
    # FER2013-trained first, best accuracy first; synthetic-data checkpoints last.
    assert [(c.model, c.run) for c in found] == [
        ("baseline_cnn", "full/baseline_cnn"),
        ("baseline_cnn", "smoke/baseline_cnn"),
        ("attention_cnn", "smoke/attention_cnn"),
    ]
    assert "val 60.0%" in found[0].label and "synthetic" in found[2].label
    assert EmotionModel.load("auto").source == str(out / "full" / "baseline_cnn" / "best")
    assert EmotionModel.load("attention_cnn").name == "attention_cnn"
    stem = out / "smoke" / "baseline_cnn" / "best"
    for what in (stem, f"{stem}.safetensors", f"{stem}.json", out / "smoke"):
        assert EmotionModel.load(what).name == "baseline_cnn"


def test_no_model_errors_say_how_to_train(tmp_path, monkeypatch):
    monkeypatch.setattr(
        fc.inference.emotion_model, "DEFAULT_MODEL_STEM", tmp_path / "default" / "model"
    )
    with pytest.raises(NoModelError, match=r"notebooks/02_baseline\.ipynb"):
        EmotionModel.load("auto")
    with pytest.raises(NoModelError, match="vit_tiny"):
        EmotionModel.load("vit_tiny")
    with pytest.raises(NoModelError, match="no checkpoint at"):
        EmotionModel.load(tmp_path / "missing" / "best.safetensors")
    with pytest.raises(NoModelError, match="no model is bundled"):
        EmotionModel.load("default")
    # With a bundled model, "default" and "auto" (nothing trained) use it.
    _save(tmp_path / "default" / "model")
    assert EmotionModel.load("default").name == "baseline_cnn"
    assert EmotionModel.load("auto").source == str(tmp_path / "default" / "model")


def test_auto_prefers_real_training_then_the_bundled_model_then_synthetic(tmp_path, monkeypatch):
    out = fc.utils.outputs_dir()
    bundled = tmp_path / "default" / "model"
    monkeypatch.setattr(fc.inference.emotion_model, "DEFAULT_MODEL_STEM", bundled)
    synthetic = out / "smoke" / "baseline_cnn" / "best"
    _save(synthetic, val_acc=0.9, synthetic=True)
    assert EmotionModel.load("auto").source == str(synthetic)  # nothing better exists
    _save(bundled)
    assert EmotionModel.load("auto").source == str(bundled)  # real faces beat synthetic ones
    real = out / "full" / "attention_cnn" / "best"
    _save(real, name="attention_cnn", val_acc=0.4)
    assert EmotionModel.load("auto").source == str(real)  # the student's own FER2013 model


def test_unreadable_cards_are_skipped():
    out = fc.utils.outputs_dir()
    bad = out / "broken" / "best"
    bad.parent.mkdir(parents=True)
    bad.with_suffix(".json").write_text("{not json")
    bad.with_suffix(".safetensors").write_bytes(b"")
    (out / "orphan").mkdir()
    (out / "orphan" / "best.json").write_text(json.dumps({"model": "baseline_cnn"}))
    assert find_checkpoints() == []


# ------------------------------------------------------------------------------------------------
# One preprocessing path: the mirror feeds the model exactly what evaluation does.


def test_mirror_path_feeds_the_model_exactly_what_evaluation_does(photo):
    net = fc.models.create_model("baseline_cnn").eval()
    seen: list[torch.Tensor] = []
    net.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    model = EmotionModel(net)
    processor = FrameProcessor(model, smoothing=0.0, threshold=0.0)
    tap = FrameTap(processor)

    # (a) The mirror: the frame arrives from the browser as raw RGBA bytes in a message.
    frame = browser_frame(photo, 320)
    height, width = frame.shape[:2]
    content = {"type": "frame", "seq": 7, "width": width, "height": height}
    tap._on_frame_message(tap, content, [memoryview(frame.tobytes())])
    result = tap.last_result
    assert len(result.faces) == 1 and len(seen) == 1
    mirror_input = seen[0]

    # (b) Evaluation: the same face cut with prepare_face, normalised by to_tensor (what the
    # data loaders and fc.evaluation use), from the same picture in RGB.
    rgb = frame[:, :, :3].copy()
    box = processor.detector.detect(rgb)[0]
    assert tuple(result.faces[0].box) == box
    face = fc.prepare_face(rgb, box)
    eval_input = fc.preprocessing.to_tensor(face[None])
    assert mirror_input.shape == (1, 1, 48, 48)
    assert torch.equal(mirror_input, eval_input)

    with torch.inference_mode():
        eval_logits = net(eval_input)
    assert np.array_equal(model.logits(face[None]), eval_logits.numpy())
    expected = fc.evaluation.predict_proba(net, face[None], device="cpu")
    assert np.allclose(result.faces[0].probabilities, expected[0], atol=1e-6)


# ------------------------------------------------------------------------------------------------
# ONNX Runtime backend


ONNX_MODELS = [
    "baseline_cnn",
    "attention_cnn",
    "multiscale",
    "specialists",
    pytest.param("hybrid_transformer", marks=pytest.mark.slow),
    pytest.param("vit_tiny", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name", ONNX_MODELS)
def test_onnx_runtime_matches_torch(name, photo, tmp_path):
    net = fc.models.create_model(name).eval()
    path = tmp_path / f"{name}.onnx"
    fc.inference.export_onnx(net, path)
    runner = fc.inference.OnnxRunner(path)
    rng = np.random.default_rng(0)
    faces = np.concatenate(
        [fc.prepare_face(photo)[None], rng.integers(0, 256, (4, 48, 48), dtype=np.uint8)]
    )
    torch_model = EmotionModel(net)
    for batch in (faces[:1], faces):  # the exported batch dimension is dynamic
        x = fc.preprocessing.to_tensor(batch)
        assert np.allclose(runner(x), torch_model.logits(batch), atol=1e-4)


def test_onnx_export_is_cached_per_checkpoint():
    stem = fc.utils.outputs_dir() / "run" / "baseline_cnn" / "best"
    net = _save(stem)
    first = EmotionModel.load(stem, backend="onnx")
    cache = sorted((fc.utils.outputs_dir() / "onnx-cache").glob("*.onnx"))
    assert len(cache) == 1 and cache[0].name.startswith("baseline_cnn-")
    second = EmotionModel.load(stem, backend="onnx")  # from the cache: no second export
    assert sorted((fc.utils.outputs_dir() / "onnx-cache").glob("*.onnx")) == cache
    faces = np.random.default_rng(1).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    expected = EmotionModel(net).logits(faces)
    assert np.allclose(first.logits(faces), expected, atol=1e-4)
    assert np.allclose(second.logits(faces), expected, atol=1e-4)
    assert first.backend == second.backend == "onnx"
    # "auto" uses ONNX Runtime when the model exports (here it does).
    assert EmotionModel.load(stem, backend="auto").backend == "onnx"
