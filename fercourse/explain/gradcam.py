"""Grad-CAM for every course model, and pictures of what the attention models attend to.

Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
Localization", ICCV 2017) weights each channel of one layer's feature map by the mean gradient of
the class score, sums the channels and keeps the positive part: a coarse map of the pixels that
raised that class. The computation is ``pytorch-grad-cam``'s; each model names its one target
layer (``model.gradcam_target_layer()``) and, for token models, how to turn tokens back into a
map (``model.gradcam_reshape_transform()``, derived from the model's own token grid).

Also here: the attention CNN's spatial attention maps and the specialists' expert weights.
Introduced in ``notebooks/02_baseline.ipynb`` (Grad-CAM), ``03_attention`` (attention maps) and
``06_ensemble`` (expert weights).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from pytorch_grad_cam import (
    EigenCAM,
    GradCAM,
    GradCAMPlusPlus,
    HiResCAM,
    LayerCAM,
    XGradCAM,
)
from pytorch_grad_cam.utils.image import show_cam_on_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from ..labels import EMOJI, EMOTIONS
from ..preprocessing import to_tensor

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "METHODS",
    "gradcam",
    "overlay",
    "plot_attention_maps",
    "plot_expert_weights",
    "plot_gradcam",
]

METHODS: dict[str, type] = {
    "gradcam": GradCAM,
    "gradcam++": GradCAMPlusPlus,
    "hirescam": HiResCAM,
    "xgradcam": XGradCAM,
    "layercam": LayerCAM,
    "eigencam": EigenCAM,
}
"""CAM methods :func:`gradcam` accepts (all from pytorch-grad-cam)."""


def _model_input(faces: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 faces through ``to_tensor``; a float tensor is taken as already normalised."""
    if isinstance(faces, torch.Tensor) and faces.is_floating_point():
        x = faces
        while x.ndim < 4:
            x = x.unsqueeze(0) if x.ndim == 2 else x.unsqueeze(1)
        return x
    if np.asarray(faces).dtype != np.uint8:
        raise ValueError(
            "faces must be uint8 faces (N, 48, 48) or a float tensor from "
            f"fc.preprocessing.to_tensor, got dtype {np.asarray(faces).dtype}"
        )
    return to_tensor(faces)


def _class_targets(targets: int | Sequence[int] | np.ndarray | torch.Tensor | None, n: int):
    if targets is None:
        return None
    if isinstance(targets, torch.Tensor):
        targets = targets.detach().cpu().numpy()
    codes = np.asarray(targets, dtype=np.int64).reshape(-1)
    if codes.size not in (1, n):
        raise ValueError(
            f"got {codes.size} class targets for {n} faces: give one per face, one for all, or None"
        )
    codes = np.broadcast_to(codes, (n,))
    if codes.min() < 0:
        raise ValueError(f"class targets must be >= 0, got {codes.min()}")
    return [ClassifierOutputTarget(int(c)) for c in codes]


def gradcam(
    model: nn.Module,
    faces: np.ndarray | torch.Tensor,
    targets: int | Sequence[int] | np.ndarray | torch.Tensor | None = None,
    *,
    method: str = "gradcam",
    batch_size: int = 64,
) -> np.ndarray:
    """Class activation maps of ``model`` for a batch of faces, at the faces' resolution.

    The model is explained in eval mode with gradients on (so it also works under
    ``torch.no_grad()`` and with frozen weights), and is left exactly as it was found: training
    mode, ``requires_grad`` and ``.grad`` of every parameter are restored.

    Args:
        model: a course model (it has ``gradcam_target_layer`` and ``gradcam_reshape_transform``).
        faces: uint8 faces (N, 48, 48) or (48, 48), or a float tensor (N, 1, 48, 48) already
            normalised by :func:`fercourse.preprocessing.to_tensor`.
        targets: class code(s) to explain: one per face, one for all, or None for each face's
            predicted class.
        method: one of :data:`METHODS` (``"gradcam"``, ``"gradcam++"``, ``"hirescam"``, ...).
        batch_size: faces per forward/backward pass.

    Returns:
        float32 array (N, 48, 48), each map scaled to [0, 1].

    Example:
        >>> cams = fc.explain.gradcam(model, faces[:8])  # doctest: +SKIP
        >>> cams.shape
        (8, 48, 48)
    """
    if method not in METHODS:
        raise ValueError(f"unknown CAM method {method!r}; choose one of {', '.join(METHODS)}")
    x = _model_input(faces)
    cam_targets = _class_targets(targets, x.shape[0])
    params = list(model.parameters())
    device = params[0].device if params else torch.device("cpu")
    saved = [(p.requires_grad, p.grad) for p in params]
    was_training = model.training
    maps: list[np.ndarray] = []
    try:
        model.eval()
        for p in params:
            p.requires_grad_(True)
            p.grad = None
        with (
            torch.enable_grad(),
            METHODS[method](
                model=model,
                target_layers=[model.gradcam_target_layer()],
                reshape_transform=model.gradcam_reshape_transform(),
            ) as cam,
        ):
            for start in range(0, x.shape[0], batch_size):
                chunk = slice(start, start + batch_size)
                maps.append(
                    cam(
                        input_tensor=x[chunk].to(device),
                        targets=None if cam_targets is None else cam_targets[chunk],
                    )
                )
    finally:
        model.train(was_training)
        for p, (requires_grad, grad) in zip(params, saved):
            p.requires_grad_(requires_grad)
            p.grad = grad
    if len(maps) != -(-x.shape[0] // batch_size):  # pytorch-grad-cam swallows IndexError
        raise RuntimeError("Grad-CAM failed (pytorch-grad-cam reported an IndexError above)")
    return np.clip(np.concatenate(maps), 0.0, 1.0).astype(np.float32)


def overlay(face: np.ndarray, cam: np.ndarray, *, image_weight: float = 0.5) -> np.ndarray:
    """Lay a CAM (jet colours) over a grayscale face.

    Args:
        face: (48, 48) uint8 face.
        cam: (48, 48) map in [0, 1], e.g. one row of :func:`gradcam`.
        image_weight: share of the face in the blend (the heat map gets the rest).

    Returns:
        (48, 48, 3) uint8 RGB image.
    """
    face = np.asarray(face)
    if face.ndim == 3 and face.shape[2] == 1:
        face = face[:, :, 0]
    if face.dtype != np.uint8 or face.ndim != 2:
        raise ValueError(f"expected a (H, W) uint8 face, got {face.dtype} {face.shape}")
    cam = np.asarray(cam, dtype=np.float32)
    if cam.shape != face.shape:
        raise ValueError(f"cam {cam.shape} and face {face.shape} differ in shape")
    rgb = np.repeat(face[:, :, None].astype(np.float32) / 255.0, 3, axis=2)
    return show_cam_on_image(rgb, np.clip(cam, 0, 1), use_rgb=True, image_weight=image_weight)


@functools.cache
def _emoji_font() -> str | None:
    """A font family matplotlib can draw the emoji with, or None (then titles omit them)."""
    from matplotlib import font_manager, ft2font

    probe = ord(EMOJI["happy"])
    for entry in font_manager.fontManager.ttflist:
        if "emoji" in entry.name.lower() or "symbola" in entry.name.lower():
            try:
                if ft2font.FT2Font(entry.fname).get_char_index(probe):
                    return entry.name
            except (OSError, RuntimeError):
                continue
    return None


def _label(code: int) -> str:
    name = EMOTIONS[int(code)]
    return f"{name} {EMOJI[name]}" if _emoji_font() else name


def _title_font() -> dict:
    font = _emoji_font()
    return {"fontfamily": ["DejaVu Sans", font]} if font else {}


def _faces_uint8(faces: np.ndarray, n: int | None) -> np.ndarray:
    arr = np.asarray(faces)
    if arr.dtype != np.uint8:
        raise ValueError(f"plots need the uint8 faces (N, 48, 48), got dtype {arr.dtype}")
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim == 2:
        arr = arr[None]
    return arr[:n] if n is not None else arr


@torch.no_grad()
def _predict(model: nn.Module, faces: np.ndarray) -> np.ndarray:
    was_training = model.training
    model.eval()
    try:
        device = _model_device(model)
        return torch.softmax(model(to_tensor(faces).to(device)), dim=1).cpu().numpy()
    finally:
        model.train(was_training)


def plot_gradcam(
    model: nn.Module,
    faces: np.ndarray,
    labels: Sequence[int] | np.ndarray | None = None,
    *,
    n: int = 8,
    cols: int = 4,
    method: str = "gradcam",
) -> Figure:
    """A grid of faces next to their Grad-CAM overlays for the predicted class.

    Each pair shows the face (titled with the true emotion when ``labels`` are given) and the
    overlay (titled with the prediction and its probability).

    Args:
        model: a course model.
        faces: uint8 faces (N, 48, 48); the first ``n`` are shown.
        labels: true class codes of ``faces``, optional.
        n: number of faces.
        cols: faces per row (each takes two panels).
        method: CAM method, see :data:`METHODS`.

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt

    faces = _faces_uint8(faces, n)
    probs = _predict(model, faces)
    cams = gradcam(model, faces, method=method)
    count = len(faces)
    cols = max(1, min(cols, count))
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, 2 * cols, figsize=(2.2 * cols * 1.6, 2.0 * rows), squeeze=False)
    font = _title_font()
    for ax in axes.flat:
        ax.axis("off")
    for i in range(count):
        ax_face, ax_cam = axes[i // cols, 2 * (i % cols)], axes[i // cols, 2 * (i % cols) + 1]
        ax_face.imshow(faces[i], cmap="gray", vmin=0, vmax=255)
        ax_cam.imshow(overlay(faces[i], cams[i]))
        if labels is not None:
            ax_face.set_title(f"true: {_label(labels[i])}", fontsize=9, **font)
        pred = int(probs[i].argmax())
        ax_cam.set_title(f"pred: {_label(pred)} {probs[i, pred]:.0%}", fontsize=9, **font)
    fig.suptitle(f"{method} on {getattr(model, 'model_name', type(model).__name__)}")
    fig.tight_layout()
    return fig


def _model_device(model: nn.Module) -> torch.device:
    """Where the model's weights are (CPU for a model without any)."""
    params = list(model.parameters())
    return params[0].device if params else torch.device("cpu")


def _require(model: nn.Module, attribute: str, use: str) -> None:
    """TypeError naming the model when it lacks what a plot draws."""
    if not hasattr(model, attribute):
        name = getattr(model, "model_name", type(model).__name__)
        raise TypeError(f"{name} has no {attribute} to plot; use {use}")


def plot_attention_maps(model: nn.Module, faces: np.ndarray, *, n: int = 6) -> Figure:
    """The attention CNN's spatial attention: one row per face, one column per CBAM block.

    Each map is upsampled to 48x48 and laid over the face; early blocks attend to edges, the last
    ones to the regions that decide the expression.

    Args:
        model: an ``attention_cnn`` (anything with ``spatial_attention_maps``).
        faces: uint8 faces (N, 48, 48); the first ``n`` are shown.
        n: number of faces.

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt

    _require(
        model,
        "spatial_attention_maps",
        "an attention_cnn (fc.models.create_model('attention_cnn'))",
    )
    faces = _faces_uint8(faces, n)
    device = _model_device(model)
    size = faces.shape[-1]
    maps = model.spatial_attention_maps(to_tensor(faces).to(device), size=size)
    maps = [m[:, 0].cpu().numpy() for m in maps]
    fig, axes = plt.subplots(
        len(faces), 1 + len(maps), figsize=(1.6 * (1 + len(maps)), 1.7 * len(faces)), squeeze=False
    )
    for i, face in enumerate(faces):
        axes[i, 0].imshow(face, cmap="gray", vmin=0, vmax=255)
        for j, block_maps in enumerate(maps, start=1):
            m = block_maps[i]
            span = m.max() - m.min()
            axes[i, j].imshow(overlay(face, (m - m.min()) / span if span > 0 else np.zeros_like(m)))
            if i == 0:
                axes[i, j].set_title(f"block {j}", fontsize=9)
    axes[0, 0].set_title("face", fontsize=9)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle("CBAM spatial attention (each map scaled to its own range)")
    fig.tight_layout()
    return fig


def plot_expert_weights(
    model: nn.Module,
    faces: np.ndarray,
    labels: Sequence[int] | np.ndarray | None = None,
    *,
    n: int = 8,
) -> Figure:
    """The specialists' gate: each face, and below it a stacked bar of its experts' weights.

    Args:
        model: a ``specialists`` model (anything with ``expert_weights`` and ``experts``).
        faces: uint8 faces (N, 48, 48); the first ``n`` are shown.
        labels: true class codes, optional (shown under each face).
        n: number of faces.

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt

    _require(model, "expert_weights", "a specialists model (fc.models.create_model('specialists'))")
    faces = _faces_uint8(faces, n)
    device = _model_device(model)
    weights = model.expert_weights(to_tensor(faces).to(device)).cpu().numpy()
    probs = _predict(model, faces)
    names = getattr(model, "experts", tuple(f"expert {k}" for k in range(weights.shape[1])))
    count = len(faces)
    fig = plt.figure(figsize=(max(1.3 * count, 5), 4.2))
    grid = fig.add_gridspec(2, count, height_ratios=(1, 1.4))
    font = _title_font()
    for i in range(count):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(faces[i], cmap="gray", vmin=0, vmax=255)
        ax.axis("off")
        title = f"pred: {_label(int(probs[i].argmax()))}"
        if labels is not None:
            title = f"true: {_label(labels[i])}\n" + title
        ax.set_title(title, fontsize=8, **font)
    ax = fig.add_subplot(grid[1, :])
    bottom = np.zeros(count)
    colors = plt.get_cmap("tab10").colors
    for k, name in enumerate(names):
        ax.bar(np.arange(count), weights[:, k], bottom=bottom, label=name, color=colors[k % 10])
        bottom += weights[:, k]
    ax.set_xlim(-0.5, count - 0.5)
    ax.set_ylim(0, 1)
    ax.set_xticks(np.arange(count), [str(i) for i in range(count)])
    ax.set_xlabel("face")
    ax.set_ylabel("expert weight")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=len(names), frameon=False)
    fig.tight_layout()
    return fig
