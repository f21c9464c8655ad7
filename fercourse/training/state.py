"""What resume needs: the random generators' states and the run's saved training state.

``train_state.pt`` holds tensors and plain containers only, so it loads with
``torch.load(weights_only=True)``: the weights, the optimizer, the schedule, the EMA, the early
stopping counter, the history, the position inside the epoch and every RNG state. Each epoch's
randomness is seeded from ``(seed, epoch)`` by :func:`fercourse.utils.epoch_seed`, so a run
killed at any moment (even by SIGKILL in the middle of an epoch) continues from the last saved
step and, on a CPU, ends with bit-identical weights to a run that was never interrupted.
Introduced in ``notebooks/02_baseline.ipynb``.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..rundir import RunDir
from ..utils import atomic_write_bytes

__all__ = [
    "STATE_FORMAT",
    "ResumeError",
    "check_same_run",
    "cpu_state",
    "load_train_state",
    "resume_message",
    "rng_state",
    "save_train_state",
    "set_rng_state",
]

STATE_FORMAT = "fercourse-train-state/1"

IDENTITY_KEYS: tuple[str, ...] = ("model", "model_kwargs", "split_hash", "init")
"""What makes two runs the same run (besides the config): resuming with another is refused."""


class ResumeError(RuntimeError):
    """An existing run folder does not belong to this model, config or split."""


def rng_state() -> dict[str, Any]:
    """Python's, NumPy's and PyTorch's generator states, as tensors and plain containers."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        # weights_only loading accepts tensors and plain containers, not NumPy arrays.
        "numpy": (
            name,
            torch.from_numpy(keys.astype(np.int64)),
            int(pos),
            int(has_gauss),
            float(cached),
        ),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Put every generator back where :func:`rng_state` found it."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of ``module.state_dict()``."""
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def save_train_state(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` (tagged with :data:`STATE_FORMAT`) atomically: a kill leaves the old file."""
    buffer = io.BytesIO()
    torch.save({"format": STATE_FORMAT, **state}, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())


def load_train_state(path: str | Path) -> dict[str, Any] | None:
    """The resumable state of a run folder, or of a state file (``None`` if there is none).

    Loaded weights-only: tensors and plain containers, no code.

    Raises:
        ResumeError: the file is truncated or is not a fercourse training state.
    """
    path = Path(path)
    if path.is_dir():
        path = RunDir(path).state_file
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: say which, do not guess
        raise ResumeError(
            f"cannot read {path} ({exc}); delete it, or start afresh (fit(resume=False), "
            "`python -m fercourse train --no-resume`)"
        ) from exc
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ResumeError(
            f"{path} is not a fercourse training state; start afresh (fit(resume=False), "
            "`python -m fercourse train --no-resume`)"
        )
    return state


def check_same_run(
    state: dict[str, Any],
    identity: dict[str, Any],
    config_differences: dict[str, tuple[Any, Any]],
    where: Path,
) -> None:
    """Refuse to resume ``state`` with another model, split, starting point or config.

    Args:
        state: the saved training state.
        identity: this run's ``model``, ``model_kwargs``, ``split_hash`` and ``init``.
        config_differences: ``TrainConfig.differences`` against the saved config.
        where: the state file, named in the message.

    Raises:
        ResumeError: naming the first difference and the two ways out.
    """
    hint = (
        "start afresh (fit(resume=False) or `python -m fercourse train --no-resume`; this deletes "
        "that run) or choose another out_dir / --out"
    )
    for key in IDENTITY_KEYS:
        if key == "init" and state.get(key) != identity[key]:
            raise ResumeError(
                f"{where} started from {state.get(key)!r}, this model from {identity[key]!r}; "
                f"{hint}"
            )
        if state.get(key) != identity[key]:
            raise ResumeError(
                f"{where} belongs to another run: {key} is {state.get(key)!r} there, "
                f"{identity[key]!r} here; {hint}"
            )
    if config_differences:
        shown = "; ".join(
            f"{k}: {old!r} there, {new!r} here" for k, (old, new) in config_differences.items()
        )
        raise ResumeError(f"{where} was trained with another config ({shown}); {hint}")


def resume_message(
    state_path: str | Path, state: dict[str, Any], *, restart: str = "resume=False"
) -> str:
    """One line saying that a run is resumed, from which file and which epoch and step.

    Args:
        state_path: the ``train_state.pt`` being resumed.
        state: its content (:func:`fercourse.training.load_train_state`).
        restart: how the reader starts afresh instead (``"resume=False"`` for ``fit``,
            ``"--no-resume"`` on the command line).

    Returns:
        e.g. ``"baseline_cnn: resuming from outputs/runs/baseline_cnn/train_state.pt: 3/10
        epochs done, continuing at epoch 4, step 120 (pass resume=False to start afresh)"``.
    """
    name = state.get("model", "run")
    epochs = state.get("config", {}).get("epochs")
    done = int(state.get("epoch", 0))
    of = f"/{epochs}" if epochs else ""
    if state.get("finished"):
        return (
            f"{name}: {state_path} holds a finished run ({done}{of} epochs): nothing to train, "
            f"its best checkpoint is used (pass {restart} to train it again)"
        )
    step = int(state.get("step_in_epoch", 0))
    if epochs and done >= epochs:
        at = "the end (every epoch done)"
    else:
        at = f"epoch {done + 1}, step {step}" if step else f"epoch {done + 1}"
    return (
        f"{name}: resuming from {state_path}: {done}{of} epochs done, continuing at {at} "
        f"(pass {restart} to start afresh)"
    )
