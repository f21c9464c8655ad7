"""What a resumed run says: which run it continues, and from where.

:func:`fercourse.training.fit` resumes a run folder silently when its ``train_state.pt`` exists;
:func:`resume_message` is the line that tells the reader so (``python -m fercourse train``
prints it before training). Introduced in ``notebooks/02_baseline.ipynb``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


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
