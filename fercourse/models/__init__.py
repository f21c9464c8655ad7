"""The six course models, built by name: ``fc.models.create_model(name, **kwargs)``.

======================  ==========  =======================================================
name                    notebook    idea
======================  ==========  =======================================================
``baseline_cnn``        02          small VGG-style CNN
``attention_cnn``       03          CNN with CBAM channel and spatial attention
``multiscale``          04          branches at 24, 48 and 96 px fused with channel attention
``hybrid_transformer``  05          CNN feature map as tokens for a Transformer encoder
``specialists``         06          eye, mouth and full-face experts with a learned gate
``vit_tiny``            07          timm's ViT-Tiny on 1-channel faces, optionally pretrained
======================  ==========  =======================================================

Every model takes (B, 1, 48, 48) faces from :func:`fercourse.preprocessing.to_tensor` and returns
(B, 7) logits in :data:`fercourse.labels.EMOTIONS` order.
"""

from __future__ import annotations

import importlib

from .layers import FERModel
from .registry import (
    WEIGHT_KWARGS,
    count_flops,
    count_parameters,
    create_model,
    describe_model,
    get_model_builder,
    has_pretrained_weights,
    list_models,
    model_info,
    model_label,
    register_model,
    unregister_model,
)

ARCHITECTURES: tuple[str, ...] = (
    "baseline_cnn",
    "attention_cnn",
    "multiscale",
    "hybrid_transformer",
    "specialists",
    "vit_tiny",
)
"""One module per architecture, in the course's order (the order :func:`list_models` keeps)."""

# Importing an architecture module registers its builder.
for _module in ARCHITECTURES:
    importlib.import_module(f".{_module}", __name__)

__all__ = [
    "ARCHITECTURES",
    "WEIGHT_KWARGS",
    "FERModel",
    "count_flops",
    "count_parameters",
    "create_model",
    "describe_model",
    "get_model_builder",
    "has_pretrained_weights",
    "list_models",
    "model_info",
    "model_label",
    "register_model",
    "unregister_model",
]
