"""The instructor's grader: run submitted notebooks headless and score every exercise.

``python -m fercourse grade SUBMISSIONS`` expects one folder per student, holding that student's
notebooks under the course's names (``SUBMISSIONS/ada/02_baseline.ipynb``). Each notebook runs
with papermill in its own process (a time limit per notebook; a notebook past it is killed with
its kernel) and its own outputs folder, in the chapters' order (``08_compare`` reads the
student's own trained runs). Every ``fc.check`` appends its result to a log
(:data:`~fercourse.course.checks.CHECK_LOG_ENV`); the grader reads it and gives each of the
chapter's exercises its points, or zero with the reason: not answered, wrong (with the check's
feedback), not reached because the notebook raised (which cell, which error) or ran out of time,
or a file that is not a notebook. A submission never crashes the grader.

Writes ``grades.csv`` (one row per student, chapter and exercise) and prints a per-student,
per-chapter table and each exercise's success rate.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import nbformat

from ..course.checks import CHECK_LOG_ENV, EXERCISES, STRICT_ENV, exercises_of

FIELDS = ("student", "chapter", "exercise", "title", "points", "max_points", "status", "reason")


@dataclass(frozen=True)
class Grade:
    """One exercise of one student's notebook."""

    student: str
    chapter: str
    exercise: str
    title: str
    points: float
    max_points: int
    status: str
    reason: str


@dataclass(frozen=True)
class Execution:
    """How a notebook's run ended: ``ok``, ``raised``, ``timeout`` or ``unreadable``."""

    outcome: str
    detail: str = ""
    seconds: float = 0.0


def default_out_dir(submissions: str | Path) -> Path:
    """Where the grader writes when not told: ``<submissions>-graded`` next to the folder."""
    root = Path(submissions)
    return root.with_name(root.name + "-graded")


def _chapter_of(path: Path) -> str | None:
    number = path.name[:2]
    return number if number.isdigit() and exercises_of(number) else None


def _first_error(executed: Path) -> str:
    """``cell N (In [k]): Error: message`` from an executed (or partly executed) notebook."""
    try:
        nb = nbformat.read(executed, as_version=4)
    except Exception:
        return "no executed notebook was written"
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                value = str(output.get("evalue", ""))[:300]
                return f"cell {index} (In [{cell.get('execution_count')}]): {output.get('ename')}: {value}"
    return "the kernel stopped outside any cell"


def execute(
    notebook: Path,
    executed: Path,
    *,
    cwd: Path,
    env: dict[str, str],
    timeout_s: float,
    parameters: dict[str, Any] | None = None,
) -> Execution:
    """Run one notebook with papermill in a child process group, killed after ``timeout_s``."""
    try:
        nbformat.validate(nbformat.read(notebook, as_version=4))
    except Exception as err:
        return Execution("unreadable", f"not a valid notebook: {type(err).__name__}: {err}"[:300])
    command = [sys.executable, "-m", "papermill", str(notebook), str(executed), "--cwd", str(cwd)]
    command += ["--no-progress-bar", "--request-save-on-cell-execute", "-k", "python3"]
    for name, value in (parameters or {}).items():
        command += ["-y", json.dumps({name: value})]
    start = time.perf_counter()
    child = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        out, _ = child.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)  # papermill and its kernel
        child.communicate()
        return Execution(
            "timeout", f"ran past the {timeout_s:g} s limit", time.perf_counter() - start
        )
    seconds = time.perf_counter() - start
    if child.returncode != 0:
        detail = (
            _first_error(executed) if executed.exists() else out.decode(errors="replace")[-300:]
        )
        return Execution("raised", detail, seconds)
    return Execution("ok", "", seconds)


def _read_log(path: Path) -> dict[str, dict[str, Any]]:
    """Exercise id -> the last result its check logged (a re-run cell counts once)."""
    results: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                results[str(row["exercise"])] = row
            except (ValueError, KeyError, TypeError):
                continue  # a line the notebook wrote itself: ignore it, never trust it
    return results


def grade_notebook(student: str, chapter: str, run: Execution, log: Path) -> list[Grade]:
    """The grades of one chapter's exercises from its check log and how its run ended."""
    logged = _read_log(log)
    grades = []
    for ex in exercises_of(chapter):
        row = logged.get(ex.id)
        if row is not None and row.get("status") in ("correct", "wrong", "not answered", "error"):
            points = float(ex.points) if row["status"] == "correct" else 0.0
            reason = "" if row["status"] == "correct" else str(row.get("message", ""))
            grades.append(
                Grade(student, chapter, ex.id, ex.title, points, ex.points, row["status"], reason)
            )
            continue
        reason = {
            "ok": "its check did not run (the check cell was removed or changed)",
            "raised": f"not reached: the notebook raised in {run.detail}",
            "timeout": f"not reached: the notebook {run.detail}",
            "unreadable": run.detail,
        }[run.outcome]
        grades.append(
            Grade(student, chapter, ex.id, ex.title, 0.0, ex.points, "not graded", reason)
        )
    return grades


def grade_submissions(
    submissions: str | Path,
    out_dir: str | Path | None = None,
    *,
    timeout_s: float = 900.0,
    parameters: dict[str, Any] | None = None,
    chapters: list[str] | None = None,
) -> list[Grade]:
    """Grade every student folder under ``submissions``; writes ``grades.csv`` into ``out_dir``.

    Args:
        submissions: one folder per student with their notebooks (``02_baseline.ipynb``, ...).
        out_dir: where the executed notebooks, each student's runs and ``grades.csv`` go
            (default: ``<submissions>-graded``).
        timeout_s: the time limit of one notebook.
        parameters: papermill parameters given to every notebook (e.g. ``{"preset": "smoke"}``).
        chapters: only these chapters (``["02", "05"]``); default all the course's.

    Raises:
        FileNotFoundError: ``submissions`` is not a folder, or holds no student folder.
    """
    root = Path(submissions)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder of submissions")
    students = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not students:
        raise FileNotFoundError(
            f"{root}: no student folders (expected {root}/<student>/NN_name.ipynb)"
        )
    out = Path(out_dir) if out_dir is not None else default_out_dir(root)
    out.mkdir(parents=True, exist_ok=True)
    wanted = sorted({ex.chapter for ex in EXERCISES.values()}) if chapters is None else chapters
    grades: list[Grade] = []
    for folder in students:
        grades += _grade_student(folder, out / folder.name, wanted, timeout_s, parameters)
    _write_csv(out / "grades.csv", grades)
    return grades


def _grade_student(
    folder: Path,
    out: Path,
    chapters: list[str],
    timeout_s: float,
    parameters: dict[str, Any] | None,
) -> list[Grade]:
    out.mkdir(parents=True, exist_ok=True)
    found = {_chapter_of(p): p for p in sorted(folder.glob("*.ipynb")) if _chapter_of(p)}
    grades = []
    for chapter in chapters:
        notebook = found.get(chapter)
        if notebook is None:
            run = Execution("unreadable", "no notebook for this chapter was submitted")
            grades += grade_notebook(folder.name, chapter, run, out / "missing.jsonl")
            continue
        log = out / f"{notebook.stem}.checks.jsonl"
        log.unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if k != STRICT_ENV} | {
            CHECK_LOG_ENV: str(log.resolve()),
            "FERCOURSE_OUTPUTS": str((out / "outputs").resolve()),
            "FERCOURSE_PROGRESS": "0",
        }
        run = execute(
            notebook,
            out / notebook.name,
            cwd=folder,
            env=env,
            timeout_s=timeout_s,
            parameters=parameters,
        )
        print(
            f"{folder.name}/{notebook.name}: {run.outcome} in {run.seconds:.0f} s {run.detail}".rstrip()
        )
        grades += grade_notebook(folder.name, chapter, run, log)
    return grades


def _write_csv(path: Path, grades: list[Grade]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(asdict(g) for g in grades)


def summary(grades: list[Grade]) -> str:
    """Points per student and chapter (with the total), then each exercise's success rate."""
    import pandas as pd

    table = pd.DataFrame([asdict(g) for g in grades])
    if table.empty:
        return "no grades"
    scores = table.pivot_table(index="student", columns="chapter", values="points", aggfunc="sum")
    scores["total"] = scores.sum(axis=1)
    scores["of"] = table.groupby("student")["max_points"].sum()
    rates = table.assign(correct=table["status"] == "correct").groupby("exercise")["correct"].mean()
    return (
        "points per student and chapter\n"
        + scores.to_string(float_format=lambda v: f"{v:g}")
        + "\n\nshare of students with a correct answer, per exercise\n"
        + (100 * rates).round(0).astype(int).astype(str).add(" %").to_string()
    )


def main(argv: list[str]) -> int:
    """``python -m fercourse grade SUBMISSIONS [--out DIR] [--timeout 900] [-p name=value]``."""
    import argparse

    import yaml

    parser = argparse.ArgumentParser(
        prog="python -m fercourse grade",
        description="Run each student's notebooks headless and score every exercise: grades.csv.",
    )
    parser.add_argument(
        "submissions", help="one folder per student: SUBMISSIONS/<student>/NN_name.ipynb"
    )
    parser.add_argument(
        "--out", help="executed notebooks and grades.csv (default: SUBMISSIONS-graded)"
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per notebook (900)")
    parser.add_argument("--chapters", nargs="*", help="only these chapters, e.g. 02 05")
    parser.add_argument(
        "-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
        help="a papermill parameter for every notebook (YAML value), e.g. -p preset=smoke",
    )  # fmt: skip
    args = parser.parse_args(argv)
    parameters = {}
    for item in args.parameter:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"-p {item!r}: expected NAME=VALUE")
        parameters[name] = yaml.safe_load(value)
    try:
        grades = grade_submissions(
            args.submissions,
            args.out,
            timeout_s=args.timeout,
            parameters=parameters,
            chapters=args.chapters,
        )
    except FileNotFoundError as err:
        print(f"fercourse grade: {err}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else default_out_dir(args.submissions)
    print(summary(grades))
    print(f"\ngrades: {out / 'grades.csv'}")
    return 0
