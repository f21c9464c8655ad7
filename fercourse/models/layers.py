"""Building blocks shared by the course models, and the interface every model follows.

:class:`FERModel` is the contract of ``docs/ARCHITECTURE.md``: ``forward_features`` ->
``forward_head`` (as in timm), plus the one layer Grad-CAM looks at. :class:`ConvBlock` is the
VGG-style "conv-bn-relu twice, then pool" unit that four of the six models stack. Introduced in
``notebooks/02_baseline.ipynb``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["ConvBNReLU", "ConvBlock", "FERModel", "tokens_to_map"]


class FERModel(nn.Module):
    """Base class of the course models: (B, 1, 48, 48) normalised faces in, (B, 7) logits out.

    Subclasses implement :meth:`forward_features` (the image to a feature map or tokens),
    :meth:`forward_head` (features to logits) and :meth:`gradcam_target_layer`; token models also
    override :meth:`gradcam_reshape_transform`. ``model_name`` and ``model_kwargs`` are set by
    :func:`fercourse.models.create_model`.
    """

    model_name: str | None = None
    """The registry name (``create_model`` sets it; checkpoints record it)."""
    model_kwargs: dict = {}  # noqa: RUF012 - replaced per instance by create_model
    """The builder's keyword arguments, JSON-ready (``create_model`` sets them)."""
    pretrained_from: str | None = None
    """Where the starting weights came from; ``None``: random, from scratch (``fc.fit`` records it)."""
    selected_on: str | None = None
    """Where a trained checkpoint was chosen (``"val"``), set by ``fc.fit`` and on loading."""
    distilled: bool = False
    """Has a distillation head (DeiT): ``fc.fit`` switches it on when it distils from a teacher."""

    def set_distilled_training(self, enable: bool = True) -> None:
        """Return (class-head, distillation-head) logits while training (distilled models only)."""
        raise ValueError(f"{type(self).__name__} has no distillation head")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def gradcam_target_layer(self) -> nn.Module:
        """The layer whose activations and gradients Grad-CAM combines (one per model)."""
        raise NotImplementedError

    def gradcam_reshape_transform(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """None for CNNs (the target layer already outputs (B, C, H, W))."""
        return None


class ConvBNReLU(nn.Sequential):
    """3x3 convolution (no bias: batch norm has one), batch norm, ReLU."""

    def __init__(self, in_chans: int, out_chans: int, kernel_size: int = 3) -> None:
        super().__init__(
            nn.Conv2d(in_chans, out_chans, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_chans),
            nn.ReLU(),  # not in place: Grad-CAM hooks keep a reference to block outputs
        )


class ConvBlock(nn.Module):
    """Two :class:`ConvBNReLU`, an optional attention module, then 2x2 max pooling and dropout.

    Args:
        in_chans: input channels.
        out_chans: output channels of both convolutions.
        pool: halve the resolution at the end (False for a last block that feeds global pooling).
        dropout: dropout probability after pooling (0 disables it).
        attention: a module applied to the convolutions' output before pooling (CBAM in
            ``attention_cnn``); identity by default.
    """

    def __init__(
        self,
        in_chans: int,
        out_chans: int,
        *,
        pool: bool = True,
        dropout: float = 0.0,
        attention: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            ConvBNReLU(in_chans, out_chans), ConvBNReLU(out_chans, out_chans)
        )
        self.attention = attention if attention is not None else nn.Identity()
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.pool(self.attention(self.convs(x))))


def tokens_to_map(
    tokens: torch.Tensor, grid_size: tuple[int, int], num_prefix_tokens: int
) -> torch.Tensor:
    """Turn transformer tokens (B, prefix + H*W, C) into a feature map (B, C, H, W).

    The prefix tokens (class token, registers) carry no position and are dropped. ``grid_size``
    and ``num_prefix_tokens`` come from the model (``patch_embed.grid_size``,
    ``num_prefix_tokens``): a hard-coded 14x14 grid is the classic ViT Grad-CAM bug.
    """
    height, width = grid_size
    patches = tokens[:, num_prefix_tokens:, :]
    if patches.shape[1] != height * width:
        raise ValueError(
            f"expected {num_prefix_tokens} prefix tokens + a {height}x{width} grid "
            f"({num_prefix_tokens + height * width} tokens), got {tokens.shape[1]} tokens"
        )
    return patches.reshape(tokens.shape[0], height, width, tokens.shape[2]).permute(0, 3, 1, 2)
