"""Inference: load a trained model, find faces, predict emotions (``notebooks/09_mirror.ipynb``).

- :class:`EmotionModel` (``.load``, ``.predict``, ``.predict_batch``) and :class:`Prediction`;
- :class:`FaceDetector` (OpenCV Haar cascade) whose crops go through
  :func:`fercourse.preprocessing.prepare_face`, the one preprocessing path;
- :func:`export_onnx` and :class:`OnnxRunner`, the optional ONNX Runtime backend
  (``EmotionModel.load(..., backend="onnx")``).
"""

from __future__ import annotations

from .emotion_model import (
    DEFAULT_MODEL_STEM,
    UNSURE_EMOJI,
    CheckpointInfo,
    EmotionModel,
    NoModelError,
    Prediction,
    card_val_accuracy,
    default_checkpoint,
    find_checkpoints,
    prediction_html,
    resolve_checkpoint,
)
from .face_detector import Box, FaceDetector, iou
from .onnx import OnnxRunner, cached_export, export_onnx

__all__ = [
    "DEFAULT_MODEL_STEM",
    "UNSURE_EMOJI",
    "Box",
    "CheckpointInfo",
    "EmotionModel",
    "FaceDetector",
    "NoModelError",
    "OnnxRunner",
    "Prediction",
    "cached_export",
    "card_val_accuracy",
    "default_checkpoint",
    "export_onnx",
    "find_checkpoints",
    "iou",
    "prediction_html",
    "resolve_checkpoint",
]
