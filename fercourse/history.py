"""The per-epoch record of a training run, as returned by :func:`fercourse.training.fit`.

Introduced in ``notebooks/02_baseline.ipynb``; ``fc.explain.plot_history(history)`` draws it.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .utils import atomic_write_bytes, atomic_write_json

HISTORY_JSON = "history.json"
HISTORY_CSV = "history.csv"


@dataclass
class History:
    """Per-epoch metrics of one run.

    Attributes:
        epochs: one dict per finished epoch with ``epoch`` (1-based), ``train_loss``,
            ``train_acc``, ``val_loss``, ``val_acc``, ``val_macro_f1``, ``lr`` and ``seconds``.
        best_epoch: the epoch whose weights are in ``best.safetensors`` (0 before any epoch).
        best_val_acc: validation accuracy of that epoch.
        monitor: the value that picked the best epoch (``"val_acc"`` or ``"val_loss"``).
        stopped_early: training ended by early stopping rather than by the epoch limit.
        finished: the run is complete (resuming it again changes nothing).
        model: the model's name.

    Example:
        >>> h = History(model="baseline_cnn")
        >>> h.add({"epoch": 1, "train_loss": 1.9, "val_acc": 0.31})
        >>> len(h), h.last["val_acc"]
        (1, 0.31)
    """

    epochs: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_acc: float = 0.0
    monitor: str = "val_acc"
    stopped_early: bool = False
    finished: bool = False
    model: str = ""

    def add(self, row: dict[str, Any]) -> None:
        """Append one epoch's metrics."""
        self.epochs.append(dict(row))

    def __len__(self) -> int:
        return len(self.epochs)

    @property
    def last(self) -> dict[str, Any]:
        """The most recent epoch's metrics (empty before the first epoch)."""
        return self.epochs[-1] if self.epochs else {}

    @property
    def best(self) -> dict[str, Any]:
        """The best epoch's metrics (empty before the first epoch)."""
        for row in self.epochs:
            if row.get("epoch") == self.best_epoch:
                return row
        return {}

    @property
    def seconds(self) -> float:
        """Total training time of the recorded epochs."""
        return float(sum(row.get("seconds", 0.0) for row in self.epochs))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {
            "model": self.model,
            "monitor": self.monitor,
            "best_epoch": self.best_epoch,
            "best_val_acc": self.best_val_acc,
            "stopped_early": self.stopped_early,
            "finished": self.finished,
            "epochs": [dict(row) for row in self.epochs],
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> History:
        """Inverse of :meth:`to_dict`."""
        return cls(
            epochs=[dict(row) for row in values.get("epochs", [])],
            best_epoch=int(values.get("best_epoch", 0)),
            best_val_acc=float(values.get("best_val_acc", 0.0)),
            monitor=str(values.get("monitor", "val_acc")),
            stopped_early=bool(values.get("stopped_early", False)),
            finished=bool(values.get("finished", False)),
            model=str(values.get("model", "")),
        )

    def to_frame(self):  # -> pandas.DataFrame (pandas is imported lazily)
        """The epochs as a pandas DataFrame indexed by epoch."""
        import pandas as pd

        frame = pd.DataFrame(self.epochs)
        return frame.set_index("epoch") if "epoch" in frame else frame

    def save(self, directory: str | Path) -> Path:
        """Write ``history.json`` and ``history.csv`` into ``directory`` (atomically).

        Returns:
            The path of ``history.json``.
        """
        directory = Path(directory)
        path = atomic_write_json(directory / HISTORY_JSON, self.to_dict())
        columns: list[str] = []
        for row in self.epochs:
            columns += [k for k in row if k not in columns]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.epochs)
        atomic_write_bytes(directory / HISTORY_CSV, buffer.getvalue().encode("utf-8"))
        return path

    @classmethod
    def load(cls, directory: str | Path) -> History:
        """Read the ``history.json`` of a run folder (or the file itself).

        Raises:
            FileNotFoundError: no history there.
        """
        path = Path(directory)
        if path.is_dir():
            path = path / HISTORY_JSON
        if not path.is_file():
            raise FileNotFoundError(f"no training history at {path}")
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def __repr__(self) -> str:
        if not self.epochs:
            return f"History(model={self.model!r}, no epochs yet)"
        state = "finished" if self.finished else "running"
        if self.stopped_early:
            state = "stopped early"
        return (
            f"History(model={self.model!r}, {len(self.epochs)} epochs, "
            f"best val_acc {self.best_val_acc:.4f} at epoch {self.best_epoch}, "
            f"{self.seconds:.1f} s, {state})"
        )
