"""Multi-scale CNN: the same face seen at 24, 48 and 96 pixels, fused with channel attention.

Idea: expressions live at several scales at once: the overall shape of the mouth and brows is
visible at 24 px, wrinkles around the eyes need more pixels. Inception (Szegedy et al., CVPR 2015)
mixes kernel sizes inside one block; here, in the spirit of multi-scale input networks (e.g.
Farabet et al., TPAMI 2013), the whole face is resized to each scale and read by its own small
CNN branch. Each branch pools down to the same 6x6 grid, the maps are concatenated, and
Squeeze-and-Excitation style channel attention (Hu et al., CVPR 2018; the CBAM variant from
``attention_cnn``) decides how much each scale's channels count for this face before a 1x1
convolution fuses them. :meth:`MultiScaleCNN.scale_attention` reports that weighting per scale.
About 0.96M parameters.

The resizing happens inside the network with ``F.interpolate``: area averaging to shrink (like
``fercourse.preprocessing.RESIZE_INTERPOLATION``), bilinear to enlarge.

Introduced in ``notebooks/04_multiscale.ipynb``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..labels import NUM_CLASSES
from .attention_cnn import ChannelAttention
from .layers import ConvBlock, ConvBNReLU, FERModel
from .registry import register_model

__all__ = ["MultiScaleCNN", "ScaleBranch", "resize_faces"]


def resize_faces(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a (B, C, H, W) batch to ``size`` x ``size``: area to shrink, bilinear to enlarge."""
    if x.shape[-2:] == (size, size):
        return x
    if size < x.shape[-1]:
        return F.interpolate(x, size=(size, size), mode="area")
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


class ScaleBranch(nn.Module):
    """A conv branch for one input scale: pooling blocks until the map is ``grid`` x ``grid``.

    A 96 px branch needs four 2x poolings to reach 6x6, a 24 px branch two; channels double at
    every block and end at ``out_chans`` in all branches, so their maps can be concatenated.
    """

    def __init__(
        self, scale: int, *, in_chans: int, out_chans: int, grid: int, dropout: float
    ) -> None:
        super().__init__()
        steps = math.log2(scale / grid) if scale % grid == 0 else -1.0
        if steps < 1 or not steps.is_integer():
            raise ValueError(
                f"scale {scale} px must be the grid ({grid}) times a power of two >= 2, "
                f"e.g. {grid * 4}, {grid * 8} or {grid * 16}"
            )
        depth = int(steps)
        widths = [max(out_chans >> (depth - 1 - i), 8) for i in range(depth)]
        chans = (in_chans, *widths)
        self.scale = scale
        self.blocks = nn.Sequential(
            *(ConvBlock(chans[i], chans[i + 1], dropout=dropout) for i in range(depth))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(resize_faces(x, self.scale))


class ScaleFusion(nn.Module):
    """Channel attention over the concatenated branch maps, then a 1x1 conv-bn-relu fusion."""

    def __init__(self, in_chans: int, out_chans: int, reduction: int) -> None:
        super().__init__()
        self.attention = ChannelAttention(in_chans, reduction)
        self.fuse = ConvBNReLU(in_chans, out_chans, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(x * self.attention(x))


@register_model(
    name="multiscale",
    notebook="04_multiscale",
    recipes={
        "full": {"lr": 1e-3},
        "smoke": {"lr": 2e-3, "max_train_samples": 1000, "max_val_samples": 200},
        "class": {"lr": 2e-3},
    },
)
class MultiScaleCNN(FERModel):
    """Branches at several input scales, fused by channel attention into one 6x6 map.

    Args:
        in_chans: input channels (1: grayscale faces).
        num_classes: number of emotions.
        scales: input sizes of the branches in pixels; each must be ``grid`` times a power of two.
        width: the branches' last blocks have ``4 * width`` channels.
        grid: side of the common feature map the branches pool down to.
        fused_dim: channels after fusion.
        reduction: channel-attention reduction ratio.
        dropout: dropout after each pooled block.
        head_dropout: dropout before the linear head.
    """

    def __init__(
        self,
        *,
        in_chans: int = 1,
        num_classes: int = NUM_CLASSES,
        scales: Sequence[int] = (24, 48, 96),
        width: int = 32,
        grid: int = 6,
        fused_dim: int = 256,
        reduction: int = 16,
        dropout: float = 0.2,
        head_dropout: float = 0.4,
    ) -> None:
        super().__init__()
        if not scales:
            raise ValueError("multiscale needs at least one scale")
        self.scales = tuple(int(s) for s in scales)
        branch_chans = 4 * width
        self.branches = nn.ModuleList(
            ScaleBranch(s, in_chans=in_chans, out_chans=branch_chans, grid=grid, dropout=dropout)
            for s in self.scales
        )
        self.branch_chans = branch_chans
        self.fusion = ScaleFusion(branch_chans * len(self.scales), fused_dim, reduction)
        self.num_features = fused_dim
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(head_dropout),
            nn.Linear(fused_dim, num_classes),
        )

    def branch_maps(self, x: torch.Tensor) -> torch.Tensor:
        """The branches' maps concatenated along channels: (B, len(scales) * 4*width, grid, grid)."""
        return torch.cat([branch(x) for branch in self.branches], dim=1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 48, 48) -> fused map (B, fused_dim, grid, grid)."""
        return self.fusion(self.branch_maps(x))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, num_classes) logits."""
        return self.head(features)

    def gradcam_target_layer(self) -> nn.Module:
        """The fusion (6x6 map): the first layer where every scale contributes, so the CAM shows
        what the scales decided together rather than one branch's view."""
        return self.fusion

    @torch.no_grad()
    def scale_attention(self, x: torch.Tensor) -> torch.Tensor:
        """Mean channel-attention weight of each branch's channels, per face: (B, len(scales)).

        A larger value means the fusion let more of that scale through for this face. The model
        runs in eval mode for this call and gets its mode back.
        """
        was_training = self.training
        self.eval()
        try:
            weights = self.fusion.attention(self.branch_maps(x)).flatten(1)
        finally:
            self.train(was_training)
        return weights.view(x.shape[0], len(self.scales), self.branch_chans).mean(dim=2)
