"""The frame tap: a small anywidget that streams camera frames from the browser into Python.

Why not ipywebrtc's ``ImageRecorder``: measured in JupyterLab 4.6 it delivers about one frame per
second (every snapshot creates a new ``<video>`` element and waits for it), which is no mirror.
This widget's JavaScript (``tap.js``) draws each new video frame onto a small canvas and sends
its pixels as one binary message; Python answers each frame with the faces it found, and at most
two frames wait for an answer at any time. That reached ~30 frames/s on localhost.

The camera itself is ipywebrtc's ``CameraStream`` when one is passed (``camera=``): the tap reads
its MediaStream, so ipywebrtc stays available for snapshots and recordings of the same camera.
Without one, the tap opens the camera with ``getUserMedia``. Introduced in
``notebooks/09_mirror.ipynb``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import cv2
import numpy as np
import traitlets
from ipywidgets import widget_serialization

from ..labels import EMOJI, EMOTIONS
from .pipeline import FrameResult

_HERE = Path(__file__).resolve().parent

FrameHandler = Callable[[np.ndarray], FrameResult]


class FrameTap(anywidget.AnyWidget):
    """Camera view that sends frames to ``processor`` and draws its answers over the video.

    Args:
        processor: called with each frame, an (H, W, 3|4) uint8 RGB(A) array, returning a
            :class:`fercourse.mirror.FrameResult` (usually a
            :class:`fercourse.mirror.FrameProcessor`). ``None``: frames are only counted.
        **kwargs: initial trait values (``send_width``, ``running``, ``camera``, ...).

    Counters (read them from Python; the widget shows them live; synced every 0.25 s):
    ``frames_received``, ``frames_classified`` (frames in which at least one face got
    probabilities), ``frames_with_faces``, ``fps`` (frames received per second, last ~2 s),
    ``latency_ms`` / ``latency_p95_ms`` (Python's time per frame, median and 95th percentile of
    the last 120 frames). ``camera_error`` holds the
    browser's error (e.g. ``"NotAllowedError: ..."``), ``""`` when the camera works.
    """

    _esm = _HERE / "tap.js"
    _css = _HERE / "tap.css"

    running = traitlets.Bool(True, help="camera on and frames flowing").tag(sync=True)
    send_width = traitlets.Int(160, help="width of the frames sent to Python (px)").tag(sync=True)
    frame_format = traitlets.Enum(
        ("rgba", "jpeg"), "rgba", help="how frames travel: raw RGBA pixels or JPEG (small)"
    ).tag(sync=True)
    jpeg_quality = traitlets.Float(0.9, help="JPEG quality in (0, 1]").tag(sync=True)
    max_in_flight = traitlets.Int(2, help="frames sent but not yet answered, at most").tag(
        sync=True
    )
    display_width = traitlets.Int(480, help="width of the video on the page (CSS px)").tag(
        sync=True
    )
    mirror_view = traitlets.Bool(True, help="show the video flipped, like a mirror").tag(sync=True)
    show_probabilities = traitlets.Bool(True, help="bars for the main face").tag(sync=True)
    auto_stop_s = traitlets.Float(0.0, help="stop the camera after this many s (0: never)").tag(
        sync=True
    )
    camera = traitlets.Instance(
        "ipywebrtc.CameraStream", allow_none=True, help="camera to read (None: getUserMedia)"
    ).tag(sync=True, **widget_serialization)
    message = traitlets.Unicode("", help="a note from Python shown under the video").tag(sync=True)
    emotions = traitlets.List(list(EMOTIONS)).tag(sync=True)
    emoji = traitlets.Dict(dict(EMOJI)).tag(sync=True)

    # Written by the browser.
    camera_error = traitlets.Unicode("", help="the camera's error, '' when it works").tag(sync=True)
    camera_source = traitlets.Unicode("", help="'ipywebrtc CameraStream' or 'getUserMedia'").tag(
        sync=True
    )

    # Written by Python, shown by the browser.
    SYNC_INTERVAL_S = 0.25
    """How often the counter traits are synced (the browser gets them with every answer)."""

    frames_received = traitlets.Int(0).tag(sync=True)
    frames_classified = traitlets.Int(0).tag(sync=True)
    frames_with_faces = traitlets.Int(0).tag(sync=True)
    fps = traitlets.Float(0.0).tag(sync=True)
    latency_ms = traitlets.Float(0.0).tag(sync=True)
    latency_p95_ms = traitlets.Float(0.0).tag(sync=True)

    def __init__(self, processor: FrameHandler | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.processor = processor
        self.last_result: FrameResult | None = None
        self.last_error: str | None = None
        self._arrivals: deque[float] = deque(maxlen=90)
        self._latencies: deque[float] = deque(maxlen=120)
        self._received = self._classified = self._with_faces = 0
        self._last_sync = 0.0
        self._pending_stats: dict[str, Any] | None = None
        # Never name this handler `_handle_msg`: that would replace ipywidgets' own dispatcher.
        self.on_msg(self._on_frame_message)

    def reset_counters(self) -> None:
        """Zero the counters (e.g. before measuring)."""
        self._arrivals.clear()
        self._latencies.clear()
        self._received = self._classified = self._with_faces = 0
        self._pending_stats = None
        with self.hold_sync():
            self.frames_received = self.frames_classified = self.frames_with_faces = 0
            self.fps = self.latency_ms = self.latency_p95_ms = 0.0

    def handle_frame(self, frame: np.ndarray) -> dict[str, Any]:
        """Process one decoded frame and return the answer the browser gets (without ``seq``).

        This is what every frame message goes through; tests and the benchmark call it directly.
        """
        start = time.perf_counter()
        self._arrivals.append(start)
        reply: dict[str, Any] = {"type": "result"}
        result = None
        if self.processor is not None:
            try:
                result = self.processor(frame)
                self.last_error = None
            except Exception as exc:  # one bad frame must not kill the stream; show why
                self.last_error = f"{type(exc).__name__}: {exc}"
                reply["error"] = self.last_error
        if result is None:
            result = FrameResult(width=int(frame.shape[1]), height=int(frame.shape[0]))
        self.last_result = result
        elapsed = 1e3 * (time.perf_counter() - start)
        self._latencies.append(elapsed)
        classified = any(f.probabilities is not None for f in result.faces)
        lat = np.asarray(self._latencies)
        recent = [t for t in self._arrivals if start - t <= 2.0]  # the last ~2 s
        span = recent[-1] - recent[0]
        fps = (len(recent) - 1) / span if span > 0 else 0.0
        self._received += 1
        self._classified += int(classified)
        self._with_faces += int(bool(result.faces))
        stats = {
            "frames_received": self._received,
            "frames_classified": self._classified,
            "frames_with_faces": self._with_faces,
            "fps": round(fps, 2),
            "latency_ms": round(float(np.percentile(lat, 50)), 3),
            "latency_p95_ms": round(float(np.percentile(lat, 95)), 3),
        }
        # The browser reads the counters from each answer; the traits (for Python code and
        # other views) are synced a few times a second, in one message: a state update per
        # frame would double the messages through the kernel.
        if start - self._last_sync >= self.SYNC_INTERVAL_S or self._received == 1:
            self.sync_counters(stats)
        else:
            self._pending_stats = stats
        reply["result"] = result.to_dict()
        reply["latency_ms"] = round(elapsed, 3)
        reply["stats"] = stats
        return reply

    def sync_counters(self, stats: dict[str, Any] | None = None) -> None:
        """Copy the latest counters into the synced traits now."""
        stats = stats or self._pending_stats
        if not stats:
            return
        self._last_sync = time.perf_counter()
        self._pending_stats = None
        with self.hold_sync():
            for name, value in stats.items():
                setattr(self, name, value)

    def _on_frame_message(self, _widget: Any, content: dict[str, Any], buffers: list) -> None:
        if not isinstance(content, dict) or content.get("type") != "frame" or not buffers:
            return
        width, height = int(content["width"]), int(content["height"])
        try:
            frame = decode_frame(buffers[0], width, height, content.get("format", "rgba"))
        except ValueError as exc:
            reply = {
                "type": "result",
                "error": str(exc),
                "result": FrameResult(width=width, height=height).to_dict(),
            }
        else:
            reply = self.handle_frame(frame)
        reply["seq"] = content.get("seq")
        reply["format"] = content.get("format", "rgba")  # what Python decoded, for the page
        self.send(reply)


def decode_frame(data: bytes | memoryview, width: int, height: int, fmt: str) -> np.ndarray:
    """The pixels of one frame message: (H, W, 4) RGBA for ``"rgba"``, (H, W, 3) RGB for ``"jpeg"``.

    Only the transport is undone here; gray conversion, cropping and resizing stay in
    :mod:`fercourse.preprocessing`, as for every other picture.

    Raises:
        ValueError: bytes that do not match the announced size or format.
    """
    array = np.frombuffer(data, dtype=np.uint8)
    if fmt == "rgba":
        if array.size != width * height * 4:
            raise ValueError(f"frame of {array.size} bytes for {width}x{height} RGBA")
        return array.reshape(height, width, 4)
    if fmt == "jpeg":
        bgr = cv2.imdecode(array, cv2.IMREAD_COLOR)
        if bgr is None or bgr.shape[:2] != (height, width):
            raise ValueError(f"frame of {array.size} bytes is not a {width}x{height} JPEG")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    raise ValueError(f"unknown frame format {fmt!r}; expected 'rgba' or 'jpeg'")
