"""Attention CNN: the baseline's conv blocks refined by CBAM channel and spatial attention.

Idea: CBAM, the Convolutional Block Attention Module (Woo, Park, Lee & Kweon, "CBAM: Convolutional
Block Attention Module", ECCV 2018). After each conv block the network re-weights its feature
map twice: *channel attention* asks "which features matter for this face" (an MLP on the
average- and max-pooled channels, as in Squeeze-and-Excitation), *spatial attention* asks
"where" (a 7x7 convolution over the channel-wise average and maximum), giving one map per block
in [0, 1] that the notebook can show on the face. Four blocks, 48 -> 24 -> 12 -> 6, global
average pooling and a linear head; about 1.19M parameters.

Introduced in ``notebooks/03_attention.ipynb``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..labels import NUM_CLASSES
from .layers import ConvBlock, FERModel
from .registry import register_model

__all__ = ["CBAM", "AttentionCNN", "ChannelAttention", "SpatialAttention"]


class ChannelAttention(nn.Module):
    """CBAM's channel attention: (B, C, H, W) -> weights (B, C, 1, 1) in [0, 1].

    Args:
        channels: channels of the feature map.
        reduction: the shared MLP's bottleneck is ``channels // reduction`` wide (at least
            ``min_hidden``).
        min_hidden: smallest bottleneck width, so narrow early layers keep a usable MLP.
    """

    def __init__(self, channels: int, reduction: int = 16, min_hidden: int = 8) -> None:
        super().__init__()
        hidden = max(channels // reduction, min_hidden)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, channels, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(F.adaptive_avg_pool2d(x, 1))
        peak = self.mlp(F.adaptive_max_pool2d(x, 1))
        return torch.sigmoid(avg + peak)


class SpatialAttention(nn.Module):
    """CBAM's spatial attention: (B, C, H, W) -> a map (B, 1, H, W) in [0, 1]."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.bn(self.conv(pooled)))


class CBAM(nn.Module):
    """Channel attention, then spatial attention, each multiplied into the feature map."""

    def __init__(self, channels: int, reduction: int = 16, spatial_kernel: int = 7) -> None:
        super().__init__()
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(spatial_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.channel(x)
        return x * self.spatial(x)


@register_model(
    name="attention_cnn",
    notebook="03_attention",
    recipes={
        "full": {"lr": 1e-3},
        "smoke": {"lr": 2e-3, "batch_size": 64, "max_train_samples": 2000, "max_val_samples": 300},
        "class": {"lr": 2e-3},
    },
)
class AttentionCNN(FERModel):
    """Four conv blocks, each followed by CBAM; global average pooling and a linear head.

    Args:
        in_chans: input channels (1: grayscale faces).
        num_classes: number of emotions.
        width: channels of the first block; each next block doubles them (32-64-128-256).
        reduction: CBAM channel-MLP reduction ratio (16 in the paper).
        spatial_kernel: CBAM spatial-attention kernel size (7 in the paper).
        dropout: dropout after each pooled block.
        head_dropout: dropout before the linear head.
    """

    def __init__(
        self,
        *,
        in_chans: int = 1,
        num_classes: int = NUM_CLASSES,
        width: int = 32,
        reduction: int = 16,
        spatial_kernel: int = 7,
        dropout: float = 0.25,
        head_dropout: float = 0.4,
    ) -> None:
        super().__init__()
        widths = (width, 2 * width, 4 * width, 8 * width)
        chans = (in_chans, *widths)
        last = len(widths) - 1
        self.blocks = nn.Sequential(
            *(
                ConvBlock(
                    chans[i],
                    chans[i + 1],
                    pool=i < last,  # the last block works at 6x6 and feeds global pooling
                    dropout=dropout if i < last else 0.0,
                    attention=CBAM(chans[i + 1], reduction, spatial_kernel),
                )
                for i in range(len(widths))
            )
        )
        self.num_features = widths[-1]
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(head_dropout),
            nn.Linear(self.num_features, num_classes),
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 48, 48) -> (B, 8*width, 6, 6)."""
        return self.blocks(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, num_classes) logits."""
        return self.head(features)

    def gradcam_target_layer(self) -> nn.Module:
        """The last block's CBAM (6x6 map): the features after both attentions, right before the
        global pooling, i.e. exactly what the classifier reads."""
        return self.blocks[-1].attention

    @torch.no_grad()
    def spatial_attention_maps(
        self, x: torch.Tensor, *, size: int | None = None
    ) -> list[torch.Tensor]:
        """CBAM's spatial attention map of every block, for a batch of faces.

        The model runs in eval mode for this call (batch norm uses its running statistics) and
        gets its mode back afterwards.

        Args:
            x: (B, 1, 48, 48) normalised faces.
            size: if given, every map is upsampled (bilinear) to ``size`` x ``size``, e.g. 48 to
                lay them over the faces.

        Returns:
            One (B, 1, h, w) tensor per block in [0, 1], from the first block (48x48) to the last
            (6x6).
        """
        maps: list[torch.Tensor] = []
        hooks = [
            block.attention.spatial.register_forward_hook(lambda _m, _i, out: maps.append(out))
            for block in self.blocks
        ]
        was_training = self.training
        self.eval()
        try:
            self(x)
        finally:
            self.train(was_training)
            for hook in hooks:
                hook.remove()
        if size is not None:
            maps = [
                F.interpolate(m, size=(size, size), mode="bilinear", align_corners=False)
                for m in maps
            ]
        return maps
