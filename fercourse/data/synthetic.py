"""Synthetic faces: a procedural stand-in for FER2013 when the real data is not there.

FER2013 cannot be redistributed, and students without a Kaggle account still need to run the
whole course. :func:`make_synthetic_faces` draws 48x48 grayscale faces (oval head, hair, ears,
eyes with pupils, brows, nose, mouth) whose seven expressions differ the way real ones do:

============  =================  ==============  ====================================  ==========
emotion       brows              eyes            mouth                                 other
============  =================  ==============  ====================================  ==========
angry         low, inner ends    narrowed        pressed, corners slightly down        frown lines
              pulled down (V)                    (sometimes clenched teeth)
disgust       lowered            squinted        upper lip raised on one side          nose wrinkle
fear          raised, inner up   wide open       stretched sideways, a little open
happy         relaxed            a little        wide smile, often open with teeth     smile folds
                                 squinted
sad           inner ends raised  slightly        corners down                          gaze down
              (inverted V)       closed
surprise      high, arched       wide open       dropped open, round
neutral       relaxed            normal          closed, flat
============  =================  ==============  ====================================  ==========

Each face also varies in identity (face width and length, skin and hair tone, eye spacing and
size, brow thickness, mouth width), pose (rotation, translation, scale), lighting (a gradient
across the face), blur, sensor noise and occasional occlusion (a hand or a bar), and each
expression's strength varies from subtle to exaggerated. Classes follow FER2013's proportions
(disgust is rare). The result is learnable but not trivial: a small CNN separates the classes
well within a CPU minute, while a linear classifier on raw pixels does clearly worse (the pose
and identity changes move every feature around). Measured figures are in ``data/README.md``.

The faces are written in the real ``fer2013.csv`` format (:func:`write_fer2013_csv`) and read
back through :func:`fercourse.data.load_fer2013`, with a sidecar file that marks them as
synthetic, so every dataset, report and result made from them says so. Introduced in
``notebooks/01_data.ipynb``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..labels import EMOTIONS, NUM_CLASSES
from ..preprocessing import IMAGE_SIZE, RESIZE_INTERPOLATION
from .dataset import FER2013, FER2013_CLASS_COUNTS, FER2013_USAGE_COUNTS, USAGES

DEFAULT_SYNTHETIC_N: int = 8000
"""Size of the stand-in that :func:`fercourse.data.load_fer2013` makes when FER2013 is absent."""

SYNTHETIC_VERSION: int = 1
"""Bumped whenever the drawing changes, so a cached stand-in from an older version is remade."""

SYNTHETIC_MARKER_SUFFIX: str = ".synthetic.json"
"""``fer2013.csv`` + this suffix marks a CSV as synthetic (see :func:`synthetic_marker_path`)."""

_CANVAS = 2 * IMAGE_SIZE  # draw at 96 px, then shrink with INTER_AREA (smooth, alias-free edges)
_SHIFT = 4  # cv2 sub-pixel bits: coordinates are given in 1/16 px
_ONE = 1 << _SHIFT

# Per-class expression geometry, as offsets from the neutral face (see the module table).
#   brow: brow height (+ up); inner: inner brow end (+ up, - down); eye: eye opening (x neutral);
#   curve: mouth corners (+ up); open: mouth opening; width: mouth width (x neutral);
#   wrinkle: nose wrinkle; teeth: chance of visible teeth; sneer: one-sided upper-lip raise.
_EXPRESSIONS: dict[str, dict[str, float]] = {
    "angry": dict(brow=-0.7, inner=-1.0, eye=0.72, curve=-0.25, open=0.0, width=0.88, wrinkle=0.35),
    "disgust": dict(
        brow=-0.45,
        inner=-0.35,
        eye=0.62,
        curve=-0.35,
        open=0.12,
        width=0.92,
        wrinkle=1.0,
        sneer=1.0,
    ),
    "fear": dict(brow=0.75, inner=0.8, eye=1.45, curve=-0.35, open=0.35, width=1.18),
    "happy": dict(brow=0.1, inner=0.0, eye=0.8, curve=1.0, open=0.3, width=1.22, teeth=0.65),
    "sad": dict(brow=0.05, inner=0.9, eye=0.78, curve=-0.75, open=0.0, width=0.95, gaze=1.0),
    "surprise": dict(brow=1.15, inner=0.25, eye=1.6, curve=0.0, open=0.95, width=0.68),
    "neutral": dict(brow=0.0, inner=0.0, eye=1.0, curve=0.0, open=0.0, width=1.0),
}
_NEUTRAL = dict(
    brow=0.0, inner=0.0, eye=1.0, curve=0.0, open=0.0, width=1.0, wrinkle=0.0, sneer=0.0, gaze=0.0
)


def synthetic_marker_path(csv_path: str | Path) -> Path:
    """The sidecar file that marks ``csv_path`` as synthetic (``fer2013.csv.synthetic.json``)."""
    csv_path = Path(csv_path)
    return csv_path.with_name(csv_path.name + SYNTHETIC_MARKER_SUFFIX)


def read_synthetic_marker(csv_path: str | Path) -> dict | None:
    """The marker's content if ``csv_path`` holds synthetic faces, else None."""
    marker = synthetic_marker_path(csv_path)
    if not marker.is_file():
        return None
    try:
        return json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        # A damaged marker still means "synthetic": never let fake faces pass as FER2013.
        return {"synthetic": True}


def _class_counts(n: int) -> np.ndarray:
    """FER2013's class proportions scaled to ``n`` (largest remainder, every class present)."""
    props = np.array([FER2013_CLASS_COUNTS[e] for e in EMOTIONS], dtype=float)
    props /= props.sum()
    raw = props * n
    counts = np.floor(raw).astype(int)
    if n >= NUM_CLASSES:
        counts = np.maximum(counts, 1)
    while counts.sum() < n:
        counts[np.argmax(raw - counts)] += 1
    while counts.sum() > n:
        counts[np.argmax(counts)] -= 1
    return counts


def _usage_counts(n: int) -> list[int]:
    total = sum(FER2013_USAGE_COUNTS.values())
    public = round(n * FER2013_USAGE_COUNTS["PublicTest"] / total)
    private = round(n * FER2013_USAGE_COUNTS["PrivateTest"] / total)
    return [n - public - private, public, private]


def _pt(x: float, y: float) -> tuple[int, int]:
    return round(x * _ONE), round(y * _ONE)


_T = np.linspace(0.0, 1.0, 12)
_BEZIER = np.stack([(1 - _T) ** 2, 2 * (1 - _T) * _T, _T**2], axis=1) * _ONE  # (12, 3) weights
_GRID_Y, _GRID_X = np.mgrid[-1 : 1 : IMAGE_SIZE * 1j, -1 : 1 : IMAGE_SIZE * 1j].astype(np.float32)


def _bezier(p0, p1, p2) -> np.ndarray:
    """12 points of a quadratic Bezier curve, as int32 in cv2's sub-pixel units."""
    return np.rint(_BEZIER @ np.array((p0, p1, p2), dtype=float)).astype(np.int32)


def _ellipse(img, center, axes, angle, color, thickness=-1, start=0, end=360) -> None:
    cv2.ellipse(
        img,
        _pt(*center),
        (max(1, round(axes[0] * _ONE)), max(1, round(axes[1] * _ONE))),
        angle,
        start,
        end,
        color,
        thickness,
        cv2.LINE_AA,
        _SHIFT,
    )


def _polyline(img, pts: np.ndarray, color, thickness: float) -> None:
    cv2.polylines(img, [pts], False, color, max(1, round(thickness)), cv2.LINE_AA, _SHIFT)


def _expression(label: int, rng: np.random.Generator) -> dict[str, float]:
    """One face's expression: the class geometry at a random strength, plus jitter."""
    target = {**_NEUTRAL, **_EXPRESSIONS[EMOTIONS[label]]}
    strength = rng.uniform(0.6, 1.15)  # subtle to exaggerated, as in real photos
    expr = {k: v + strength * (target[k] - v) for k, v in _NEUTRAL.items()}
    expr["brow"] += rng.normal(0, 0.18)
    expr["inner"] += rng.normal(0, 0.2)
    expr["eye"] *= math.exp(rng.normal(0, 0.1))
    expr["curve"] += rng.normal(0, 0.15)
    expr["open"] = max(0.0, expr["open"] + rng.normal(0, 0.06))
    expr["width"] *= math.exp(rng.normal(0, 0.06))
    expr["teeth"] = float(rng.random() < target.get("teeth", 0.3 if expr["open"] > 0.2 else 0.0))
    if label == EMOTIONS.index("angry"):
        expr["teeth"] = float(rng.random() < 0.25)  # clenched teeth in a quarter of angry faces
        expr["open"] = max(expr["open"], 0.12 * expr["teeth"])
    return expr


@dataclass
class _Face:
    """One face's identity and layout on the 96 px canvas (all lengths in pixels)."""

    cx: float  # face centre
    cy: float
    fw: float  # face half-width and half-height
    fh: float
    unit: float  # feature scale (1.0 for an average face)
    skin: float  # grey levels
    hair: float
    feature: float  # brows, pupils, nostrils
    lip: float
    expr: dict[str, float] = field(default_factory=dict)
    ey: float = 0.0  # eye line, half eye distance, eye half-width, nostril half-width
    es: float = 0.0
    ew: float = 0.0
    nostril_w: float = 0.0
    white: float = 255.0


def _draw_background(rng: np.random.Generator) -> np.ndarray:
    s = _CANVAS
    canvas = np.full((s, s), rng.uniform(20, 235), np.uint8)
    if rng.random() < 0.6:  # a soft gradient, so the face is not always on a flat field
        ramp = np.linspace(-1, 1, s) * rng.uniform(-40, 40)
        canvas = np.clip(canvas + (ramp[None, :] if rng.random() < 0.5 else ramp[:, None]), 0, 255)
        canvas = canvas.astype(np.uint8)
    return canvas


def _draw_head(canvas: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, _Face]:
    """Neck, clothes, hair, ears and the shaded face oval, with a random identity."""
    s = _CANVAS
    # FER2013 crops are tight: the head fills the frame, hair shows at the top and the sides.
    u = rng.uniform(0.92, 1.1)
    fw = 38 * u * rng.uniform(0.93, 1.07)
    fh = fw * rng.uniform(1.15, 1.3)
    cx, cy = s / 2 + rng.normal(0, 1.5), s / 2 + 4 + rng.normal(0, 2)
    skin = rng.uniform(95, 215)
    hair = rng.uniform(10, min(skin - 30, 140))
    feature = max(5.0, skin - rng.uniform(85, 120))
    face = _Face(cx, cy, fw, fh, fw / 36.0, skin, hair, feature, skin - rng.uniform(35, 60))

    neck = (_pt(cx - fw * 0.5, cy + fh * 0.6), _pt(cx + fw * 0.5, s + 2))
    cv2.rectangle(canvas, *neck, skin * 0.75, -1, cv2.LINE_AA, _SHIFT)
    _ellipse(canvas, (cx, s + fh * 0.55), (fw * 1.6, fh * 0.5), 0, rng.uniform(10, 240))
    long_hair = rng.random() < 0.45
    _ellipse(canvas, (cx, cy - fh * 0.1), (fw * 1.12, fh * (1.0 if long_hair else 0.92)), 0, hair)
    if long_hair:
        sides = (_pt(cx - fw * 1.15, cy - fh * 0.1), _pt(cx + fw * 1.15, cy + fh * 0.8))
        cv2.rectangle(canvas, *sides, hair, -1, cv2.LINE_AA, _SHIFT)
    for side in (-1, 1):
        ear = (cx + side * fw * 0.97, cy - fh * 0.05)
        _ellipse(canvas, ear, (fw * 0.15, fh * 0.19), 0, skin * 0.88)
    # Shaded face: concentric ellipses, brighter towards the middle (the blur blends the steps).
    for step, shade in enumerate((0.84, 0.9, 0.95, 1.0)):
        k = 1.0 - 0.12 * step
        _ellipse(canvas, (cx, cy + fh * 0.04 * step), (fw * k, fh * k), 0, min(255, skin * shade))

    # Hair over the forehead: everything above an arched hairline, inside the hair outline.
    hairline_y = cy - fh * rng.uniform(0.5, 0.72)
    arch = fh * rng.uniform(0.05, 0.3)
    if rng.random() < 0.3:  # a fringe hangs lower, sometimes to one side
        hairline_y += fh * 0.15
        arch = fh * rng.uniform(-0.1, 0.1)
    line = _bezier(
        (cx - fw * 1.1, hairline_y + arch * 0.8),
        (cx + rng.normal(0, fw * 0.2), hairline_y - arch),
        (cx + fw * 1.1, hairline_y + arch * 0.8),
    )
    top = [[round((cx + fw * 1.2) * _ONE), -_ONE], [round((cx - fw * 1.2) * _ONE), -_ONE]]
    region = np.zeros_like(canvas)
    cv2.fillPoly(region, [np.vstack([line, np.array(top, np.int32)])], 255, cv2.LINE_AA, _SHIFT)
    outline = np.zeros_like(canvas)
    _ellipse(outline, (cx, cy - fh * 0.1), (fw * 1.12, fh * 1.0), 0, 255)
    alpha = (region.astype(np.float32) * outline) / (255.0 * 255.0)
    canvas = np.rint(canvas * (1 - alpha) + hair * alpha).astype(np.uint8)
    return canvas, face


def _draw_eyes(canvas: np.ndarray, f: _Face, rng: np.random.Generator) -> None:
    """Eye whites, irises clipped to the opening, lids; squints and wide eyes get creases."""
    u, expr = f.unit, f.expr
    f.ey = f.cy - f.fh * 0.16 + rng.normal(0, 1.0)
    f.es = rng.uniform(13.5, 17.5) * u
    f.ew = rng.uniform(6.0, 7.5) * u
    eh = 3.3 * u * expr["eye"]
    f.white = min(255, f.skin + rng.uniform(25, 55))
    gaze_x = rng.normal(0, 0.8) * u
    gaze_y = (1.4 * expr["gaze"] + rng.normal(0, 0.3)) * u

    eye_mask = np.zeros_like(canvas)
    for side in (-1, 1):
        _ellipse(canvas, (f.cx + side * f.es, f.ey), (f.ew, eh), 0, f.white)
        _ellipse(eye_mask, (f.cx + side * f.es, f.ey), (f.ew, eh), 0, 255)
    iris = np.full_like(canvas, 255)
    radius = 3.4 * u
    for side in (-1, 1):
        center = (f.cx + side * f.es + gaze_x, f.ey + gaze_y)
        _ellipse(iris, center, (radius, radius), 0, f.feature + 25)
        _ellipse(iris, center, (radius * 0.5, radius * 0.5), 0, f.feature)
    np.copyto(canvas, np.minimum(canvas, iris), where=eye_mask > 127)
    lid = round(max(1.5, 1.6 * u))
    for side in (-1, 1):
        ex = f.cx + side * f.es
        _ellipse(canvas, (ex, f.ey), (f.ew, eh), 0, f.feature, lid, 180, 360)
        if expr["eye"] < 0.85:  # raised cheeks or tight lids: a lower-lid crease
            axes = (f.ew * 0.9, eh + 1.2 * u)
            _ellipse(canvas, (ex, f.ey + 1.5 * u), axes, 0, f.skin * 0.75, 1, 20, 160)
        if expr["eye"] > 1.3:  # wide-open eyes show the lid fold above them
            axes = (f.ew * 1.05, eh + 1.8 * u)
            _ellipse(canvas, (ex, f.ey - 1.2 * u), axes, 0, f.skin * 0.7, 1, 200, 340)


def _draw_brows(canvas: np.ndarray, f: _Face, rng: np.random.Generator) -> float:
    """Brows (height and slant carry most of an expression); returns their height."""
    u, expr, cx = f.unit, f.expr, f.cx
    by = f.ey - (8.5 + 3.8 * expr["brow"]) * u
    thick = rng.uniform(2.2, 3.8) * u
    arch = (1.5 + 2.5 * max(0.0, expr["brow"])) * u
    for side in (-1, 1):
        inner = (cx + side * (f.es - 7.5 * u), by - 3.2 * expr["inner"] * u)
        outer = (cx + side * (f.es + 8.5 * u), by + 1.0 * u)
        mid = (cx + side * f.es, by - arch - 0.8 * expr["inner"] * u)
        _polyline(canvas, _bezier(inner, mid, outer), f.hair * 0.9, thick)
    if expr["inner"] < -0.45:  # frown lines between lowered brows
        for dx in (-1.6, 1.6):
            x = cx + dx * u
            line = _bezier((x, by - 2 * u), (x + dx * 0.3, by + 2 * u), (x, by + 5 * u))
            _polyline(canvas, line, f.skin * 0.72, u)
    return by


def _draw_nose(canvas: np.ndarray, f: _Face, rng: np.random.Generator) -> float:
    """Bridge shadow, tip and nostrils, plus a wrinkle (disgust); returns the nostril height."""
    u, cx, ey = f.unit, f.cx, f.ey
    ny = ey + 17 * u
    side = rng.choice((-1, 1))  # the side the light leaves in shadow
    bridge = _bezier(
        (cx + side * 2.5 * u, ey + 3 * u),
        (cx + side * 3.5 * u, ey + 10 * u),
        (cx + side * 3 * u, ny - 2 * u),
    )
    _polyline(canvas, bridge, f.skin * 0.85, 1.5 * u)
    f.nostril_w = (3.6 + 1.2 * f.expr["wrinkle"]) * u
    for s in (-1, 1):
        nostril = (cx + s * f.nostril_w, ny)
        _ellipse(canvas, nostril, (1.6 * u, 1.0 * u), s * 20, f.feature + 20)
    tip = (f.nostril_w + 1.5 * u, 3 * u)
    _ellipse(canvas, (cx, ny - 1.5 * u), tip, 0, f.skin * 0.78, 1, 0, 180)
    if f.expr["wrinkle"] > 0.3:
        for k in range(1 + round(2 * min(1.0, f.expr["wrinkle"]))):
            y = ey + (1.5 + 2.6 * k) * u
            line = _bezier((cx - 3.5 * u, y + u), (cx, y - 0.8 * u), (cx + 3.5 * u, y + u))
            _polyline(canvas, line, f.skin * 0.62, 1.2 * u)
    return ny


def _draw_mouth(
    canvas: np.ndarray, f: _Face, label: int, ny: float, rng: np.random.Generator
) -> None:
    """Mouth corners, opening, teeth and lips; smile folds for a strong smile."""
    u, expr, cx = f.unit, f.expr, f.cx
    my = f.ey + 29 * u
    mw = 10.5 * u * expr["width"]
    corner = -expr["curve"] * 4.5 * u  # positive moves the corners down
    sneer = expr["sneer"] * rng.choice((-1, 1)) * 3.0 * u  # one-sided upper-lip raise
    left = (cx - mw, my + corner - max(0.0, sneer))
    right = (cx + mw, my + corner + min(0.0, sneer))
    opening = expr["open"] * 12 * u
    if label == EMOTIONS.index("surprise") and opening > 3 * u:
        # A dropped jaw: a round "O" rather than a wide slit.
        center = (cx, my + opening * 0.35)
        axes = (mw * 0.8, max(2 * u, opening * 0.6))
        _ellipse(canvas, center, axes, 0, f.lip, round(2 * u))
        _ellipse(canvas, center, (axes[0] - u, axes[1] - u), 0, f.feature * 0.6)
    else:
        upper_ctrl = (cx, my - corner * 0.9 - max(0.0, abs(sneer) - u) * 0.4)
        upper = _bezier(left, upper_ctrl, right)
        if opening > 1.5 * u:
            lower = _bezier(left, (cx, upper_ctrl[1] + 2 * opening), right)
            inside = [np.vstack([upper, lower[::-1]])]
            cv2.fillPoly(canvas, inside, f.feature * 0.6, cv2.LINE_AA, _SHIFT)
            if expr["teeth"] > 0.5:
                teeth_h = min(opening * 0.55, 3.5 * u)
                teeth = _bezier(left, (cx, upper_ctrl[1] + 2 * teeth_h), right)
                cv2.fillPoly(
                    canvas, [np.vstack([upper, teeth[::-1]])], f.white, cv2.LINE_AA, _SHIFT
                )
            _polyline(canvas, lower, f.lip, 1.8 * u)
        _polyline(canvas, upper, f.lip * 0.85, (2.2 if opening <= 1.5 * u else 1.6) * u)
    if expr["curve"] > 0.45:  # smile folds from the nose to the mouth corners
        for side, (x, y) in ((-1, left), (1, right)):
            start = (cx + side * (f.nostril_w + 3 * u), ny - u)
            fold = _bezier(start, (x + side * 4 * u, (ny + y) / 2), (x + side * 2 * u, y + 2 * u))
            _polyline(canvas, fold, f.skin * 0.76, 1.2 * u)


def _draw_occlusion(canvas: np.ndarray, f: _Face, rng: np.random.Generator) -> None:
    """Sometimes a hand over part of the face, or a bar (text, a watermark, a strap)."""
    if rng.random() >= 0.1:
        return
    u = f.unit
    if rng.random() < 0.6:
        hx = f.cx + rng.choice((-1, 1)) * rng.uniform(10, 30) * u
        hy = f.cy + rng.uniform(0, 30) * u
        angle, tone = rng.uniform(-40, 40), f.skin * rng.uniform(0.85, 1.1)
        _ellipse(canvas, (hx, hy), (11 * u, 15 * u), angle, tone)
        for k in range(3):
            fx = hx - 6 * u + k * 5 * u
            finger = _bezier((fx, hy - 12 * u), (fx, hy - 4 * u), (fx, hy + 4 * u))
            _polyline(canvas, finger, f.skin * 0.7, u)
    else:
        y0 = rng.uniform(0, _CANVAS - 12)
        x0 = rng.uniform(-20, _CANVAS / 2)
        corner = _pt(x0 + rng.uniform(25, 60), y0 + rng.uniform(5, 12))
        color = rng.choice((10.0, 240.0))
        cv2.rectangle(canvas, _pt(x0, y0), corner, color, -1, cv2.LINE_AA, _SHIFT)


def _draw_face(label: int, rng: np.random.Generator) -> np.ndarray:
    """Draw one face on a 96x96 canvas (uint8), before pose, lighting and noise."""
    canvas, face = _draw_head(_draw_background(rng), rng)
    face.expr = _expression(label, rng)
    _draw_eyes(canvas, face, rng)
    _draw_brows(canvas, face, rng)
    ny = _draw_nose(canvas, face, rng)
    _draw_mouth(canvas, face, label, ny, rng)
    _draw_occlusion(canvas, face, rng)
    return canvas


def _pose_lighting_noise(canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotate/scale/shift at 96 px, shrink to 48 px, then light, blur and add noise."""
    s = _CANVAS
    angle = rng.normal(0, 6.0)
    scale = rng.uniform(0.9, 1.12)
    shift = rng.normal(0, 3.0, size=2)
    m = cv2.getRotationMatrix2D((s / 2, s / 2), angle, scale)
    m[:, 2] += shift
    warped = cv2.warpAffine(
        canvas, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    face = cv2.resize(warped, (IMAGE_SIZE, IMAGE_SIZE), interpolation=RESIZE_INTERPOLATION)
    face = face.astype(np.float32)
    # Lighting: a linear gradient in a random direction, plus exposure and contrast.
    theta = rng.uniform(0, 2 * math.pi)
    gain = 1.0 + rng.uniform(0, 0.45) * (np.cos(theta) * _GRID_X + np.sin(theta) * _GRID_Y)
    face *= gain
    face = (face - 128) * rng.uniform(0.75, 1.2) + 128 + rng.normal(0, 12)
    sigma = rng.uniform(0.0, 0.85)
    if sigma > 0.3:
        face = cv2.GaussianBlur(face, (0, 0), sigma)
    face += rng.normal(0, rng.uniform(1.0, 6.0), face.shape).astype(np.float32)
    return np.clip(np.rint(face), 0, 255).astype(np.uint8)


def make_synthetic_faces(n: int = DEFAULT_SYNTHETIC_N, seed: int = 0) -> FER2013:
    """Draw ``n`` procedural 48x48 faces with FER2013's class and Usage proportions.

    Introduced in ``notebooks/01_data.ipynb``.

    Rows are ordered like ``fer2013.csv``: Training first, then PublicTest, then PrivateTest
    (80/10/10). The same ``(n, seed)`` always gives the same faces.

    Args:
        n: number of faces (every class is present from ``n >= 7``; disgust is ~1.5%).
        seed: random seed.

    Returns:
        A :class:`FER2013` with ``format="synthetic"`` and ``synthetic=True``.

    Example:
        >>> import fercourse as fc
        >>> faces = fc.data.make_synthetic_faces(n=500, seed=0)
        >>> faces
        FER2013(500 faces (Training=400, PublicTest=50, PrivateTest=50), format='synthetic', synthetic=True (procedural stand-in, not FER2013), source='make_synthetic_faces(n=500, seed=0)')
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(NUM_CLASSES), _class_counts(n))
    rng.shuffle(labels)
    usage = np.repeat(np.array(USAGES), _usage_counts(n))
    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    for i, label in enumerate(labels):
        images[i] = _pose_lighting_noise(_draw_face(int(label), rng), rng)
    return FER2013(
        images=images,
        labels=labels,
        usage=usage,
        source=f"make_synthetic_faces(n={n}, seed={seed})",
        format="synthetic",
        synthetic=True,
    )
