"""The six models: shapes, gradients, sizes, learning, the registry, checkpoints, ViT weights."""

from __future__ import annotations

import json
import time

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

import fercourse as fc
from fercourse.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from fercourse.models import vit_tiny as vit_module

NAMES = tuple(fc.models.list_models())  # every registered model, in the course's order

# Parameter counts of the original project; each model stays within +-20% of its target.
TARGET_PARAMS = {
    "baseline_cnn": 0.4e6,
    "attention_cnn": 1.2e6,
    "multiscale": 1.0e6,
    "hybrid_transformer": 14.1e6,
    "specialists": 0.8e6,
    "vit_tiny": 5.36e6,  # timm's ViT-Tiny, 1 channel, 48 px, patch 8
}

# The overfit test switches regularisation off and halves the CNNs' widths (the hybrid gets a
# narrow encoder, the ViT 16 px patches), so every model memorises 64 images in a few CPU-seconds even on a busy 2-core
# machine; the default configurations are covered by the forward/backward and parameter tests.
_NO_DROPOUT = {"dropout": 0.0, "head_dropout": 0.0}
OVERFIT_KWARGS = {
    "baseline_cnn": {"width": 16, **_NO_DROPOUT},
    "attention_cnn": {"width": 16, **_NO_DROPOUT},
    "multiscale": {"width": 16, **_NO_DROPOUT},
    "hybrid_transformer": {"width": 16, "embed_dim": 64, "depth": 2, "num_heads": 4, **_NO_DROPOUT},
    "specialists": {"width": 16, **_NO_DROPOUT},
    "vit_tiny": {"patch_size": 16, "drop_path_rate": 0.0},
}


def test_list_models_in_course_order():
    assert fc.models.list_models() == list(NAMES)
    assert fc.list_models() == list(NAMES)
    assert fc.models.list_models("*cnn") == ["baseline_cnn", "attention_cnn"]


@pytest.mark.parametrize("name", NAMES)
def test_forward_and_backward(name):
    model = fc.models.create_model(name)
    x = torch.randn(4, 1, 48, 48)
    logits = model(x)
    assert logits.shape == (4, fc.NUM_CLASSES)
    assert torch.isfinite(logits).all()
    F.cross_entropy(logits, torch.arange(4)).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert not no_grad, f"parameters that got no gradient: {no_grad[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    # forward == forward_head(forward_features), in eval mode (deterministic)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.forward_head(model.forward_features(x)))


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_near_the_original(name):
    count = fc.models.count_parameters(fc.models.create_model(name))
    target = TARGET_PARAMS[name]
    assert 0.8 * target <= count <= 1.2 * target, (
        f"{name}: {count:,} parameters, target {target:,.0f}"
    )


@pytest.mark.parametrize("name", NAMES)
def test_overfits_64_images(name):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 48, 48, generator=gen)  # pure noise: only memorising can fit it
    y = torch.arange(64) % fc.NUM_CLASSES
    model = fc.models.create_model(name, **OVERFIT_KWARGS[name]).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    accuracy = 0.0
    for _ in range(40):
        logits = model(x)
        accuracy = (logits.argmax(1) == y).float().mean().item()
        if accuracy >= 0.95:
            break
        loss = F.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert accuracy >= 0.95, f"{name} reached only {accuracy:.0%} on 64 training images"


def test_model_kwargs_are_resolved_and_json():
    model = fc.models.create_model("baseline_cnn", width=16)
    assert model.model_name == "baseline_cnn"
    assert model.model_kwargs["width"] == 16
    assert model.model_kwargs["dropout"] == 0.25  # defaults are recorded too
    assert json.loads(json.dumps(model.model_kwargs)) == model.model_kwargs
    multi = fc.models.create_model("multiscale", scales=(24, 48))
    assert multi.model_kwargs["scales"] == [24, 48]  # what the JSON card gives back
    vit = fc.models.create_model("vit_tiny")
    assert "pretrained" not in vit.model_kwargs
    assert "weights_path" not in vit.model_kwargs


def test_unknown_model_lists_the_available_ones():
    with pytest.raises(ValueError, match="baseline_cnn") as info:
        fc.models.create_model("baseline_cn")
    message = str(info.value)
    assert "Did you mean 'baseline_cnn'" in message
    assert all(name in message for name in NAMES)


def test_unknown_keyword_is_named():
    with pytest.raises(TypeError, match=r"'widht' \(did you mean 'width'\?\)"):
        fc.models.create_model("baseline_cnn", widht=16)


def test_pretrained_only_where_weights_exist():
    with pytest.raises(ValueError, match=r"no pretrained weights.*vit_tiny"):
        fc.models.create_model("baseline_cnn", pretrained=True)


def test_duplicate_registration_raises():
    before = fc.models.list_models()
    with pytest.raises(ValueError, match="already registered"):

        @fc.models.register_model(name="baseline_cnn")
        def _other(*, width: int = 1) -> torch.nn.Module:
            return torch.nn.Linear(width, 1)

    assert fc.models.list_models() == before
    assert fc.models.get_model_builder("baseline_cnn") is fc.models.baseline_cnn.BaselineCNN


def test_builders_must_be_keyword_only():
    with pytest.raises(TypeError, match="keyword-only"):

        @fc.models.register_model(name="positional_builder")
        def _positional(width: int = 1) -> torch.nn.Module:
            return torch.nn.Linear(width, 1)

    assert "positional_builder" not in fc.models.list_models()


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_round_trip(name, tmp_path):
    model = fc.models.create_model(name).eval()
    x = torch.randn(2, 1, 48, 48)
    save_checkpoint(tmp_path / name, model, metrics={"accuracy": 0.5})
    loaded, card = load_checkpoint(tmp_path / name)
    assert type(loaded) is type(model)
    assert card["model"] == name
    assert card["model_kwargs"] == model.model_kwargs
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_wrong_architecture_is_refused(tmp_path):
    save_checkpoint(tmp_path / "baseline", fc.models.create_model("baseline_cnn"))
    with pytest.raises(CheckpointError, match=r"'attention_cnn'.*missing.*unexpected"):
        load_checkpoint(tmp_path / "baseline", fc.models.create_model("attention_cnn"))
    with pytest.raises(CheckpointError, match=r"another shape \(e.g. blocks.0"):
        load_checkpoint(tmp_path / "baseline", fc.models.create_model("baseline_cnn", width=16))


def test_flops_and_description():
    model = fc.models.create_model("baseline_cnn").train()
    info = fc.models.describe_model(model)
    assert model.training  # counting flops does not change the mode
    assert info["name"] == "baseline_cnn"
    assert info["params"] == fc.models.count_parameters(model)
    assert 0.1 < info["gflops"] < 0.3
    assert info["input"] == [1, 1, 48, 48]
    assert fc.models.count_flops(model, (2, 1, 48, 48)) == 2 * fc.models.count_flops(model)


class _Attention(torch.nn.Module):
    def forward(self, x):
        q = k = v = x.view(1, 3, 37, 64)  # batch 1, 3 heads, 37 tokens, 64 per head
        return F.scaled_dot_product_attention(q, k, v)


@pytest.mark.parametrize("grad", [False, True])
def test_flops_count_attention_on_cpu(grad):
    # QK^T and AV: two products of 37x64 by 64x37 (37x37 by 37x64) per head, 2 FLOPs a multiply-add
    with torch.set_grad_enabled(grad):
        assert fc.models.count_flops(_Attention(), (3 * 37 * 64,)) == 3 * 2 * (2 * 37 * 37 * 64)


def test_attention_maps_per_block():
    model = fc.models.create_model("attention_cnn").train()
    maps = model.spatial_attention_maps(torch.randn(2, 1, 48, 48))
    assert [tuple(m.shape) for m in maps] == [(2, 1, s, s) for s in (48, 24, 12, 6)]
    assert all(((m >= 0) & (m <= 1)).all() for m in maps)
    assert model.training
    upsampled = model.spatial_attention_maps(torch.randn(2, 1, 48, 48), size=48)
    assert all(tuple(m.shape) == (2, 1, 48, 48) for m in upsampled)


def test_specialists_expert_weights():
    model = fc.models.create_model("specialists").eval()
    x = torch.randn(3, 1, 48, 48)
    weights = model.expert_weights(x)
    assert model.experts == fc.models.specialists.EXPERTS == ("eyes", "mouth", "face")
    assert weights.shape == (3, 3)
    torch.testing.assert_close(weights.sum(1), torch.ones(3))
    with torch.no_grad():
        parts = model.forward_experts(model.forward_features(x))
        mixed = (parts["weights"].unsqueeze(-1) * parts["expert_logits"]).sum(1)
        torch.testing.assert_close(mixed, model(x))


def test_region_canvas_round_trip():
    canvas_module = fc.models.specialists.RegionCanvas()
    eyes, mouth, face = (
        torch.randn(2, 4, 6, 12),
        torch.randn(2, 4, 6, 12),
        torch.randn(2, 4, 12, 12),
    )
    canvas = canvas_module(eyes, mouth, face)
    assert canvas.shape == (2, 12, 12, 12)
    assert (canvas[:, :4, 6:] == 0).all() and (canvas[:, 4:8, :6] == 0).all()
    for got, want in zip(canvas_module.split(canvas), (eyes, mouth, face)):
        assert torch.equal(got, want)


def test_multiscale_scale_attention_and_config():
    model = fc.models.create_model("multiscale")
    assert model.scale_attention(torch.randn(2, 1, 48, 48)).shape == (2, 3)
    two = fc.models.create_model("multiscale", scales=(24, 48))
    assert two(torch.randn(1, 1, 48, 48)).shape == (1, fc.NUM_CLASSES)
    with pytest.raises(ValueError, match="power of two"):
        fc.models.create_model("multiscale", scales=(40,))


def test_hybrid_token_grid_follows_the_config():
    model = fc.models.create_model(
        "hybrid_transformer", stem_blocks=2, width=8, embed_dim=32, depth=1, num_heads=2
    )
    assert model.grid_size == (12, 12)
    assert model.forward_features(torch.randn(1, 1, 48, 48)).shape == (1, 1 + 144, 32)


# --- ViT-Tiny: input size and pretrained weights ------------------------------------------------


@pytest.fixture(scope="module")
def imagenet_vit_file(tmp_path_factory):
    """A stand-in for the hub's model.safetensors: ViT-Tiny at 224 px, 3 channels, 1000 classes."""
    import timm

    torch.manual_seed(1)
    state = timm.create_model(vit_module.TIMM_NAME, pretrained=False).state_dict()
    state = {k: v.contiguous() for k, v in state.items()}
    path = tmp_path_factory.mktemp("vit") / "model.safetensors"
    save_file(state, str(path))
    return path, state


@pytest.mark.parametrize("source", ["weights_path", "env"])
def test_vit_loads_a_local_weights_file(source, imagenet_vit_file, monkeypatch):
    from timm.layers import resample_abs_pos_embed, resample_patch_embed

    file, saved = imagenet_vit_file
    if source == "env":
        monkeypatch.setenv(vit_module.WEIGHTS_ENV, str(file))
        model = fc.models.create_model("vit_tiny", pretrained=True)
    else:
        monkeypatch.delenv(vit_module.WEIGHTS_ENV, raising=False)
        model = fc.models.create_model("vit_tiny", pretrained=True, weights_path=str(file))
    vit = model.vit
    assert model.grid_size == (6, 6)
    torch.testing.assert_close(vit.blocks[5].attn.qkv.weight, saved["blocks.5.attn.qkv.weight"])
    # RGB folded to 1 channel and 16 px patches resampled to 8 px; 14x14 positions resized to 6x6
    assert vit.patch_embed.proj.weight.shape == (192, 1, 8, 8)
    folded = resample_patch_embed(
        saved["patch_embed.proj.weight"], (8, 8), interpolation="bicubic", antialias=True
    ).sum(1, keepdim=True)
    torch.testing.assert_close(vit.patch_embed.proj.weight, folded, rtol=1e-4, atol=1e-5)
    pos = resample_abs_pos_embed(saved["pos_embed"], new_size=(6, 6), num_prefix_tokens=1)
    torch.testing.assert_close(vit.pos_embed, pos, rtol=1e-4, atol=1e-5)
    assert model(torch.randn(2, 1, 48, 48)).shape == (2, fc.NUM_CLASSES)
    assert "weights_path" not in model.model_kwargs


def test_vit_offline_without_weights_fails_fast(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv(vit_module.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    start = time.perf_counter()
    with pytest.raises(RuntimeError) as info:
        fc.models.create_model("vit_tiny", pretrained=True)
    assert time.perf_counter() - start < 5
    message = str(info.value)
    assert "HF_HUB_OFFLINE" in message
    assert vit_module.HF_WEIGHTS in message and "model.safetensors" in message
    assert vit_module.WEIGHTS_ENV in message and "weights_path=" in message


def test_vit_without_weights_and_without_the_hub_says_so_at_once(tmp_path, monkeypatch):
    # Online settings, but the hub's host does not resolve: one look-up, not the client's retries.
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "https://no-such-hub.invalid")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    for proxy in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.delenv(vit_module.WEIGHTS_ENV, raising=False)
    with pytest.raises(RuntimeError) as info:
        vit_module.resolve_pretrained_file()
    message = str(info.value)
    assert "the hub https://no-such-hub.invalid cannot be reached (gaierror" in message
    assert info.value.__cause__ is None  # the probe answered: the hub client was never asked
    assert vit_module.WEIGHTS_ENV in message


def test_vit_weights_path_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fc.models.create_model("vit_tiny", pretrained=True, weights_path=str(tmp_path / "no.pth"))
    with pytest.raises(ValueError, match="only used with pretrained=True"):
        fc.models.create_model("vit_tiny", weights_path=str(tmp_path / "no.pth"))


# ---------------------------------------------------------------------------------------------
# Facts 03_attention and 04_multiscale teach (the chapters assert them on real faces too)
# ---------------------------------------------------------------------------------------------


def test_cbam_parameters_follow_the_formula_and_fit_the_baseline_slot():
    """CBAM's parameters are 2·C·h + h + C (channel MLP) + 2·7·7 + 2 (spatial conv and BN)."""
    from fercourse.models.attention_cnn import CBAM

    for channels in (32, 64, 128, 256):
        hidden = max(channels // 16, 8)
        expected = 2 * channels * hidden + hidden + channels + 2 * 7 * 7 + 2
        assert fc.models.count_parameters(CBAM(channels)) == expected
    baseline = fc.models.create_model("baseline_cnn")
    with_cbam = fc.models.create_model("baseline_cnn")
    for block in with_cbam.blocks:  # ConvBlock's attention slot, as the ablation in 03 does
        block.attention = CBAM(block.convs[-1][0].out_channels)
    added = fc.models.count_parameters(with_cbam) - fc.models.count_parameters(baseline)
    assert added == 652 + 1196 + 2284
    flops = fc.models.count_flops(with_cbam) / fc.models.count_flops(baseline)
    assert 1.0 < flops < 1.01
    assert with_cbam(torch.randn(2, 1, 48, 48)).shape == (2, fc.NUM_CLASSES)


def test_multiscale_96px_is_an_invertible_upsampling_and_its_branch_is_not_4x():
    from fercourse.models.multiscale import resize_faces

    faces = torch.randn(4, 1, 48, 48)
    # Bilinear 2x enlargement is U @ x @ U.T with a (96, 48) matrix of rank 48: invertible.
    U = F.interpolate(torch.eye(48)[None, None], size=(96, 48), mode="bilinear")[0, 0]
    torch.testing.assert_close(U @ faces @ U.T, resize_faces(faces, 96), atol=1e-5, rtol=0)
    pinv = torch.linalg.pinv(U)
    torch.testing.assert_close(pinv @ resize_faces(faces, 96) @ pinv.T, faces, atol=1e-4, rtol=0)
    small = faces.reshape(4, 1, 24, 2, 24, 2).mean(dim=(3, 5))
    torch.testing.assert_close(resize_faces(faces, 24), small, atol=1e-6, rtol=0)

    model = fc.models.create_model("multiscale")
    flops = {b.scale: fc.models.count_flops(b) for b in model.branches}
    params = {b.scale: fc.models.count_parameters(b) for b in model.branches}
    assert 1.3 < flops[96] / flops[48] < 1.5  # one more block, not 4x the pixels
    assert 0.9 < params[96] / params[48] < 1.1
    assert [len(b.blocks) for b in model.branches] == [2, 3, 4]


def test_hybrid_embed_tokens_and_attention_maps():
    """05_hybrid writes both out; here: shapes, the class token in front, rows that sum to 1."""
    model = fc.models.create_model(
        "hybrid_transformer", width=8, embed_dim=32, depth=2, num_heads=4, dropout=0.0
    ).train()
    x = torch.randn(3, 1, 48, 48)
    tokens = model.embed_tokens(x)
    assert tokens.shape == (3, 1 + 36, 32)
    torch.testing.assert_close(
        tokens[:, 0], (model.cls_token[0] + model.pos_embed[:, 0]).expand(3, -1)
    )
    with torch.no_grad():
        torch.testing.assert_close(model.forward_features(x), model.encoder(tokens))
    maps = model.attention_maps(x)
    assert maps.shape == (3, 4, 6, 6) and model.training  # its mode is given back
    assert ((maps.flatten(2).sum(-1) > 0) & (maps.flatten(2).sum(-1) < 1)).all()
    first = model.attention_maps(x, layer=0)
    assert first.shape == maps.shape and not torch.allclose(first, maps)
