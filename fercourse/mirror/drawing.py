"""Draw a mirror result on a still picture: boxes, the emoji of each face, probability bars.

The live widget draws its overlay in the browser (``tap.js``), which keeps Python's per-frame work
small. Still pictures (snapshot mode, notebooks run headless) are drawn here, in the same style:
:func:`annotate` draws boxes and labels into the pixels with OpenCV (which cannot draw colour
emoji), and :func:`result_html` shows the picture with each face's emoji laid over it as text, so
the browser's emoji font renders it, and bars for the main face.
"""

from __future__ import annotations

import base64
import html

import cv2
import numpy as np

from .. import preprocessing
from ..labels import EMOJI, EMOTIONS
from .pipeline import FrameResult

PALETTE: tuple[tuple[int, int, int], ...] = (
    (76, 120, 168),
    (245, 133, 24),
    (84, 162, 75),
    (228, 87, 86),
    (178, 121, 162),
    (114, 183, 178),
)
"""RGB colour per face (by track number), the same list as ``tap.js``."""


def face_colour(track_id: int) -> tuple[int, int, int]:
    """The RGB colour used for the face with this track number."""
    return PALETTE[(track_id - 1) % len(PALETTE)]


def _rgb(image: np.ndarray, channel_order: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(preprocessing.to_gray(image), cv2.COLOR_GRAY2RGB)
    if channel_order.upper() == "BGR":
        return cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(image[:, :, :3])


def _label(face) -> str:
    if face.probabilities is None:
        return "face (no model)"
    name = face.emotion if face.emotion is not None else "not sure"
    return f"{name} {100 * face.confidence:.0f}%"


def annotate(image: np.ndarray, result: FrameResult, *, channel_order: str = "RGB") -> np.ndarray:
    """A copy of ``image`` (RGB) with each face's box and ``"emotion 83%"`` label drawn in.

    Args:
        image: the picture ``result`` was computed on (gray or colour uint8).
        result: from :class:`fercourse.mirror.FrameProcessor`.
        channel_order: of a colour ``image``.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    out = _rgb(image, channel_order).copy()
    thick = max(1, round(min(out.shape[:2]) / 200))
    for face in result.faces:
        x, y, w, h = face.box
        colour = face_colour(face.track_id)
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, thick, cv2.LINE_AA)
        scale = max(0.4, w / 250)
        text = _label(face)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        ty = y + h + th + base + 2 if y + h + th + base + 2 < out.shape[0] else max(th, y - base)
        cv2.rectangle(out, (x, ty - th - base), (x + tw + 4, ty + base), colour, -1)
        cv2.putText(
            out,
            text,
            (x + 2, ty),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (255, 255, 255),
            thick,
            cv2.LINE_AA,
        )
    return out


def _png_base64(rgb: np.ndarray) -> str:
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover - OpenCV always encodes a uint8 RGB image
        raise RuntimeError("OpenCV could not encode the annotated picture")
    return base64.b64encode(data.tobytes()).decode("ascii")


def bars_html(probabilities: np.ndarray, *, highlight: str | None = None) -> str:
    """One labelled bar per emotion (in :data:`fercourse.EMOTIONS` order)."""
    rows = []
    for name, p in zip(EMOTIONS, probabilities):
        weight = "bold" if name == highlight else "normal"
        rows.append(
            f'<div style="display:flex;align-items:center;gap:6px;font-weight:{weight}">'
            f'<span style="width:1.4em">{EMOJI[name]}</span>'
            f'<span style="width:5.5em">{name}</span>'
            '<span style="display:inline-block;width:140px;height:10px;background:#e6e6e6">'
            f'<span style="display:block;width:{100 * float(p):.1f}%;height:100%;'
            'background:#4c78a8"></span></span>'
            f"<span>{100 * float(p):.1f}%</span></div>"
        )
    return "".join(rows)


def result_html(
    image: np.ndarray,
    result: FrameResult,
    *,
    channel_order: str = "RGB",
    show_probabilities: bool = True,
    width: int = 360,
    message: str | None = None,
) -> str:
    """HTML showing ``image`` with boxes, each face's emoji and the main face's bars.

    Args:
        image: the picture ``result`` was computed on.
        result: from :class:`fercourse.mirror.FrameProcessor`.
        channel_order: of a colour ``image``.
        show_probabilities: add the main face's probability bars.
        width: displayed width of the picture in CSS pixels.
        message: a line shown under the picture (e.g. "no trained model yet: ...").
    """
    rgb = annotate(image, result, channel_order=channel_order)
    scale = width / rgb.shape[1]
    marks = []
    for face in result.faces:
        x, y, w, _ = face.box
        if not face.emoji:
            continue
        size = max(18, round(0.45 * w * scale))
        marks.append(
            f'<div style="position:absolute;left:{(x + w) * scale - 0.5 * size:.0f}px;'
            f"top:{y * scale - 0.6 * size:.0f}px;font-size:{size}px;line-height:1;"
            f'text-shadow:0 0 4px #fff">{face.emoji}</div>'
        )
    parts = [
        '<div class="fc-snapshot" style="display:flex;gap:18px;align-items:flex-start;'
        'font-family:sans-serif;font-size:13px">',
        f'<div style="position:relative;width:{width}px;overflow:visible">'
        f'<img src="data:image/png;base64,{_png_base64(rgb)}" style="width:{width}px;display:block">'
        + "".join(marks)
        + "</div><div>",
    ]
    if not result.faces:
        parts.append("<p><b>No face found.</b> Try a photo with a frontal face, well lit.</p>")
    else:
        main = result.faces[0]
        summary = f"{len(result.faces)} face{'s' if len(result.faces) > 1 else ''} found"
        parts.append(f"<p><b>{summary}</b> (model: {html.escape(str(result.model))})</p>")
        if main.probabilities is not None:
            name = main.emotion or "not sure"
            parts.append(
                f'<div style="font-size:56px;line-height:1.1">{main.emoji}</div>'
                f"<p>main face: <b>{name}</b> ({100 * main.confidence:.1f}%)</p>"
            )
            if show_probabilities:
                parts.append(bars_html(main.probabilities, highlight=main.emotion))
    if message:
        parts.append(f'<p style="color:#a33">{html.escape(message)}</p>')
    parts.append("</div></div>")
    return "".join(parts)
