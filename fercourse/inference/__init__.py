"""Inference: load a trained model, find faces, predict emotions (``notebooks/09_mirror.ipynb``).

- :class:`EmotionModel` (``.load``, ``.predict``, ``.predict_batch``) and :class:`Prediction`;
- :class:`FaceDetector` (OpenCV Haar cascade) whose crops go through
  :func:`fercourse.preprocessing.prepare_face`, the one preprocessing path;
- :func:`export_onnx` and :class:`OnnxRunner`, the optional ONNX Runtime backend
  (``EmotionModel.load(..., backend="onnx")``);
- :func:`bundle_model`: ship a checkpoint trained on FER2013 as the package's default model
  (``EmotionModel.load("default")``), with its model card and :func:`reference_prediction`.
"""

from __future__ import annotations

from .bundle import bundle_model, reference_prediction
from .emotion_model import (
    DEFAULT_MODEL_STEM,
    UNSURE_EMOJI,
    CheckpointInfo,
    CheckpointWarning,
    EmotionModel,
    NoModelError,
    Prediction,
    checkpoint_candidates,
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
    "CheckpointWarning",
    "EmotionModel",
    "FaceDetector",
    "NoModelError",
    "OnnxRunner",
    "Prediction",
    "bundle_model",
    "cached_export",
    "checkpoint_candidates",
    "default_checkpoint",
    "export_onnx",
    "find_checkpoints",
    "iou",
    "prediction_html",
    "reference_prediction",
    "resolve_checkpoint",
]
