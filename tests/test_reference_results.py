"""Recording results on FER2013 and bundling a default model (``tools/record_results.py``)."""

from __future__ import annotations

import json
import re
import shlex
import shutil

import numpy as np
import pytest
import torch

import fercourse as fc
from fercourse.checkpoint import save_checkpoint
from fercourse.course.reference import reference_ensemble, reference_results, results_markdown
from fercourse.inference.bundle import REQUIRED_CARD_KEYS, bundle_model, reference_prediction
from fercourse.ops.record import collect_ensemble, collect_results
from fercourse.training import TrainConfig
from fercourse.training.config import parse_overrides


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny real training run on the synthetic faces, with a non-default recipe."""
    data = fc.data.make_synthetic_faces(n=700, seed=3)
    root = tmp_path_factory.mktemp("runs")
    config = TrainConfig.for_model(
        "baseline_cnn",
        "smoke",
        epochs=2,
        lr=0.004,
        label_smoothing=0.1,
        max_train_samples=300,
        max_val_samples=100,
        seed=5,
    )
    split = fc.data.make_split(data, seed=config.seed)
    model = fc.models.create_model("baseline_cnn", width=8)
    fc.fit(model, data, config, split=split, out_dir=root / "baseline_cnn", progress=False)
    return data, root


def test_collect_results_scores_both_tests_with_and_without_flip(trained):
    data, root = trained
    (row,) = collect_results(root, data, data_arg="data/x.csv")
    assert row["model"] == "baseline_cnn" and row["seed"] == 5 and row["epochs"] == 2
    for key in ("private_acc", "private_acc_flip", "private_f1", "public_acc", "val_acc"):
        assert 0.0 <= row[key] <= 1.0, key
    assert row["test_faces"] == int((data.usage == "PrivateTest").sum())
    assert row["original_project"] == pytest.approx(0.52)
    assert [e["epoch"] for e in row["history"]] == [1, 2]
    # Where it trained, from the run's config.json: the CPU, its torch threads, and bf16 autocast
    # exactly when the smoke preset's amp="native" chose it on this CPU.
    autocast = ", bf16 autocast" if fc.runtime.cpu_has_native_bf16() else ""
    pattern = r".+, (1 thread|\d+ threads)" + re.escape(autocast)
    assert re.fullmatch(pattern, row["hardware"]), row["hardware"]
    # The scores also land in the run's metrics.json, plain and flip.
    metrics = json.loads((root / "baseline_cnn" / "metrics.json").read_text())
    assert metrics["PrivateTest"]["accuracy"] == pytest.approx(row["private_acc"])
    assert any(k.startswith("PrivateTest") and "flip" in k for k in metrics)
    # A different seed means a different split: refused rather than silently mis-scored.
    other = fc.data.make_synthetic_faces(n=500, seed=9)
    with pytest.raises(ValueError, match="trained on split"):
        collect_results(root, other, save=False)
    with pytest.raises(FileNotFoundError, match="no trained run"):
        collect_results(root / "nothing", data)


def test_an_ensemble_of_two_copies_scores_like_the_single_model(trained, tmp_path):
    data, root = trained
    assert collect_ensemble(root, data) is None  # one run: no ensemble
    for name in ("one", "two"):
        shutil.copytree(root / "baseline_cnn", tmp_path / name)
    single = collect_results(root, data, save=False)[0]
    ensemble = collect_ensemble(tmp_path, data)
    assert ensemble["members"] == ["baseline_cnn", "baseline_cnn"]
    assert ensemble["private_acc"] == pytest.approx(single["private_acc"])
    assert ensemble["private_acc_flip"] == pytest.approx(single["private_acc_flip"])
    assert ensemble["val_acc"] == pytest.approx(single["val_acc"], abs=1e-6)
    # Only the named runs (chosen on validation accuracy) are averaged.
    shutil.copytree(root / "baseline_cnn", tmp_path / "three")
    chosen = collect_ensemble(tmp_path, data, runs=["one", "three"])
    assert chosen["members"] == ["baseline_cnn"] * 2 and chosen["params"] == ensemble["params"]
    assert collect_ensemble(tmp_path, data, runs=["one"]) is None  # one model: no ensemble
    with pytest.raises(FileNotFoundError, match="no run of nope"):
        collect_ensemble(tmp_path, data, runs=["one", "nope"])


def test_an_ensemble_takes_checkpoints_from_outside_the_run_folder(trained, tmp_path):
    # The bundled default model has no run folder: it joins the ensemble as a checkpoint.
    data, root = trained
    single = collect_results(root, data, save=False)[0]
    member = root / "baseline_cnn" / "best"
    ensemble = collect_ensemble(root, data, members=[member])
    assert ensemble["members"] == ["baseline_cnn", "baseline_cnn"]
    assert ensemble["params"] == 2 * single["params"]
    assert ensemble["private_acc"] == pytest.approx(single["private_acc"])
    # A member trained on another split is refused, never averaged in silently.
    other = tmp_path / "other"
    shutil.copytree(root / "baseline_cnn", other)
    card = json.loads((other / "best.json").read_text())
    card["split_hash"] = "0" * 64
    (other / "best.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="cannot join the ensemble"):
        collect_ensemble(root, data, members=[other / "best"])


def test_the_recorded_ensemble_is_read_back(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"results": []}))
    assert reference_ensemble(path) is None
    recorded = {"members": ["a", "b"], "params": 3, "private_acc": 0.6, "private_acc_flip": 0.61}
    path.write_text(json.dumps({"results": [], "ensemble": recorded}))
    assert reference_ensemble(path) == recorded


def test_the_recorded_command_reproduces_the_config(trained):
    data, root = trained
    (row,) = collect_results(root, data, data_arg="data/x.csv", save=False)
    words = shlex.split(row["command"])
    assert words[:4] == ["python", "-m", "fercourse", "train"]
    sets = [words[i + 1] for i, w in enumerate(words) if w == "--set"]
    epochs = int(words[words.index("--epochs") + 1])
    preset = words[words.index("--preset") + 1]
    rebuilt = TrainConfig.for_model("baseline_cnn", preset, epochs=epochs, **parse_overrides(sets))
    recorded = dict(row["config"])
    for key in TrainConfig.RESUME_IGNORED:  # speed-only fields are not part of the recipe
        recorded.pop(key)
    assert {k: v for k, v in vars(rebuilt).items() if k in recorded} == recorded


def test_results_table_round_trips_through_json(trained, tmp_path):
    data, root = trained
    rows = collect_results(root, data, save=False)
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"data": {"name": "synthetic"}, "results": rows}))
    table = reference_results(path)
    assert list(table.index) == ["baseline_cnn"]
    text = results_markdown(table)
    assert "| baseline_cnn |" in text and "52.0%" in text
    assert f"{rows[0]['private_acc']:.1%}" in text


def _real_looking_checkpoint(stem, synthetic: bool):
    model = fc.models.create_model("baseline_cnn", width=8)
    card = {
        "data": {"source": "/somewhere/fer2013", "format": "fer2013.csv", "synthetic": synthetic}
    }
    card |= {"config": vars(TrainConfig.for_model("baseline_cnn")), "metrics": {"val_acc": 0.6}}
    save_checkpoint(stem, model, **card, epoch=3)
    return model


def _row():
    return {
        "test_faces": 3589,
        "command": "python -m fercourse train --model baseline_cnn",
        "hardware": "test CPU (2 cores)",
        "train_minutes": 61.5,
        "epochs": 30,
        "best_epoch": 28,
        "private_acc": 0.66,
        "private_f1": 0.64,
        "private_acc_flip": 0.67,
        "private_f1_flip": 0.65,
        "public_acc": 0.65,
        "val_acc": 0.66,
    }


def test_bundle_model_writes_weights_card_and_a_reference_prediction(tmp_path):
    run = tmp_path / "run"
    _real_looking_checkpoint(run / "best", synthetic=False)
    stem = bundle_model(run, _row(), split="val 10% of Training", stem=tmp_path / "ship" / "model")
    card = json.loads(stem.with_suffix(".json").read_text())
    assert set(REQUIRED_CARD_KEYS) <= set(card["model_card"])
    assert card["data"]["name"] == "FER2013" and "source" not in card["data"]  # no local paths
    assert card["results"]["PrivateTest"]["accuracy"] == 0.66
    loaded = fc.EmotionModel.load(stem, backend="torch")
    ref = reference_prediction(loaded)
    assert ref == card["reference_prediction"]
    assert list(ref["probabilities"]) == list(fc.EMOTIONS)
    assert np.isclose(sum(ref["probabilities"].values()), 1.0, atol=1e-5)
    text = (stem.parent / "MODEL_CARD.md").read_text()
    assert "66.0%" in text and "python -m fercourse train --model baseline_cnn" in text


def test_a_synthetic_run_cannot_ship(tmp_path):
    _real_looking_checkpoint(tmp_path / "run" / "best", synthetic=True)
    with pytest.raises(ValueError, match="not trained on the real FER2013"):
        bundle_model(tmp_path / "run", _row(), split="x", stem=tmp_path / "ship" / "model")


def test_the_reference_plot_draws_every_model_and_the_ensemble():
    table = reference_results()
    fig = fc.explain.plot_reference_results(table, ensemble=None)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert sorted(labels) == sorted(table.index)
    ensemble = {"members": list(table.index) * 2, "private_acc": 0.7, "private_acc_flip": 0.71}
    fig = fc.explain.plot_reference_results(table, ensemble=ensemble)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[-1] == f"ensemble of {2 * len(table)}"  # on top
    widths = [round(p.get_width(), 6) for p in fig.axes[0].patches]
    assert 70.0 in widths and 71.0 in widths


def test_a_vit_row_says_whether_it_started_from_imagenet_weights(trained, tmp_path):
    data, _ = trained
    config = TrainConfig.for_model(
        "vit_tiny", "smoke", epochs=1, max_train_samples=64, max_val_samples=32
    )
    split = fc.data.make_split(data, seed=config.seed)
    model = fc.models.create_model("vit_tiny", patch_size=16)
    fc.fit(model, data, config, split=split, out_dir=tmp_path / "vit_tiny", progress=False)
    (row,) = collect_results(tmp_path, data, save=False)
    assert row["init"] == "scratch"
    assert "--pretrained no" in row["command"]  # the default (auto) would fetch weights
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"results": [row]}))
    assert "| vit_tiny (from scratch) |" in results_markdown(reference_results(path))
    # The builder argument that differs from its default is part of the reproduce command.
    assert "--model-set patch_size=16" in row["command"]
    # A distilled run says which teacher it learned from.
    path.write_text(json.dumps({"results": [{**row, "teacher": "attention_cnn"}]}))
    table = reference_results(path)
    assert "| vit_tiny (from scratch, distilled from attention_cnn) |" in results_markdown(table)


def test_choose_ensemble_picks_the_best_subset_on_validation(trained, tmp_path):
    from safetensors.torch import load_file, save_file

    from fercourse.ops.record import choose_ensemble

    data, root = trained
    for name in ("one", "two", "bad"):
        shutil.copytree(root / "baseline_cnn", tmp_path / name)
    # "bad" always says class 0, confidently: averaging it in can only hurt.
    weights = tmp_path / "bad" / "best.safetensors"
    state = load_file(str(weights))
    head_bias = [k for k, v in state.items() if k.endswith("bias") and v.shape == (7,)][-1]
    state[head_bias] = torch.tensor([50.0, 0, 0, 0, 0, 0, 0])
    save_file(state, str(weights))
    chosen, scored = choose_ensemble(tmp_path, data)
    assert chosen == ["one", "two"]
    assert [s for s, _ in scored].count(("bad", "one", "two")) == 1 and len(scored) == 4
    (single,) = collect_results(root, data, save=False)
    assert dict(scored)[("one", "two")] == pytest.approx(single["val_acc"], abs=1e-6)
    assert all(acc <= dict(scored)[("one", "two")] for _, acc in scored)
    assert choose_ensemble(root, data) == ([], [])  # one run: nothing to choose
