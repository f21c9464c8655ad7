"""Progress bars for the slow first load of FER2013 (tqdm.auto: a widget in Jupyter)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

from ..utils import PROGRESS_ENV, progress_enabled

T = TypeVar("T")

MIN_ITEMS: int = 5000
"""Shorter jobs finish in a blink; a bar would only add noise to notebooks and logs."""


def progress_bar(
    items: Iterable[T], *, desc: str, total: int | None = None, enabled: bool | None = None
) -> Iterator[T]:
    """Wrap ``items`` in a tqdm bar when there are many (``enabled=None``) or when asked.

    ``FERCOURSE_PROGRESS=0`` in the environment turns every bar off (CI logs, tests), read by
    :func:`fercourse.utils.progress_enabled`.
    """
    if total is None:
        total = len(items) if hasattr(items, "__len__") else None  # type: ignore[arg-type]
    if enabled is None:
        enabled = total is not None and total >= MIN_ITEMS
    # $FERCOURSE_PROGRESS=0 wins; otherwise a long load shows its bar even outside a terminal.
    if os.environ.get(PROGRESS_ENV) is not None and not progress_enabled():
        enabled = False
    if not enabled:
        return iter(items)
    return iter(tqdm(items, desc=desc, total=total, unit="img", mininterval=0.5, leave=False))
