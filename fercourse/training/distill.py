"""Knowledge distillation from a CNN teacher, DeiT style.

Idea (Touvron et al., "Training data-efficient image transformers & distillation through
attention", ICML 2021): a Vision Transformer trained on little data learns far better when a
convnet that already works tells it, image by image, what it sees. DeiT adds a *distillation
token* next to the class token; the class token's head learns the labels, the distillation
token's head learns the teacher's predictions, and at test time the two heads are averaged
(``fc.models.create_model("vit_tiny", distilled=True)``). A student without a second head (any
other course model) uses its one head for both terms, which is classic knowledge distillation
(Hinton et al., 2015).

The teacher runs in eval mode, without gradients, on the very batch the student sees (after
augmentation), so it labels what the student is actually looking at. Introduced in
``notebooks/07_vit.ipynb``; ``TrainConfig.teacher`` switches it on in ``fc.fit``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DISTILL_MODES", "DistillationLoss", "load_teacher"]

DISTILL_MODES: tuple[str, ...] = ("hard", "soft")
"""``hard``: cross-entropy with the teacher's top class (DeiT's better variant); ``soft``:
KL divergence to the teacher's temperature-softened probabilities."""


class DistillationLoss(nn.Module):
    """``(1 - alpha) * base(class head, labels) + alpha * distillation(second head, teacher)``.

    Args:
        base: the label loss (e.g. ``nn.CrossEntropyLoss(label_smoothing=0.1)``).
        mode: ``"hard"`` or ``"soft"`` (see :data:`DISTILL_MODES`).
        alpha: weight of the distillation term (DeiT: 0.5 for hard, 0.1 for soft).
        tau: softmax temperature of the soft variant (the KL term is scaled by ``tau**2`` so its
            gradients keep their size as ``tau`` changes).

    Example:
        >>> loss_fn = DistillationLoss(nn.CrossEntropyLoss(), mode="hard", alpha=0.5)
        >>> cls, dist = torch.randn(4, 7), torch.randn(4, 7)
        >>> loss_fn((cls, dist), torch.tensor([0, 1, 2, 3]), torch.randn(4, 7)).ndim
        0
    """

    def __init__(
        self, base: nn.Module, *, mode: str = "hard", alpha: float = 0.5, tau: float = 1.0
    ) -> None:
        super().__init__()
        if mode not in DISTILL_MODES:
            raise ValueError(f"distillation mode must be one of {DISTILL_MODES}, got {mode!r}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"distillation alpha must be in [0, 1], got {alpha}")
        if tau <= 0:
            raise ValueError(f"distillation tau must be positive, got {tau}")
        self.base, self.mode, self.alpha, self.tau = base, mode, alpha, tau

    def forward(
        self,
        outputs: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
        targets: torch.Tensor,
        teacher_logits: torch.Tensor,
    ) -> torch.Tensor:
        """The loss of one batch.

        Args:
            outputs: the student's logits, or (class-head, distillation-head) logits.
            targets: labels (B,) or soft targets (B, 7) from MixUp / CutMix.
            teacher_logits: the teacher's logits on the same inputs (B, 7).
        """
        cls, dist = outputs if isinstance(outputs, tuple) else (outputs, outputs)
        label_loss = self.base(cls.float(), targets)
        teacher_logits = teacher_logits.float().detach()
        if self.mode == "hard":
            teacher_loss = F.cross_entropy(dist.float(), teacher_logits.argmax(1))
        else:
            teacher_loss = F.kl_div(
                F.log_softmax(dist.float() / self.tau, dim=1),
                F.log_softmax(teacher_logits / self.tau, dim=1),
                reduction="batchmean",
                log_target=True,
            ) * (self.tau**2)
        return (1.0 - self.alpha) * label_loss + self.alpha * teacher_loss


def load_teacher(spec: str, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The teacher model named by ``TrainConfig.teacher``, frozen, in eval mode.

    Args:
        spec: ``"default"`` (the model bundled with the package, trained on FER2013), a run
            folder written by ``fc.fit`` (its ``best`` checkpoint) or a checkpoint stem / file.
        device: where the teacher runs (the student's device).

    Returns:
        ``(teacher, card)``; the card says what the teacher is and which split it was trained on.

    Raises:
        FileNotFoundError: ``spec`` names nothing that holds a checkpoint.
        fercourse.checkpoint.CheckpointError: the checkpoint cannot be read.
    """
    from .. import checkpoint as ckpt

    if spec == "default":
        stem = ckpt.DEFAULT_MODEL_STEM
    else:
        path = Path(spec).expanduser()
        if path.is_dir():
            stem = path / "best"
        elif path.suffix in (ckpt.WEIGHTS_SUFFIX, ckpt.CARD_SUFFIX):
            stem = path.with_suffix("")
        else:
            stem = path
    if not stem.with_suffix(ckpt.CARD_SUFFIX).is_file():
        raise FileNotFoundError(
            f"teacher {spec!r}: no checkpoint at {stem}.json (give 'default', a run folder or a "
            "checkpoint written by fc.fit / fc.checkpoint.save_checkpoint)"
        )
    teacher, card = ckpt.load_checkpoint(stem, map_location=device)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    card = dict(card, path=str(stem))
    return teacher, card
