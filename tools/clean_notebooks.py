"""Store the course notebooks clean: what to run after editing one in JupyterLab.

    python tools/clean_notebooks.py                  # clean every notebooks/*.ipynb in place
    python tools/clean_notebooks.py notebooks/03_attention.ipynb   # or only these
    python tools/clean_notebooks.py --check          # exit 1, naming the dirty ones; write nothing

(``make notebooks-clean`` runs the first; the pre-commit hook runs it on the staged notebooks.)

A clean notebook has no outputs and no execution counts, except the cells tagged
``nbval-check-output``: their outputs are the expected values nbval compares (see
notebooks/README.md), so they keep them, with ``In [n]`` where n is the cell's position among the
code cells, as in a fresh top-to-bottom run (nbval compares only cells that were run). It has no
metadata that a run or an editor adds (papermill's, the kernel's version, collapsed headings),
the course's kernelspec, and is written exactly as JupyterLab
writes it (``nbformat.write``: one-space indent, sorted keys, sources as lists of lines), so
saving in JupyterLab and cleaning give the same file and a diff shows only what you changed.
Cell ids are kept (unlike nbstripout's default, which renumbers them): a cell inserted in the
middle then changes one cell in the diff, not the id of every cell after it.

The stripping is nbstripout's (``strip_output``, which keeps the cells tagged ``keep_output``);
this adds what nbstripout cannot do alone: execution counts kept for the checked cells only, and
one canonical file format.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import nbformat
from nbstripout import strip_output

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = ROOT / "notebooks"

CHECK_TAG = "nbval-check-output"
"""nbval compares the output of a cell with this tag against the output stored in the notebook."""
KEEP_TAG = "keep_output"
"""nbstripout keeps the outputs of a cell with this tag; every checked cell carries both."""

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
"""papermill, nbval and the runner start the kernel named ``python3`` (``make setup`` installs it)."""

VOLATILE_KEYS = [
    # nbstripout's own defaults (what its command line strips)
    "metadata.signature",
    "metadata.widgets",
    "cell.metadata.collapsed",
    "cell.metadata.ExecuteTime",
    "cell.metadata.execution",
    "cell.metadata.heading_collapsed",
    "cell.metadata.hidden",
    "cell.metadata.scrolled",
    # what papermill, JupyterLab and VS Code add
    "metadata.papermill",
    "cell.metadata.papermill",
    "cell.metadata.jp-MarkdownHeadingCollapsed",
    "metadata.vscode",
]


def tags(cell: dict) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def is_checked(cell: dict) -> bool:
    return CHECK_TAG in tags(cell)


def set_checked_outputs(cell: nbformat.NotebookNode, outputs: list, ordinal: int) -> None:
    """Store a checked cell's expected outputs, with the count a top-to-bottom run gives it.

    nbval compares only cells that were run in the reference (``execution_count`` set), so a
    checked cell keeps ``In [n]``: n is its position among the code cells, as in a fresh run.
    """
    cell.outputs = outputs
    cell.execution_count = ordinal if outputs else None
    for output in outputs:
        if "execution_count" in output:
            output["execution_count"] = cell.execution_count


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The clean copy of ``nb`` (the argument is left as it is)."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if is_checked(cell) and KEEP_TAG not in tags(cell):
            cell.metadata["tags"] = [*tags(cell), KEEP_TAG]  # one tag to add by hand, not two
    nb = strip_output(
        nb, keep_output=False, keep_count=True, keep_id=True, extra_keys=VOLATILE_KEYS
    )
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}  # not the version the last run had
    ordinal = 0
    for cell in nb.cells:
        if cell.get("metadata", {}).get("tags") == []:
            del cell.metadata["tags"]  # what JupyterLab leaves after removing the last tag
        if cell.cell_type != "code":
            continue
        ordinal += 1
        if is_checked(cell):
            set_checked_outputs(cell, cell.outputs, ordinal)
        else:
            cell.execution_count = None  # strip_output kept every count, for the line above
    return nb


def dumps(nb: nbformat.NotebookNode) -> str:
    """The notebook's text as JupyterLab saves it (``nbformat.write``)."""
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def clean_text(path: Path) -> str:
    """What ``path`` holds once clean."""
    return dumps(clean(nbformat.read(path, as_version=4)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: notebooks/*)")
    parser.add_argument("--check", action="store_true", help="exit 1 if one is not clean")
    args = parser.parse_args(argv)
    paths = args.paths or sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
    dirty = []
    for path in paths:
        text = clean_text(path)
        if path.read_bytes() == text.encode("utf-8"):
            continue
        dirty.append(path)
        if not args.check:
            path.write_bytes(text.encode("utf-8"))  # "\n" line ends on every system
    names = ", ".join(str(p) for p in dirty) or "none"
    if args.check:
        print(f"not clean: {names}" + (" (run python tools/clean_notebooks.py)" if dirty else ""))
        return 1 if dirty else 0
    print(f"cleaned: {names}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
