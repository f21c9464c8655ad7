"""Baseline CNN: a small VGG-style network, the reference the other five models are measured against.

Idea: stacks of 3x3 convolutions with batch normalisation, max pooling and dropout (Simonyan &
Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition", ICLR 2015),
shrunk to three blocks for 48x48 faces (48 -> 24 -> 12 -> 6). The head pools the last map to a
2x2 grid rather than to a single vector, so it still knows whether a feature fired in the upper
or the lower half of the face, then classifies with a small MLP. About 0.42M parameters.

Introduced in ``notebooks/02_baseline.ipynb``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..labels import NUM_CLASSES
from .layers import ConvBlock, FERModel
from .registry import register_model

__all__ = ["BaselineCNN"]


@register_model(
    name="baseline_cnn",
    notebook="02_baseline",
    recipes={
        "full": {"lr": 1e-3},
        "smoke": {"lr": 2e-3, "batch_size": 64, "max_train_samples": 3000, "max_val_samples": 400},
        "class": {"lr": 2e-3},
    },
)
class BaselineCNN(FERModel):
    """Three conv blocks (conv-bn-relu x2, max pool, dropout) and an MLP head.

    Args:
        in_chans: input channels (1: grayscale faces).
        num_classes: number of emotions.
        width: channels of the first block; the next two have 2x and 4x as many.
        pool_size: side of the grid the last feature map is average-pooled to before the head.
        hidden: width of the head's hidden layer.
        dropout: dropout after each conv block.
        head_dropout: dropout before the last linear layer.
    """

    def __init__(
        self,
        *,
        in_chans: int = 1,
        num_classes: int = NUM_CLASSES,
        width: int = 32,
        pool_size: int = 2,
        hidden: int = 256,
        dropout: float = 0.25,
        head_dropout: float = 0.5,
    ) -> None:
        super().__init__()
        widths = (width, 2 * width, 4 * width)
        chans = (in_chans, *widths)
        self.blocks = nn.Sequential(
            *(ConvBlock(chans[i], chans[i + 1], dropout=dropout) for i in range(len(widths)))
        )
        self.num_features = widths[-1]
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(pool_size),
            nn.Flatten(),
            nn.Linear(self.num_features * pool_size * pool_size, hidden),
            nn.ReLU(),
            nn.Dropout(head_dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 48, 48) -> (B, 4*width, 6, 6)."""
        return self.blocks(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, num_classes) logits."""
        return self.head(features)

    def gradcam_target_layer(self) -> nn.Module:
        """The last block's convolutions (12x12 map, before its pooling).

        The deepest map that is still spatial; taking it before the pooling doubles the CAM's
        resolution compared with the 6x6 block output.
        """
        return self.blocks[-1].convs
