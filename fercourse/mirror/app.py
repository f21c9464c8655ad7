"""The live emoji mirror: camera, controls and snapshot mode in one widget.

``fc.mirror.launch()`` builds a :class:`Mirror` and returns it for display::

    import fercourse as fc
    mirror = fc.mirror.launch()            # best trained checkpoint, camera on
    mirror                                 # display it (the last line of a cell)

What runs where: the browser plays the camera, shrinks frames and draws the overlay (``tap.js``);
Python runs :class:`fercourse.mirror.FrameProcessor` on each frame (detect, ``prepare_face``,
classify, smooth). JupyterLab >= 4.4 with ipykernel 7 delivers widget messages to a kernel
subshell (a second thread), so the mirror keeps running while other cells run; with older versions
frames wait until the kernel is idle, and the widget says "waiting for the kernel". After a kernel
restart, re-run the mirror cell.
Introduced in ``notebooks/09_mirror.ipynb``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import ipywidgets as widgets
import numpy as np

from ..checkpoint import CheckpointError, read_card
from ..inference.emotion_model import (
    TRAIN_HINT,
    EmotionModel,
    NoModelError,
    default_checkpoint,
    find_checkpoints,
)
from ..inference.face_detector import FaceDetector
from .demo import sample_photo
from .drawing import result_html
from .pipeline import LIVE_THREADS, FaceResult, FrameProcessor, FrameResult
from .tap import FrameTap

NO_MODEL_MESSAGE = (
    "No trained model yet: faces are found but not classified. To train one, "
    + TRAIN_HINT
    + "; then re-run this cell."
)

BUNDLED_MODEL_MESSAGE = (
    "Using the model bundled with fercourse ({summary}): no checkpoint of yours trained on "
    "FER2013 was found (yours, if any, are in the model list). To train your own, "
    + TRAIN_HINT
    + "."
)


def model_message(model: EmotionModel | None) -> str:
    """The note shown under the mirror for this model: none for the student's own checkpoint."""
    if model is None:
        return NO_MODEL_MESSAGE
    if is_bundled(model):
        return BUNDLED_MODEL_MESSAGE.format(summary=bundled_summary(model.card))
    return ""


def is_bundled(model: EmotionModel) -> bool:
    """Whether ``model`` was loaded from the checkpoint that ships inside the package."""
    stem = default_checkpoint()
    return stem is not None and model.source == str(stem)


def bundled_summary(card: dict[str, Any]) -> str:
    """``"attention_cnn trained on FER2013, 66.7% PrivateTest accuracy"`` from the bundled model's card."""
    parts = [
        f"{card.get('model', 'a model')} trained on {card.get('data', {}).get('name', 'FER2013')}"
    ]
    accuracy = card.get("results", {}).get("PrivateTest", {}).get("accuracy")
    if accuracy is not None:
        parts.append(f"{accuracy:.1%} PrivateTest accuracy")
    return ", ".join(parts)


STILL_DETECT_WIDTH = 640
"""Photos are scanned at up to this width: a still has time for a finer search than a live frame."""


def decode_image(data: bytes | memoryview) -> np.ndarray:
    """Decode an uploaded JPEG/PNG/... into (H, W, 3) uint8 RGB.

    Raises:
        ValueError: when the bytes are not an image OpenCV can read.
    """
    array = np.frombuffer(bytes(data), dtype=np.uint8)
    bgr = cv2.imdecode(array, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"could not read the uploaded file as an image ({array.size} bytes)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@dataclass
class Snapshot:
    """The mirror's answer for a still picture (displays as the annotated picture).

    Attributes:
        image: the picture, RGB.
        result: faces, boxes, emoji and probabilities (a :class:`FrameResult`).
        message: a note shown with it (e.g. that no model is trained yet).
    """

    image: np.ndarray
    result: FrameResult
    message: str | None = None
    show_probabilities: bool = True

    @property
    def faces(self) -> list[FaceResult]:
        """Faces found, largest first."""
        return self.result.faces

    def _repr_html_(self) -> str:
        return result_html(
            self.image,
            self.result,
            show_probabilities=self.show_probabilities,
            message=self.message,
        )

    def __repr__(self) -> str:
        faces = ", ".join(
            f"{f.emotion or ('not sure' if f.probabilities is not None else 'face')} at {f.box}"
            for f in self.faces
        )
        return f"Snapshot({self.image.shape[1]}x{self.image.shape[0]}: {faces or 'no face'})"


def _as_model(model: EmotionModel | str | Path | None) -> tuple[EmotionModel | None, str | None]:
    if model is not None and not isinstance(model, EmotionModel):
        try:
            model = EmotionModel.load(model)
        except NoModelError:
            model = None
    return model, model_message(model) or None


def snapshot(
    image: np.ndarray,
    model: EmotionModel | str | Path | None = "auto",
    *,
    threshold: float = 0.4,
    detect_faces: bool = True,
    channel_order: str = "RGB",
) -> Snapshot:
    """Run the mirror's pipeline on one still picture (no webcam needed).

    Args:
        image: uint8 picture, e.g. :func:`sample_photo` or an uploaded photo.
        model: an :class:`fercourse.EmotionModel`, or what :meth:`EmotionModel.load` takes;
            ``None`` (or nothing trained) finds faces without classifying them.
        threshold: below this confidence a face shows "?".
        detect_faces: ``False`` takes the whole picture as the face.
        channel_order: of a colour picture.

    Returns:
        A :class:`Snapshot`; it displays as the annotated picture.
    """
    emotion_model, message = _as_model(model)
    process = FrameProcessor(
        emotion_model,
        FaceDetector(detect_width=STILL_DETECT_WIDTH),
        threshold=threshold,
        smoothing=0.0,  # a single picture: nothing to average over
        detect_faces=detect_faces,
        channel_order=channel_order,
    )
    return Snapshot(np.asarray(image), process(image), message)


def model_choices(root: str | Path | None = None) -> list[tuple[str, str]]:
    """Dropdown options ``(label, value)``: every checkpoint found (best first), then the bundled one."""
    options = [(c.label, str(c.path)) for c in find_checkpoints(root)]
    stem = default_checkpoint()
    if stem is not None:
        try:
            summary = bundled_summary(read_card(stem))
        except CheckpointError as exc:
            summary = f"unreadable card: {exc}"
        options.append((f"default, bundled with fercourse ({summary})", "default"))
    return options


class Mirror(widgets.VBox):
    """The live emoji mirror with its controls and a snapshot mode.

    Args:
        model: ``"auto"`` (best FER2013-trained checkpoint, else the bundled one), a model name, a
            checkpoint path, an :class:`fercourse.EmotionModel`, or ``None`` (faces only).
        send_width: width of the frames the browser sends (height follows the camera's aspect).
            160 px: a laptop-webcam face is then 40-60 px, about FER2013's 48 px.
        frame_format: ``"rgba"`` (raw pixels, lossless; fastest on a busy 2-core machine at
            160 px) or ``"jpeg"`` (~15 KB a frame whatever the size: use it for ``send_width``
            320 or more, or over a real network).
        threshold: below this smoothed confidence a face shows "?" instead of an emoji.
        smoothing: per-face EMA weight of the past, in [0, 1).
        detect_faces: find faces (``False``: the whole frame is one face).
        show_probabilities: bars for the main face.
        running: open the camera right away.
        use_ipywebrtc: read the camera through an ipywebrtc ``CameraStream`` (and offer its
            snapshot button); ``False`` lets the tap call ``getUserMedia`` itself.
        backend: ``"auto"`` (ONNX Runtime when the model exports, else PyTorch), ``"onnx"`` or
            ``"torch"``. ONNX Runtime needs ~30 % less CPU per frame here; a checkpoint's first
            export takes a few seconds and is cached under ``outputs/onnx-cache/``.
        threads: CPU threads per forward pass of a loaded model (see
            :data:`fercourse.mirror.pipeline.LIVE_THREADS`; ``None``: PyTorch's setting).
        auto_stop_s: turn the camera off after this many seconds (0: never).
        display_width: width of the video on the page.

    Attributes:
        tap: the :class:`fercourse.mirror.FrameTap` (counters: ``frames_received``, ``fps``...).
        processor: the :class:`fercourse.mirror.FrameProcessor` run on every frame.
        model: the loaded :class:`fercourse.EmotionModel`, or ``None``.
    """

    def __init__(
        self,
        model: EmotionModel | str | Path | None = "auto",
        *,
        send_width: int = 160,
        frame_format: str = "rgba",
        threshold: float = 0.4,
        smoothing: float = 0.6,
        detect_faces: bool = True,
        show_probabilities: bool = True,
        running: bool = True,
        use_ipywebrtc: bool = True,
        backend: str = "auto",
        threads: int | None = LIVE_THREADS,
        auto_stop_s: float = 0.0,
        display_width: int = 480,
    ) -> None:
        self.backend = backend
        self.threads = threads
        self.processor = FrameProcessor(
            None, threshold=threshold, smoothing=smoothing, detect_faces=detect_faces
        )
        self.camera = None
        if use_ipywebrtc:
            from ipywebrtc import CameraStream

            self.camera = CameraStream(
                constraints={
                    "audio": False,
                    "video": {"width": 640, "height": 480, "facingMode": "user"},
                }
            )
        self.tap = FrameTap(
            self.processor,
            camera=self.camera,
            running=running,
            send_width=send_width,
            frame_format=frame_format,
            show_probabilities=show_probabilities,
            auto_stop_s=auto_stop_s,
            display_width=display_width,
        )
        self._build_controls(threshold, smoothing, detect_faces, show_probabilities, running)
        self._build_snapshot()
        super().__init__([self._controls, self.tap, self._snapshot_box])
        self.model: EmotionModel | None = None
        self.select_model(model)

    # ----------------------------------------------------------------------------------------
    # Model

    def select_model(self, what: EmotionModel | str | Path | None) -> EmotionModel | None:
        """Load and use another model (``"auto"``, a name, a path, a model or ``None``).

        A model that cannot be loaded leaves the mirror finding faces only, with the reason shown.
        """
        choices = model_choices()
        self._updating = True
        try:
            self.model_dropdown.options = choices or [("no trained model yet", "")]
            self.model_dropdown.disabled = not choices
            message = ""
            try:
                if isinstance(what, EmotionModel) or what is None:
                    model = what
                else:
                    model = EmotionModel.load(what, backend=self.backend, threads=self.threads)
                message = model_message(model)
            except NoModelError:
                model, message = None, NO_MODEL_MESSAGE
            except Exception as exc:  # a broken checkpoint: say which and why, keep running
                model, message = None, f"Could not load {what}: {type(exc).__name__}: {exc}"
            self.model = model
            self.processor.set_model(model)
            self.tap.message = message
            if model is not None:
                values = [v for _, v in choices]
                src = str(model.source)
                if src in values:
                    self.model_dropdown.value = src
                elif src == str(default_checkpoint()) and "default" in values:
                    self.model_dropdown.value = "default"
                else:  # an in-memory model or a checkpoint outside outputs/
                    label = f"{model.name} ({src})"
                    self.model_dropdown.options = [*choices, (label, src)]
                    self.model_dropdown.value = src
                    self.model_dropdown.disabled = False
        finally:
            self._updating = False
        return self.model

    def _on_model_change(self, change: dict[str, Any]) -> None:
        if not self._updating and change["new"]:
            self.select_model(change["new"])

    # ----------------------------------------------------------------------------------------
    # Controls

    # Longer than the package's ~60-line guide on purpose: the widgets the teacher sees (one
    # constructor each), the small callback that wires each one to the processor or the camera,
    # and their layout, in that order; split up, each callback would sit far from its widget.
    def _build_controls(
        self,
        threshold: float,
        smoothing: float,
        detect_faces: bool,
        show_probabilities: bool,
        running: bool,
    ) -> None:
        self._updating = False
        self.start_stop = widgets.ToggleButton(
            value=running,
            description="Stop" if running else "Start",
            icon="stop" if running else "play",
            tooltip="turn the camera on or off",
            layout=widgets.Layout(width="90px"),
        )
        self.model_dropdown = widgets.Dropdown(
            description="model", layout=widgets.Layout(width="420px")
        )
        self.refresh_button = widgets.Button(
            icon="refresh", tooltip="look for new checkpoints", layout=widgets.Layout(width="40px")
        )
        self.detect_toggle = widgets.Checkbox(value=detect_faces, description="face detection")
        self.probability_toggle = widgets.Checkbox(
            value=show_probabilities, description="probabilities"
        )
        self.threshold_slider = widgets.FloatSlider(
            value=threshold, min=0.0, max=1.0, step=0.05, description="threshold",
            tooltip="below this confidence a face shows ? instead of an emoji",
        )  # fmt: skip
        self.smoothing_slider = widgets.FloatSlider(
            value=smoothing, min=0.0, max=0.95, step=0.05, description="smoothing",
            tooltip="0: raw answer of each frame; 0.9: calm but slow",
        )  # fmt: skip

        def on_running(change: dict[str, Any]) -> None:
            on = bool(change["new"])
            self.start_stop.description = "Stop" if on else "Start"
            self.start_stop.icon = "stop" if on else "play"
            self.tap.running = on
            if on:
                self.processor.reset()

        def on_tap_running(change: dict[str, Any]) -> None:
            self.start_stop.value = bool(change["new"])  # auto-stop in the browser

        def on_detect(change: dict[str, Any]) -> None:
            self.processor.detect_faces = bool(change["new"])
            self.processor.reset()

        def on_threshold(change: dict[str, Any]) -> None:
            self.processor.threshold = float(change["new"])

        def on_smoothing(change: dict[str, Any]) -> None:
            self.processor.smoothing = float(change["new"])

        def on_probabilities(change: dict[str, Any]) -> None:
            self.tap.show_probabilities = bool(change["new"])

        self.start_stop.observe(on_running, "value")
        self.tap.observe(on_tap_running, "running")
        self.model_dropdown.observe(self._on_model_change, "value")
        self.refresh_button.on_click(
            lambda _: self.select_model(self.model_dropdown.value or "auto")
        )
        self.detect_toggle.observe(on_detect, "value")
        self.threshold_slider.observe(on_threshold, "value")
        self.smoothing_slider.observe(on_smoothing, "value")
        self.probability_toggle.observe(on_probabilities, "value")
        self._controls = widgets.VBox(
            [
                widgets.HBox([self.start_stop, self.model_dropdown, self.refresh_button]),
                widgets.HBox([self.detect_toggle, self.probability_toggle]),
                widgets.HBox([self.threshold_slider, self.smoothing_slider]),
            ]
        )

    # ----------------------------------------------------------------------------------------
    # Snapshot mode: the same pipeline on a still picture, no webcam needed.

    def _build_snapshot(self) -> None:
        self.upload = widgets.FileUpload(
            accept="image/*", multiple=False, description="Upload photo"
        )
        self.sample_button = widgets.Button(description="Sample photo", icon="image")
        self.snapshot_view = widgets.HTML()
        row = [self.upload, self.sample_button]
        self.recorder = None
        if self.camera is not None:
            from ipywebrtc import ImageRecorder

            # ipywebrtc does snapshots well (one frame, full resolution): keep it for that.
            self.recorder = ImageRecorder(stream=self.camera, format="png")
            self.recorder.image.observe(self._on_recorder_image, "value")
            row.append(self.recorder)

        def on_upload(change: dict[str, Any]) -> None:
            files = change["new"]
            if not files:
                return
            try:
                self.snapshot(decode_image(files[0]["content"]))
            except ValueError as exc:
                self.snapshot_view.value = f"<p style='color:#a33'>{exc}</p>"

        self.upload.observe(on_upload, "value")
        self.sample_button.on_click(lambda _: self.snapshot(sample_photo()))
        self._snapshot_box = widgets.VBox(
            [
                widgets.HTML(
                    "<b>Snapshot mode</b>: no webcam (or no permission)? Upload a photo, or try "
                    "the sample photo. The same pipeline runs on it."
                ),
                widgets.HBox(row),
                self.snapshot_view,
            ]
        )

    def _on_recorder_image(self, change: dict[str, Any]) -> None:
        if change["new"]:
            try:
                self.snapshot(decode_image(change["new"]))
            except ValueError as exc:
                self.snapshot_view.value = f"<p style='color:#a33'>{exc}</p>"

    def snapshot(self, image: np.ndarray) -> Snapshot:
        """Run the current model and settings on a still picture and show it under the mirror."""
        shot = snapshot(
            image,
            self.model,
            threshold=self.processor.threshold,
            detect_faces=self.processor.detect_faces,
        )
        shot.show_probabilities = self.tap.show_probabilities
        self.snapshot_view.value = shot._repr_html_()
        return shot

    # ----------------------------------------------------------------------------------------
    # Read-outs

    def stats(self) -> dict[str, Any]:
        """The live counters, e.g. to check the mirror from a notebook cell."""
        t = self.tap
        t.sync_counters()
        return {
            "frames_received": t.frames_received,
            "frames_classified": t.frames_classified,
            "frames_with_faces": t.frames_with_faces,
            "fps": t.fps,
            "latency_ms_p50": t.latency_ms,
            "latency_ms_p95": t.latency_p95_ms,
            "camera_source": t.camera_source,
            "camera_error": t.camera_error,
            "model": None if self.model is None else self.model.name,
        }


def launch(model: EmotionModel | str | Path | None = "auto", **kwargs: Any) -> Mirror:
    """Build the live mirror (see :class:`Mirror` for the options) and return it for display.

    Example:
        >>> mirror = fc.mirror.launch(threshold=0.4)
        >>> mirror          # the last expression of a cell displays it
    """
    return Mirror(model, **kwargs)
