"""Self-check cells for the exercises at the end of every notebook.

An exercise cell starts as ``answer = ...``; the check under it says "not answered yet" until
the student writes something, then "correct" or an ``AssertionError`` with a hint. So the
notebooks still run headless (papermill, nbval) with the exercises untouched.
Introduced in ``notebooks/01_data.ipynb``.
"""

from __future__ import annotations

import math
from typing import Any


def check_answer(
    answer: Any, expected: Any, *, name: str = "answer", tol: float | None = None, hint: str = ""
) -> None:
    """Compare an exercise's answer with the expected value and say how it went.

    Args:
        answer: what the student computed; ``...`` (Ellipsis) means "not answered yet".
        expected: the right value (usually computed by the package in the same cell).
        name: what the answer is, for the message.
        tol: absolute tolerance for numbers (``None``: must be equal).
        hint: shown when the answer is wrong.

    Prints "not answered yet" or "correct" (so a notebook run headless passes untouched).

    Raises:
        AssertionError: the answer is wrong; the message carries the hint.

    Example:
        >>> check_answer(..., 7, name="classes")
        classes: not answered yet (replace the ... and run the cell again)
    """
    if answer is ...:
        print(f"{name}: not answered yet (replace the ... and run the cell again)")
        return
    if tol is not None:
        ok = math.isclose(float(answer), float(expected), rel_tol=0.0, abs_tol=tol)
    else:
        ok = answer == expected
    if not ok:
        raise AssertionError(f"{name}: {answer!r} is not right yet. {hint}".strip())
    print(f"{name}: correct \N{CHECK MARK}")
