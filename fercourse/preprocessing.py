"""One preprocessing path for training, evaluation and the live mirror.

A face becomes a model input in two steps, and every caller uses these two functions:

1. :func:`prepare_face` turns any picture (a webcam frame in RGB/BGR, a photo, an already cropped
   face) into a 48x48 uint8 grayscale face, the same kind of image FER2013 holds.
2. :func:`to_tensor` turns a batch of such faces into the normalised float tensor the models take.

Webcam demos that classify "neutral" forever usually resize or normalise differently from
training; keeping both steps here makes that mismatch impossible. Introduced in
``notebooks/01_data.ipynb`` and used again by ``notebooks/09_mirror.ipynb``.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

IMAGE_SIZE: int = 48
"""Side of a FER2013 face in pixels."""

MEAN: float = 0.5
"""Pixel mean after scaling to [0, 1] (FER2013's is ~0.51)."""

STD: float = 0.25
"""Pixel standard deviation after scaling to [0, 1] (FER2013's is ~0.26)."""

RESIZE_INTERPOLATION: int = cv2.INTER_AREA
"""OpenCV interpolation used whenever a face is resized (area averaging: no aliasing when shrinking)."""

DEFAULT_MARGIN: float = 0.1
"""Extra border around a detected face box, as a fraction of its side (FER2013 crops are loose)."""


def to_gray(image: np.ndarray, channel_order: str = "RGB") -> np.ndarray:
    """Return a 2-D uint8 grayscale copy of ``image`` (H, W), (H, W, 1), (H, W, 3) or (H, W, 4).

    Args:
        image: uint8 array.
        channel_order: ``"RGB"`` (PIL, matplotlib, the browser) or ``"BGR"`` (OpenCV).
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {image.dtype}")
    if image.ndim in (2, 3) and (image.shape[0] == 0 or image.shape[1] == 0):
        raise ValueError(f"the image is empty (shape {image.shape}): no pixels to find a face in")
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] in (3, 4):
        order = channel_order.upper()
        if order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be 'RGB' or 'BGR', got {channel_order!r}")
        code = {
            ("RGB", 3): cv2.COLOR_RGB2GRAY,
            ("BGR", 3): cv2.COLOR_BGR2GRAY,
            ("RGB", 4): cv2.COLOR_RGBA2GRAY,
            ("BGR", 4): cv2.COLOR_BGRA2GRAY,
        }[(order, image.shape[2])]
        return cv2.cvtColor(image, code)
    raise ValueError(f"expected an image of shape (H, W) or (H, W, 1|3|4), got {image.shape}")


MIN_BOX_INSIDE: float = 0.5
"""The least fraction of a face box's area that must lie inside the image (else it is refused)."""


def check_box(box: Sequence[int], image_shape: Sequence[int]) -> tuple[float, float, float, float]:
    """``box`` = (x, y, w, h) as floats, refused when it is not a face box of this image.

    A box partly outside the image is accepted when at least :data:`MIN_BOX_INSIDE` of its area
    is inside (a face at the frame's edge, or a detector box rounded a pixel over the border); the
    crop is then moved inside the image (see :func:`square_box`).

    Raises:
        ValueError: naming the box and the image size: not 4 numbers, a width or height of 0 or
            less, or a box mostly or wholly outside the image.
    """
    values = tuple(box)
    if len(values) != 4:
        raise ValueError(f"a face box is (x, y, w, h), got {values!r}")
    x, y, w, h = (float(v) for v in values)
    height, width = int(image_shape[0]), int(image_shape[1])
    if not (w > 0 and h > 0):
        raise ValueError(f"empty face box {values}: its width and height must be above 0")
    inside_w = max(0.0, min(x + w, width) - max(x, 0.0))
    inside_h = max(0.0, min(y + h, height) - max(y, 0.0))
    inside = inside_w * inside_h / (w * h)
    if inside < MIN_BOX_INSIDE:
        raise ValueError(
            f"face box {values} is {'wholly' if inside == 0 else 'mostly'} outside the "
            f"{width}x{height} image ({100 * inside:.0f}% of it inside; boxes from "
            "fc.FaceDetector on this image are inside it)"
        )
    return x, y, w, h


def square_box(
    box: Sequence[int], image_shape: Sequence[int], margin: float = DEFAULT_MARGIN
) -> tuple[int, int, int, int]:
    """Grow ``box`` = (x, y, w, h) by ``margin`` on each side and make it square, inside the image.

    The square is moved (not padded) to fit the image: the margin of a face at the frame's edge
    comes from the inner side. A box mostly outside the image is refused (:func:`check_box`).

    Returns:
        (x, y, side, side) in integer pixels, inside the image.

    Raises:
        ValueError: ``box`` is not a face box of this image (see :func:`check_box`).
    """
    x, y, w, h = check_box(box, image_shape)
    height, width = int(image_shape[0]), int(image_shape[1])
    side = max(w, h) * (1.0 + 2.0 * margin)
    side = min(side, float(min(height, width)))
    cx, cy = x + w / 2.0, y + h / 2.0
    x0 = round(min(max(cx - side / 2.0, 0.0), width - side))
    y0 = round(min(max(cy - side / 2.0, 0.0), height - side))
    s = round(side)
    return x0, y0, s, s


def prepare_face(
    image: np.ndarray,
    box: Sequence[int] | None = None,
    *,
    margin: float = DEFAULT_MARGIN,
    channel_order: str = "RGB",
) -> np.ndarray:
    """Turn a picture into a 48x48 uint8 grayscale face, exactly as FER2013 stores one.

    Args:
        image: uint8 image, gray or colour, any size.
        box: optional face box (x, y, w, h) from :class:`fercourse.FaceDetector`; it is squared and
            grown by ``margin`` before cropping, and the square is moved inside the image where it
            would cross the border. Without a box the whole image is used.
        margin: border added around ``box`` (fraction of its side).
        channel_order: ``"RGB"`` or ``"BGR"`` for colour input.

    Returns:
        (48, 48) uint8 array.

    Raises:
        ValueError: an empty image (0 pixels wide or high), or a box that is empty or mostly
            outside the image (the message names the box and the image size).

    Example:
        >>> face = prepare_face(np.zeros((480, 640, 3), np.uint8), box=(200, 100, 160, 160))
        >>> face.shape, face.dtype
        ((48, 48), dtype('uint8'))
    """
    gray = to_gray(image, channel_order)
    if box is not None:
        x, y, w, h = square_box(box, gray.shape, margin)
        if w <= 0 or h <= 0:  # a box under half a pixel
            raise ValueError(f"empty face box {tuple(box)} for an image of shape {gray.shape}")
        gray = gray[y : y + h, x : x + w]
    if gray.shape != (IMAGE_SIZE, IMAGE_SIZE):
        gray = cv2.resize(gray, (IMAGE_SIZE, IMAGE_SIZE), interpolation=RESIZE_INTERPOLATION)
    return np.ascontiguousarray(gray)


def to_tensor(faces: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Normalise uint8 faces into the float model input.

    Args:
        faces: (48, 48), (N, 48, 48) or (N, 1, 48, 48) uint8 array or tensor, on any device.

    Returns:
        float32 tensor (N, 1, 48, 48) with ``(x / 255 - MEAN) / STD``, on the input's device.
    """
    t = torch.as_tensor(faces)
    if t.dtype != torch.uint8:
        raise ValueError(f"to_tensor expects uint8 faces, got {t.dtype}")
    if t.ndim == 2:
        t = t[None, None]
    elif t.ndim == 3:
        t = t[:, None]
    elif t.ndim != 4 or t.shape[1] != 1:
        raise ValueError(
            f"expected faces of shape (48, 48), (N, 48, 48) or (N, 1, 48, 48), got {tuple(t.shape)}"
        )
    return (t.float().div_(255.0) - MEAN) / STD


def describe() -> dict:
    """The preprocessing settings, stored next to every checkpoint so inference can check them."""
    return {
        "image_size": IMAGE_SIZE,
        "mean": MEAN,
        "std": STD,
        "resize_interpolation": "INTER_AREA",
        "margin": DEFAULT_MARGIN,
        "channels": 1,
    }
