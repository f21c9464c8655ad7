"""A trained model, ready to answer "which emotion is this face?".

:class:`EmotionModel` wraps a checkpoint with the one preprocessing path
(:func:`fercourse.preprocessing.prepare_face` then :func:`fercourse.preprocessing.to_tensor`), so
a photo, a webcam frame and an evaluation batch reach the network exactly alike::

    model = fc.EmotionModel.load("baseline_cnn")     # best trained baseline_cnn under outputs/
    model.predict(face_photo)                         # Prediction(happy 😁 0.83)
    model.predict_batch(faces)                        # several faces, one forward pass

Which checkpoint ``load`` picks: ``"default"`` is the model bundled with the package
(``fercourse/inference/default_model/model.*``, trained on FER2013); ``"auto"`` is the best
checkpoint trained on FER2013 under :func:`fercourse.utils.outputs_dir` (by validation accuracy),
else the bundled one, else the best one trained on the synthetic faces; a model name
(``"vit_tiny"``) is that model's best checkpoint; anything else is a checkpoint path. When a
checkpoint found by a search (``"auto"``, a name, a folder) is damaged, ``load`` skips it with a
:class:`CheckpointWarning` naming it and takes the next one. Introduced in
``notebooks/09_mirror.ipynb``.
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import preprocessing
from ..checkpoint import DEFAULT_MODEL_STEM, CheckpointError, card_temperature, load_checkpoint
from ..labels import EMOJI, EMOTIONS
from ..rundir import card_synthetic, card_val_accuracy, find_runs
from ..utils import outputs_dir

TRAIN_HINT = (
    "run notebooks/02_baseline.ipynb to train one (about 1 minute on a CPU with the smoke preset) "
    "or `python -m fercourse train --model baseline_cnn --preset smoke`"
)

UNSURE_EMOJI = "\N{BLACK QUESTION MARK ORNAMENT}"
"""Shown instead of an emotion's emoji when the model is not confident enough."""


class NoModelError(FileNotFoundError):
    """No checkpoint matches the request; the message says how to train one."""


class CheckpointWarning(UserWarning):
    """A checkpoint found by a search could not be loaded and was skipped (the message says why)."""


@dataclass(frozen=True)
class Prediction:
    """What the model says about one face.

    Attributes:
        emotion: the most likely emotion, one of :data:`fercourse.EMOTIONS`.
        emoji: its emoji from :data:`fercourse.EMOJI`.
        confidence: its probability, in [0, 1].
        probabilities: every emotion's probability, in :data:`fercourse.EMOTIONS` order.
    """

    emotion: str
    emoji: str
    confidence: float
    probabilities: dict[str, float] = field(repr=False)

    @classmethod
    def from_probabilities(cls, probabilities: Sequence[float] | np.ndarray) -> Prediction:
        """Build a prediction from one row of probabilities in :data:`fercourse.EMOTIONS` order."""
        p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
        if p.shape != (len(EMOTIONS),):
            raise ValueError(f"expected {len(EMOTIONS)} probabilities, got shape {p.shape}")
        best = int(p.argmax())
        emotion = EMOTIONS[best]
        return cls(
            emotion=emotion,
            emoji=EMOJI[emotion],
            confidence=float(p[best]),
            probabilities={name: float(v) for name, v in zip(EMOTIONS, p)},
        )

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most likely emotions with their probabilities, most likely first."""
        return sorted(self.probabilities.items(), key=lambda kv: kv[1], reverse=True)[:k]

    def __repr__(self) -> str:
        return f"Prediction({self.emotion} {self.emoji} {self.confidence:.2f})"

    def _repr_html_(self) -> str:
        return prediction_html(self)


def prediction_html(prediction: Prediction, *, unsure_below: float = 0.0) -> str:
    """A small HTML card: the emoji (or "?" below ``unsure_below``) and one bar per emotion."""
    sure = prediction.confidence >= unsure_below
    emoji = prediction.emoji if sure else UNSURE_EMOJI
    title = prediction.emotion if sure else "not sure"
    rows = []
    for name in EMOTIONS:
        p = prediction.probabilities[name]
        weight = "bold" if name == prediction.emotion else "normal"
        rows.append(
            f'<div style="display:flex;align-items:center;gap:6px;font-weight:{weight}">'
            f'<span style="width:1.4em">{EMOJI[name]}</span>'
            f'<span style="width:5.5em">{html.escape(name)}</span>'
            f'<span style="display:inline-block;width:120px;height:10px;background:#eee">'
            f'<span style="display:block;width:{100 * p:.1f}%;height:100%;background:#4c78a8">'
            f"</span></span><span>{100 * p:.1f}%</span></div>"
        )
    return (
        '<div style="display:flex;gap:16px;align-items:center;font-family:sans-serif">'
        f'<div style="font-size:64px;line-height:1">{emoji}</div><div>'
        f"<div><b>{html.escape(title)}</b> ({100 * prediction.confidence:.1f}%)</div>"
        + "".join(rows)
        + "</div></div>"
    )


@dataclass(frozen=True)
class CheckpointInfo:
    """A checkpoint found on disk, as listed by :func:`find_checkpoints`.

    Attributes:
        path: the checkpoint stem (``.../best``), what :meth:`EmotionModel.load` takes.
        model: the architecture name from its card.
        val_accuracy: the validation accuracy recorded in its card (``None`` when absent).
        run: where it lives, relative to the folder searched (e.g. ``smoke/baseline_cnn``).
        synthetic: trained on the synthetic stand-in faces, not on FER2013.
    """

    path: Path
    model: str
    val_accuracy: float | None
    run: str
    synthetic: bool = False

    @property
    def label(self) -> str:
        """Readable name for a dropdown: ``"baseline_cnn (smoke/baseline_cnn, val 61.2%)"``."""
        acc = "val n/a" if self.val_accuracy is None else f"val {100 * self.val_accuracy:.1f}%"
        data = ", synthetic data" if self.synthetic else ""
        return f"{self.model} ({self.run}, {acc}{data})"


def find_checkpoints(root: str | Path | None = None) -> list[CheckpointInfo]:
    """Every trained checkpoint under ``root``, ranked as :func:`fercourse.rundir.find_runs` does.

    Args:
        root: folder to search (default :func:`fercourse.utils.outputs_dir`).

    Returns:
        One :class:`CheckpointInfo` per run folder with a complete best checkpoint: trained on
        FER2013 before trained on the synthetic stand-in faces (whose validation accuracy says
        nothing about real faces), then by validation accuracy.
    """
    root = Path(root) if root is not None else outputs_dir()
    found = []
    for run in find_runs(root):
        card = run.card()
        found.append(
            CheckpointInfo(
                path=run.checkpoint(),
                model=str(card["model"]),
                val_accuracy=card_val_accuracy(card),
                run=run.path.relative_to(root).as_posix(),
                synthetic=card_synthetic(card),
            )
        )
    return found


def default_checkpoint() -> Path | None:
    """The stem of the model bundled with the package, or ``None`` when none is bundled."""
    weights = DEFAULT_MODEL_STEM.with_suffix(".safetensors")
    card = DEFAULT_MODEL_STEM.with_suffix(".json")
    return DEFAULT_MODEL_STEM if weights.is_file() and card.is_file() else None


def resolve_checkpoint(what: str | Path = "auto", *, root: str | Path | None = None) -> Path:
    """Turn ``"default"``, ``"auto"``, a model name or a path into a checkpoint stem.

    Raises:
        NoModelError: nothing matches; the message names what was searched and how to train.
    """
    return checkpoint_candidates(what, root=root)[0]


def checkpoint_candidates(
    what: str | Path = "auto", *, root: str | Path | None = None
) -> list[Path]:
    """Every checkpoint stem ``what`` may mean, in order of preference (the first is the pick).

    A path names one checkpoint; ``"auto"``, a model name or a folder are searches that may find
    several, so :meth:`EmotionModel.load` can skip a damaged one and take the next.

    Raises:
        NoModelError: nothing matches; the message names what was searched and how to train.
    """
    from ..checkpoint import CARD_SUFFIX, WEIGHTS_SUFFIX

    text = str(what)
    where = Path(root) if root is not None else outputs_dir()
    if text == "default":
        stem = default_checkpoint()
        if stem is None:
            raise NoModelError(
                f"no model is bundled with this fercourse (looked for {DEFAULT_MODEL_STEM}"
                f"{WEIGHTS_SUFFIX}); use a trained checkpoint instead: {TRAIN_HINT}"
            )
        return [stem]
    if text == "auto":
        # A model trained on the synthetic faces reads real faces poorly: the bundled FER2013
        # model comes before it, after the student's own FER2013-trained checkpoints.
        found = find_checkpoints(where)
        stem = default_checkpoint()
        real = [c.path for c in found if not c.synthetic]
        synthetic = [c.path for c in found if c.synthetic]
        candidates = real + ([stem] if stem is not None else []) + synthetic
        if candidates:
            return candidates
        raise NoModelError(f"no trained model under {where} and none bundled: {TRAIN_HINT}")
    path = Path(text).expanduser()
    if path.suffix in (WEIGHTS_SUFFIX, CARD_SUFFIX):
        path = path.with_suffix("")
    if path.with_suffix(CARD_SUFFIX).is_file():
        return [path]
    if path.is_dir():
        found = find_checkpoints(path)
        if found:
            return [c.path for c in found]
        raise NoModelError(f"no trained run (a best checkpoint) under {path}: {TRAIN_HINT}")
    looks_like_path = "/" in text or "\\" in text or path.suffix != ""
    if not looks_like_path:
        found = [c for c in find_checkpoints(where) if c.model == text]
        if found:
            return [c.path for c in found]
        raise NoModelError(f"no trained {text!r} checkpoint under {where}: {TRAIN_HINT}")
    raise NoModelError(
        f"no checkpoint at {path} (expected {path}{CARD_SUFFIX} and {WEIGHTS_SUFFIX})"
    )


class EmotionModel:
    """A classifier plus the one preprocessing path: pictures in, :class:`Prediction` out.

    Args:
        model: a fercourse model (input (B, 1, 48, 48) normalised, output (B, 7) logits).
        card: the checkpoint card it came from (``{}`` for an in-memory model).
        source: where it was loaded from, for display.
        backend: ``"torch"`` (eager PyTorch), ``"onnx"`` (exported, run with ONNX Runtime; faster
            for small models on a CPU; the export of a checkpoint is cached under
            ``outputs/onnx-cache/``), or ``"auto"`` (ONNX Runtime when the model exports, else
            PyTorch). :attr:`backend` then says which one runs.
        device: device for the PyTorch backend.
        threads: CPU threads for one forward pass (``None``: PyTorch's global setting). The live
            mirror uses 1: a batch of a few 48x48 faces is too small to split, and the browser
            and Jupyter share the same cores. Applied around each call only, so the rest of the
            notebook keeps its setting.

    Use :meth:`load` rather than the constructor to get a trained model.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        card: dict[str, Any] | None = None,
        source: str | Path | None = None,
        backend: str = "torch",
        device: str | torch.device = "cpu",
        threads: int | None = None,
    ) -> None:
        if backend not in ("torch", "onnx", "auto"):
            raise ValueError(f"backend must be 'torch', 'onnx' or 'auto', got {backend!r}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.card = dict(card or {})
        self.source = str(source) if source is not None else "in memory"
        self.name = str(self.card.get("model", getattr(model, "model_name", type(model).__name__)))
        self.backend = backend
        self.threads = threads
        # A calibration step may store a temperature; softmax(logits / T) then gives honest
        # confidences, which is what the mirror's threshold compares against.
        self.temperature = card_temperature(self.card, self.source)
        self._onnx = None
        if backend in ("onnx", "auto"):
            try:
                self._onnx = self._export(source, threads)
                self.backend = "onnx"
            except Exception:
                if backend == "onnx":
                    raise
                self.backend = "torch"  # "auto": a model that does not export still works
            finally:
                self.model.to(self.device)

    def _export(self, source: str | Path | None, threads: int | None):
        from .onnx import OnnxRunner, cached_export, export_onnx

        weights = Path(source).with_suffix(".safetensors") if source is not None else None
        if weights is not None and weights.is_file():
            graph = cached_export(self.model.cpu(), weights)  # seconds only the first time
        else:
            graph = export_onnx(self.model.cpu())
        return OnnxRunner(graph, threads=threads)

    @classmethod
    def load(
        cls,
        what: str | Path = "auto",
        *,
        backend: str = "torch",
        device: str | torch.device = "cpu",
        threads: int | None = None,
        root: str | Path | None = None,
    ) -> EmotionModel:
        """Load a trained model.

        Args:
            what: ``"auto"`` (best FER2013-trained checkpoint under ``outputs/``, else the
                bundled model, else the best synthetic-trained one),
                ``"default"`` (the bundled model), a model name such as ``"vit_tiny"`` (its best
                checkpoint), or a checkpoint path (stem, ``.safetensors`` or ``.json``, or a
                folder to search).
            backend: ``"torch"``, ``"onnx"`` or ``"auto"`` (see the class docstring).
            device: device for the PyTorch backend.
            threads: CPU threads per forward pass (see the class docstring).
            root: folder searched for names and ``"auto"`` (default :func:`fercourse.utils.outputs_dir`).

        Raises:
            NoModelError: nothing found; the message says which notebook trains one.
            CheckpointError: the checkpoint is damaged or does not fit its architecture (for a
                search, every checkpoint found was); the message names the file.

        Warns:
            CheckpointWarning: a checkpoint found by a search was damaged and skipped.

        Example:
            >>> model = fc.EmotionModel.load("baseline_cnn")
        """
        candidates = checkpoint_candidates(what, root=root)
        errors: list[CheckpointError] = []
        for stem in candidates:
            try:
                model, card = load_checkpoint(stem)
                return cls(
                    model, card=card, source=stem, backend=backend, device=device, threads=threads
                )
            except CheckpointError as exc:
                if len(candidates) == 1:
                    raise
                errors.append(exc)
                if stem != candidates[-1]:
                    warnings.warn(
                        f"skipping checkpoint {stem}: {exc}", CheckpointWarning, stacklevel=2
                    )
        raise CheckpointError(
            f"no checkpoint found for {str(what)!r} could be loaded: "
            + "; ".join(str(e) for e in errors)
        )

    def __repr__(self) -> str:
        return f"EmotionModel({self.name!r}, backend={self.backend!r}, source={self.source!r})"

    @property
    def val_accuracy(self) -> float | None:
        """The validation accuracy recorded when the checkpoint was saved, if any."""
        return card_val_accuracy(self.card)

    # ----------------------------------------------------------------------------------------
    # The low-level calls: uint8 48x48 faces in (what prepare_face returns).

    def input_tensor(self, faces: np.ndarray | torch.Tensor) -> torch.Tensor:
        """The model input for uint8 faces: exactly :func:`fercourse.preprocessing.to_tensor`."""
        return preprocessing.to_tensor(faces)

    def logits(self, faces: np.ndarray | torch.Tensor) -> np.ndarray:
        """Raw logits (N, 7) float32 for uint8 faces (48, 48) or (N, 48, 48), one forward pass."""
        x = self.input_tensor(faces)
        if self._onnx is not None:
            return self._onnx(x)
        previous = torch.get_num_threads()
        if self.threads is not None and self.threads != previous:
            torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                return self.model(x.to(self.device)).float().cpu().numpy()
        finally:
            if torch.get_num_threads() != previous:
                torch.set_num_threads(previous)

    def probabilities(self, faces: np.ndarray | torch.Tensor) -> np.ndarray:
        """Class probabilities (N, 7) in :data:`fercourse.EMOTIONS` order for uint8 faces."""
        z = self.logits(faces).astype(np.float64) / self.temperature
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)

    # ----------------------------------------------------------------------------------------
    # The friendly calls: any picture in.

    def predict(
        self, image: np.ndarray, box: Sequence[int] | None = None, *, channel_order: str = "RGB"
    ) -> Prediction:
        """Classify one face.

        Args:
            image: uint8 picture, gray or colour, any size: a 48x48 face, a cropped face photo, or
                a whole frame together with ``box``.
            box: the face's box ``(x, y, w, h)`` from :class:`fercourse.FaceDetector`; without it
                the whole picture is taken as the face.
            channel_order: ``"RGB"`` or ``"BGR"`` for colour input.

        Returns:
            A :class:`Prediction`.

        Raises:
            ValueError: an empty picture, or a ``box`` that is empty or mostly outside it
                (:func:`fercourse.preprocessing.check_box`).
        """
        face = preprocessing.prepare_face(image, box, channel_order=channel_order)
        return Prediction.from_probabilities(self.probabilities(face[None])[0])

    def predict_batch(
        self,
        images: np.ndarray | Sequence[np.ndarray],
        boxes: Sequence[Sequence[int]] | None = None,
        *,
        channel_order: str = "RGB",
    ) -> list[Prediction]:
        """Classify several faces in one forward pass.

        Args:
            images: a (N, 48, 48) uint8 array of faces, or a list of pictures; with ``boxes``, a
                single frame (used for every box) or one picture per box.
            boxes: optional face boxes, one per face.
            channel_order: ``"RGB"`` or ``"BGR"`` for colour input.

        Returns:
            One :class:`Prediction` per face, in order.

        Example:
            >>> boxes = fc.FaceDetector().detect(frame)
            >>> model.predict_batch(frame, boxes)    # one prediction per face in the frame
        """
        if boxes is not None:
            frames = [images] * len(boxes) if isinstance(images, np.ndarray) else list(images)
            if len(frames) != len(boxes):
                raise ValueError(f"{len(frames)} pictures for {len(boxes)} boxes")
            faces = [
                preprocessing.prepare_face(f, b, channel_order=channel_order)
                for f, b in zip(frames, boxes)
            ]
        else:
            faces = [preprocessing.prepare_face(f, channel_order=channel_order) for f in images]
        if not faces:
            return []
        probs = self.probabilities(np.stack(faces))
        return [Prediction.from_probabilities(p) for p in probs]
