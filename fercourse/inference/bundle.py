"""Ship a trained checkpoint inside the package as the default model.

The mirror and ``EmotionModel.load("default")`` need a model trained on real faces on a fresh
machine, with no training and no download. :func:`bundle_model` copies a run's best checkpoint to
``fercourse/inference/default_model/model.safetensors`` and writes next to it

- ``model.json``: the checkpoint card plus a ``model_card`` (data, split, recipe, the command that
  reproduces it, hardware, training time, date), the measured ``results`` and a
  ``reference_prediction``: what the model says about a fixed real photo, which the tests check
  the shipped weights still produce;
- ``MODEL_CARD.md``: the same, for people.

``tools/record_results.py --bundle MODEL`` calls it after a run on the real FER2013.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..checkpoint import CARD_SUFFIX, WEIGHTS_SUFFIX, read_card
from ..labels import EMOJI
from ..utils import atomic_write_bytes, atomic_write_json
from .emotion_model import DEFAULT_MODEL_STEM, EmotionModel

REFERENCE_PHOTO = "matplotlib: grace_hopper.jpg"
"""The fixed real photo of the reference prediction (ships with matplotlib)."""

REQUIRED_CARD_KEYS = ("data", "split", "recipe", "command", "hardware", "train_minutes", "date")
"""What a bundled model's ``model_card`` must say."""


def reference_prediction(model: EmotionModel) -> dict[str, Any]:
    """What ``model`` says about :data:`REFERENCE_PHOTO` (face found by the Haar cascade)."""
    from ..data.photos import sample_photo
    from .face_detector import FaceDetector

    photo = sample_photo()
    boxes = FaceDetector(detect_width=640).detect(photo)
    if len(boxes) != 1:
        raise RuntimeError(f"expected one face in {REFERENCE_PHOTO}, found {len(boxes)}")
    prediction = model.predict(photo, boxes[0])  # the mirror's path: frame + box
    return {
        "photo": REFERENCE_PHOTO,
        "box": [int(v) for v in boxes[0]],
        "emotion": prediction.emotion,
        "probabilities": {e: round(float(p), 6) for e, p in prediction.probabilities.items()},
    }


def bundle_model(
    run_dir: str | Path,
    results: dict[str, Any],
    *,
    data_name: str = "FER2013",
    split: str,
    stem: str | Path = DEFAULT_MODEL_STEM,
) -> Path:
    """Copy a run's best checkpoint into the package with its model card.

    Args:
        run_dir: a run folder written by ``fc.fit`` (``best.safetensors`` + ``best.json``).
        results: the model's row from :func:`fercourse.ops.collect_results`.
        data_name: the data set's name, for people.
        split: how the data was split, in words.
        stem: where to write (default: the package's ``default_model/model``).

    Returns:
        The stem written (``.safetensors`` / ``.json`` / ``MODEL_CARD.md`` next to it).

    Raises:
        ValueError: the run was trained on synthetic faces; only real-data models ship.
    """
    run_dir, stem = Path(run_dir), Path(stem)
    card = read_card(run_dir / "best")
    if card.get("data", {}).get("synthetic", True):
        raise ValueError(f"{run_dir} was not trained on the real FER2013: it cannot ship")
    stem.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run_dir / f"best{WEIGHTS_SUFFIX}", stem.with_suffix(WEIGHTS_SUFFIX))
    config = card["config"]
    card = {k: v for k, v in card.items() if k not in ("split_path",)}
    # The verified split hash of the results row (the same on every machine).
    card["split_hash"] = results.get("split_hash") or card.get("split_hash")
    card["data"] = {k: v for k, v in card["data"].items() if k != "source"} | {"name": data_name}
    card["model_card"] = {
        "data": f"{data_name}: {results['test_faces']:,} PrivateTest faces held out",
        "split": split,
        "recipe": {k: config[k] for k in sorted(config) if k not in ("device", "num_workers")},
        "command": results["command"],
        "hardware": results["hardware"],
        "train_minutes": results["train_minutes"],
        "epochs": results["epochs"],
        "best_epoch": results["best_epoch"],
        "date": str(card.get("saved_at", ""))[:10],
        "bundled_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    card["results"] = {
        "PrivateTest": {"accuracy": results["private_acc"], "macro_f1": results["private_f1"]},
        "PrivateTest+flip": {
            "accuracy": results["private_acc_flip"],
            "macro_f1": results["private_f1_flip"],
        },
        "PublicTest": {"accuracy": results["public_acc"]},
        "val": {"accuracy": results["val_acc"]},
    }
    atomic_write_json(stem.with_suffix(CARD_SUFFIX), card)
    model = EmotionModel.load(stem, backend="torch")
    card["reference_prediction"] = reference_prediction(model)
    atomic_write_json(stem.with_suffix(CARD_SUFFIX), card)
    atomic_write_bytes(stem.parent / "MODEL_CARD.md", model_card_markdown(card).encode("utf-8"))
    return stem


def model_card_markdown(card: dict[str, Any]) -> str:
    """The bundled model's card for people (``MODEL_CARD.md``)."""
    mc, res = card["model_card"], card["results"]
    ref = card.get("reference_prediction", {})
    probs = ", ".join(f"{e} {p:.3f}" for e, p in ref.get("probabilities", {}).items())
    emoji = EMOJI.get(ref.get("emotion", ""), "")
    recipe = ", ".join(f"{k}={v}" for k, v in mc["recipe"].items())
    return f"""# The default model bundled with fercourse

`fc.EmotionModel.load("default")` and the emoji mirror (`notebooks/09_mirror.ipynb`) use this
model when you have not trained one of your own.

| | |
|---|---|
| architecture | `{card["model"]}` ({card["num_parameters"] / 1e6:.2f}M parameters) |
| data | {mc["data"]} |
| split | {mc["split"]} |
| PrivateTest accuracy | **{res["PrivateTest"]["accuracy"]:.1%}** (macro-F1 {res["PrivateTest"]["macro_f1"]:.3f}) |
| with flip TTA | {res["PrivateTest+flip"]["accuracy"]:.1%} (macro-F1 {res["PrivateTest+flip"]["macro_f1"]:.3f}) |
| PublicTest accuracy | {res["PublicTest"]["accuracy"]:.1%} |
| validation accuracy (selection) | {res["val"]["accuracy"]:.1%}, epoch {mc["best_epoch"]} of {mc["epochs"]} |
| trained | {mc["date"]}, {mc["train_minutes"]:.0f} min on {mc["hardware"]} |
| preprocessing | grey, {card["preprocessing"]["image_size"]} px ({card["preprocessing"]["resize_interpolation"]}), (x/255 - {card["preprocessing"]["mean"]}) / {card["preprocessing"]["std"]} |

Reproduce it (FER2013 in `data/`, see `data/README.md`):

```bash
{mc["command"]}
```

Recipe: {recipe}.

Reference prediction, checked by `tests/test_default_model.py`: on {ref.get("photo", "?")}
(face box {ref.get("box")}) the model says **{ref.get("emotion", "?")}** {emoji} ({probs}).

Limits: FER2013 is mostly frontal, web-scraped faces with noisy labels (humans agree with them
about 65% of the time); expect weaker results on profiles, poor light, and faces unlike the
data's population. Disgust has 547 faces in all (436 in Training) and is the weakest class.
"""
