"""Pictures that work without a webcam: a real face photo and a moving "video" made from it.

The snapshot mode, the notebook run headless, ``python -m fercourse bench mirror`` and the browser
test's fake camera all use them, so every part of the mirror can be shown and checked on a
machine with no camera and no network.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import numpy as np

from .. import preprocessing
from ..data.photos import sample_photo

__all__ = ["browser_frame", "moving_frames", "sample_photo"]


def moving_frames(
    photo: np.ndarray | None = None,
    *,
    n: int = 90,
    size: tuple[int, int] = (640, 480),
    face_height: float = 0.8,
) -> Iterator[np.ndarray]:
    """Webcam-like RGB frames: ``photo`` drifting and zooming slightly over a moving background.

    Args:
        photo: RGB picture to show (``None``: background only, a video without faces).
        n: number of frames; the motion is one full loop, so the clip can be replayed forever.
        size: ``(width, height)`` of the frames.
        face_height: the photo's height as a fraction of the frame's height.

    Yields:
        (height, width, 3) uint8 RGB frames.
    """
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for i in range(n):
        phase = 2 * math.pi * i / n
        base = 90 + 40 * np.sin(xx / 97 + phase) * np.cos(yy / 131)
        frame = np.dstack([base, 0.9 * base + 10, 0.8 * base + 20]).clip(0, 255).astype(np.uint8)
        if photo is not None:
            scale = face_height * height / photo.shape[0] * (1 + 0.05 * math.sin(phase))
            w, h = round(photo.shape[1] * scale), round(photo.shape[0] * scale)
            img = cv2.resize(photo, (w, h), interpolation=preprocessing.RESIZE_INTERPOLATION)
            x0 = (width - w) // 2 + round(0.06 * width * math.sin(phase))
            y0 = (height - h) // 2 + round(0.02 * height * math.cos(phase))
            xs, ys = max(0, x0), max(0, y0)
            xe, ye = min(width, x0 + w), min(height, y0 + h)
            frame[ys:ye, xs:xe] = img[ys - y0 : ye - y0, xs - x0 : xe - x0]
        yield frame


def browser_frame(frame: np.ndarray, send_width: int) -> np.ndarray:
    """What the browser sends for ``frame``: shrunk to ``send_width`` px wide, RGBA.

    The browser's canvas filters when it shrinks; area averaging is the closest OpenCV match.
    """
    height, width = frame.shape[:2]
    size = (send_width, round(send_width * height / width))
    small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_RGB2RGBA)
