"""The student edition and the instructor's grader, on the real notebooks with real papermill.

The student edition of 01-08 also runs top to bottom in the SLURM course test
(``test_runs_slurm_cluster.py``), which submits it, so its checks are seen saying "not answered"
there; here the grader runs 01 (the quickest chapter with five checks) and 09 as students send
them: the instructor edition, an untouched and a partly answered student edition, one that
raises, one that loops and one that is not a notebook.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from fercourse.course import exercises_of
from fercourse.ops.edition import EditionError, strip_solutions, write_student_edition
from fercourse.ops.grader import grade_submissions, summary
from fercourse.utils import PROJECT_ROOT

NOTEBOOKS = PROJECT_ROOT / "notebooks"


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    return out, write_student_edition(out)


def _text(path: Path) -> str:
    return "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells)


def test_the_student_edition_holds_no_solution_and_no_answer_key(edition):
    out, taken = edition
    assert sorted(taken) == sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    for name, solutions in taken.items():
        student = _text(out / f"{name}.ipynb")
        source = _text(NOTEBOOKS / f"{name}.ipynb")
        assert "## Answer key" in source and "## Answer key" not in student, name
        assert "SOLUTION" not in student, name
        exercises = exercises_of(name)
        assert len([s for s in solutions if "## Answer key" not in s.text]) >= len(exercises)
        for solution in solutions:
            assert solution.text.strip() and solution.text.strip() not in student, (name, solution)
        nb = nbformat.read(out / f"{name}.ipynb", as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
        assert student.count("fc.check(") == len(exercises)


def test_solution_markers():
    source = "x = 1\nanswer = model.scales  # SOLUTION\nprint(answer)  # SOLUTION\n"
    source += (
        'def f(a):\n    """Doc."""\n    # BEGIN SOLUTION\n    return a + 1\n    # END SOLUTION'
    )
    student, removed = strip_solutions(source)
    assert student == 'x = 1\nanswer = ...\n...\ndef f(a):\n    """Doc."""\n    ...'
    assert removed == ["model.scales", "print(answer)", "    return a + 1"]
    with pytest.raises(EditionError, match="cell 3: # BEGIN SOLUTION without"):
        strip_solutions("# BEGIN SOLUTION\nx = 1", where="02, cell 3")
    with pytest.raises(EditionError, match="without # BEGIN SOLUTION"):
        strip_solutions("x = 1\n# END SOLUTION")


def _answer(nb, exercise_id: str, source: str) -> None:
    """Write ``source`` into the answer cell above exercise ``exercise_id``'s check."""
    for i, cell in enumerate(nb.cells):
        if f'fc.check("{exercise_id}"' in cell.source:
            nb.cells[i - 1].source = source
            return
    raise AssertionError(exercise_id)


def _insert_after_parameters(nb, source: str) -> None:
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(index + 2, nbformat.v4.new_code_cell(source))


@pytest.mark.slow
def test_the_grader_scores_what_students_send(edition, tmp_path, capsys):
    out, _ = edition
    subs = tmp_path / "submissions"
    for student in ("instructor", "untouched", "partial", "raises", "nonsense"):
        (subs / student).mkdir(parents=True)
    shutil.copy(NOTEBOOKS / "01_data.ipynb", subs / "instructor")
    shutil.copy(out / "01_data.ipynb", subs / "untouched")
    partial = nbformat.read(out / "01_data.ipynb", as_version=4)
    _answer(partial, "01.2", 'answer = ["sad", "angry", "happy"]')
    _answer(partial, "01.3", "answer = 0")  # wrong
    _answer(partial, "01.5", "def cohen_kappa(a, b):\n    return 1.0")  # wrong
    nbformat.write(partial, subs / "partial" / "01_data.ipynb")
    raises = nbformat.read(out / "01_data.ipynb", as_version=4)
    _insert_after_parameters(raises, 'raise RuntimeError("the dog ate my notebook")')
    nbformat.write(raises, subs / "raises" / "01_data.ipynb")
    (subs / "nonsense" / "01_data.ipynb").write_text("{ this is not json")
    shutil.copy(out / "09_mirror.ipynb", subs / "untouched")

    grades = grade_submissions(subs, tmp_path / "graded", timeout_s=300, chapters=["01", "09"])
    by = {(g.student, g.exercise): g for g in grades}
    points = {
        s: sum(g.points for g in grades if g.student == s and g.chapter == "01") for s, _ in by
    }
    assert points == {"instructor": 6, "untouched": 0, "partial": 1, "raises": 0, "nonsense": 0}
    assert all(by["instructor", e.id].status == "correct" for e in exercises_of("01"))
    assert {by["untouched", e.id].status for e in exercises_of("01") + exercises_of("09")} == {
        "not answered"
    }
    assert by["partial", "01.2"].status == "correct"
    assert (
        by["partial", "01.3"].status == "wrong" and "not right yet" in by["partial", "01.3"].reason
    )
    assert (
        by["partial", "01.5"].status == "wrong" and by["partial", "01.1"].status == "not answered"
    )
    reason = by["raises", "01.1"].reason
    assert reason.startswith("not reached: the notebook raised in cell ")
    assert "RuntimeError: the dog ate my notebook" in reason
    assert "not a valid notebook" in by["nonsense", "01.1"].reason
    assert by["instructor", "09.1"].reason == "no notebook for this chapter was submitted"

    rows = list(csv.DictReader((tmp_path / "graded" / "grades.csv").open()))
    assert len(rows) == len(grades) == 5 * (len(exercises_of("01")) + len(exercises_of("09")))
    table = summary(grades)
    assert "instructor" in table and "01.5" in table


@pytest.mark.slow
def test_a_notebook_that_loops_is_stopped_and_scored(edition, tmp_path):
    out, _ = edition
    (tmp_path / "subs" / "loops").mkdir(parents=True)
    nb = nbformat.read(out / "01_data.ipynb", as_version=4)
    _insert_after_parameters(nb, "while True:\n    pass")
    nbformat.write(nb, tmp_path / "subs" / "loops" / "01_data.ipynb")
    grades = grade_submissions(
        tmp_path / "subs", tmp_path / "graded", timeout_s=20, chapters=["01"]
    )
    assert {g.status for g in grades} == {"not graded"} and sum(g.points for g in grades) == 0
    assert grades[0].reason == "not reached: the notebook ran past the 20 s limit"
    executed = json.loads((tmp_path / "graded" / "loops" / "01_data.ipynb").read_text())
    assert executed["cells"]  # the partial notebook is kept to look at
