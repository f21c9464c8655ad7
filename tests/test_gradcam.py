"""Grad-CAM for all six models, overlays, and the attention / expert-weight plots."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import fercourse as fc
from fercourse.models.layers import tokens_to_map

NAMES = tuple(fc.models.list_models())  # every registered model, in the course's order


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(3, 48, 48), dtype=np.uint8)


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {name: fc.models.create_model(name) for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_gradcam_shape_and_range(name, models, faces):
    cams = fc.explain.gradcam(models[name], faces)
    assert cams.shape == (3, 48, 48)
    assert cams.dtype == np.float32
    assert np.isfinite(cams).all()
    assert cams.min() >= 0.0 and cams.max() <= 1.0
    assert cams.max() > 0.0  # not an empty map
    assert fc.gradcam is fc.explain.gradcam


def test_float_input_and_explicit_targets(models, faces):
    model = models["baseline_cnn"]
    from_uint8 = fc.explain.gradcam(model, faces, targets=[0, 3, 6])
    from_tensor = fc.explain.gradcam(model, fc.preprocessing.to_tensor(faces), targets=[0, 3, 6])
    np.testing.assert_allclose(from_uint8, from_tensor, atol=1e-6)
    assert fc.explain.gradcam(model, faces[0], targets=3).shape == (1, 48, 48)
    with pytest.raises(ValueError, match="2 class targets for 3 faces"):
        fc.explain.gradcam(model, faces, targets=[0, 1])
    with pytest.raises(ValueError, match="uint8"):
        fc.explain.gradcam(model, faces.astype(np.float64))
    with pytest.raises(ValueError, match="unknown CAM method"):
        fc.explain.gradcam(model, faces, method="magic")


def test_gradcam_leaves_the_model_as_it_was(faces):
    model = fc.models.create_model("attention_cnn").train()
    frozen = list(model.blocks[0].parameters())
    for p in frozen:
        p.requires_grad_(False)
    with torch.no_grad():  # a notebook may call it anywhere
        cams = fc.explain.gradcam(model, faces, method="gradcam++")
    assert cams.shape == (3, 48, 48)
    assert model.training
    assert all(not p.requires_grad for p in frozen)
    assert all(p.grad is None for p in model.parameters())


def test_vit_reshape_follows_the_token_grid(faces):
    for img_size, patch_size, side in ((112, 16, 7), (64, 8, 8)):
        model = fc.models.create_model("vit_tiny", img_size=img_size, patch_size=patch_size)
        reshape = model.gradcam_reshape_transform()
        tokens = torch.randn(2, model.num_prefix_tokens + side * side, 192)
        assert reshape(tokens).shape == (2, 192, side, side)
        assert fc.explain.gradcam(model, faces[:2]).shape == (2, 48, 48)
    with pytest.raises(ValueError, match="7x7 grid"):
        tokens_to_map(torch.randn(1, 1 + 196, 8), grid_size=(7, 7), num_prefix_tokens=1)


def test_overlay(faces):
    cam = np.linspace(0, 1, 48 * 48, dtype=np.float32).reshape(48, 48)
    rgb = fc.explain.overlay(faces[0], cam)
    assert rgb.shape == (48, 48, 3) and rgb.dtype == np.uint8
    with pytest.raises(ValueError, match="differ in shape"):
        fc.explain.overlay(faces[0], cam[:24])


def test_plots(models, faces):
    figures = [
        fc.explain.plot_gradcam(models["vit_tiny"], faces, labels=[0, 3, 6], n=3, cols=2),
        fc.explain.plot_attention_maps(models["attention_cnn"], faces, n=2),
        fc.explain.plot_expert_weights(models["specialists"], faces, labels=[0, 3, 6]),
    ]
    assert all(isinstance(f, matplotlib.figure.Figure) for f in figures)
    assert len(figures[1].axes) == 2 * 5  # face + 4 CBAM blocks, per face
    for fig in figures:
        plt.close(fig)
    with pytest.raises(TypeError, match="attention_cnn"):
        fc.explain.plot_attention_maps(models["baseline_cnn"], faces)
    with pytest.raises(TypeError, match="specialists"):
        fc.explain.plot_expert_weights(models["baseline_cnn"], faces)
