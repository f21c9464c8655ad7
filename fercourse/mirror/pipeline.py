"""The Python side of one mirror frame: find faces, classify them all, smooth, decide.

:class:`FrameProcessor` is the exact function the live widget calls for every frame it receives,
the snapshot mode calls for a still photo, and ``python -m fercourse bench mirror`` times::

    frame (H, W, 3|4) uint8 from the browser
      -> gray                                  fc.preprocessing.to_gray
      -> face boxes                            FaceDetector: full scan every `rescan_every` frames,
                                               otherwise a ~1 ms search around each known face
      -> 48x48 faces                           fc.preprocessing.prepare_face (crop at full frame size)
      -> probabilities, all faces at once      EmotionModel.probabilities (to_tensor + 1 forward)
      -> per-face EMA                          FaceTracks (faces matched across frames by IoU)
      -> emoji, or "?" below the threshold

Why scan small and crop from the frame as sent: Haar detection dominates a frame's cost and grows
with the pixels scanned, so the detector looks at most 160 px wide (a face in a webcam frame is
large), while the crop for the classifier is cut from the frame as the browser sent it. At the
default 160x120 a laptop-webcam face is 40-60 px, about FER2013's 48 px; send 320 px (as JPEG)
for faces further away, at the same detection cost. Introduced in
``notebooks/09_mirror.ipynb``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import preprocessing
from ..inference.emotion_model import UNSURE_EMOJI, EmotionModel, Prediction
from ..inference.face_detector import Box, FaceDetector
from ..labels import EMOJI, EMOTIONS
from .smoothing import FaceTracks

LIVE_DETECT_WIDTH = 160
"""Width the live mirror scans for faces at (a face >= ~15 % of the frame's width is found)."""

LIVE_MIN_NEIGHBORS = 3
"""Haar hits needed for a face at 160 px: 5 misses real faces that small, 3 rarely adds false ones."""


LIVE_THREADS = 1
"""PyTorch / ONNX Runtime threads for the live classifier. A batch of a few 48x48 faces is too small
to split across cores, and the browser, the Jupyter server and the kernel share them: measured on
a busy 2-core machine, 2 threads made a frame several times slower than 1."""


def live_detector() -> FaceDetector:
    """The detector the live mirror uses: 160 px scans, tuned for webcam faces."""
    return FaceDetector(detect_width=LIVE_DETECT_WIDTH, min_neighbors=LIVE_MIN_NEIGHBORS)


@dataclass
class FaceResult:
    """One face in one frame.

    Attributes:
        box: ``(x, y, w, h)`` in the frame's pixels.
        track_id: the face's number, stable while it stays in view.
        probabilities: smoothed probabilities (7,) in :data:`fercourse.EMOTIONS` order, or
            ``None`` when no model is loaded.
        emotion: the top emotion, or ``None`` (no model, or below the threshold).
        emoji: its emoji, :data:`fercourse.inference.UNSURE_EMOJI` when unsure, ``""`` without a
            model.
        confidence: the top smoothed probability (0 without a model).
    """

    box: Box
    track_id: int
    probabilities: np.ndarray | None = None
    emotion: str | None = None
    emoji: str = ""
    confidence: float = 0.0

    @property
    def sure(self) -> bool:
        """True when an emotion is shown (confident enough)."""
        return self.emotion is not None

    def prediction(self) -> Prediction | None:
        """The smoothed probabilities as a :class:`fercourse.inference.Prediction`."""
        if self.probabilities is None:
            return None
        return Prediction.from_probabilities(self.probabilities)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form sent to the browser."""
        return {
            "box": [int(v) for v in self.box],
            "id": self.track_id,
            "emotion": self.emotion,
            "emoji": self.emoji,
            "confidence": round(float(self.confidence), 4),
            "probabilities": None
            if self.probabilities is None
            else [round(float(p), 4) for p in self.probabilities],
        }


@dataclass
class FrameResult:
    """Everything the mirror knows about one frame.

    Attributes:
        width, height: the frame's size in pixels.
        faces: faces found, largest (the "main face") first.
        scan: ``"full"`` (whole-frame detection), ``"track"`` (search near known faces) or
            ``"off"`` (detection switched off: the whole frame is the face).
        detect_ms: time spent finding faces.
        classify_ms: time spent cropping, classifying and smoothing every face.
        total_ms: the whole frame, gray conversion included.
        model: the model's name, or ``None`` when none is loaded.
    """

    width: int
    height: int
    faces: list[FaceResult] = field(default_factory=list)
    scan: str = "full"
    detect_ms: float = 0.0
    classify_ms: float = 0.0
    total_ms: float = 0.0
    model: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form sent to the browser."""
        return {
            "width": self.width,
            "height": self.height,
            "faces": [f.to_dict() for f in self.faces],
            "scan": self.scan,
            "detect_ms": round(self.detect_ms, 3),
            "classify_ms": round(self.classify_ms, 3),
            "total_ms": round(self.total_ms, 3),
            "model": self.model,
        }


class FrameProcessor:
    """Detect, classify, smooth: the per-frame work of the mirror (see the module docstring).

    Args:
        model: the classifier; ``None`` runs detection only (boxes, no emoji).
        detector: the face detector (default :func:`live_detector`: 160 px scans).
        threshold: below this smoothed confidence the face shows "?" instead of an emoji.
        smoothing: EMA weight of the past per face, in [0, 1) (0 = raw per-frame answers).
        detect_faces: ``False`` treats the whole frame as one face (a face filling the camera).
        rescan_every: full-frame detection every this many frames (1 = every frame); between
            scans each known face is searched for near its last box, which is ~5x cheaper.
        channel_order: channel order of colour frames (the browser sends RGBA: ``"RGB"``).

    Example:
        >>> process = FrameProcessor(fc.EmotionModel.load("auto"))
        >>> result = process(frame)                  # FrameResult
        >>> [(f.box, f.emoji) for f in result.faces]
    """

    def __init__(
        self,
        model: EmotionModel | None = None,
        detector: FaceDetector | None = None,
        *,
        threshold: float = 0.4,
        smoothing: float = 0.6,
        detect_faces: bool = True,
        rescan_every: int = 8,
        channel_order: str = "RGB",
    ) -> None:
        self.model = model
        self.detector = detector if detector is not None else live_detector()
        self.threshold = float(threshold)
        self.tracks = FaceTracks(smoothing)
        self.detect_faces = bool(detect_faces)
        if rescan_every < 1:
            raise ValueError(f"rescan_every must be >= 1, got {rescan_every}")
        self.rescan_every = int(rescan_every)
        self.channel_order = channel_order
        self.frames = 0
        # JupyterLab >= 4.4 with ipykernel 7 delivers widget messages on a kernel subshell (a
        # second thread), so frames may be processed while a cell changes the model or resets.
        self._lock = threading.RLock()

    @property
    def smoothing(self) -> float:
        """EMA weight of the past (see :class:`fercourse.mirror.smoothing.FaceTracks`)."""
        return self.tracks.smoothing

    @smoothing.setter
    def smoothing(self, value: float) -> None:
        self.tracks.smoothing = value

    def set_model(self, model: EmotionModel | None) -> None:
        """Swap the classifier; smoothed probabilities of the old one are forgotten."""
        with self._lock:
            self.model = model
            self.tracks.reset()

    def reset(self) -> None:
        """Forget the faces seen so far (the next frame is a full scan)."""
        with self._lock:
            self.tracks.reset()
            self.frames = 0

    def find_faces(self, gray: np.ndarray) -> tuple[list[Box], str]:
        """Boxes in ``gray``, largest first, and which kind of search found them."""
        height, width = gray.shape
        if not self.detect_faces:
            return [(0, 0, width, height)], "off"
        known = [t.box for t in self.tracks.tracks if t.missed == 0]
        if known and self.frames % self.rescan_every != 0:
            boxes = [self.detector.detect_near(gray, box) for box in known]
            if all(b is not None for b in boxes):
                return sorted(boxes, key=lambda b: b[2] * b[3], reverse=True), "track"
            # A face was lost (turned away, left): scan the whole frame now, not k frames later.
        return self.detector.detect(gray), "full"

    def __call__(self, frame: np.ndarray) -> FrameResult:
        """Process one frame (uint8, gray or colour); see :class:`FrameResult`."""
        with self._lock:
            return self._process(frame)

    def _process(self, frame: np.ndarray) -> FrameResult:
        t0 = time.perf_counter()
        gray = preprocessing.to_gray(frame, self.channel_order)
        boxes, scan = self.find_faces(gray)
        t1 = time.perf_counter()
        self.frames += 1
        tracks = self.tracks.match(boxes)
        result = FrameResult(width=gray.shape[1], height=gray.shape[0], scan=scan)
        if self.model is not None and boxes:
            faces = np.stack([preprocessing.prepare_face(gray, box) for box in boxes])
            smoothed = self.tracks.update(tracks, self.model.probabilities(faces))
            result.model = self.model.name
        else:
            smoothed = [None] * len(boxes)
            result.model = None if self.model is None else self.model.name
        for box, track, p in zip(boxes, tracks, smoothed):
            face = FaceResult(box=tuple(int(v) for v in box), track_id=track.track_id)
            if p is not None:
                best = int(np.argmax(p))
                face.probabilities = p
                face.confidence = float(p[best])
                if face.confidence >= self.threshold:
                    face.emotion = EMOTIONS[best]
                    face.emoji = EMOJI[face.emotion]
                else:
                    face.emoji = UNSURE_EMOJI
            result.faces.append(face)
        t2 = time.perf_counter()
        result.detect_ms = 1e3 * (t1 - t0)
        result.classify_ms = 1e3 * (t2 - t1)
        result.total_ms = 1e3 * (t2 - t0)
        return result
