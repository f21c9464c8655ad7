"""Explanations and every figure the course draws.

- ``gradcam.py``: ``fc.explain.gradcam(model, faces)`` -> (N, 48, 48) maps, ``overlay``,
  ``plot_gradcam``, ``plot_attention_maps`` (``attention_cnn``), ``plot_expert_weights``
  (``specialists``);
- ``plots.py``: training curves, confusion matrix, per-class scores, predictions, reliability;
- ``data_plots.py``: faces per emotion, augmented faces, class balance, the faces to label
  yourself and identical faces labelled differently (``01_data``);
- ``comparison.py``: a run's models side by side, the course team's results (``08_compare``).

Introduced in ``notebooks/02_baseline.ipynb``.
"""

from __future__ import annotations

from .comparison import plot_comparison, plot_reference_results
from .data_plots import (
    plot_class_balance,
    plot_faces_to_label,
    plot_label_conflicts,
    plot_samples,
    preview_augmentations,
)
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
    "plot_class_balance",
    "plot_comparison",
    "plot_confusion",
    "plot_expert_weights",
    "plot_faces_to_label",
    "plot_gradcam",
    "plot_history",
    "plot_label_conflicts",
    "plot_per_class",
    "plot_predictions",
    "plot_reference_results",
    "plot_reliability",
    "plot_samples",
    "preview_augmentations",
]
