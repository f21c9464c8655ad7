"""The live webcam emoji mirror (``notebooks/09_mirror.ipynb``).

- :func:`launch` / :class:`Mirror`: camera, controls, counters and a snapshot mode in one widget;
- :class:`FrameTap`: the anywidget that streams camera frames into Python (~30 frames/s);
- :class:`FrameProcessor`: the per-frame work (detect, ``prepare_face``, classify, smooth);
- :class:`FaceTracks`: per-face EMA of probabilities, faces matched across frames by IoU;
- :func:`snapshot`, :func:`sample_photo`: the same pipeline on a still picture;
- :func:`moving_frames`, :func:`browser_frame`: a webcam-like clip for the benchmark and tests;
- :func:`serve` / :class:`VoilaServer`: the mirror as a classroom page (Voila on localhost with a
  random token; ``python -m fercourse mirror serve``).
"""

from __future__ import annotations

from .app import (
    BUNDLED_MODEL_MESSAGE,
    NO_MODEL_MESSAGE,
    Mirror,
    Snapshot,
    decode_image,
    launch,
    model_choices,
    model_message,
    snapshot,
)
from .demo import browser_frame, moving_frames, sample_photo
from .drawing import annotate, result_html
from .pipeline import FaceResult, FrameProcessor, FrameResult, live_detector
from .server import VoilaServer, serve
from .smoothing import FaceTracks, Track
from .tap import FrameTap

__all__ = [
    "BUNDLED_MODEL_MESSAGE",
    "NO_MODEL_MESSAGE",
    "FaceResult",
    "FaceTracks",
    "FrameProcessor",
    "FrameResult",
    "FrameTap",
    "Mirror",
    "Snapshot",
    "Track",
    "VoilaServer",
    "annotate",
    "browser_frame",
    "decode_image",
    "launch",
    "live_detector",
    "model_choices",
    "model_message",
    "moving_frames",
    "result_html",
    "sample_photo",
    "serve",
    "snapshot",
]
