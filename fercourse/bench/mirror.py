"""``python -m fercourse bench mirror``: per-frame latency of the mirror's Python side, per model.

A short webcam-like clip is made in memory from a real face photo (matplotlib's Grace Hopper,
drifting and zooming), shrunk to the size the browser sends (160x120 RGBA by default) and replayed
through the exact handler the live widget runs for each frame message
(:class:`fercourse.mirror.FrameTap` with a :class:`fercourse.mirror.FrameProcessor`: decode, face
detection, ``prepare_face``, one batched forward pass, smoothing). Printed per model and backend:
p50 / p95 milliseconds per frame, the share spent finding faces vs classifying them, and how many
frames had a classified face.

For comparison, the same run times the *naive port* that FER webcam demos typically use: Haar
detection on the full 640x480 frame, then ViT-Tiny at 224x224 with 3 channels (timm's
``vit_tiny_patch16_224``) on the 48 px face upsampled, in eager PyTorch. The ratio is the figure.

Models without a trained checkpoint under ``outputs/`` run with random weights: the latency of a
forward pass does not depend on the weights' values (the output says which were used).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from .. import preprocessing
from ..inference.emotion_model import EmotionModel, NoModelError
from ..mirror.demo import browser_frame, moving_frames, sample_photo
from ..mirror.pipeline import LIVE_THREADS, FrameProcessor
from ..mirror.tap import FrameTap

NAIVE_SIZE = 224


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def load_or_init(
    name: str, backend: str, threads: int | None = LIVE_THREADS
) -> tuple[EmotionModel, str]:
    """The best trained ``name`` checkpoint, else a randomly initialised one (same latency)."""
    try:
        return EmotionModel.load(name, backend=backend, threads=threads), "trained"
    except NoModelError:
        from ..models import create_model

        model = create_model(name)
        return (
            EmotionModel(model, backend=backend, threads=threads, source="random init"),
            "random init",
        )


def replay(tap: FrameTap, frames: list[np.ndarray], warmup: int = 10) -> dict[str, Any]:
    """Send ``frames`` (RGBA) through ``tap``'s frame-message handler; time each one."""
    times, cpu, detect, classify, classified = [], [], [], [], 0
    warmup = min(warmup, len(frames))
    for i, frame in enumerate([*frames[:warmup], *frames]):
        content = {"type": "frame", "seq": i, "width": frame.shape[1], "height": frame.shape[0]}
        buffer = memoryview(frame.tobytes())  # what arrives from the browser: raw bytes
        start, start_cpu = time.perf_counter(), time.process_time()
        tap._on_frame_message(tap, content, [buffer])
        elapsed = 1e3 * (time.perf_counter() - start)
        if i < warmup:
            continue
        cpu.append(1e3 * (time.process_time() - start_cpu))
        result = tap.last_result
        times.append(elapsed)
        detect.append(result.detect_ms)
        classify.append(result.classify_ms)
        classified += int(any(f.probabilities is not None for f in result.faces))
    total = sum(detect) + sum(classify)
    return {
        "p50_ms": _percentile(times, 50),
        "p95_ms": _percentile(times, 95),
        "cpu_p50_ms": _percentile(cpu, 50),
        "detect_share": sum(detect) / total if total else float("nan"),
        "classify_share": sum(classify) / total if total else float("nan"),
        "frames": len(times),
        "classified": classified,
    }


def naive_port(
    frames: list[np.ndarray], warmup: int = 5, threads: int | None = None
) -> dict[str, Any]:
    """The naive port: 640x480 Haar + ViT-Tiny at 224 (3 channels) on the face upsampled, eager.

    ``threads``: PyTorch threads, the same as the mirror's classifier for a fair comparison.
    """
    import timm

    from ..inference.face_detector import FaceDetector

    detector = FaceDetector(detect_width=None)  # full 640x480 scan
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=7).eval()
    times, detect = [], []
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    cpu = []
    warmup = min(warmup, len(frames))
    try:
        for i, frame in enumerate([*frames[:warmup], *frames]):
            start_cpu = time.process_time()
            t_all, t_detect = _naive_frame(frame, detector, vit)
            if i >= warmup:
                cpu.append(1e3 * (time.process_time() - start_cpu))
                times.append(t_all)
                detect.append(t_detect)
    finally:
        torch.set_num_threads(previous)
    return {
        "p50_ms": _percentile(times, 50),
        "p95_ms": _percentile(times, 95),
        "cpu_p50_ms": _percentile(cpu, 50),
        "detect_share": sum(detect) / sum(times) if times else float("nan"),
        "frames": len(times),
    }


def _naive_frame(frame: np.ndarray, detector, vit: torch.nn.Module) -> tuple[float, float]:
    """One naive-port frame; returns (total ms, detection ms)."""
    start = time.perf_counter()
    boxes = detector.detect(frame)
    mid = time.perf_counter()
    if boxes:
        face = preprocessing.prepare_face(frame, boxes[0])
        big = cv2.resize(face, (NAIVE_SIZE, NAIVE_SIZE), interpolation=cv2.INTER_LINEAR)
        x = torch.from_numpy(big).float().div(255.0)[None, None].repeat(1, 3, 1, 1)
        with torch.no_grad():
            vit((x - 0.5) / 0.5)
    end = time.perf_counter()
    return 1e3 * (end - start), 1e3 * (mid - start)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fercourse bench mirror",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--frames", type=int, default=150, help="frames timed per model")
    parser.add_argument(
        "--models", default="all", help="comma-separated model names, or 'all' (default)"
    )
    parser.add_argument(
        "--backends", default="torch,onnx", help="comma-separated: torch, onnx (default both)"
    )
    parser.add_argument(
        "--send-width", type=int, default=160, help="width of the frames the browser sends"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=LIVE_THREADS,
        help=f"classifier threads per forward pass (default {LIVE_THREADS}, as the live mirror)",
    )
    parser.add_argument("--no-naive", action="store_true", help="skip the naive port")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; returns 0."""
    args = _parser().parse_args(argv)
    from ..models import list_models

    names = list_models() if args.models == "all" else [m.strip() for m in args.models.split(",")]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    photo = sample_photo()
    clip = list(moving_frames(photo, n=args.frames))
    sent = [browser_frame(f, args.send_width) for f in clip]
    print(
        f"mirror benchmark: {len(clip)} frames of a moving face, 640x480 -> sent as "
        f"{sent[0].shape[1]}x{sent[0].shape[0]} RGBA; classifier threads {args.threads}, "
        f"OpenCV threads {cv2.getNumThreads()}; {os.cpu_count()} CPU cores "
        f"({platform.processor() or platform.machine()})"
    )
    print(
        "per-frame latency of the widget's frame handler (decode, detect, crop, classify, smooth)"
    )
    # The naive port first, so every row can print its ratio as soon as it is measured.
    naive = None if args.no_naive else naive_port(clip, threads=args.threads)
    header = (
        f"{'model':<20}{'backend':<8}{'weights':<13}{'p50 ms':>8}{'p95 ms':>8}{'CPU ms':>8}"
        f"{'detect':>8}{'classify':>10}{'classified':>12}"
    )
    if naive:
        header += f"{'naive/p50':>11}{'naive/CPU':>11}"
    print()
    print(header)
    print("-" * len(header))
    rows = [
        row
        for name in names
        for backend in backends
        if (row := _measure_row(name, backend, args.threads, sent, naive)) is not None
    ]
    if naive:
        print(
            f"{'naive port':<20}{'torch':<8}{'random init':<13}{naive['p50_ms']:>8.2f}"
            f"{naive['p95_ms']:>8.2f}{naive['cpu_p50_ms']:>8.2f}{100 * naive['detect_share']:>7.0f}%"
            f"{100 * (1 - naive['detect_share']):>9.0f}%"
        )
        print(
            "naive port: Haar on the full 640x480 frame + timm vit_tiny_patch16_224 (3 channels) "
            f"on the 48 px face upsampled to 224, eager PyTorch, {args.threads} thread(s)."
        )
    print(
        "p50/p95: wall-clock ms per frame; CPU ms: median CPU time of the process per frame (all "
        "threads), what a frame costs on an otherwise idle machine (on a shared machine, wall "
        "time also counts waiting for other processes); detect/classify: share of the frame's "
        "wall time; naive/p50, naive/CPU: how many times slower the naive port is."
    )
    if any(r["weights"] == "random init" for r in rows):
        print(
            "random init: no trained checkpoint of that model here; latency does not depend on weights."
        )
    if args.json:
        from ..utils import atomic_write_json

        atomic_write_json(args.json, {"rows": rows, "naive": naive, "frames": len(clip)})
    return 0


def _measure_row(
    name: str, backend: str, threads: int, sent: list[Any], naive: dict[str, Any] | None
) -> dict[str, Any] | None:
    """Replay the clip through one model's frame handler; print and return its row."""
    try:
        model, weights = load_or_init(name, backend, threads)
    except Exception as exc:  # e.g. a model that does not export to ONNX
        print(f"{name:<20}{backend:<8}skipped: {type(exc).__name__}: {exc}")
        return None
    tap = FrameTap(FrameProcessor(model))
    r = {"model": name, "backend": model.backend, "weights": weights}
    r.update(replay(tap, sent))
    tap.close()
    line = (
        f"{r['model']:<20}{r['backend']:<8}{r['weights']:<13}{r['p50_ms']:>8.2f}"
        f"{r['p95_ms']:>8.2f}{r['cpu_p50_ms']:>8.2f}{100 * r['detect_share']:>7.0f}%"
        f"{100 * r['classify_share']:>9.0f}%{r['classified']:>6}/{r['frames']:<5}"
    )
    if naive:
        line += f"{naive['p50_ms'] / r['p50_ms']:>10.1f}x"
        line += f"{naive['cpu_p50_ms'] / r['cpu_p50_ms']:>10.1f}x"
    print(line, flush=True)
    return r
