"""Splits, the data report (duplicates, blank images), class weights, samplers, fetch and CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from data_fixtures import synthetic, write_fer2013_csv

import fercourse as fc
from fercourse.data import SplitError


@pytest.fixture(scope="module")
def faces():
    return synthetic(n=400, seed=2)


# --- splits ------------------------------------------------------------------------------------


def test_split_is_stratified_seeded_and_saved_once(faces, monkeypatch):
    split = fc.data.make_split(faces)
    assert split.path.parent == fc.utils.data_dir() / "splits"
    assert split.path.name == f"{faces.fingerprint()[:16]}-val10-seed0.json"
    training = np.flatnonzero(faces.usage == "Training")
    np.testing.assert_array_equal(np.sort(np.r_[split.train, split.val]), training)
    assert len(np.intersect1d(split.train, split.val)) == 0
    assert len(split.val) == round(0.1 * len(training))
    np.testing.assert_array_equal(split.private_test, np.flatnonzero(faces.usage == "PrivateTest"))
    # Stratified: each class's share of val is close to its share of Training.
    share_val = np.bincount(faces.labels[split.val], minlength=7) / len(split.val)
    share_train = np.bincount(faces.labels[training], minlength=7) / len(training)
    assert np.abs(share_val - share_train).max() < 0.03
    # Reused: the second call reads the file (no new draw) and gets the same hash.
    monkeypatch.setattr(fc.data.splits, "train_test_split", None)
    again = fc.data.make_split(faces)
    assert again.hash == split.hash
    np.testing.assert_array_equal(again.val, split.val)
    record = json.loads(split.path.read_text())
    assert record["seed"] == 0 and record["val_fraction"] == 0.1
    assert record["dataset"]["fingerprint"] == faces.fingerprint()
    assert record["dataset"]["synthetic"] is True


def test_split_determinism_across_paths_and_seeds(faces, tmp_path):
    a = fc.data.make_split(faces, path=tmp_path / "a.json")
    b = fc.data.make_split(faces, path=tmp_path / "b.json")
    c = fc.data.make_split(faces, seed=1, path=tmp_path / "c.json")
    assert a.hash == b.hash  # same content, byte for byte
    np.testing.assert_array_equal(a.val, b.val)
    assert not np.array_equal(a.val, c.val)
    assert split_counts_sum(a) == len(faces)
    assert a["PrivateTest"] is a.private_test


def test_split_hash_is_the_same_wherever_the_data_live(faces, tmp_path):
    # The same faces read from two folders: the split files differ (each records its data's
    # path), the split does not, so its hash (recorded with every checkpoint) must not either.
    here, there = (
        fc.data.load_fer2013(write_fer2013_csv(faces, tmp_path / d / "fer2013.csv"))
        for d in ("machine_a", "cluster_b")
    )
    a = fc.data.make_split(here, path=tmp_path / "a.json")
    b = fc.data.make_split(there, path=tmp_path / "b.json")
    assert a.path.read_bytes() != b.path.read_bytes()
    assert a.hash == b.hash
    assert b.matches(a.hash) and not b.matches("") and not b.matches("0" * 64)
    # Another seed or grouping is another split.
    assert fc.data.make_split(there, seed=1, path=tmp_path / "c.json").hash != a.hash
    grouped = fc.data.make_split(there, group_duplicates=True, path=tmp_path / "g.json")
    assert grouped.hash != a.hash


def split_counts_sum(split) -> int:
    return sum(split.sizes().values())


def test_split_for_another_dataset_or_settings_is_refused(faces, tmp_path):
    path = tmp_path / "split.json"
    fc.data.make_split(faces, path=path)
    other = faces.select(np.arange(len(faces) - 1))
    with pytest.raises(SplitError, match="made for another dataset"):
        fc.data.make_split(other, path=path)
    with pytest.raises(SplitError, match="seed=0"):
        fc.data.make_split(faces, seed=5, path=path)
    split = fc.data.make_split(faces, path=path)
    with pytest.raises(SplitError, match="another dataset"):
        fc.data.make_loaders(other, split)


def test_grouped_split_keeps_duplicates_on_one_side(faces, tmp_path):
    images = faces.images.copy()
    images[100:160] = images[:60]  # 60 Training images with an exact copy elsewhere in Training
    dupes = fc.data.FER2013(images=images, labels=faces.labels, usage=faces.usage)
    plain = fc.data.make_split(dupes, path=tmp_path / "plain.json")
    grouped = fc.data.make_split(dupes, path=tmp_path / "grouped.json", group_duplicates=True)
    assert fc.data.data_report(dupes, plain).duplicates_across["train & val"] > 0
    assert fc.data.data_report(dupes, grouped).duplicates_across["train & val"] == 0
    assert abs(len(grouped.val) - len(plain.val)) <= 6
    with pytest.raises(SplitError, match="group_duplicates"):
        fc.data.make_split(dupes, path=tmp_path / "grouped.json")
    assert fc.data.make_split(dupes, group_duplicates=True).path.name.endswith("-grouped.json")


# --- report --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def planted(faces):
    """``faces`` with known problems planted (indices into the Training/PublicTest/PrivateTest
    blocks: Training is 0-319, PublicTest 320-359, PrivateTest 360-399)."""
    images, labels = faces.images.copy(), faces.labels.copy()
    images[10] = images[0]  # a duplicate within Training (same label)
    images[11] = images[0]  # a third copy
    labels[10] = labels[0]
    labels[11] = (labels[0] + 1) % 7  # ...with a conflicting label
    images[365], labels[365] = images[1], labels[1]  # a Training image leaked into PrivateTest
    images[330], labels[330] = images[2], labels[2]  # and one into PublicTest
    images[20] = 0  # blank
    images[21] = 128
    images[21, 0, 0] = 130  # near-constant
    images[30] = images[31][:, ::-1]  # a mirrored duplicate
    return fc.data.FER2013(
        images=images, labels=labels, usage=faces.usage, source="planted", synthetic=True
    )


def test_duplicate_finder_on_planted_duplicates(planted):
    report = fc.data.data_report(planted)
    assert report.duplicates_within == {"Training": 2, "PublicTest": 0, "PrivateTest": 0}
    assert report.duplicate_groups_within["Training"] == 1
    assert report.duplicates_across == {
        "Training & PublicTest": 1,
        "Training & PrivateTest": 1,
        "PublicTest & PrivateTest": 0,
    }
    assert report.conflicting_labels == 1
    assert report.mirrored_duplicates == 2  # each of the pair is the other's mirror
    assert report.blank.tolist() == [20]
    assert report.near_constant.tolist() == [20, 21]
    assert sorted(len(g) for g in report.duplicate_groups) == [2, 2, 3]


def test_report_renderings_say_synthetic(planted):
    report = fc.data.data_report(planted)
    text = str(report)
    assert text.startswith("Data report: SYNTHETIC stand-in")
    assert "blank images (one grey level): 1" in text
    assert "Training 2 extra copies" in text
    assert "### Data report" in report._repr_markdown_()
    frame = report.to_frame()
    assert list(frame.columns) == ["Training", "PublicTest", "PrivateTest", "all", "share %"]
    assert frame["all"].sum() == len(planted)
    json.dumps(report.to_dict())  # plain numbers only
    assert report.imbalance_ratio == pytest.approx(
        report.counts["Training"].max() / report.counts["Training"].min()
    )
    ax = fc.explain.plot_class_balance(report)
    assert "SYNTHETIC" in ax.get_title()
    import matplotlib.pyplot as plt

    plt.close("all")


def test_report_by_split_parts(faces):
    split = fc.data.make_split(faces)
    report = fc.data.data_report(faces, split)
    assert report.parts == ["train", "val", "public_test", "private_test"]
    assert report.counts["val"].sum() == len(split.val)


def test_report_cli(tmp_path, faces, capsys):
    from fercourse.data import cli

    csv = write_fer2013_csv(faces, tmp_path / "fer2013.csv")
    out = tmp_path / "report.json"
    assert cli.main(["report", str(csv), "--split", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Data report: FER2013" in printed and "train" in printed
    assert json.loads(out.read_text())["n_images"] == len(faces)
    assert cli.main(["report", str(tmp_path / "missing.csv")]) == 1
    assert "missing.csv" in capsys.readouterr().err


# --- class weights and sampling ---------------------------------------------------------------


def test_class_weights_inverse_frequency_mean_one():
    labels = np.repeat(np.arange(7), [10, 1, 10, 20, 10, 5, 10])
    w = fc.data.class_weights(labels)
    assert w.dtype == torch.float32 and w.shape == (7,)
    assert w.mean().item() == pytest.approx(1.0)
    assert w[1] / w[3] == pytest.approx(20.0)  # disgust (1 image) vs happy (20)
    assert w[0] == pytest.approx(w[2])
    with pytest.raises(ValueError, match="disgust"):
        fc.data.class_weights(np.array([0, 2, 3, 4, 5, 6]))


def test_weighted_sampler_balances_classes():
    labels = np.repeat(np.arange(7), [100, 5, 100, 300, 100, 50, 100])
    gen = torch.Generator().manual_seed(0)
    sampler = fc.data.weighted_sampler(labels, num_samples=7000, generator=gen)
    drawn = np.bincount(labels[list(sampler)], minlength=7)
    assert drawn.min() > 800 and drawn.max() < 1200


def test_stratified_subset_keeps_proportions():
    labels = np.repeat(np.arange(7), [200, 20, 200, 400, 200, 100, 200])
    idx = fc.data.stratified_subset(labels, 266, seed=0)
    assert len(idx) == 266 and len(np.unique(idx)) == 266
    expected = np.bincount(labels) * 266 / len(labels)
    assert np.abs(np.bincount(labels[idx]) - expected).max() <= 1
    np.testing.assert_array_equal(idx, fc.data.stratified_subset(labels, 266, seed=0))
    assert len(fc.data.stratified_subset(labels[:3], 2)) == 2  # too small to stratify: random


# --- fetch -------------------------------------------------------------------------------------


@pytest.fixture
def no_kaggle_credentials(tmp_path, monkeypatch):
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle"))


def test_fetch_without_credentials_prints_manual_steps(tmp_path, capsys, no_kaggle_credentials):
    from fercourse.data import cli

    assert cli.main(["fetch", "--dest", str(tmp_path / "data")]) == 1
    out = capsys.readouterr().out
    assert "kaggle.com/c/challenges-in-representation-learning" in out
    assert str(tmp_path / "data" / "fer2013" / "fer2013.csv") in out


def test_fetch_verifies_the_published_counts(tmp_path, faces, capsys, no_kaggle_credentials):
    write_fer2013_csv(faces, tmp_path / "fer2013" / "fer2013.csv")
    with pytest.raises(fc.data.DataError, match=r"not the published FER2013.*Training: 320"):
        fc.data.fetch_fer2013(tmp_path)
    problems = fc.data.verify_counts(faces)
    assert any("synthetic" in p for p in problems)
