"""Find faces with OpenCV's Haar cascade and crop them the way FER2013 faces look.

The detector answers one question, *where are the faces?*, as boxes ``(x, y, w, h)`` in the
pixels of the image it was given. Turning a box into a model input is the job of the one
preprocessing path, :func:`fercourse.preprocessing.prepare_face` (squared crop with a margin,
grayscale, area resize to 48x48); :meth:`FaceDetector.crop` simply calls it.

Speed: a Haar cascade's cost grows with the number of pixels it scans and the number of scales it
tries. On 2 CPU cores a 640x480 frame costs ~20-35 ms, a 160x120 frame ~4-7 ms. So the detector
can scan a copy shrunk to ``detect_width`` pixels (faces are large in a webcam frame; the live
mirror scans 160 px wide), and
:meth:`FaceDetector.detect_near` re-finds a known face in a small window around its last box
(~1 ms), which is how the live mirror tracks faces between full scans. The crop is still taken
from the full-resolution image. Introduced in ``notebooks/09_mirror.ipynb``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from .. import preprocessing

Box = tuple[int, int, int, int]
"""A face box ``(x, y, w, h)`` in integer pixels of the image it was found in."""

DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"


def _cascade_path(cascade: str | Path) -> Path:
    path = Path(cascade)
    if path.is_file():
        return path
    # A bare file name refers to the cascades that opencv-python(-headless) < 5 ships.
    data = getattr(cv2, "data", None)
    folder = Path(data.haarcascades) if data is not None else None
    if folder is not None and (folder / path.name).is_file():
        return folder / path.name
    raise FileNotFoundError(
        f"Haar cascade {cascade!r} not found (looked in {folder}); opencv-python-headless 5.x ships "
        "no cascades: install opencv-python-headless<5 as pinned in pyproject.toml"
    )


class FaceDetector:
    """Frontal face detector (OpenCV Haar cascade) returning boxes, largest face first.

    Args:
        cascade: a cascade file name shipped with OpenCV, or a path to a cascade XML file.
        scale_factor: step between the scanned face sizes (1.1 = 10 %); larger is faster but
            misses more faces.
        min_neighbors: how many overlapping hits make a face; larger gives fewer false faces.
        min_face: smallest face to look for, as a fraction of the image's shorter side.
        detect_width: scan a copy shrunk to this width when the image is wider (``None``: scan at
            full size). Boxes are always returned in the original image's pixels.

    Example:
        >>> detector = fc.FaceDetector()
        >>> boxes = detector.detect(photo)           # [(x, y, w, h), ...], largest first
        >>> face = detector.crop(photo, boxes[0])    # (48, 48) uint8, via fc.prepare_face
    """

    def __init__(
        self,
        cascade: str | Path = DEFAULT_CASCADE,
        *,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_face: float = 0.1,
        detect_width: int | None = None,
    ) -> None:
        if scale_factor <= 1.0:
            raise ValueError(f"scale_factor must be > 1, got {scale_factor}")
        if not 0.0 < min_face < 1.0:
            raise ValueError(f"min_face is a fraction of the image side in (0, 1), got {min_face}")
        if not hasattr(cv2, "CascadeClassifier"):
            raise ImportError(
                f"OpenCV {cv2.__version__} has no CascadeClassifier; install "
                "opencv-python-headless<5 as pinned in pyproject.toml"
            )
        self.cascade_path = _cascade_path(cascade)
        self._cascade = cv2.CascadeClassifier(str(self.cascade_path))
        if self._cascade.empty():
            raise ValueError(f"OpenCV could not read the cascade {self.cascade_path}")
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.min_face = float(min_face)
        self.detect_width = detect_width

    def __repr__(self) -> str:
        return (
            f"FaceDetector({self.cascade_path.name!r}, scale_factor={self.scale_factor}, "
            f"min_neighbors={self.min_neighbors}, min_face={self.min_face}, "
            f"detect_width={self.detect_width})"
        )

    # The cascade's smallest window is 24x24 px: asking for smaller faces finds nothing.
    _WINDOW = 24

    def detect(self, image: np.ndarray, *, channel_order: str = "RGB") -> list[Box]:
        """Find every face in ``image``.

        Args:
            image: uint8 image, gray or colour (RGB, BGR, RGBA...), any size.
            channel_order: ``"RGB"`` or ``"BGR"`` for colour input.

        Returns:
            Boxes ``(x, y, w, h)`` in ``image``'s pixels, sorted largest first (the "main face").
        """
        gray = preprocessing.to_gray(image, channel_order)
        height, width = gray.shape
        scale = 1.0
        if self.detect_width is not None and width > self.detect_width:
            scale = self.detect_width / width
            size = (self.detect_width, max(1, round(height * scale)))
            gray = cv2.resize(gray, size, interpolation=preprocessing.RESIZE_INTERPOLATION)
        side = max(self._WINDOW, round(self.min_face * min(gray.shape)))
        found = self._cascade.detectMultiScale(
            gray,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(side, side),
        )
        boxes = [_scale_box(b, 1.0 / scale) for b in found]
        return sorted(boxes, key=lambda b: b[2] * b[3], reverse=True)

    def detect_near(
        self,
        image: np.ndarray,
        box: Sequence[int],
        *,
        grow: float = 0.5,
        face_px: int = 44,
        channel_order: str = "RGB",
    ) -> Box | None:
        """Re-find the face that was at ``box`` in a small window around it (tracking).

        The window is ``box`` grown by ``grow`` times its side on every edge, shrunk so that the
        face is about ``face_px`` pixels wide, and scanned for faces between 0.7x and 1.45x that
        size: a few scales over ~100x100 pixels, about 1 ms instead of a full scan.

        Args:
            image: uint8 image, gray or colour, in which ``box`` was found (a later frame).
            box: the face's last box ``(x, y, w, h)`` in ``image``'s pixels.
            grow: how far the face may have moved, as a fraction of its side.
            face_px: the face size the window is scanned at (>= the cascade's 24 px window).
            channel_order: ``"RGB"`` or ``"BGR"`` for colour input.

        Returns:
            The face's new box in ``image``'s pixels, or ``None`` when it is gone.
        """
        gray = preprocessing.to_gray(image, channel_order)
        height, width = gray.shape
        x, y, w, h = (int(v) for v in box)
        pad = round(max(w, h) * grow)
        x0, y0 = max(0, x - pad), max(0, y - pad)
        x1, y1 = min(width, x + w + pad), min(height, y + h + pad)
        if x1 - x0 < self._WINDOW or y1 - y0 < self._WINDOW:
            return None
        window = gray[y0:y1, x0:x1]
        scale = min(1.0, face_px / max(w, h, 1))
        if scale < 1.0:
            window = cv2.resize(
                window, None, fx=scale, fy=scale, interpolation=preprocessing.RESIZE_INTERPOLATION
            )
        side = max(w, h) * scale
        lo = max(self._WINDOW, int(side * 0.7))
        hi = max(lo + 1, int(side * 1.45))
        found = self._cascade.detectMultiScale(
            window,
            scaleFactor=self.scale_factor,
            minNeighbors=max(2, self.min_neighbors - 1),  # the last box is evidence too
            minSize=(lo, lo),
            maxSize=(hi, hi),
        )
        if len(found) == 0:
            return None
        best = max(found, key=lambda b: b[2] * b[3])
        bx, by, bw, bh = _scale_box(best, 1.0 / scale)
        return (bx + x0, by + y0, bw, bh)

    def crop(
        self,
        image: np.ndarray,
        box: Sequence[int],
        *,
        margin: float = preprocessing.DEFAULT_MARGIN,
        channel_order: str = "RGB",
    ) -> np.ndarray:
        """The 48x48 uint8 face for ``box``, through :func:`fercourse.preprocessing.prepare_face`."""
        return preprocessing.prepare_face(image, box, margin=margin, channel_order=channel_order)

    def faces(
        self, image: np.ndarray, *, channel_order: str = "RGB"
    ) -> tuple[list[Box], np.ndarray]:
        """Detect and crop in one call.

        Returns:
            ``(boxes, faces)``: the boxes of :meth:`detect` and a (N, 48, 48) uint8 array of crops.
        """
        gray = preprocessing.to_gray(image, channel_order)
        boxes = self.detect(gray)
        size = preprocessing.IMAGE_SIZE
        faces = (
            np.stack([self.crop(gray, b) for b in boxes])
            if boxes
            else np.zeros((0, size, size), np.uint8)
        )
        return boxes, faces


def _scale_box(box: Sequence[int], factor: float) -> Box:
    x, y, w, h = (float(v) for v in box)
    return (round(x * factor), round(y * factor), round(w * factor), round(h * factor))


def iou(a: Sequence[int], b: Sequence[int]) -> float:
    """Intersection over union of two boxes ``(x, y, w, h)`` (0 when they do not overlap)."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0
