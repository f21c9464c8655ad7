"""Explanations: Grad-CAM for every model, attention maps, expert weights, training plots.

``fc.explain.gradcam(model, faces)`` -> (N, 48, 48) maps; ``overlay(face, cam)`` -> RGB image;
``plot_gradcam``, ``plot_attention_maps`` (``attention_cnn``), ``plot_expert_weights``
(``specialists``). Introduced in ``notebooks/02_baseline.ipynb``.
"""

from __future__ import annotations

from .gradcam import (
    METHODS,
    gradcam,
    overlay,
    plot_attention_maps,
    plot_expert_weights,
    plot_gradcam,
)
from .plots import (
    plot_confusion,
    plot_history,
    plot_per_class,
    plot_predictions,
    plot_reliability,
)

__all__ = [
    "METHODS",
    "gradcam",
    "overlay",
    "plot_attention_maps",
    "plot_confusion",
    "plot_expert_weights",
    "plot_gradcam",
    "plot_history",
    "plot_per_class",
    "plot_predictions",
    "plot_reliability",
]
