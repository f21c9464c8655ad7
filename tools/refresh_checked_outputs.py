"""Regenerate the stored outputs of the checked cells, by running the notebooks for real.

    python tools/refresh_checked_outputs.py                 # all of 01-08 (a few minutes on a CPU)
    python tools/refresh_checked_outputs.py 02_baseline     # one (08 needs 02-07's results: all)

The cells tagged ``nbval-check-output`` show structural facts (sizes, class names, shapes,
parameter counts, the configuration); nbval compares what they print with the output stored in
the notebook. When the package changes *on purpose* (a model gets wider, the smoke preset
changes), run this to store the new facts, and review the diff: every changed line should be one
you meant to change.

It runs exactly what the tests run: the smoke preset on the synthetic faces, in a temporary data
and outputs folder (never ``data/`` or ``outputs/``), executes each notebook top to bottom with
nbclient, copies the outputs of the checked cells, and only those, into the sources, and writes
them clean (``tools/clean_notebooks.py``). Nothing else in a notebook changes: edit the prose and
the code in JupyterLab, and run this only when a checked fact changes on purpose.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat

# `python tools/refresh_checked_outputs.py` puts tools/ first on sys.path.
from clean_notebooks import NOTEBOOKS_DIR, clean, dumps, is_checked, set_checked_outputs
from nbclient import NotebookClient

from fercourse.ops import NOTEBOOKS  # 01-08, in the order a run executes them


def smoke_environment(tmp: Path) -> dict[str, str]:
    """What the nbval tests set (notebooks/conftest.py): smoke, synthetic faces, tmp outputs."""
    return {
        "FERCOURSE_PRESET": "smoke",
        "FERCOURSE_DATA": str(tmp / "data"),
        "FERCOURSE_OUTPUTS": str(tmp / "outputs"),
        "FERCOURSE_PROGRESS": "0",
        "HF_HUB_OFFLINE": "1",
        "MPLBACKEND": "agg",
    }


def execute(name: str, timeout: int = 900) -> nbformat.NotebookNode:
    """Run ``notebooks/<name>.ipynb`` (in memory) with its default parameters."""
    nb = nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    client = NotebookClient(
        copy.deepcopy(nb),
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
    )
    return client.execute()


def copy_checked_outputs(name: str, executed: nbformat.NotebookNode) -> int:
    """Store the executed checked cells' outputs in the clean source; returns how many changed."""
    path = NOTEBOOKS_DIR / f"{name}.ipynb"
    source = nbformat.read(path, as_version=4)
    if len(source.cells) != len(executed.cells):
        raise RuntimeError(f"{path}: the notebook changed while it ran")
    changed = 0
    ordinal = 0
    for stored, ran in zip(source.cells, executed.cells, strict=True):
        if stored.cell_type != "code":
            continue
        ordinal += 1
        if not is_checked(stored):
            continue
        if stored.source != ran.source:
            raise RuntimeError(f"{path}: cell {stored.id} changed while it ran")
        before = copy.deepcopy(stored.outputs)
        set_checked_outputs(stored, copy.deepcopy(ran.outputs), ordinal)
        changed += stored.outputs != before
    path.write_bytes(dumps(clean(source)).encode("utf-8"))
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebooks (default: 01-08 in order)")
    args = parser.parse_args(argv)
    names = args.names or list(NOTEBOOKS)
    if "08_compare" in names:  # it compares the models 02-07 trained in the same outputs folder
        names = list(NOTEBOOKS) + [name for name in names if name not in NOTEBOOKS]
    with tempfile.TemporaryDirectory(prefix="fercourse-refresh-") as tmp:
        os.environ.update(smoke_environment(Path(tmp)))
        for name in names:
            t0 = time.perf_counter()
            executed = execute(name)
            changed = copy_checked_outputs(name, executed)
            print(f"{name:<14} {time.perf_counter() - t0:6.1f} s  checked cells changed: {changed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
