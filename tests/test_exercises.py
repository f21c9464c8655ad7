"""The graded checks: every exercise with one right and one wrong answer, and the log the grader reads.

Implement-it exercises take their right answer from the instructor's solution in the notebook
itself (so a solution that stops agreeing with the package fails here too); the wrong answers are
the usual mistakes, and the check must name them.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from data_fixtures import synthetic
from torch import nn

import fercourse as fc
from fercourse.course import EXERCISES

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
_CHECK = re.compile(r'fc\.check\("(\d\d\.\d+)", (\w+)')


def _notebook(chapter: str) -> dict:
    (path,) = NOTEBOOKS.glob(f"{chapter}_*.ipynb")
    return json.loads(path.read_text())


def instructor_function(exercise_id: str):
    """The function the instructor edition passes to ``fc.check(exercise_id, ...)``."""
    cells = _notebook(exercise_id[:2])["cells"]
    for i, cell in enumerate(cells):
        match = _CHECK.search("".join(cell["source"]))
        if match and match.group(1) == exercise_id:
            namespace = {"torch": torch, "np": np, "math": math, "F": F, "nn": nn, "fc": fc}
            exec("".join(cells[i - 1]["source"]), namespace)
            return namespace[match.group(2)]
    raise AssertionError(f"no check cell for {exercise_id}")


@pytest.fixture(scope="module")
def objects():
    data = synthetic(n=240, seed=1)
    split = fc.data.make_split(data, seed=0)
    torch.manual_seed(0)
    history = fc.History(model="baseline_cnn")
    for epoch, acc in enumerate([0.3, 0.5, 0.4], start=1):
        history.add({"epoch": epoch, "val_acc": acc})
    history.best_epoch = 2
    per_class = {name: {"precision": 0.5, "recall": 0.5, "f1": 0.5} for name in fc.EMOTIONS}
    per_class["disgust"]["recall"] = 0.1
    per_class["fear"]["precision"] = 0.05
    table = pd.DataFrame(
        {"accuracy": [0.60, 0.66, 0.52], "cpu_ms": [1.0, 4.0, 0.5]},
        index=["baseline_cnn", "attention_cnn", "tiny"],
    )
    photo = fc.mirror.sample_photo()
    return {
        "data": data,
        "split": split,
        "reference": data.labels[:21],
        "history": history,
        "metrics": {"per_class": per_class},
        "baseline_cnn": fc.create_model("baseline_cnn"),
        "attention_cnn": fc.create_model("attention_cnn"),
        "multiscale": fc.create_model("multiscale"),
        "hybrid": fc.create_model("hybrid_transformer"),
        "specialists": fc.create_model("specialists"),
        "vit": fc.create_model("vit_tiny"),
        "weights": torch.tensor([[0.2, 0.5, 0.3], [0.1, 0.6, 0.3]]),
        "test": data.select(split.private_test),
        "table": table,
        "ensemble": {"accuracy": 0.671},
        "reference_results": fc.course.reference_results(),
        "photo": photo,
        "emotion_model": fc.EmotionModel.load("default"),
        "boxes": {160: (10, 10, 100, 100), 640: (20, 20, 100, 100)},
    }


@pytest.fixture(scope="module")
def lookup_cases(objects):
    """id -> (objects passed to fc.check, a right answer, a wrong answer, words of its feedback)."""
    o = objects
    train = o["data"].where("Training").class_counts()
    val = o["data"].select(o["split"].val).class_counts()
    kappa = fc.data.label_agreement(["neutral"] * 21, o["reference"])
    conv = o["baseline_cnn"].blocks[0].convs[0][0]
    wrong_experts = _wrong_expert(o["specialists"], o["test"])
    ref = o["reference_results"]
    top = ref["private_acc"].idxmax()
    flip = 100 * (ref.loc[top, "private_acc_flip"] - ref.loc[top, "private_acc"])
    ratio = fc.models.count_flops(
        fc.create_model("vit_tiny", img_size=112, patch_size=16)
    ) / fc.models.count_flops(o["vit"])
    emoji = fc.mirror.snapshot(o["photo"], o["emotion_model"], threshold=0.99).faces[0].emoji
    iou = fc.inference.iou(o["boxes"][160], o["boxes"][640])
    hybrid = o["hybrid"]
    share = sum(p.numel() for p in hybrid.encoder.parameters()) / fc.models.count_parameters(hybrid)
    scales = o["multiscale"].scales

    def cbam(*channels):
        return sum(2 * c * max(c // 16, 8) + max(c // 16, 8) + c + 2 * 7 * 7 + 2 for c in channels)

    return {
        "01.1": ({"data": o["data"]}, train.max() / train.sum(), 100 * train.max() / train.sum(), "percentage"),
        "01.2": ({}, ["sad", "angry", "happy"], ["happy", "neutral", "fear"], "codes start at 0"),
        "01.3": ({"data": o["data"], "split": o["split"]}, int(val.min()), int(val.min()) + 1, "not right yet"),
        "01.4": ({"reference": o["reference"]}, kappa.kappa, kappa.accuracy, "p_o"),
        "02.1": ({"model": o["baseline_cnn"]}, conv.weight.numel(), conv.weight.numel() + 32, "no bias"),
        "02.2": ({"history": o["history"]}, 1, 2, "kept epoch itself"),
        "02.3": ({"metrics": o["metrics"]}, "disgust", "fear", "lowest precision"),
        "03.1": ({}, cbam(64, 128, 256), cbam(32, 64, 128), "default width"),
        "03.2": ({"model": o["attention_cnn"]}, 4, 3, "not right yet"),
        "04.1": ({"model": o["multiscale"]}, sum(s * s for s in scales), 3 * 48 * 48, "own size"),
        "04.2": ({"model": o["multiscale"], "weights": o["weights"]}, scales[1], 1, "index"),
        "05.1": ({"model": hybrid}, 37, 36, "class token"),
        "05.2": ({"model": hybrid}, share, 100 * share, "percentage"),
        "06.1": ({"model": o["specialists"]}, 1 / 3, 1.0, "add up to"),
        "06.2": ({"model": o["specialists"], "test": o["test"]}, *wrong_experts),
        "07.1": ({"model": o["vit"]}, 36, 37, "patches only"),
        "07.2": ({"model": o["vit"]}, round(ratio, 2), (50 / 37) ** 2, "square"),
        "08.1": ({"table": o["table"]}, "tiny", "attention_cnn", "most accurate"),
        "08.2": ({"table": o["table"], "ensemble": o["ensemble"]}, 1.1, 0.011, "percentage points"),
        "08.3": ({"reference": ref}, flip, flip / 100, "percentage points"),
        "09.1": ({"photo": o["photo"], "model": o["emotion_model"]}, emoji, "no such emoji", "not right yet"),
        "09.2": ({}, 5, 4, "still above 0.1"),
        "09.3": ({}, fc.preprocessing.describe()["resize_interpolation"], "INTER_NEAREST", "not right yet"),
        "09.4": ({"boxes": o["boxes"]}, round(iou, 2), round(iou, 2) + 0.05, "not right yet"),
    }  # fmt: skip


def _wrong_expert(model, test):
    model.eval()
    x = fc.preprocessing.to_tensor(test.images)
    with torch.no_grad():
        wrong = model(x).argmax(dim=1).numpy() != test.labels
    weights = model.expert_weights(x).numpy()
    right = model.experts[int(weights[wrong].mean(axis=0).argmax())]
    overall = model.experts[int(weights.mean(axis=0).argmax())]
    other = next(name for name in model.experts if name not in (right, overall))
    return right, other, "not right yet"


def _wrong_functions():
    """id -> (a mistaken implementation, words of the feedback it must get)."""

    def kappa_po(a, b):
        return float(np.mean(np.asarray(a) == np.asarray(b)))

    def step_unclipped(model, x, y, optimizer, max_norm):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    def gradcam_no_relu(activations, gradients):
        return (gradients.mean(dim=(2, 3), keepdim=True) * activations).sum(dim=1)

    def squeeze_excitation(x, w1, b1, w2, b2):
        v = torch.relu(x.mean(dim=(2, 3)) @ w1.T + b1) @ w2.T + b2
        return torch.sigmoid(v)[:, :, None, None]

    def subsample(faces, k):
        return faces[..., ::k, ::k]

    def every_head(x, mha):
        return mha(x, x, x, need_weights=True, average_attn_weights=False)[1]

    def no_softmax(expert_logits, gate_scores):
        return (gate_scores.unsqueeze(-1) * expert_logits).sum(dim=1)

    def by_column(x, weight, bias):
        p = weight.shape[-1]
        patches = F.unfold(x.transpose(2, 3), kernel_size=p, stride=p).transpose(1, 2)
        patches = patches.unflatten(-1, (p, p)).transpose(-2, -1).flatten(-2)
        return patches @ weight.flatten(1).T + bias

    def uncorrected(a, b):
        only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
        return (only_a - only_b) ** 2 / (only_a + only_b)

    return {
        "01.5": (kappa_po, "p_o"),
        "02.4": (step_unclipped, "not clipped"),
        "02.5": (gradcam_no_relu, "ReLU"),
        "03.3": (squeeze_excitation, "squeeze-and-excitation"),
        "04.3": (subsample, "average the k x k block"),
        "05.3": (every_head, "average them over the heads"),
        "06.3": (no_softmax, "softmax"),
        "07.3": (by_column, "row by row"),
        "08.4": (uncorrected, "continuity correction"),
    }


IMPLEMENT = [ex for ex, e in EXERCISES.items() if e.kind == "implement"]
LOOKUP = [ex for ex, e in EXERCISES.items() if e.kind == "look-up"]


def test_every_exercise_is_tested_and_used_by_its_notebook(lookup_cases):
    assert sorted(lookup_cases) == LOOKUP
    assert sorted(_wrong_functions()) == IMPLEMENT
    for chapter in sorted({ex[:2] for ex in EXERCISES}):
        sources = "".join("".join(c["source"]) for c in _notebook(chapter)["cells"])
        used = [m.group(1) for m in _CHECK.finditer(sources)]
        assert used == [e.id for e in fc.course.exercises_of(chapter)], chapter


@pytest.mark.parametrize("exercise_id", LOOKUP)
def test_look_up_right_and_wrong(lookup_cases, exercise_id):
    context, right, wrong, feedback = lookup_cases[exercise_id]
    good = fc.check(exercise_id, right, **context)
    assert good.status == "correct" and good.points == EXERCISES[exercise_id].points, good
    bad = fc.check(exercise_id, wrong, **context)
    assert bad.status == "wrong" and bad.points == 0 and feedback in bad.message, bad
    assert fc.check(exercise_id, ..., **context).status == "not answered"


@pytest.mark.parametrize("exercise_id", IMPLEMENT)
def test_implement_right_and_wrong(exercise_id):
    good = fc.check(exercise_id, instructor_function(exercise_id))
    assert good.status == "correct" and good.points == 2, good
    wrong, feedback = _wrong_functions()[exercise_id]
    bad = fc.check(exercise_id, wrong)
    assert bad.status == "wrong" and feedback in bad.message, bad


def test_an_unwritten_or_crashing_function_is_reported_not_raised():
    def empty(x, w1, b1, w2, b2):
        """Body still to write."""

    def crashes(x, w1, b1, w2, b2):
        return x @ w1  # shapes do not fit

    assert fc.check("03.3", empty).status == "not answered"
    crash = fc.check("03.3", crashes)
    assert crash.status == "error" and "RuntimeError" in crash.message and crash.points == 0
    wrong_shape = fc.check("03.3", lambda x, w1, b1, w2, b2: torch.zeros(8, 32))
    assert "(8, 32, 1, 1), got (8, 32)" in wrong_shape.message
    assert fc.check("02.1", "many", model=fc.create_model("baseline_cnn")).status == "wrong"


def test_check_names_what_it_needs_and_unknown_ids():
    with pytest.raises(TypeError, match="pass model=model"):
        fc.check("02.1", 288)
    with pytest.raises(KeyError, match=r"no exercise '02\.9'"):
        fc.check("02.9", 1)


def test_results_are_logged_for_the_grader(tmp_path, monkeypatch):
    log = tmp_path / "checks.jsonl"
    monkeypatch.setenv(fc.course.checks.CHECK_LOG_ENV, str(log))
    fc.check("09.2", 5)
    fc.check("09.2", ...)
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["exercise"], r["status"], r["points"]) for r in rows] == [
        ("09.2", "correct", 1),
        ("09.2", "not answered", 0),
    ]
    assert repr(fc.check("09.2", 5)).startswith("\N{CHECK MARK} 09.2 (1/1) correct")


def test_strict_checks_raise_for_the_instructor_edition(monkeypatch):
    monkeypatch.setenv(fc.course.checks.STRICT_ENV, "1")
    assert fc.check("09.2", 5).status == "correct"
    with pytest.raises(AssertionError, match=r"09\.2 .* not answered"):
        fc.check("09.2", ...)
