"""The synthetic stand-in: determinism, proportions, the CSV round trip, and learnability."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from data_fixtures import synthetic

import fercourse as fc


def test_same_seed_same_faces_other_seed_other_faces():
    a = fc.data.make_synthetic_faces(n=60, seed=3)
    b = fc.data.make_synthetic_faces(n=60, seed=3)
    c = fc.data.make_synthetic_faces(n=60, seed=4)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, c.images)


def test_shapes_proportions_and_labels_say_synthetic():
    ds = synthetic()
    assert ds.images.shape == (240, 48, 48) and ds.images.dtype == np.uint8
    assert ds.synthetic and ds.format == "synthetic"
    assert "synthetic=True" in repr(ds) and "not FER2013" in repr(ds)
    # FER2013's Usage order and 80/10/10 proportions.
    assert ds.usage_counts() == {"Training": 192, "PublicTest": 24, "PrivateTest": 24}
    assert list(dict.fromkeys(ds.usage)) == ["Training", "PublicTest", "PrivateTest"]
    big = fc.data.make_synthetic_faces(n=1000, seed=0).class_counts()
    expected = np.array([fc.data.FER2013_CLASS_COUNTS[e] for e in fc.EMOTIONS], float)
    np.testing.assert_allclose(big.to_numpy() / 1000, expected / expected.sum(), atol=0.002)
    assert big["disgust"] == big.min() and big["happy"] == big.max()


def test_faces_vary_and_are_not_blank():
    ds = synthetic()
    report = fc.data.data_report(ds)
    assert len(report.near_constant) == 0 and len(report.duplicate_groups) == 0
    # Identity, pose and lighting change the picture within a class.
    happy = ds.images[ds.labels == fc.emotion_index("happy")].astype(float)
    assert happy.std(axis=0).mean() > 20


def test_written_as_a_real_fer2013_csv_and_read_back(tmp_path):
    ds = synthetic()
    path = fc.data.write_fer2013_csv(ds, tmp_path / "fer2013.csv")
    assert path.read_text().splitlines()[0] == "emotion,pixels,Usage"
    marker = json.loads((tmp_path / "fer2013.csv.synthetic.json").read_text())
    assert marker["synthetic"] is True and "NOT FER2013" in marker["note"]
    back = fc.data.load_fer2013(path, cache=False)
    np.testing.assert_array_equal(back.images, ds.images)
    assert back.synthetic and back.format == "synthetic" and "synthetic" in back.source
    # Real faces written over it lose the marker.
    real = fc.data.FER2013(images=back.images[:10], labels=back.labels[:10], usage=back.usage[:10])
    fc.data.write_fer2013_csv(real, path)
    assert not fc.data.load_fer2013(path, cache=False).synthetic


def test_cli_writes_synthetic_csv(tmp_path, capsys):
    out = tmp_path / "s" / "fer2013.csv"
    from fercourse.data import cli

    assert cli.main(["synthetic", "--n", "50", "--seed", "2", "--out", str(out)]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out
    ds = fc.data.load_fer2013(out, cache=False)
    assert len(ds) == 50 and ds.synthetic


def _train(model, x, y, epochs, lr, batch=32):
    opt = torch.optim.AdamW(model.parameters(), lr, weight_decay=1e-2)
    steps = epochs * -(-len(x) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
    gen = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(x), generator=gen).split(batch):
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


@pytest.fixture
def one_thread():
    # Small convolutions on a shared 2-core machine run several times faster on one thread.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_learnable_by_a_small_cnn_but_not_by_a_linear_model(one_thread):
    """A tiny CNN clearly beats a linear model on raw pixels (full figures: data/README.md)."""
    torch.manual_seed(0)
    ds = fc.data.make_synthetic_faces(n=2000, seed=0)
    train, test = ds.where("Training"), ds.where(["PublicTest", "PrivateTest"])
    x, y = fc.preprocessing.to_tensor(train.images), torch.from_numpy(train.labels)
    xt, yt = fc.preprocessing.to_tensor(test.images), test.labels

    def accuracy(model):
        with torch.no_grad():
            return float((model(xt).argmax(1).numpy() == yt).mean())

    linear = _train(
        torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48 * 48, 7)), x, y, 10, 3e-3
    )

    def block(cin, cout):
        return torch.nn.Sequential(
            torch.nn.Conv2d(cin, cout, 3, padding=1),
            torch.nn.BatchNorm2d(cout),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
        )

    cnn = torch.nn.Sequential(
        block(1, 8),
        block(8, 16),
        block(16, 32),
        torch.nn.AdaptiveAvgPool2d(3),  # keeps coarse position: brows above eyes above mouth
        torch.nn.Flatten(),
        torch.nn.Linear(32 * 9, 7),
    )
    cnn = _train(cnn, x, y, 5, 5e-3)
    linear_acc, cnn_acc = accuracy(linear), accuracy(cnn)
    assert linear_acc < 0.7, f"linear model too good: {linear_acc:.2f} (the task is too easy)"
    assert cnn_acc > linear_acc + 0.15, f"CNN {cnn_acc:.2f} vs linear {linear_acc:.2f}"
