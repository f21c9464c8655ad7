"""The course notebooks: their own source, stored clean, one skeleton, parameters papermill reads.

The notebooks themselves run under nbval (``pytest --nbval-lax --nbval-current-env
--nbval-sanitize-with notebooks/sanitize.cfg notebooks/``, see ``notebooks/README.md``); these
tests check what nbval cannot: that the sources are stored clean (``tools/clean_notebooks.py``),
that every chapter keeps the course's skeleton, their parameters cells, and that a deliberate
change to the package really makes nbval fail.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest

from fercourse.ops import MODEL_NOTEBOOKS, NOTEBOOKS
from fercourse.utils import PROJECT_ROOT

NB_DIR = PROJECT_ROOT / "notebooks"
COURSE = [NB_DIR / f"{name}.ipynb" for name in NOTEBOOKS]  # 01-08: what a run executes
ALL = sorted(NB_DIR.glob("[0-9][0-9]_*.ipynb"))  # and the mirror (09)
CHECK_TAG, KEEP_TAG = "nbval-check-output", "keep_output"
LITERAL_TYPES = {"str": str, "int": int, "float": float, "bool": bool, "None": type(None)}


def _load_cleaner():
    spec = importlib.util.spec_from_file_location(
        "clean_notebooks", PROJECT_ROOT / "tools" / "clean_notebooks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cleaner = _load_cleaner()


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def markdown(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_every_course_notebook_exists():
    assert [p.name for p in COURSE if not p.exists()] == []
    assert not (PROJECT_ROOT / "tools" / "build_notebooks.py").exists(), (
        "the notebooks are the source"
    )


# ---------------------------------------------------------------------------------------------
# Stored clean
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_notebook_is_stored_clean(path):
    """No outputs or execution counts in git, except the checked cells' expected outputs."""
    nb = read(path)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name"), "papermill and nbval need a kernelspec"
    assert "papermill" not in nb.metadata, "an executed copy was saved over the source"
    for i, cell in enumerate(nb.cells):
        assert "papermill" not in cell.metadata, f"{path.name} cell {i}: papermill metadata"
        if cell.cell_type != "code":
            continue
        where = f"{path.name} cell {i}"
        checked, kept = CHECK_TAG in tags(cell), KEEP_TAG in tags(cell)
        assert checked == kept, f"{where}: {CHECK_TAG!r} and {KEEP_TAG!r} go together"
        if not checked:
            assert cell.outputs == [], f"{where}: outputs stored (run tools/clean_notebooks.py)"
            assert cell.execution_count is None, f"{where}: execution_count is stored"
            continue
        # nbval compares a cell only when the reference ran it: a checked cell keeps In [n].
        assert (cell.execution_count is None) == (not cell.outputs), where
        for output in cell.outputs:
            assert output.get("execution_count", cell.execution_count) == cell.execution_count
            assert output.output_type != "error", f"{where}: a stored error"
            assert "image/png" not in output.get("data", {}), f"{where}: an image in a checked cell"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_notebook_is_in_its_canonical_form(path):
    """Byte for byte what the cleaner writes (as JupyterLab saves it): diffs show only edits."""
    text = path.read_text(encoding="utf-8")
    assert text == cleaner.clean_text(path), f"{path.name}: run python tools/clean_notebooks.py"
    assert "\r" not in text and text.endswith("}\n")
    assert json.loads(text)["cells"][0]["source"][0].startswith("# ")  # sources: lists of lines


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.stem)
def test_checked_cells_hold_their_expected_output(path):
    """Each course notebook checks some structural facts, and their expected output is stored."""
    checked = [c for c in read(path).cells if CHECK_TAG in tags(c)]
    assert checked, f"{path.name} has no checked cell"
    for cell in checked:
        assert cell.outputs, f"{path.name}: checked cell {cell.source[:40]!r} has no stored output"
        text = str(cell.outputs)
        # Structural facts only: no timings, no floats with many digits (those go in asserts).
        assert not re.search(r"\d+\.\d{5,}", text), f"{path.name}: noisy float in {text[:200]}"


def _dirty(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` as a JupyterLab session or a papermill run leaves it."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    nb.metadata["language_info"] = {
        "name": "python",
        "version": "3.11.9",
        "mimetype": "text/x-python",
    }
    nb.metadata["kernelspec"]["display_name"] = "Python 3 (fercourse)"
    nb.metadata["papermill"] = {"duration": 61.2, "parameters": {"seed": 1}}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    for count, cell in enumerate(nb.cells, start=3):
        cell.metadata["papermill"] = {"status": "completed"}
        if cell.cell_type != "code":
            cell.metadata["jp-MarkdownHeadingCollapsed"] = True
            continue
        cell.metadata["execution"] = {"iopub.status.idle": "2026-12-01T10:00:00Z"}
        cell.metadata.setdefault("tags", [])  # JupyterLab leaves [] after removing a tag
        cell.execution_count = count  # out of order, as after re-running cells by hand
        if CHECK_TAG in tags(cell):
            for output in cell.outputs:
                if "execution_count" in output:
                    output["execution_count"] = count
        else:
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="epoch 1/4\n")]
    checked = next(c for c in nb.cells if CHECK_TAG in tags(c))
    checked.metadata["tags"] = [CHECK_TAG]  # an author who tagged it for nbval only
    return nb


def test_cleaning_restores_a_dirty_copy_and_leaves_a_clean_one_alone(tmp_path, capsys):
    source = NB_DIR / "02_baseline.ipynb"  # checked cells, a parameters cell, exercises
    clean_copy = Path(shutil.copy(source, tmp_path / "clean.ipynb"))
    dirty_copy = tmp_path / "dirty.ipynb"
    # Another JSON layout too: two-space indent, unsorted keys, sources as one string.
    dirty_copy.write_text(json.dumps(_dirty(read(source)), indent=2), encoding="utf-8")
    assert cleaner.main(["--check", str(clean_copy), str(dirty_copy)]) == 1
    assert "dirty.ipynb" in capsys.readouterr().out
    assert dirty_copy.read_text() != source.read_text()  # --check writes nothing

    assert cleaner.main([str(clean_copy), str(dirty_copy)]) == 0
    assert clean_copy.read_bytes() == source.read_bytes()  # clean: left alone
    assert dirty_copy.read_bytes() == source.read_bytes()  # dirty: restored exactly
    assert cleaner.main(["--check", str(dirty_copy)]) == 0


def test_cleaning_an_executed_notebook_keeps_only_the_checked_outputs():
    nb = read(NB_DIR / "01_data.ipynb")
    ran = _dirty(nb)
    for cell in code_cells(ran):  # a checked cell that printed something new
        if CHECK_TAG in tags(cell):
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="images: 3\n")]
    cleaned = cleaner.clean(ran)
    ordinals = {id(c): n for n, c in enumerate(code_cells(cleaned), start=1)}
    for cell in code_cells(cleaned):
        if CHECK_TAG in tags(cell):
            assert cell.outputs[0]["text"] == "images: 3\n"  # kept: the refresh tool's business
            assert cell.execution_count == ordinals[id(cell)]  # In [n] of a fresh run
        else:
            assert (cell.outputs, cell.execution_count) == ([], None)


def test_pre_commit_cleans_the_notebooks_with_nbstripout():
    config = (PROJECT_ROOT / ".pre-commit-config.yaml").read_text()
    assert "entry: python tools/clean_notebooks.py" in config and "ruff" in config
    assert "nbstripout==0.9.1" in config  # the hook's own environment
    assert "build_notebooks" not in config
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert re.search(r"^notebooks-clean:.*\n\t.*tools/clean_notebooks\.py", makefile, re.M)
    # nbstripout keeps a cell's outputs when its tags contain keep_output, which our checked
    # cells carry: nbstripout on its own, with --keep-count, leaves a clean notebook unchanged.
    from nbstripout import strip_output

    for path in ALL:
        stripped = strip_output(read(path), keep_output=False, keep_count=True, keep_id=True)
        assert stripped == read(path), path.name


# ---------------------------------------------------------------------------------------------
# The course's skeleton: what every chapter shares, and nothing more
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_notebook_skeleton(path):
    """Title and what you will learn, the set-up call, graded exercises, a questionnaire, a summary."""
    nb = read(path)
    number = path.stem[:2]
    title = nb.cells[0]
    assert title.cell_type == "markdown" and title.source.startswith(f"# {number} · ")
    assert "What you will learn" in title.source
    code = code_cells(nb)
    setup = next(c for c in code if "parameters" not in tags(c))
    assert setup.source.startswith("import fercourse as fc"), "the first code cell imports fc"
    assert "fc.setup(" in setup.source, "and makes the one explicit set-up call"
    sources = "\n".join(c.source for c in code)
    for banned in ("!pip", "%pip", "import *", "sys.path", "from fercourse"):
        assert banned not in sources, f"{path.name}: {banned!r}"
    headings = [
        line for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines()
    ]
    assert "## Exercises" in headings and "## Summary" in headings
    assert headings.index("## Exercises") < headings.index("## Summary")
    assert nb.cells[-1].cell_type == "markdown" and nb.cells[-1].source.startswith("## Summary")
    assert sources.count("fc.check(") >= 3, "exercises come with graded checks"
    assert "## Questionnaire" in headings and "## Answer key" in headings
    key = next(c for c in nb.cells if c.source.startswith("## Answer key"))
    assert "answer-key" in key.metadata.get("tags", []), "the student edition leaves it out"


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.stem)
def test_course_notebooks_start_with_their_parameters_then_seed(path):
    """A run injects its values after the parameters cell, and the seed reaches fc.setup."""
    code = code_cells(read(path))
    assert tags(code[0]) == ["parameters"], "the first code cell is the parameters cell"
    assert code[1].source.startswith("import fercourse as fc")
    assert "fc.setup(seed=seed)" in code[1].source


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_links_between_notebooks_resolve(path):
    """Prose is edited by hand now: every link to a notebook names one that exists."""
    text = markdown(read(path))
    for target in re.findall(r"\]\(([\w.-]+\.ipynb)\)", text):
        assert (NB_DIR / target).exists(), f"{path.name} links to {target}"
    names = [p.stem for p in ALL]
    following = names[names.index(path.stem) + 1 :]
    if following:  # each chapter's summary points to the next one
        assert f"**Next:** [{following[0]}]({following[0]}.ipynb)" in read(path).cells[-1].source


# ---------------------------------------------------------------------------------------------
# Parameters, as papermill sees them
# ---------------------------------------------------------------------------------------------

COMMON = {"preset": "str", "seed": "int", "run_name": "str", "data_path": "str|None"}
TRAINING = {
    "epochs": "int|None",
    "batch_size": "int|None",
    "lr": "float|None",
    "warmup_epochs": "int|None",
    "patience": "int|None",
    "optimizer": "str|None",
    "device": "str",
    "resume": "bool",
}


def _types(type_name: str) -> tuple[type, ...]:
    return tuple(LITERAL_TYPES[part] for part in type_name.split("|"))


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_parameters_cell_is_literals_typed_and_commented(path):
    """papermill reads every parameter with its type and help (``papermill --help-notebook``)."""
    nb = read(path)
    cells = [c for c in nb.cells if "parameters" in tags(c)]
    assert len(cells) == 1, f"{path.name}: exactly one cell tagged 'parameters'"
    lines = [
        ln for ln in cells[0].source.splitlines() if ln.strip() and not ln.strip().startswith("#")
    ]
    params = papermill.inspect_notebook(str(path))
    # papermill skips a line it cannot parse (e.g. `x: int | None = None`): none may be skipped.
    assert len(params) == len(lines), f"{path.name}: papermill could not parse every line"
    for name, p in params.items():
        type_name = p["inferred_type_name"]
        assert set(type_name.split("|")) <= LITERAL_TYPES.keys(), f"{path.name}: {name} {type_name}"
        assert type_name != "None", f"{path.name}: {name} has no type"
        assert p["help"], f"{path.name}: {name} has no comment"
        value = ast.literal_eval(p["default"])  # literals only
        assert isinstance(value, _types(type_name)), (name, value)
        if value is None:  # the comment says what None means
            assert type_name.endswith("|None") and p["help"].startswith("None: "), (name, p)
            line = next(ln for ln in lines if ln.startswith(f"{name} "))
            assert line.startswith(f"{name} = None  # type: {type_name}  None: "), line


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_every_parameter_is_read(path):
    """A parameter the notebook never reads would be a setting that does nothing."""
    nb = read(path)
    code = "\n".join(c.source for c in code_cells(nb) if "parameters" not in tags(c))
    params = papermill.inspect_notebook(str(path))
    unused = [k for k in params if not re.search(rf"\b{k}\b", code)]
    # The shared run parameters are there for the runner, which gives them to every notebook.
    assert set(unused) <= set(COMMON), f"{path.name}: {unused}"


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.stem)
def test_course_notebooks_share_the_run_parameters(path):
    params = {k: v["inferred_type_name"] for k, v in papermill.inspect_notebook(str(path)).items()}
    assert COMMON.items() <= params.items()
    assert papermill.inspect_notebook(str(path))["preset"]["default"] == '"auto"'
    if path.stem in MODEL_NOTEBOOKS:
        assert TRAINING.items() <= params.items()


def test_help_notebook_shows_the_types_and_what_none_means():
    done = subprocess.run(
        [sys.executable, "-m", "papermill", "--help-notebook", str(NB_DIR / "02_baseline.ipynb")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"patience: int\|None \(default None\)\s+None: the preset's", done.stdout)
    assert "Unknown type" not in done.stdout


# ---------------------------------------------------------------------------------------------
# The regression net works: a deliberate change to the package makes nbval fail
# ---------------------------------------------------------------------------------------------


def nbval(notebook: Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "--nbval-lax",
        "--nbval-current-env",
        "--nbval-sanitize-with",
        str(NB_DIR / "sanitize.cfg"),
        "-p",
        "no:cacheprovider",
        "-q",
        "-x",  # the first differing cell is enough: no need to train
        str(notebook),
    ]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_a_wider_baseline_makes_nbval_fail_on_the_parameter_count(tmp_path):
    """Copy the package, widen the baseline CNN (32 -> 48 channels), run nbval on 02 against it."""
    package = tmp_path / "pkg"
    shutil.copytree(
        PROJECT_ROOT / "fercourse",
        package / "fercourse",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    source = package / "fercourse" / "models" / "baseline_cnn.py"
    text = source.read_text()
    assert text.count("width: int = 32") >= 1
    source.write_text(text.replace("width: int = 32", "width: int = 48"))
    work = tmp_path / "work"
    work.mkdir()
    notebook = shutil.copy(NB_DIR / "02_baseline.ipynb", work / "02_baseline.ipynb")
    env = dict(os.environ)
    env |= {
        "PYTHONPATH": str(package),  # before the editable install's finder
        "FERCOURSE_PRESET": "smoke",
        "FERCOURSE_DATA": str(tmp_path / "data"),
        "FERCOURSE_OUTPUTS": str(tmp_path / "outputs"),
        "FERCOURSE_PROGRESS": "0",
        "MPLBACKEND": "agg",
        "HF_HUB_OFFLINE": "1",
    }
    done = nbval(Path(notebook), env, work)
    report = done.stdout + done.stderr
    assert done.returncode != 0, report[-3000:]
    failed = re.findall(r"FAILED \S+::Cell (\d+)", report)
    code_cells = [c for c in read(NB_DIR / "02_baseline.ipynb").cells if c.cell_type == "code"]
    describe = next(i for i, c in enumerate(code_cells) if "describe_model" in c.source)
    assert failed and int(failed[0]) == describe, report[-3000:]
    assert "Cell outputs differ" in report and "'params':" in report, report[-3000:]
