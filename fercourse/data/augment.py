"""Training augmentation, two ways with the same recipe: albumentations per image, or batched
tensor operations on whole uint8 batches (CPU or GPU).

The recipe (:class:`AugmentSettings`): a horizontal flip, a small affine (rotation, scale,
translation, reflected borders), brightness/contrast jitter and one erased rectangle
(CoarseDropout / random erasing). Faces stay faces: no vertical flips, no large rotations.
:data:`AUGMENT_RECIPES` names the recipes a training configuration can pick: ``"standard"``
(all four, for long runs) and ``"light"`` (the flip and the affine only, for the short budgeted
runs of the ``class`` preset, which end before the stronger recipe pays off).

- :func:`train_transform` / :func:`eval_transform`: albumentations 2.x pipelines (``Affine``, not
  the deprecated ``ShiftScaleRotate``; ``CoarseDropout(num_holes_range=..., hole_height_range=...,
  fill=...)``, the 2.x arguments: 1.x ones such as ``max_holes`` are silently ignored by 2.x).
- :class:`BatchAugment`: the same operations on a (B, 48, 48) or (B, 1, 48, 48) batch with
  ``torch`` ops, so a GPU-resident training loop never leaves the GPU. Per-sample albumentations
  through a DataLoader runs at ~5k images/s on a laptop CPU; this path at ~20k on the same CPU
  and far more on a GPU, where per-sample CPU augmentation is the bottleneck.

Both are seeded: ``train_transform(seed=...)``, ``BatchAugment(seed=...)`` (random numbers are
drawn on the CPU, so a seed gives the same augmentation on CPU and GPU).
:func:`fercourse.explain.preview_augmentations` shows a grid of augmented faces. Introduced in
``notebooks/01_data.ipynb``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import albumentations as A
import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..preprocessing import IMAGE_SIZE, MEAN, RESIZE_INTERPOLATION, STD


@dataclass(frozen=True)
class AugmentSettings:
    """One augmentation recipe shared by both pipelines (probabilities are per image).

    Introduced in ``notebooks/01_data.ipynb``.

    Attributes:
        flip_p: chance of a horizontal flip.
        affine_p: chance of the affine transform.
        rotate: rotation range, +/- degrees.
        translate: shift range, +/- fraction of the side (per axis).
        scale: zoom range.
        color_p: chance of brightness/contrast jitter.
        brightness: brightness shift range, +/- fraction of 255.
        contrast: contrast factor range, 1 +/- this.
        erase_p: chance of erasing one rectangle.
        erase_size: rectangle side range, as a fraction of the image side.
        erase_fill: grey level of the erased rectangle.
    """

    flip_p: float = 0.5
    affine_p: float = 0.7
    rotate: float = 10.0
    translate: float = 0.1
    scale: tuple[float, float] = (0.9, 1.1)
    color_p: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    erase_p: float = 0.4
    erase_size: tuple[float, float] = (0.1, 0.3)
    erase_fill: int = 0


DEFAULT_AUGMENT = AugmentSettings()
LIGHT_AUGMENT = AugmentSettings(color_p=0, erase_p=0)
NO_AUGMENT = AugmentSettings(flip_p=0, affine_p=0, color_p=0, erase_p=0)

AUGMENT_RECIPES: dict[str, AugmentSettings] = {"standard": DEFAULT_AUGMENT, "light": LIGHT_AUGMENT}
"""The recipes a ``TrainConfig.augment_recipe`` names."""


def train_transform(settings: AugmentSettings = DEFAULT_AUGMENT, *, seed: int | None = None):
    """The albumentations 2.x training pipeline for (48, 48) uint8 faces.

    Introduced in ``notebooks/01_data.ipynb``.

    Args:
        settings: the recipe (shared with :class:`BatchAugment`).
        seed: makes the sequence of augmentations reproducible.

    Returns:
        ``A.Compose``; call it as ``train_transform()(image=face)["image"]`` (uint8 stays uint8;
        normalisation happens afterwards in ``fc.preprocessing.to_tensor``).

    Example:
        >>> aug = train_transform(seed=0)
        >>> aug(image=np.zeros((48, 48), np.uint8))["image"].shape
        (48, 48)
    """
    s = settings
    return A.Compose(
        [
            A.HorizontalFlip(p=s.flip_p),
            A.Affine(
                scale=s.scale,
                translate_percent=(-s.translate, s.translate),
                rotate=(-s.rotate, s.rotate),
                interpolation=cv2.INTER_LINEAR,
                border_mode=cv2.BORDER_REFLECT,  # what grid_sample's "reflection" padding does
                p=s.affine_p,
            ),
            A.RandomBrightnessContrast(
                brightness_limit=s.brightness, contrast_limit=s.contrast, p=s.color_p
            ),
            A.CoarseDropout(
                num_holes_range=(1, 1),
                hole_height_range=s.erase_size,
                hole_width_range=s.erase_size,
                fill=s.erase_fill,
                p=s.erase_p,
            ),
        ],
        seed=seed,
    )


def eval_transform():
    """The albumentations evaluation pipeline: only makes sure the face is 48x48.

    Introduced in ``notebooks/01_data.ipynb``.

    Resizing uses ``fc.preprocessing.RESIZE_INTERPOLATION``, like every resize of a face.
    """
    return A.Compose([A.Resize(IMAGE_SIZE, IMAGE_SIZE, interpolation=RESIZE_INTERPOLATION, p=1.0)])


class BatchAugment:
    """The training augmentation on whole batches with tensor ops, on the batch's device.

    Introduced in ``notebooks/01_data.ipynb``.

    Args:
        settings: the recipe (shared with :func:`train_transform`).
        seed: seed of the augmentation's own ``torch.Generator`` (ignored if ``generator``).
        generator: a CPU ``torch.Generator`` to draw from.

    Call it on a uint8 batch (B, 48, 48) or (B, 1, 48, 48): it returns a uint8 batch of the same
    shape, ready for ``fc.preprocessing.to_tensor``. A float batch is taken to be already
    normalised by ``to_tensor`` and is returned normalised.

    Example:
        >>> aug = BatchAugment(seed=0)
        >>> out = aug(torch.zeros(64, 48, 48, dtype=torch.uint8))
        >>> out.shape, out.dtype
        (torch.Size([64, 48, 48]), torch.uint8)
    """

    def __init__(
        self,
        settings: AugmentSettings = DEFAULT_AUGMENT,
        *,
        seed: int | None = 0,
        generator: torch.Generator | None = None,
    ) -> None:
        self.settings = settings
        if generator is None:
            generator = torch.Generator()
            generator.manual_seed(0 if seed is None else seed)
        self.generator = generator

    def __repr__(self) -> str:
        return f"BatchAugment({self.settings})"

    def _rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=self.generator)

    def __call__(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(images)
        if x.ndim == 3:
            out = self(x[:, None])
            return out[:, 0]
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"expected (B, 48, 48) or (B, 1, 48, 48) faces, got {tuple(x.shape)}")
        is_uint8 = x.dtype == torch.uint8
        # Work in grey levels 0-255 either way, so both input types get identical semantics.
        pixels = x.float() if is_uint8 else (x.float() * STD + MEAN) * 255.0  # always a copy
        pixels = self._apply(pixels)
        if is_uint8:
            return pixels.round_().clamp_(0, 255).to(torch.uint8)
        return ((pixels.clamp(0, 255) / 255.0 - MEAN) / STD).to(x.dtype)

    def _apply(self, x: torch.Tensor) -> torch.Tensor:
        s, b, device = self.settings, x.shape[0], x.device
        height, width = x.shape[-2:]
        # Draw every random number on the CPU first: the same seed gives the same batch on any
        # device, and one draw per kind keeps the sequence independent of which branches fire.
        flip = self._rand(b) < s.flip_p
        do_affine = self._rand(b) < s.affine_p
        angle = (self._rand(b) * 2 - 1) * math.radians(s.rotate)
        zoom = s.scale[0] + self._rand(b) * (s.scale[1] - s.scale[0])
        shift = (self._rand(b, 2) * 2 - 1) * s.translate
        do_color = self._rand(b) < s.color_p
        alpha = 1 + (self._rand(b) * 2 - 1) * s.contrast
        beta = (self._rand(b) * 2 - 1) * s.brightness * 255.0
        do_erase = self._rand(b) < s.erase_p
        lo, hi = s.erase_size
        eh = (lo + self._rand(b) * (hi - lo)) * height
        ew = (lo + self._rand(b) * (hi - lo)) * width
        ey = self._rand(b) * (height - eh)
        ex = self._rand(b) * (width - ew)

        # In place on the float copy, touching only the images each operation picked.
        flipped = torch.nonzero(flip).flatten().to(device)
        if len(flipped):
            x[flipped] = x[flipped].flip(-1)

        rows = torch.nonzero(do_affine).flatten()
        if len(rows):
            # affine_grid maps output to input coordinates, so build the inverse transform:
            # input = R(-angle) / zoom @ (output - shift), in [-1, 1] units (shift x2).
            cos, sin = torch.cos(angle[rows]), torch.sin(angle[rows])
            inv = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)
            inv = inv / zoom[rows, None, None]
            offset = -(inv @ (2 * shift[rows])[:, :, None])
            theta = torch.cat([inv, offset], dim=2).to(device=device, dtype=x.dtype)
            grid = F.affine_grid(theta, [len(rows), 1, height, width], align_corners=False)
            rows_d = rows.to(device)
            x[rows_d] = F.grid_sample(
                x[rows_d], grid, mode="bilinear", padding_mode="reflection", align_corners=False
            )

        if do_color.any():
            gain = torch.where(do_color, alpha, torch.ones_like(alpha)).to(device)
            bias = torch.where(do_color, beta, torch.zeros_like(beta)).to(device)
            x.mul_(gain[:, None, None, None]).add_(bias[:, None, None, None])

        if do_erase.any():
            ys = torch.arange(height, device=device)[None, :, None]
            xs = torch.arange(width, device=device)[None, None, :]
            y0, x0 = ey.round().to(device)[:, None, None], ex.round().to(device)[:, None, None]
            y1 = y0 + eh.round().to(device)[:, None, None]
            x1 = x0 + ew.round().to(device)[:, None, None]
            hole = (ys >= y0) & (ys < y1) & (xs >= x0) & (xs < x1)
            x.masked_fill_((hole & do_erase.to(device)[:, None, None])[:, None], s.erase_fill)
        return x
