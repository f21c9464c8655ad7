"""The student edition: the notebooks with the solutions replaced by ``...`` and no answer keys.

The sources in ``notebooks/`` are the instructor edition. Solutions are marked there with Otter
Assign's markers (https://otter-grader.readthedocs.io), which JupyterLab shows as plain comments:

- a line ending in ``# SOLUTION``: an assignment keeps its name (``answer = ...``), any other
  line becomes ``...``;
- the lines between ``# BEGIN SOLUTION`` and ``# END SOLUTION``: one ``...`` at the marker's
  indentation (a function keeps its signature and docstring, its body becomes ``...``);
- a cell tagged ``answer-key`` (a questionnaire's answers): left out.

``python -m fercourse student OUT`` (``make student``) writes the edition; outputs and execution
counts are cleared, so a student starts from a clean notebook.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from ..utils import PROJECT_ROOT

ANSWER_KEY_TAG = "answer-key"
BEGIN, END, LINE = "# BEGIN SOLUTION", "# END SOLUTION", "# SOLUTION"
_ASSIGNMENT = re.compile(r"^(\s*)([A-Za-z_][\w.\[\]\"', ]*?)\s*=(?!=)")


class EditionError(ValueError):
    """A solution marker is malformed: the message names the notebook, the cell and the line."""


@dataclass(frozen=True)
class Solution:
    """One marked solution in a source notebook (what the student edition must not contain)."""

    notebook: str
    cell: int
    text: str


def strip_solutions(source: str, *, where: str = "") -> tuple[str, list[str]]:
    """One code cell's source with its solutions replaced; also returns the removed solutions.

    Raises:
        EditionError: a ``BEGIN`` without its ``END`` (or the reverse).
    """
    out: list[str] = []
    removed: list[str] = []
    block: list[str] | None = None
    for number, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        if stripped == BEGIN:
            if block is not None:
                raise EditionError(f"{where} line {number}: {BEGIN} inside another one")
            block = []
            out.append(line[: len(line) - len(line.lstrip())] + "...")
        elif stripped == END:
            if block is None:
                raise EditionError(f"{where} line {number}: {END} without {BEGIN}")
            removed.append("\n".join(block))
            block = None
        elif block is not None:
            block.append(line)
        elif line.rstrip().endswith(LINE):
            code = line.rstrip()[: -len(LINE)].rstrip()
            match = _ASSIGNMENT.match(code)
            if match:
                out.append(f"{match.group(1)}{match.group(2)} = ...")
                removed.append(code[match.end() :].strip())
            else:
                out.append(code[: len(code) - len(code.lstrip())] + "...")
                removed.append(code.strip())
        else:
            out.append(line)
    if block is not None:
        raise EditionError(f"{where}: {BEGIN} without {END}")
    return "\n".join(out), removed


def student_notebook(nb: Any, *, name: str = "notebook") -> tuple[Any, list[Solution]]:
    """The student edition of one notebook (a copy) and the solutions taken out of it."""
    nb = copy.deepcopy(nb)
    solutions: list[Solution] = []
    cells = []
    for index, cell in enumerate(nb.cells):
        tags = cell.get("metadata", {}).get("tags", [])
        if ANSWER_KEY_TAG in tags:
            solutions.append(Solution(name, index, cell.source))
            continue
        if cell.cell_type == "code":
            cell.source, removed = strip_solutions(cell.source, where=f"{name}, cell {index}")
            solutions += [Solution(name, index, text) for text in removed]
            cell.outputs = []
            cell.execution_count = None
        cells.append(cell)
    nb.cells = cells
    return nb, solutions


def write_student_edition(
    out_dir: str | Path, notebooks_dir: str | Path = PROJECT_ROOT / "notebooks"
) -> dict[str, list[Solution]]:
    """Write the student edition of every notebook in ``notebooks_dir`` into ``out_dir``.

    Returns:
        Notebook name -> the solutions and answer keys left out of it.

    Raises:
        EditionError: ``out_dir`` is the sources' own folder, or a marker is malformed.
    """
    source, target = Path(notebooks_dir).resolve(), Path(out_dir).resolve()
    if source == target:
        raise EditionError(f"{target} holds the sources: write the student edition elsewhere")
    target.mkdir(parents=True, exist_ok=True)
    taken: dict[str, list[Solution]] = {}
    for path in sorted(source.glob("[0-9][0-9]_*.ipynb")):
        student, solutions = student_notebook(nbformat.read(path, as_version=4), name=path.stem)
        nbformat.write(student, target / path.name)
        taken[path.stem] = solutions
    for extra in ("conftest.py", "sanitize.cfg"):
        (target / extra).unlink(missing_ok=True)  # a student folder is not a test suite
    return taken


def main(argv: list[str]) -> int:
    """``python -m fercourse student OUT``: write the student edition into ``OUT``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m fercourse student",
        description="Write the student edition: the notebooks with solutions replaced by ... "
        "and the questionnaires' answer keys left out.",
    )
    parser.add_argument("out", help="folder to write the student notebooks into, e.g. student/")
    parser.add_argument("--notebooks", default=str(PROJECT_ROOT / "notebooks"), help="the sources")
    args = parser.parse_args(argv)
    taken = write_student_edition(args.out, args.notebooks)
    for name, solutions in taken.items():
        print(f"{name}: {len(solutions)} solutions and answer keys left out")
    print(f"student edition: {len(taken)} notebooks in {Path(args.out).resolve()}")
    return 0
