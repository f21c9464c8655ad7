"""Augmentation (albumentations 2.x and batched tensors) and the loader factory."""

from __future__ import annotations

import warnings

import albumentations as A
import numpy as np
import pytest
import torch
from data_fixtures import synthetic

import fercourse as fc
from fercourse.data import NO_AUGMENT, AugmentSettings, BatchAugment

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module")
def faces():
    return synthetic(n=400, seed=2)


@pytest.fixture(scope="module")
def batch(faces):
    return torch.from_numpy(faces.images[:64].copy())


# --- albumentations ----------------------------------------------------------------------------


def test_albumentations_pipelines_use_the_2x_api_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a 1.x argument or ShiftScaleRotate would warn
        train = fc.data.train_transform(seed=0)
        evaluation = fc.data.eval_transform()
        face = np.full((48, 48), 100, np.uint8)
        out = train(image=face)["image"]
        assert out.shape == (48, 48) and out.dtype == np.uint8
        assert evaluation(image=face)["image"].shape == (48, 48)
        assert evaluation(image=np.zeros((96, 96), np.uint8))["image"].shape == (48, 48)
    kinds = [type(t) for t in train.transforms]
    assert A.Affine in kinds and A.CoarseDropout in kinds and A.ShiftScaleRotate not in kinds
    dropout = next(t for t in train.transforms if isinstance(t, A.CoarseDropout))
    assert dropout.num_holes_range == (1, 1)


def test_albumentations_is_seeded(faces):
    def run(seed):
        transform = fc.data.train_transform(seed=seed)
        return np.stack([transform(image=face)["image"] for face in faces.images[:8]])

    np.testing.assert_array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))


# --- batched tensor augmentation ---------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_batch_augment_shapes_dtypes_and_seed(batch, device):
    x = batch.to(device)
    out = BatchAugment(seed=0)(x)
    assert out.shape == x.shape and out.dtype == torch.uint8 and out.device == x.device
    assert BatchAugment(seed=0)(x[:, None]).shape == (64, 1, 48, 48)
    np.testing.assert_array_equal(out.cpu(), BatchAugment(seed=0)(x).cpu())
    assert not torch.equal(out, BatchAugment(seed=1)(x))
    assert not torch.equal(out, x)
    assert torch.equal(BatchAugment(NO_AUGMENT)(x), x)


def test_batch_augment_same_on_cpu_and_gpu(batch):
    if not torch.cuda.is_available():
        pytest.skip("no GPU here")
    cpu = BatchAugment(seed=0)(batch).int()
    gpu = BatchAugment(seed=0)(batch.cuda()).cpu().int()
    assert (cpu - gpu).abs().float().mean() < 0.5  # rounding of the interpolation only


def test_batch_augment_flips_about_half(batch):
    out = BatchAugment(AugmentSettings(flip_p=0.5, affine_p=0, color_p=0, erase_p=0), seed=0)(batch)
    flipped = torch.tensor([torch.equal(o, b.flip(-1)) for o, b in zip(out, batch)])
    kept = torch.tensor([torch.equal(o, b) for o, b in zip(out, batch)])
    assert bool((flipped | kept).all())
    assert 16 < int(flipped.sum()) < 48


def test_batch_augment_float_input_matches_uint8(batch):
    aug_uint8 = BatchAugment(seed=0)(batch)
    aug_float = BatchAugment(seed=0)(fc.preprocessing.to_tensor(batch))
    expected = fc.preprocessing.to_tensor(aug_uint8)
    assert aug_float.dtype == torch.float32 and aug_float.shape == (64, 1, 48, 48)
    # Same random draws, same result up to the uint8 rounding (1 grey level = 1/255/STD).
    assert (aug_float - expected).abs().max() < 1.01 / 255 / fc.preprocessing.STD


def test_erasing_has_the_same_semantics_in_both_pipelines(batch):
    settings = AugmentSettings(flip_p=0, affine_p=0, color_p=0, erase_p=1.0, erase_fill=0)
    bright = torch.full_like(batch, 200)
    tensor_holes = (BatchAugment(settings, seed=0)(bright) == 0).sum(dim=(1, 2)).float()
    transform = fc.data.train_transform(settings, seed=0)
    album_holes = torch.tensor(
        [float((transform(image=im.numpy())["image"] == 0).sum()) for im in bright]
    )
    for holes in (tensor_holes, album_holes):
        # One rectangle per image, each side 10-30% of 48 px.
        assert holes.min() >= 4 * 4 and holes.max() <= 15 * 15
    assert abs(tensor_holes.mean() - album_holes.mean()) < 0.25 * album_holes.mean()


def test_preview_augmentations_returns_a_figure(faces):
    import matplotlib.pyplot as plt

    for pipeline in ("batch", "albumentations"):
        fig = fc.explain.preview_augmentations(faces, n=3, per_image=4, pipeline=pipeline)
        assert len(fig.axes) == 3 * 5
        assert "SYNTHETIC" in fig._suptitle.get_text()
        plt.close(fig)


# --- loaders -----------------------------------------------------------------------------------


def test_loaders_yield_normalised_batches(faces):
    loaders = fc.data.make_loaders(faces, batch_size=32)
    x, y = next(iter(loaders.train))
    assert x.shape == (32, 1, 48, 48) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert loaders.synthetic and loaders.info["augment"] == "batch"
    assert loaders.sizes() == loaders.split.sizes()
    assert len(loaders.train) == -(-len(loaders.split.train) // 32)
    # Evaluation batches are the plain faces, in split order, through to_tensor.
    xs, ys = zip(*loaders.val)
    np.testing.assert_array_equal(torch.cat(ys), faces.labels[loaders.split.val])
    torch.testing.assert_close(
        torch.cat(xs), fc.preprocessing.to_tensor(faces.images[loaders.split.val])
    )
    assert loaders["PrivateTest"] is loaders.private_test


def test_loaders_are_deterministic_per_seed_and_epoch(faces):
    def first_batches(seed, epoch=0):
        loader = fc.data.make_loaders(faces, batch_size=16, seed=seed).train
        loader.set_epoch(epoch)
        return next(iter(loader))

    a, b = first_batches(0), first_batches(0)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], first_batches(1)[0])
    assert not torch.equal(a[0], first_batches(0, epoch=1)[0])
    # Iterating twice gives two different epochs; set_epoch replays one.
    loader = fc.data.make_loaders(faces, batch_size=16).train
    one = next(iter(loader))[1]
    two = next(iter(loader))[1]
    loader.set_epoch(0)
    assert not torch.equal(one, two) and torch.equal(next(iter(loader))[1], one)


def test_albumentations_mode_and_no_augmentation(faces):
    loaders = fc.data.make_loaders(faces, batch_size=16, augment="albumentations")
    x, y = next(iter(loaders.train))
    assert x.shape == (16, 1, 48, 48) and y.dtype == torch.int64
    again = next(iter(fc.data.make_loaders(faces, batch_size=16, augment="albumentations").train))
    assert torch.equal(x, again[0])
    plain = fc.data.make_loaders(faces, batch_size=16, augment=None)
    x, y = next(iter(plain.train))
    lookup = {im.tobytes() for im in faces.images}
    faces_back = (x[:, 0] * fc.preprocessing.STD + fc.preprocessing.MEAN) * 255
    assert all(f.round().to(torch.uint8).numpy().tobytes() in lookup for f in faces_back)
    with pytest.raises(ValueError, match="augment"):
        fc.data.make_loaders(faces, augment="torchvision")


def test_subset_and_weighted_sampler(faces):
    loaders = fc.data.make_loaders(
        faces,
        max_per_split={"train": 140, "val": 14},
        weighted_sampler=True,
        batch_size=70,
        augment=None,  # only the sampling is under test
    )
    assert loaders.sizes()["train"] == 140 and loaders.sizes()["val"] == 14
    assert loaders.sizes()["private_test"] == len(loaders.split.private_test)
    train_labels = faces.labels[loaders.train.indices]
    expected = (
        np.bincount(faces.labels[loaders.split.train], minlength=7) * 140 / len(loaders.split.train)
    )
    assert np.abs(np.bincount(train_labels, minlength=7) - expected).max() <= 1.5
    drawn = torch.cat([y for _ in range(20) for _, y in loaders.train]).numpy()
    counts = np.bincount(drawn, minlength=7)
    present = np.bincount(train_labels, minlength=7) > 0
    assert counts[present].min() > 0.5 * counts[present].mean()  # balanced, rare classes too


def test_loaders_on_the_gpu(faces):
    if not torch.cuda.is_available():
        pytest.skip("no GPU here")
    loaders = fc.data.make_loaders(faces, device="cuda")
    x, y = next(iter(loaders.train))
    assert x.is_cuda and y.is_cuda and loaders.train.images.is_cuda
