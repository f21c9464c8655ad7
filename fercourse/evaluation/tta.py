"""Test-time augmentation (TTA): average the model's softmax over several views of each face.

- ``"flip"``: the face and its mirror image (2 views). Faces are nearly symmetric, so this is
  almost free accuracy.
- ``"tencrop"``: the four corner crops and the centre crop, each also mirrored (10 views), as in
  the strongest reproducible FER2013 CNN (arXiv:2105.03588). At 48 px the crops are 44 px and
  are resized back to 48 px so every model sees its training input size.

Resizing follows ``fc.preprocessing.RESIZE_INTERPOLATION`` (OpenCV's INTER_AREA): in torch that is
``F.interpolate(mode="area")`` when shrinking; when enlarging INTER_AREA behaves like bilinear
interpolation, so a 44 -> 48 px crop uses ``mode="bilinear"``. Introduced in
``notebooks/02_baseline.ipynb``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from ..preprocessing import IMAGE_SIZE

TTA_MODES = (None, "flip", "tencrop")
DEFAULT_CROP = 44
"""Side of the ten-crop crops at 48 px (the published recipes use 40-44 px)."""


def check_tta(tta: str | None) -> str | None:
    """Normalise a TTA name (``None``, ``"none"``, ``"flip"``, ``"tencrop"``/``"ten-crop"``).

    Raises:
        ValueError: an unknown mode.
    """
    if tta is None or str(tta).lower() in ("", "none", "off"):
        return None
    mode = str(tta).lower().replace("-", "").replace("_", "")
    if mode not in ("flip", "tencrop"):
        raise ValueError(f"unknown TTA mode {tta!r}; expected None, 'flip' or 'tencrop'")
    return mode


def resize_faces(x: torch.Tensor, size: int = IMAGE_SIZE) -> torch.Tensor:
    """Resize a batch (B, C, H, W) to ``size`` x ``size`` with INTER_AREA semantics (see module)."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    mode = "area" if x.shape[-1] > size else "bilinear"
    kwargs = {} if mode == "area" else {"align_corners": False}
    return F.interpolate(x, size=(size, size), mode=mode, **kwargs)


def ten_crop_views(x: torch.Tensor, crop_size: int = DEFAULT_CROP) -> torch.Tensor:
    """The ten views of a batch: 4 corners + centre, then the same five mirrored.

    Args:
        x: (B, C, H, W) normalised faces.
        crop_size: side of each crop before it is resized back to H.

    Returns:
        (10, B, C, H, W): top-left, top-right, bottom-left, bottom-right and centre crops, then
        the same five crops of the mirrored face (torchvision's ``ten_crop`` order).
    """
    if not 0 < crop_size <= min(x.shape[-2:]):
        raise ValueError(f"crop_size must be in 1..{min(x.shape[-2:])}, got {crop_size}")
    crops = TF.ten_crop(x, [crop_size, crop_size])  # torchvision: 5 crops, then 5 flipped crops
    return torch.stack([resize_faces(c, x.shape[-1]) for c in crops])


def tta_views(x: torch.Tensor, tta: str | None, crop_size: int = DEFAULT_CROP) -> torch.Tensor:
    """All views of a batch for a TTA mode: (V, B, C, H, W) with V = 1, 2 or 10."""
    mode = check_tta(tta)
    if mode is None:
        return x[None]
    if mode == "flip":
        return torch.stack([x, torch.flip(x, dims=[-1])])
    return ten_crop_views(x, crop_size)
