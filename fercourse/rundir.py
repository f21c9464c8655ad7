"""One run folder, one owner: :class:`RunDir` knows every file a training run leaves.

``fc.fit`` writes a run folder (default ``outputs/runs/<model>``); evaluation, inference, the
mirror and ``08_compare`` only read it, through this class. No other module spells a run file's
name::

    best.safetensors  best.json     the weights of the best validation epoch, with their card
    last.safetensors  last.json     the weights after the latest finished epoch
    train_state.pt                  everything needed to continue (see fercourse.training.state)
    history.json  history.csv       per-epoch metrics (fercourse.history.History)
    config.json                     the config, split, data source, device and library versions
    metrics.json                    test scores, written by fc.evaluate(..., save_to=run)

:func:`find_runs` lists run folders with one ranking: runs trained on real FER2013 first (a
model trained on the synthetic faces says nothing about real ones), then by validation accuracy.
Introduced in ``notebooks/02_baseline.ipynb``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import checkpoint as ckpt
from .history import HISTORY_CSV, HISTORY_JSON, History
from .utils import atomic_write_json, outputs_dir

__all__ = [
    "BEST",
    "LAST",
    "METRICS_FILE",
    "Run",
    "RunDir",
    "course_runs",
    "default_run_dir",
    "find_runs",
]

BEST, LAST = "best", "last"
"""The two checkpoints of a run: the best validation epoch, and the latest epoch."""

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
TRAIN_STATE = "train_state.pt"


def default_run_dir(model_name: str) -> Path:
    """Where ``fc.fit`` writes a run by default: ``outputs/runs/<model_name>``."""
    return outputs_dir() / "runs" / model_name


@dataclass(frozen=True)
class RunDir:
    """A run folder written by ``fc.fit``.

    Args:
        path: the folder (it need not exist yet: ``fit`` creates it).

    Example:
        >>> run = RunDir("outputs/runs/baseline_cnn")  # doctest: +SKIP
        >>> run.val_accuracy, run.synthetic, run.model_name  # doctest: +SKIP
        (0.412, True, 'baseline_cnn')
    """

    path: Path

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if path.suffix in (ckpt.WEIGHTS_SUFFIX, ckpt.CARD_SUFFIX):  # a checkpoint file's folder
            path = path.parent
        object.__setattr__(self, "path", path)

    def __fspath__(self) -> str:
        return str(self.path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    # ---- paths -------------------------------------------------------------------------------

    def checkpoint(self, which: str = BEST) -> Path:
        """The stem of a checkpoint (``.../best``), what ``fc.checkpoint`` functions take."""
        if which not in (BEST, LAST):
            raise ValueError(f"which must be {BEST!r} or {LAST!r}, got {which!r}")
        return self.path / which

    @property
    def state_file(self) -> Path:
        return self.path / TRAIN_STATE

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def metrics_file(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def history_file(self) -> Path:
        return self.path / HISTORY_JSON

    def files(self) -> list[Path]:
        """Every file training writes here (what ``fit(resume=False)`` deletes)."""
        names = [f"{w}{s}" for w in (BEST, LAST) for s in (ckpt.WEIGHTS_SUFFIX, ckpt.CARD_SUFFIX)]
        names += [TRAIN_STATE, HISTORY_JSON, HISTORY_CSV, CONFIG_FILE, METRICS_FILE]
        return [self.path / n for n in names]

    # ---- reading -----------------------------------------------------------------------------

    def has_checkpoint(self, which: str = BEST) -> bool:
        stem = self.checkpoint(which)
        return (
            stem.with_suffix(ckpt.CARD_SUFFIX).is_file()
            and stem.with_suffix(ckpt.WEIGHTS_SUFFIX).is_file()
        )

    def card(self, which: str = BEST) -> dict[str, Any]:
        """The checkpoint's JSON card (raises ``CheckpointError`` when unreadable)."""
        return ckpt.read_card(self.checkpoint(which))

    def config(self) -> dict[str, Any]:
        """``config.json`` (empty when the run has none yet)."""
        return _read_json(self.config_file)

    def history(self) -> History | None:
        """The per-epoch history, or ``None`` when the folder has none."""
        return History.load(self.path) if self.history_file.is_file() else None

    def metrics(self) -> dict[str, Any]:
        """``metrics.json``: test scores by key (``"PrivateTest"``, ``"PrivateTest+flip"``...)."""
        return _read_json(self.metrics_file)

    @property
    def model_name(self) -> str:
        return str(self.card().get("model", ""))

    @property
    def val_accuracy(self) -> float | None:
        """The best checkpoint's validation accuracy (``card["metrics"]["val_acc"]``)."""
        return card_val_accuracy(self.card())

    @property
    def synthetic(self) -> bool:
        """Trained on the synthetic stand-in faces rather than on FER2013."""
        return card_synthetic(self.card())

    def load(self, which: str = BEST, *, map_location: str = "cpu") -> Run:
        """Load the run's model (in eval mode), card and history.

        Raises:
            FileNotFoundError: no such checkpoint in the folder.
            fercourse.checkpoint.CheckpointError: the checkpoint is damaged or does not fit.
        """
        stem = self.checkpoint(which)
        if not stem.with_suffix(ckpt.CARD_SUFFIX).is_file():
            raise FileNotFoundError(f"no {which} checkpoint in {self.path} (expected {stem}.json)")
        model, card = ckpt.load_checkpoint(stem, map_location=map_location)
        model.selected_on = card.get("selected_on")
        return Run(model=model, card=card, history=self.history(), path=self.path)

    # ---- writing (fc.fit) --------------------------------------------------------------------

    def save_checkpoint(self, which: str, model: Any, card: dict[str, Any]) -> Path:
        return ckpt.save_checkpoint(self.checkpoint(which), model, **card)

    def write_config(self, values: dict[str, Any]) -> Path:
        return atomic_write_json(self.config_file, values)

    def clear(self) -> None:
        """Delete every file training wrote here (not the folder, not other files)."""
        for path in self.files():
            path.unlink(missing_ok=True)

    def remove(self) -> None:
        """Delete the whole folder."""
        shutil.rmtree(self.path, ignore_errors=True)


@dataclass
class Run:
    """A trained run loaded by :meth:`RunDir.load` (or ``fc.training.load_run``).

    Attributes:
        model: the checkpoint's model, in eval mode (``model.selected_on`` says where the
            checkpoint was chosen).
        card: the checkpoint's JSON card (metrics, epoch, config, split hash, versions...).
        history: the run's :class:`History` (``None`` if the folder has none).
        path: the run folder.
    """

    model: Any
    card: dict[str, Any]
    history: History | None
    path: Path


def _read_json(path: Path) -> dict[str, Any]:
    """A run file as a dict: ``{}`` when it does not exist, a clear error when it is not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); re-run what wrote it") from err


def card_val_accuracy(card: dict[str, Any]) -> float | None:
    """The validation accuracy a checkpoint card records (``card["metrics"]["val_acc"]``)."""
    value = (card.get("metrics") or {}).get("val_acc")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def card_synthetic(card: dict[str, Any]) -> bool:
    """Whether a checkpoint card says its model was trained on the synthetic faces."""
    data = card.get("data")
    return bool(data.get("synthetic", False)) if isinstance(data, dict) else False


def find_runs(root: str | Path | None = None, *, model: str | None = None) -> list[RunDir]:
    """Run folders under ``root`` (default ``outputs/``) with a complete best checkpoint.

    Args:
        root: where to look (recursively).
        model: keep only runs of this model name.

    Returns:
        The runs ranked: trained on FER2013 before trained on the synthetic faces, then by
        validation accuracy (highest first; none recorded last), then by path. Folders whose
        card cannot be read are left out.
    """
    root = Path(root) if root is not None else outputs_dir()
    if not root.is_dir():
        return []
    found = []
    for card_path in sorted(root.rglob(f"{BEST}{ckpt.CARD_SUFFIX}")):
        run = RunDir(card_path.parent)
        if not run.has_checkpoint():
            continue
        try:
            card = run.card()
        except ckpt.CheckpointError:
            continue
        if model is not None and card.get("model") != model:
            continue
        acc = card_val_accuracy(card)
        found.append(((card_synthetic(card), 1.0 if acc is None else -acc, str(run.path)), run))
    return [run for _, run in sorted(found, key=lambda t: t[0])]


def course_runs(run_dir: str | Path) -> list[RunDir]:
    """The model folders of one course run (``outputs/<run>/<model>/``), in the course's order.

    The runs :func:`find_runs` finds directly inside ``run_dir``, ordered as the course
    introduces the models (``fc.models.list_models()``), other folders after them by name.
    """
    from .models import list_models

    run_dir = Path(run_dir)
    order = list_models()
    inside = [r for r in find_runs(run_dir) if r.path.parent == run_dir]

    def place(run: RunDir) -> tuple[int, str]:
        name = run.path.name
        return (order.index(name) if name in order else len(order), name)

    return sorted(inside, key=place)
