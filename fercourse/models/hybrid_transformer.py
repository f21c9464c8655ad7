"""Hybrid CNN-Transformer: a CNN turns the face into a 6x6 grid of tokens, a Transformer relates them.

Idea: convolutions are good at local texture, self-attention at relations between distant parts
(the brows and the mouth of the same face). The hybrid ViT of Dosovitskiy et al. ("An Image is
Worth 16x16 Words", ICLR 2021, section 3.1 "Hybrid Architecture") and BoTNet (Srinivas et al.,
CVPR 2021) feed a CNN feature map to self-attention layers; here three VGG-style blocks take the
48x48 face to a 6x6 map, a 1x1 convolution projects each position to a token, and a class token
plus learned position embeddings go through a pre-norm Transformer encoder (``nn.TransformerEncoder``,
Xiong et al. 2020 for pre-norm). The class token's output is classified. About 13.9M parameters,
nearly all in the encoder.

Introduced in ``notebooks/05_hybrid.ipynb``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..labels import NUM_CLASSES
from ..preprocessing import IMAGE_SIZE
from .layers import ConvBlock, FERModel
from .registry import register_model

__all__ = ["HybridTransformer"]


@register_model(
    name="hybrid_transformer",
    notebook="05_hybrid",
    recipes={
        # The Transformer half needs a smaller rate and a warm-up or its attention collapses early
        # on, and it improves more slowly, hence the longer patience.
        "full": {"lr": 1e-4, "warmup_epochs": 5, "patience": 20},
        "smoke": {"lr": 5e-4, "max_train_samples": 240, "max_val_samples": 120},
        "class": {"lr": 5e-4, "grad_clip": 1.0},
    },
)
class HybridTransformer(FERModel):
    """CNN stem -> 1x1 projection to tokens -> class token + position embedding -> Transformer.

    Args:
        in_chans: input channels (1: grayscale faces).
        num_classes: number of emotions.
        img_size: side of the input face; the token grid is ``img_size // 2**stem_blocks``.
        width: channels of the stem's first block, doubled at each next block.
        stem_blocks: pooling conv blocks in the stem (3: 48 -> 6, i.e. 36 tokens).
        embed_dim: token width.
        depth: Transformer encoder layers.
        num_heads: attention heads per layer.
        mlp_ratio: width of each layer's MLP relative to ``embed_dim``.
        dropout: dropout inside the encoder and after the stem's blocks.
        head_dropout: dropout before the linear head.
    """

    def __init__(
        self,
        *,
        in_chans: int = 1,
        num_classes: int = NUM_CLASSES,
        img_size: int = IMAGE_SIZE,
        width: int = 64,
        stem_blocks: int = 3,
        embed_dim: int = 512,
        depth: int = 4,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        dropout: float = 0.1,
        head_dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if img_size % 2**stem_blocks:
            raise ValueError(
                f"img_size {img_size} must be divisible by 2**stem_blocks = {2**stem_blocks}"
            )
        widths = [width * 2**i for i in range(stem_blocks)]
        chans = (in_chans, *widths)
        self.stem = nn.Sequential(
            *(ConvBlock(chans[i], chans[i + 1], dropout=dropout) for i in range(stem_blocks))
        )
        self.proj = nn.Conv2d(widths[-1], embed_dim, kernel_size=1)
        side = img_size // 2**stem_blocks
        self.grid_size = (side, side)
        self.num_prefix_tokens = 1
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(
            torch.zeros(1, self.num_prefix_tokens + side * side, embed_dim)
        )
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        layer = nn.TransformerEncoderLayer(
            d_model=embed_dim,
            nhead=num_heads,
            dim_feedforward=int(embed_dim * mlp_ratio),
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,  # pre-norm: trains stably without a long warm-up
        )
        self.encoder = nn.TransformerEncoder(
            layer, num_layers=depth, norm=nn.LayerNorm(embed_dim), enable_nested_tensor=False
        )
        self.num_features = embed_dim
        self.head = nn.Sequential(nn.Dropout(head_dropout), nn.Linear(embed_dim, num_classes))

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 48, 48) -> token map (B, embed_dim, 6, 6): one token per position of the grid."""
        return self.proj(self.stem(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 48, 48) -> encoded tokens (B, 1 + 36, embed_dim), class token first."""
        return self.encoder(self.embed_tokens(x))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Encoded tokens (B, N, D) -> (B, num_classes) logits, read from the class token."""
        return self.head(features[:, 0])

    def embed_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 48, 48) -> the encoder's input (B, 1 + 36, embed_dim): class token first, plus
        the position embedding (what :meth:`forward_features` feeds to the encoder)."""
        tokens = self.forward_tokens(x).flatten(2).transpose(1, 2)
        if tokens.shape[1] != self.pos_embed.shape[1] - self.num_prefix_tokens:
            raise ValueError(
                f"expected {self.grid_size[0]}x{self.grid_size[1]} tokens (img_size "
                f"{self.grid_size[0] * 2 ** len(self.stem)}), got {tokens.shape[1]}: check the input size"
            )
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        return torch.cat([cls, tokens], dim=1) + self.pos_embed

    @torch.no_grad()
    def attention_maps(self, x: torch.Tensor, *, layer: int = -1) -> torch.Tensor:
        """How much the class token attends to each grid position, per head, in one layer.

        Args:
            x: (B, 1, 48, 48) normalised faces.
            layer: the encoder layer (default: the last, whose class token the head reads).

        Returns:
            (B, num_heads, H, W) attention weights of the class token over the token grid (each
            head's weights over all tokens, the class token included, sum to 1). The model runs
            in eval mode for this call and gets its mode back.
        """
        was_training = self.training
        self.eval()
        try:
            layers = self.encoder.layers
            index = range(len(layers))[layer]
            h = self.embed_tokens(x)
            for block in layers[:index]:
                h = block(h)
            block = layers[index]
            q = block.norm1(h) if block.norm_first else h
            _, weights = block.self_attn(q, q, q, need_weights=True, average_attn_weights=False)
            grid = weights[:, :, 0, self.num_prefix_tokens :]
            return grid.reshape(*grid.shape[:2], *self.grid_size)
        finally:
            self.train(was_training)

    def gradcam_target_layer(self) -> nn.Module:
        """The 1x1 projection (6x6 map): the last layer that is still an image, one position per
        token the encoder reads, so the CAM says which tokens (face regions) the decision used.
        """
        return self.proj
