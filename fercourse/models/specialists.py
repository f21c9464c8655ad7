"""Specialists: eye-region, mouth-region and full-face experts, mixed by a learned gate.

Idea: a mixture of experts (Jacobs, Jordan, Nowlan & Hinton, "Adaptive Mixtures of Local
Experts", Neural Computation 1991) where each expert is told where to look: FACS describes
expressions as action units of the brows and eyes (upper face) and of the mouth (lower face)
(Ekman & Friesen, 1978), and region-based FER networks (e.g. Wang et al., "Region Attention
Networks", IEEE TIP 2020) classify face regions separately. Here the upper half of the face
(brows, eyes), the lower half (nose tip, mouth, chin) and the whole face each go through their
own small CNN, which produces an embedding and its own logits. A gating network reads the three
embeddings and gives a softmax weight per expert and per face; the prediction is the weighted
sum of the experts' logits, so :meth:`Specialists.expert_weights` shows which region decided.
About 0.78M parameters.

For Grad-CAM the three experts' last feature maps are laid out on one face-shaped canvas
(:class:`RegionCanvas`), so a single CAM covers all three experts in face coordinates.

Introduced in ``notebooks/06_ensemble.ipynb``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..labels import NUM_CLASSES
from .layers import ConvBlock, FERModel
from .registry import register_model

__all__ = ["EXPERTS", "Expert", "RegionCanvas", "Specialists"]

EXPERTS: tuple[str, ...] = ("eyes", "mouth", "face")
"""Expert names, in the order of :meth:`Specialists.expert_weights`' columns."""


class Expert(nn.Module):
    """A small CNN for one face region: two pooling conv blocks and a last, unpooled one.

    ``features`` gives a map at 1/4 of the region's resolution; ``embed`` pools it to a vector and
    ``classify`` turns that into the expert's own logits.
    """

    def __init__(
        self, *, in_chans: int, width: int, num_classes: int, dropout: float, head_dropout: float
    ) -> None:
        super().__init__()
        widths = (width, 2 * width, 4 * width)
        self.features = nn.Sequential(
            ConvBlock(in_chans, widths[0], dropout=dropout),
            ConvBlock(widths[0], widths[1], dropout=dropout),
            ConvBlock(widths[1], widths[2], pool=False),
        )
        self.embed = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classify = nn.Sequential(nn.Dropout(head_dropout), nn.Linear(widths[2], num_classes))
        self.num_features = widths[2]


class RegionCanvas(nn.Module):
    """Place the eyes, mouth and face maps on one canvas in face coordinates.

    Output (B, 3C, H, W): channels ``[0, C)`` hold the eye expert's map in the upper rows (zeros
    below), ``[C, 2C)`` the mouth expert's map in the lower rows, ``[2C, 3C)`` the face expert's
    map everywhere. :meth:`split` undoes it exactly. The canvas only rearranges tensors (no
    weights); it exists so Grad-CAM has one layer that sees every expert.
    """

    def forward(self, eyes: torch.Tensor, mouth: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        if eyes.shape[-2] + mouth.shape[-2] != face.shape[-2]:
            raise ValueError(
                f"region maps of heights {eyes.shape[-2]} + {mouth.shape[-2]} do not tile the "
                f"face map of height {face.shape[-2]}"
            )
        upper = torch.cat([eyes, torch.zeros_like(mouth)], dim=2)
        lower = torch.cat([torch.zeros_like(eyes), mouth], dim=2)
        return torch.cat([upper, lower, face], dim=1)

    @staticmethod
    def split(canvas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Canvas -> (eyes, mouth, face) maps, the inverse of :meth:`forward`."""
        chans, rows = canvas.shape[1] // 3, canvas.shape[2] // 2
        return (
            canvas[:, :chans, :rows],
            canvas[:, chans : 2 * chans, rows:],
            canvas[:, 2 * chans :],
        )


@register_model(
    name="specialists",
    notebook="06_ensemble",
    recipes={
        "full": {"lr": 1e-3},
        "smoke": {"lr": 2e-3, "batch_size": 64, "max_train_samples": 1500, "max_val_samples": 300},
        "class": {"lr": 2e-3},
    },
)
class Specialists(FERModel):
    """Three region experts and a softmax gate over them.

    Args:
        in_chans: input channels (1: grayscale faces).
        num_classes: number of emotions.
        width: channels of each expert's first block (doubled at each next block); 30 puts the
            three experts and the gate at ~0.78M parameters, near the original's ~0.8M.
        gate_hidden: hidden width of the gating MLP.
        dropout: dropout after each pooled block of the experts.
        head_dropout: dropout before each expert's linear classifier.
    """

    experts: tuple[str, ...] = EXPERTS

    def __init__(
        self,
        *,
        in_chans: int = 1,
        num_classes: int = NUM_CLASSES,
        width: int = 30,
        gate_hidden: int = 64,
        dropout: float = 0.25,
        head_dropout: float = 0.4,
    ) -> None:
        super().__init__()
        kwargs = dict(
            in_chans=in_chans,
            width=width,
            num_classes=num_classes,
            dropout=dropout,
            head_dropout=head_dropout,
        )
        self.eyes = Expert(**kwargs)
        self.mouth = Expert(**kwargs)
        self.face = Expert(**kwargs)
        self.canvas = RegionCanvas()
        dim = self.face.num_features
        self.gate = nn.Sequential(
            nn.Linear(len(EXPERTS) * dim, gate_hidden),
            nn.ReLU(),
            nn.Linear(gate_hidden, len(EXPERTS)),
        )
        self.num_features = dim

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 48, 48) -> canvas (B, 3C, 12, 12) of the three experts' maps (see RegionCanvas).

        The eye expert reads rows 0-23 (brows, eyes), the mouth expert rows 24-47 (nose tip,
        mouth, chin): FER2013 faces are roughly aligned, eyes near row 18, mouth near row 36.
        """
        half = x.shape[-2] // 2
        return self.canvas(
            self.eyes.features(x[..., :half, :]),
            self.mouth.features(x[..., half:, :]),
            self.face.features(x),
        )

    def forward_experts(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """Canvas -> ``logits`` (B, K), ``expert_logits`` (B, 3, K) and gate ``weights`` (B, 3)."""
        maps = RegionCanvas.split(features)
        experts = (self.eyes, self.mouth, self.face)
        embeddings = [expert.embed(m) for expert, m in zip(experts, maps, strict=True)]
        expert_logits = torch.stack(
            [expert.classify(e) for expert, e in zip(experts, embeddings, strict=True)], dim=1
        )
        weights = torch.softmax(self.gate(torch.cat(embeddings, dim=1)), dim=1)
        logits = (weights.unsqueeze(-1) * expert_logits).sum(dim=1)
        return {"logits": logits, "expert_logits": expert_logits, "weights": weights}

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Canvas -> (B, num_classes) logits: the gate-weighted sum of the experts' logits."""
        return self.forward_experts(features)["logits"]

    @torch.no_grad()
    def expert_weights(self, x: torch.Tensor) -> torch.Tensor:
        """The gate's weight of each expert, per face: (B, 3), rows sum to 1, columns :data:`EXPERTS`.

        The model runs in eval mode for this call and gets its mode back.
        """
        was_training = self.training
        self.eval()
        try:
            return self.forward_experts(self.forward_features(x))["weights"]
        finally:
            self.train(was_training)

    def gradcam_target_layer(self) -> nn.Module:
        """The region canvas (12x12): all three experts' last maps in face coordinates, so the
        CAM shows the eye expert's evidence in the upper half, the mouth expert's in the lower
        half and the face expert's everywhere, each weighted by how much it moved the logit."""
        return self.canvas
