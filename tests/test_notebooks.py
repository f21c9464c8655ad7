"""The course notebooks: stored clean, parameters papermill can read, and a regression net that works.

The notebooks themselves run under nbval (``pytest --nbval-lax --nbval-current-env
--nbval-sanitize-with notebooks/sanitize.cfg notebooks/``, see ``notebooks/README.md``); these
tests check what nbval cannot: how the sources are stored, their parameters cells, and that a
deliberate change to the package really makes nbval fail.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest

from fercourse.runs import MODEL_NOTEBOOKS, NOTEBOOKS
from fercourse.utils import PROJECT_ROOT

NB_DIR = PROJECT_ROOT / "notebooks"
COURSE = [NB_DIR / f"{name}.ipynb" for name in NOTEBOOKS]
ALL = sorted(NB_DIR.glob("[0-9][0-9]_*.ipynb"))  # 01-08 and the mirror (09), when it exists
CHECK_TAG, KEEP_TAG = "nbval-check-output", "keep_output"
LITERAL_TYPES = {"str": str, "int": int, "float": float, "bool": bool}


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def test_every_course_notebook_exists():
    assert [p.name for p in COURSE if not p.exists()] == []


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
        if cell.cell_type != "code":
            continue
        where = f"{path.name} cell {i}"
        checked, kept = CHECK_TAG in tags(cell), KEEP_TAG in tags(cell)
        assert checked == kept, f"{where}: {CHECK_TAG!r} and {KEEP_TAG!r} go together"
        if not checked:
            assert cell.outputs == [], f"{where}: outputs stored (run nbstripout)"
            assert cell.execution_count is None, f"{where}: execution_count is stored"
            continue
        # nbval compares a cell only when the reference ran it: a checked cell keeps In [n].
        assert (cell.execution_count is None) == (not cell.outputs), where
        for output in cell.outputs:
            assert output.get("execution_count", cell.execution_count) == cell.execution_count
            assert output.output_type != "error", f"{where}: a stored error"
            assert "image/png" not in output.get("data", {}), f"{where}: an image in a checked cell"


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


def test_the_build_script_reproduces_the_notebooks():
    spec = importlib.util.spec_from_file_location(
        "build_notebooks", PROJECT_ROOT / "tools" / "build_notebooks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0, "notebooks differ from tools/build_notebooks.py"


def test_pre_commit_strips_outputs_but_keeps_checked_cells():
    config = (PROJECT_ROOT / ".pre-commit-config.yaml").read_text()
    assert "nbstripout" in config and "--keep-count" in config and "ruff" in config
    assert "tools/build_notebooks.py --check" in config  # strays counts, hand edits
    # nbstripout keeps a cell's outputs when its tags contain keep_output, which our checked cells
    # carry: stripping a clean notebook the way the hook does changes nothing.
    from nbstripout import strip_output

    for path in COURSE:
        nb = read(path)
        stripped = strip_output(read(path), keep_output=False, keep_count=True, keep_id=False)
        assert stripped == nb, path.name


# ---------------------------------------------------------------------------------------------
# Notebook style: the first cells, no installs, nothing but fc
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.stem)
def test_notebook_structure(path):
    nb = read(path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert nb.cells[0].cell_type == "markdown" and "What you will learn" in nb.cells[0].source
    assert tags(code[0]) == ["parameters"], "the first code cell is the parameters cell"
    first = code[1].source
    assert first.startswith("import fercourse as fc") and "fc.setup(seed=seed)" in first
    sources = "\n".join(c.source for c in code)
    for banned in ("!pip", "%pip", "import *", "sys.path", "from fercourse"):
        assert banned not in sources, f"{path.name}: {banned!r}"
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "## Exercises" in text and "## Summary" in text
    assert text.count("fc.runs.check_answer") + sources.count("fc.runs.check_answer") >= 2


# ---------------------------------------------------------------------------------------------
# Parameters, as papermill sees them
# ---------------------------------------------------------------------------------------------

COMMON = {"preset": "str", "seed": "int", "run_name": "str", "data_path": "str"}
TRAINING = {
    "epochs": "int",
    "batch_size": "int",
    "lr": "float",
    "warmup_epochs": "int",
    "patience": "int",
    "optimizer": "str",
    "device": "str",
    "resume": "bool",
}


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
    assert len(params) == len(lines), f"{path.name}: papermill could not parse every line"
    for name, p in params.items():
        assert p["inferred_type_name"] in LITERAL_TYPES, f"{path.name}: {name} has no type"
        assert p["help"], f"{path.name}: {name} has no comment"
        value = ast.literal_eval(p["default"])  # literals only
        assert isinstance(value, LITERAL_TYPES[p["inferred_type_name"]]), (name, value)


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.stem)
def test_course_notebooks_share_the_run_parameters(path):
    params = {k: v["inferred_type_name"] for k, v in papermill.inspect_notebook(str(path)).items()}
    assert COMMON.items() <= params.items()
    assert papermill.inspect_notebook(str(path))["preset"]["default"] == '"auto"'
    if path.stem in MODEL_NOTEBOOKS:
        assert TRAINING.items() <= params.items()


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
