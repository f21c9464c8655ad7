"""ViT-Tiny: timm's Vision Transformer on 1-channel 48x48 faces, optionally ImageNet-pretrained.

Idea: the Vision Transformer (Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for
Image Recognition at Scale", ICLR 2021) cuts the image into patches, embeds each as a token and
runs a Transformer encoder over them; the class token's output is classified. ViT-Tiny (embed 192,
12 layers, 3 heads; Touvron et al., DeiT, ICML 2021) with the "How to train your ViT" weights
(Steiner et al., TMLR 2022), built by ``timm.create_model("vit_tiny_patch16_224", in_chans=1,
img_size=..., patch_size=...)``. About 5.36M parameters at the default size.

**Input size.** The naive port upsamples the 48 px face to 224 px with 3 channels: 196 tokens
and ~26 ms per face on a quiet 2-core CPU with 2 threads. Here the first layer is
folded to 1 channel and the size is a measured choice. Batch 1, eager, ``torch.inference_mode``,
**1 thread**, two runs of 60 and 100 interleaved calls on the shared 2-core x86 dev machine while
other jobs ran (load ~8-10): the medians of both runs, and the fastest single call (closest to a
quiet machine; there, with 2 threads, the medians were ~8 ms at 48/8 and ~9 ms at 112/16):

=================  ======  =======  ===============  =========
img_size / patch   tokens  GFLOPs   median (2 runs)  fastest
=================  ======  =======  ===============  =========
224 / 16 (1 ch)    196     2.47     101-117 ms       63 ms
112 / 16           49      0.56     36-40 ms         12 ms
96 / 16            36      0.41     32-33 ms         10 ms
64 / 8             64      0.73     41-47 ms         21 ms
**48 / 8**         **36**  0.41     **29-34 ms**     **10 ms**
48 / 4             144     1.73     77-86 ms         46 ms
=================  ======  =======  ===============  =========

The default, **48 px with 8 px patches (a 6x6 grid, 5.36M parameters)**, ties with 96 / 16 (the
same 6x6 grid) as the fastest setting, ~3.5x faster than the 224 px size (by the medians), and
reads the face at its native resolution: upsampling to 96, 112 or 224 px adds pixels but no
information while every extra token costs the same again in the projections and the MLP (only
the attention products grow with the square of the token count, and they are 3% of the FLOPs at
36 tokens, 14% at 196: 197 tokens cost ~6x, not ~28x, what 37 cost). For
pretrained weights timm resizes the 16 px patch embedding to 8 px with FlexiViT's pseudo-inverse
resize (Beyer et al., CVPR 2023), so that 8 px patches on the 48 px face compute approximately
what the original 16 px filters compute on the face upsampled to 96 px; 96 / 16 is therefore the
control to compare with, and 112 / 16 (7x7 grid, ~1.2x slower) the usual "keep the pretrained
patch size" choice. Accuracy on FER2013 was not measured for this choice (no pretrained weights
offline, CPU only): compare with ``create_model("vit_tiny", pretrained=True, img_size=112,
patch_size=16)``.

**Pretrained weights.** ``pretrained=True`` loads ``timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k``:
from ``weights_path`` or ``$FERCOURSE_VIT_WEIGHTS`` when given (a ``.safetensors`` or ``.pth``
file; timm folds RGB into 1 channel and resizes the position embeddings and the patch embedding),
else through huggingface_hub (its cache, else the hub). Offline (``HF_HUB_OFFLINE=1``) or with the
hub unreachable and no file, it fails at once and says what to do, instead of timm's ~47 s of
retries.

Introduced in ``notebooks/07_vit.ipynb``.
"""

from __future__ import annotations

import functools
import os
import socket
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..labels import NUM_CLASSES
from ..preprocessing import IMAGE_SIZE, MEAN, STD
from .layers import FERModel, tokens_to_map
from .registry import register_model

__all__ = ["HF_WEIGHTS", "TIMM_NAME", "WEIGHTS_ENV", "ViTTiny", "resolve_pretrained_file"]

TIMM_NAME = "vit_tiny_patch16_224"
"""The timm architecture the wrapper builds."""

TIMM_DISTILLED_NAME = "deit_tiny_distilled_patch16_224"
"""The same ViT-Tiny with DeiT's distillation token and second head (``distilled=True``)."""

HF_WEIGHTS = "timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k"
"""Hugging Face repository of the ImageNet weights (file ``model.safetensors``)."""

WEIGHTS_ENV = "FERCOURSE_VIT_WEIGHTS"
"""Environment variable naming a local weights file, for machines without internet."""


@register_model(
    name="vit_tiny",
    notebook="07_vit",
    recipes={
        # Fine-tuning the ImageNet weights: a small rate after a warm-up (see 07_vit).
        "full": {"lr": 5e-5, "warmup_epochs": 5, "patience": 20},
        "smoke": {"lr": 1e-3, "max_train_samples": 800, "max_val_samples": 300},
        "class": {"lr": 5e-4, "grad_clip": 1.0},
    },
)
class ViTTiny(FERModel):
    """timm's ViT-Tiny behind the course interface: 48x48 1-channel faces in, 7 logits out.

    Faces are resized inside the model to ``img_size`` when it is not 48 (bilinear,
    ``antialias=False``: the face is only ever enlarged, where antialiasing changes nothing) and
    re-normalised from fercourse's statistics (:data:`fercourse.preprocessing.MEAN` / ``STD``) to
    the ones the ImageNet weights were trained with (timm's ``pretrained_cfg``), always, so a
    model rebuilt from a checkpoint computes exactly what it computed when it was saved.

    Args:
        pretrained: start from the ImageNet weights (see the module docstring for the sources).
        weights_path: local weights file for ``pretrained=True`` (default: ``$FERCOURSE_VIT_WEIGHTS``).
        num_classes: number of emotions.
        img_size: side the face is resized to (see the table in the module docstring).
        patch_size: patch side; the token grid is ``img_size // patch_size`` square.
        drop_rate: dropout on the embeddings and before the head.
        drop_path_rate: stochastic depth, growing linearly to this value over the 12 blocks.
        distilled: add DeiT's distillation token and head (Touvron et al., ICML 2021): a second
            prefix token whose head learns the teacher's predictions during training
            (``TrainConfig.teacher``); in eval mode the model returns the mean of the two heads.
            Only from scratch (the ImageNet weights have no distillation token).

    Raises:
        RuntimeError: ``pretrained=True`` while the hub is unreachable and no file was given.
        FileNotFoundError: ``weights_path`` / ``$FERCOURSE_VIT_WEIGHTS`` names no file.
    """

    def __init__(
        self,
        *,
        pretrained: bool = False,
        weights_path: str | os.PathLike | None = None,
        num_classes: int = NUM_CLASSES,
        img_size: int = IMAGE_SIZE,
        patch_size: int = 8,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        distilled: bool = False,
    ) -> None:
        super().__init__()
        if distilled and pretrained:
            raise ValueError(
                "distilled=True trains from scratch: the ImageNet weights have no distillation "
                "token (use pretrained=True without distilled, or distilled=True alone)"
            )
        if weights_path is not None and not pretrained:
            raise ValueError("weights_path is only used with pretrained=True")
        if img_size % patch_size:
            raise ValueError(f"img_size {img_size} must be a multiple of patch_size {patch_size}")
        extra = {}
        if pretrained:  # before importing timm, so a missing file or network fails at once
            file = resolve_pretrained_file(weights_path)
            extra["pretrained_cfg_overlay"] = {"file": file}
            self.pretrained_from = f"{HF_WEIGHTS} (file {Path(file).name})"
        import timm  # imported here: `import fercourse.models` should not pay for timm

        self.distilled = distilled
        self.vit = timm.create_model(
            TIMM_DISTILLED_NAME if distilled else TIMM_NAME,
            pretrained=pretrained,
            in_chans=1,
            img_size=img_size,
            patch_size=patch_size,
            num_classes=num_classes,
            drop_rate=drop_rate,
            drop_path_rate=drop_path_rate,
            **extra,
        )
        self.img_size = img_size
        cfg = self.vit.pretrained_cfg
        # x_vit = (pixel - mean_vit) / std_vit, with pixel = x * STD + MEAN (channels are folded,
        # and the ImageNet weights use one mean / std for all three).
        mean = sum(cfg.get("mean", (MEAN,))) / len(cfg.get("mean", (MEAN,)))
        std = sum(cfg.get("std", (STD,))) / len(cfg.get("std", (STD,)))
        self.input_scale = STD / std
        self.input_shift = (MEAN - mean) / std
        self.num_features = self.vit.num_features

    @property
    def grid_size(self) -> tuple[int, int]:
        """The patch grid, e.g. (6, 6) for 48 px and 8 px patches."""
        return tuple(self.vit.patch_embed.grid_size)

    @property
    def num_prefix_tokens(self) -> int:
        """Tokens before the patch tokens (the class token, and the distillation token)."""
        return int(self.vit.num_prefix_tokens)

    def set_distilled_training(self, enable: bool = True) -> None:
        """In training mode, return (class-head, distillation-head) logits instead of their mean.

        ``fc.fit`` switches it on when it distils from a teacher; eval mode always averages.
        """
        if not self.distilled:
            raise ValueError(
                "set_distilled_training needs create_model('vit_tiny', distilled=True)"
            )
        self.vit.set_distilled_training(enable)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 48, 48) -> tokens (B, 1 + grid cells, 192), class token first."""
        if x.shape[-1] != self.img_size or x.shape[-2] != self.img_size:
            x = F.interpolate(
                x, size=(self.img_size, self.img_size), mode="bilinear", align_corners=False
            )
        return self.vit.forward_features(x * self.input_scale + self.input_shift)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Tokens -> (B, num_classes) logits (timm's pooling: the class token).

        With ``distilled=True``: the mean of the class head and the distillation head, or the
        pair of them while distilled training is on (:meth:`set_distilled_training`).
        """
        return self.vit.forward_head(features)

    def gradcam_target_layer(self) -> nn.Module:
        """The last block's first LayerNorm: the patch tokens as the last attention reads them.

        After the last block only the class token reaches the head, so the patch tokens of the
        block's *output* get no gradient; its input is the last place where every patch token
        still matters (pytorch-grad-cam's recommendation for ViTs).
        """
        return self.vit.blocks[-1].norm1

    def gradcam_reshape_transform(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """Tokens (B, N, C) -> map (B, C, H, W), with H, W and the prefix taken from the model."""
        return functools.partial(
            tokens_to_map, grid_size=self.grid_size, num_prefix_tokens=self.num_prefix_tokens
        )


def resolve_pretrained_file(weights_path: str | os.PathLike | None = None) -> str:
    """The local file ``pretrained=True`` loads the ImageNet weights from.

    ``weights_path`` or ``$FERCOURSE_VIT_WEIGHTS`` when given; otherwise huggingface_hub's
    ``hf_hub_download``: the cache first, then the hub. Offline without the weights this fails at
    once: with ``HF_HUB_OFFLINE``, and when the hub's host cannot be looked up or connected to
    (one try, a few seconds at most, where the hub client retries for about 25 seconds).

    Raises:
        FileNotFoundError: the given path is not a file.
        RuntimeError: no file, and the hub is offline or unreachable; the message says what to do.
    """
    given = weights_path if weights_path is not None else os.environ.get(WEIGHTS_ENV) or None
    if given is not None:
        path = Path(given).expanduser()
        source = "weights_path" if weights_path is not None else f"${WEIGHTS_ENV}"
        if not path.is_file():
            raise FileNotFoundError(
                f"ViT weights file {path} (from {source}) does not exist. " + _how_to_get_weights()
            )
        return str(path)
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return hf_hub_download(HF_WEIGHTS, "model.safetensors", local_files_only=True)
    except LocalEntryNotFoundError:  # not in the cache: the hub, if it can be had
        pass
    failure: Exception | None = None
    if constants.HF_HUB_OFFLINE:
        reason = "HF_HUB_OFFLINE is set"
    else:
        reason = _unreachable(constants.ENDPOINT)
        if reason is None:
            try:
                return hf_hub_download(HF_WEIGHTS, "model.safetensors")
            except Exception as exc:  # refused, or lost on the way: say what to do instead
                reason, failure = f"{type(exc).__name__}: {exc}", exc
        reason = f"the hub {constants.ENDPOINT} cannot be reached ({reason})"
    raise RuntimeError(
        f"vit_tiny(pretrained=True) needs the ImageNet weights, but {reason} and they are "
        "not in the Hugging Face cache. " + _how_to_get_weights()
    ) from failure


def _unreachable(endpoint: str, timeout_s: float = 3.0) -> str | None:
    """Why ``endpoint``'s host cannot be reached (one look-up and connection), or ``None``.

    Behind a proxy (``$HTTPS_PROXY`` and the like) only the hub client can tell: ``None``.
    """
    url = urllib.parse.urlsplit(endpoint)
    if url.hostname is None or urllib.request.getproxies().get(url.scheme):
        return None
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout_s).close()
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _how_to_get_weights() -> str:
    return (
        f"To fix it: on a machine with internet, download model.safetensors from "
        f"https://huggingface.co/{HF_WEIGHTS} (e.g. `hf download {HF_WEIGHTS} model.safetensors "
        f"--local-dir vit_weights`), copy it here, then either set "
        f"{WEIGHTS_ENV}=/path/to/model.safetensors or call "
        f"fc.models.create_model('vit_tiny', pretrained=True, weights_path='/path/to/model.safetensors'). "
        f"Or train from scratch with pretrained=False."
    )
