"""Graded checks for the exercises: ``fc.check("02.1", answer, model=model)``.

Every exercise of the course has an id, ``"<chapter>.<n>"`` (``"02.1"`` is the first exercise of
``02_baseline``), and a grading function in :mod:`fercourse.course.exercise_bank`. The expected
value is never written in a notebook: a look-up's answer is computed here from the student's own
objects, passed by name (``model=model``, ``history=history``), and an implement-it exercise's
function runs on fixed inputs against the package's (or PyTorch's, timm's) reference.

``check`` never raises on a wrong or missing answer, so a student's notebook runs top to bottom;
it returns a :class:`CheckResult` whose line says what happened and, when it can tell, how the
answer went wrong ("expected a tensor of shape (8, 64, 1, 1), got (8, 64)"). With
``$FERCOURSE_CHECK_LOG`` set (the grader sets it) each result is also appended to that file as
one JSON line. Under the notebook tests (``$FERCOURSE_CHECKS_STRICT``, set by
``notebooks/conftest.py``) the instructor edition's checks must all be correct: any other result
raises there. Introduced in ``notebooks/01_data.ipynb``.
"""

from __future__ import annotations

import json
import math
import os
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

CHECK_LOG_ENV = "FERCOURSE_CHECK_LOG"
"""The environment variable naming the JSON-lines file that every check result is appended to."""

STRICT_ENV = "FERCOURSE_CHECKS_STRICT"
"""Set (to anything but ``""``/``0``) where every exercise must be answered right: the
instructor edition under the notebook tests, where a check that is not correct raises."""

STATUSES = ("correct", "wrong", "not answered", "error")


class Feedback(Exception):
    """Raised inside a grading function: the answer is wrong, and this message says how."""


class NotAnswered(Exception):
    """Raised by a grading function when a student's function still returns ``None``/``...``."""


@dataclass(frozen=True)
class Exercise:
    """One graded exercise.

    Attributes:
        id: ``"<chapter>.<n>"``, e.g. ``"02.1"``.
        title: a few words for the score table.
        kind: ``"look-up"`` (an answer computed from the chapter's objects) or ``"implement"`` (a
            function that the check runs against a reference).
        points: what a correct answer is worth.
        needs: the objects the check reads, passed as keywords (``model=model``).
        grade: ``grade(answer, **objects)`` returns a message when the answer is right and
            raises :class:`Feedback` when it is wrong.
    """

    id: str
    title: str
    kind: str
    points: int
    needs: tuple[str, ...]
    grade: Callable[..., str]

    @property
    def chapter(self) -> str:
        """The chapter's number, ``"02"``."""
        return self.id.split(".")[0]


@dataclass(frozen=True)
class CheckResult:
    """What one check found; its ``repr`` is the line a notebook shows."""

    exercise: str
    status: str
    points: float
    max_points: int
    message: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON line the grader reads."""
        return asdict(self)

    def __repr__(self) -> str:
        mark = {"correct": "\N{CHECK MARK}", "not answered": "\N{WHITE CIRCLE}"}.get(
            self.status, "\N{BALLOT X}"
        )
        score = f"{self.points:g}/{self.max_points}"
        line = f"{mark} {self.exercise} ({score}) {self.status}"
        return f"{line}: {self.message}" if self.message else line


EXERCISES: dict[str, Exercise] = {}
"""Every exercise of the course, by id, in the chapters' order (filled by the exercise bank)."""


def exercise(
    id: str,
    title: str,
    *,
    kind: str = "look-up",
    points: int | None = None,
    needs: Iterable[str] = (),
) -> Callable[[Callable[..., str]], Callable[..., str]]:
    """Register ``grade`` as the grading function of exercise ``id`` (see :class:`Exercise`)."""
    if kind not in ("look-up", "implement"):
        raise ValueError(f"exercise {id}: kind must be 'look-up' or 'implement', not {kind!r}")

    def register(grade: Callable[..., str]) -> Callable[..., str]:
        if id in EXERCISES:
            raise ValueError(f"exercise {id} is registered twice")
        worth = points if points is not None else (2 if kind == "implement" else 1)
        EXERCISES[id] = Exercise(id, title, kind, worth, tuple(needs), grade)
        return grade

    return register


def exercises_of(chapter: str) -> list[Exercise]:
    """The exercises of one chapter (``"02"`` or ``"02_baseline"``), in order."""
    number = chapter.split("_")[0]
    return [ex for ex in EXERCISES.values() if ex.chapter == number]


def check(exercise_id: str, answer: Any, **objects: Any) -> CheckResult:
    """Grade one answer and say how it went; never raises for a wrong or missing answer.

    Args:
        exercise_id: e.g. ``"02.1"``.
        answer: the student's answer; ``...`` (or a function whose body is still ``...``) means
            "not answered yet".
        **objects: the chapter's objects the exercise reads (its prompt says which).

    Example:
        >>> check("01.2", ...)
        ○ 01.2 (0/1) not answered: replace the ... and run the cell again
    """
    ex = EXERCISES.get(exercise_id)
    if ex is None:
        known = ", ".join(EXERCISES)
        raise KeyError(f"no exercise {exercise_id!r}; the course has {known}")
    missing = [name for name in ex.needs if name not in objects]
    if missing:
        raise TypeError(
            f"fc.check({exercise_id!r}, ...) reads {', '.join(ex.needs)}: pass "
            + ", ".join(f"{name}={name}" for name in missing)
        )
    result = _grade(ex, answer, objects)
    _log(result)
    if result.status != "correct" and os.environ.get(STRICT_ENV, "") not in ("", "0"):
        raise AssertionError(f"{result!r} (${STRICT_ENV}: every exercise must be answered right)")
    return result


def _grade(ex: Exercise, answer: Any, objects: dict[str, Any]) -> CheckResult:
    def result(status: str, message: str) -> CheckResult:
        points = ex.points if status == "correct" else 0
        return CheckResult(ex.id, status, points, ex.points, message)

    if answer is ...:
        return result("not answered", "replace the ... and run the cell again")
    if ex.kind == "implement" and not callable(answer):
        return result("wrong", f"expected your function, got {type(answer).__name__}")
    try:
        return result("correct", ex.grade(answer, **objects))
    except NotAnswered as missing:
        return result("not answered", str(missing))
    except Feedback as wrong:
        return result("wrong", str(wrong))
    except Exception as err:  # the student's code raised: report it, keep the notebook going
        where = traceback.extract_tb(err.__traceback__)[-1]
        return result("error", f"{type(err).__name__}: {err} (line {where.lineno} of {where.name})")


def _log(result: CheckResult) -> None:
    path = os.environ.get(CHECK_LOG_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(json.dumps(result.to_dict()) + "\n")


# --- comparing answers ------------------------------------------------------------------------


def call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a student's function; ``None`` or ``...`` back means its body is not written yet."""
    value = function(*args, **kwargs)
    if value is None or value is ...:
        raise NotAnswered("your function returns None: write its body and run the cell again")
    return value


def same_number(
    answer: Any,
    expected: float,
    *,
    tol: float = 0.0,
    near: Iterable[tuple[float, str]] = (),
    hint: str = "",
) -> str:
    """``answer`` equals ``expected`` within ``tol``, else :class:`Feedback` (naming a near miss)."""
    if isinstance(answer, bool) or (
        not isinstance(answer, (int, float)) and not _is_scalar(answer)
    ):
        raise Feedback(f"expected a number, got {type(answer).__name__} {answer!r}")
    value = float(answer)
    if math.isclose(value, float(expected), rel_tol=0.0, abs_tol=tol):
        return ""
    for wrong, message in near:
        if math.isclose(value, float(wrong), rel_tol=1e-9, abs_tol=max(tol, 1e-9)):
            raise Feedback(f"close: {message}")
    raise Feedback(f"{value:g} is not right yet. {hint}".strip())


def _is_scalar(value: Any) -> bool:
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        return value.numel() == 1
    return isinstance(value, np.generic) and np.ndim(value) == 0


def same_name(answer: Any, expected: str, *, choices: Iterable[str], hint: str = "") -> str:
    """A name out of ``choices`` (case and spaces ignored), equal to ``expected``."""
    if not isinstance(answer, str):
        raise Feedback(f"expected a name (a string), got {type(answer).__name__} {answer!r}")
    options = list(choices)
    given = answer.strip().lower()
    if given not in [c.lower() for c in options]:
        raise Feedback(f"{answer!r} is not one of {', '.join(options)}")
    if given != expected.lower():
        raise Feedback(f"{answer!r} is not right yet. {hint}".strip())
    return ""


def same_tensor(
    got: Any,
    want: Any,
    *,
    atol: float = 1e-5,
    near: Iterable[tuple[Any, str]] = (),
    what: str = "the result",
) -> str:
    """``got`` is a tensor of ``want``'s shape and values (``torch.allclose``), else feedback."""
    import torch

    if not isinstance(got, torch.Tensor):
        raise Feedback(
            f"expected {what} as a tensor of shape {tuple(want.shape)}, got {type(got).__name__}"
        )
    got = got.detach().float()
    if tuple(got.shape) == tuple(want.shape) and torch.allclose(got, want.float(), atol=atol):
        return ""
    for wrong, message in near:  # a known mistake, whatever its shape
        if tuple(wrong.shape) == tuple(got.shape) and torch.allclose(got, wrong.float(), atol=atol):
            raise Feedback(f"close: {message}")
    if tuple(got.shape) != tuple(want.shape):
        raise Feedback(
            f"expected {what} as a tensor of shape {tuple(want.shape)}, got {tuple(got.shape)}"
        )
    error = (got - want.float()).abs().max().item()
    raise Feedback(
        f"{what} has the right shape but differs from the reference by up to {error:.3g}"
    )
