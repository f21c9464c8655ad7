"""Parameter files for headless runs (``papermill_runs/*.yaml``): reading, merging, checking.

A run file names a run and the parameters its notebooks get::

    extends: common.yaml         # merged first (keys here win): see :func:`resolve_extends`
    run_name: smoke              # results go to outputs/smoke/ (default: the file's stem)
    parameters: {preset: smoke}  # every notebook
    models: {device: cpu}        # the six model notebooks (02-07)
    notebooks:                   # one notebook
      05_hybrid: {lr: 1.0e-4}

Every key a notebook gets is checked against its ``parameters`` cell (``papermill``'s own
inspection) before anything runs: an unknown name or a value of the wrong type is an error that
names the notebook and the key, never papermill's warning halfway through a run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..utils import PROJECT_ROOT, outputs_dir


def _model_notebooks() -> dict[str, str]:
    from ..models import list_models, model_info

    return {model_info(name).notebook: name for name in list_models() if model_info(name).notebook}


MODEL_NOTEBOOKS: dict[str, str] = _model_notebooks()
"""Model notebook -> the model it trains (``outputs/<run>/<model>/``), from each model's
registration (``fc.models.model_info(name).notebook``), in the course's order; also the SLURM
array order."""

NOTEBOOKS: tuple[str, ...] = ("01_data", *MODEL_NOTEBOOKS, "08_compare")
"""The course notebooks a run executes, in order (``09_mirror`` is interactive, never run)."""

_TOP_KEYS = {"extends", "run_name", "order", "notebooks_dir", "kernel", "cell_timeout_s"}
_TOP_KEYS |= {"parameters", "models", "notebooks", "slurm"}

RUNS_DIR: Path = PROJECT_ROOT / "papermill_runs"
"""The shipped run files; an ``extends:`` name not found next to the file is looked up here."""


class RunFileError(ValueError):
    """A run file is malformed, or gives a notebook a parameter it does not have."""


@dataclass
class RunSpec:
    """A run file after merging: what to execute, with which parameters, into which folder.

    Attributes:
        name: the run's name (``outputs/<name>/``).
        file: the run file it came from.
        notebooks: the notebooks to execute, in order.
        parameters: notebook name -> the parameters papermill injects (``run_name`` included).
        notebooks_dir: where the notebook sources are (never written to); in a run file, relative
            to that file.
        kernel: the Jupyter kernel name (``None``: the notebook's own kernelspec).
        cell_timeout_s: papermill's per-cell timeout (``None``: no limit).
        slurm: extra ``sbatch`` options, e.g. ``{"partition": "gpu", "account": "fer"}``.
    """

    name: str
    file: Path
    notebooks: list[str]
    parameters: dict[str, dict[str, Any]]
    notebooks_dir: Path = PROJECT_ROOT / "notebooks"
    kernel: str | None = None
    cell_timeout_s: int | None = None
    slurm: dict[str, Any] = field(default_factory=dict)

    @property
    def out_dir(self) -> Path:
        """``outputs/<name>/``: executed notebooks, one folder per model, ``run.json``."""
        return outputs_dir() / self.name

    def source(self, notebook: str) -> Path:
        """The clean source of ``notebook``."""
        return self.notebooks_dir / f"{notebook}.ipynb"

    def params_hash(self, notebook: str) -> str:
        """A short hash of a notebook's parameters: a completed notebook is re-run when it changes."""
        text = json.dumps(self.parameters[notebook], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise RunFileError(f"{path}: run file not found") from None
    except yaml.YAMLError as err:
        raise RunFileError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(content, dict):
        raise RunFileError(f"{path}: expected a mapping at the top level")
    unknown = sorted(set(content) - _TOP_KEYS)
    if unknown:
        raise RunFileError(
            f"{path}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_TOP_KEYS))}"
        )
    return content


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _load_merged(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in seen:
        raise RunFileError(f"{path}: 'extends' loops back to itself")
    content = _read_yaml(path)
    folder = content.get("notebooks_dir")
    if folder and not Path(folder).is_absolute():  # relative to the file that says it
        content["notebooks_dir"] = str((path.parent / folder).resolve())
    parent = content.pop("extends", None)
    if parent is None:
        return content
    return _merge(_load_merged(resolve_extends(path, parent), (*seen, path)), content)


def resolve_extends(run_file: Path, parent: str | Path) -> Path:
    """The file an ``extends:`` line in ``run_file`` names.

    An absolute path is used as it is. A relative one is looked up, in this order: next to the
    file that says it (``extends: ../smoke.yaml``); among the shipped run files in
    ``papermill_runs/`` (``extends: smoke.yaml``, ``extends: slurm/cpu-example.yaml``); from
    the repository root (``extends: papermill_runs/smoke.yaml``). So a run file kept anywhere
    (a home folder, a tmp dir) can extend a shipped one by its name.

    Raises:
        RunFileError: the file is in none of those places (the message names them).
    """
    given = Path(parent)
    if given.is_absolute():
        return given
    tried = [run_file.parent / given, RUNS_DIR / given, PROJECT_ROOT / given]
    for candidate in tried:
        if candidate.exists():
            return candidate
    raise RunFileError(
        f"{run_file}: extends {str(parent)!r}, which is in none of: "
        + ", ".join(str(p) for p in tried)
    )


def load_run_file(path: str | Path) -> RunSpec:
    """Read a run file (following ``extends``) and merge the parameters per notebook.

    Each notebook gets ``parameters``, then ``models`` (model notebooks only), then its own
    ``notebooks.<name>`` section, then ``run_name``; later ones win.

    Args:
        path: e.g. ``papermill_runs/smoke.yaml``.

    Returns:
        The merged :class:`RunSpec` (not yet checked against the notebooks: see
        :func:`check_parameters`).

    Raises:
        RunFileError: a malformed file, an unknown notebook or section name, a ``run_name`` that
            is a path (``../x`` would write outside ``outputs/``), or a ``cell_timeout_s`` that
            is not a number of seconds.
    """
    path = Path(path)
    raw = _load_merged(path)
    name = str(raw.get("run_name") or path.stem)
    if "/" in name or "\\" in name or name.startswith(".") or not name.strip():
        raise RunFileError(
            f"{path}: run_name {name!r} must be a plain folder name (the run writes to "
            f"outputs/<run_name>/), not a path"
        )
    order = list(raw.get("order") or NOTEBOOKS)
    sections = raw.get("notebooks") or {}
    for label, value in (("parameters", raw.get("parameters")), ("models", raw.get("models"))):
        if value is not None and not isinstance(value, dict):
            raise RunFileError(f"{path}: '{label}' must be a mapping of parameter: value")
    if not isinstance(sections, dict):
        raise RunFileError(f"{path}: 'notebooks' must map notebook names to parameters")
    for nb in [*order, *sections]:
        if nb not in NOTEBOOKS:
            raise RunFileError(f"{path}: unknown notebook {nb!r}; expected one of {NOTEBOOKS}")
    parameters: dict[str, dict[str, Any]] = {}
    for nb in order:
        params = dict(raw.get("parameters") or {})
        if nb in MODEL_NOTEBOOKS:
            params.update(raw.get("models") or {})
        params.update(sections.get(nb) or {})
        params["run_name"] = name
        parameters[nb] = params
    notebooks_dir = Path(raw.get("notebooks_dir") or PROJECT_ROOT / "notebooks")
    timeout = raw.get("cell_timeout_s")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0
    ):
        raise RunFileError(
            f"{path}: cell_timeout_s must be a number of seconds above 0 (e.g. 3600) or null "
            f"for no limit, got {timeout!r}"
        )
    return RunSpec(
        name=name,
        file=path.resolve(),
        notebooks=order,
        parameters=parameters,
        notebooks_dir=notebooks_dir,
        kernel=raw.get("kernel"),
        cell_timeout_s=int(timeout) if timeout else None,
        slurm=dict(raw.get("slurm") or {}),
    )


def select_notebooks(run: RunSpec, only: list[str] | None = None) -> list[str]:
    """The run's notebooks, or those of ``only`` (in run order).

    Raises:
        RunFileError: ``only`` names a notebook the run does not execute.
    """
    if not only:
        return list(run.notebooks)
    unknown = [nb for nb in only if nb not in run.notebooks]
    if unknown:
        raise RunFileError(
            f"{run.file}: --only names {', '.join(unknown)}, which this run does not execute; "
            f"its notebooks are: {', '.join(run.notebooks)}"
        )
    return [nb for nb in run.notebooks if nb in only]


_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
}


def _accepted_types(type_name: str) -> tuple[type, ...] | None:
    """The Python types a parameter of papermill's ``type_name`` takes; ``None``: not checked.

    ``"int"`` from ``epochs: int = 4``, or ``"int|None"`` from ``epochs = None  # type: int|None``
    (papermill cannot parse an ``int | None`` annotation, so a parameter whose default is ``None``
    gives its type in a ``# type:`` comment). ``"None"`` alone is papermill's "no type given".
    """
    parts = type_name.replace(" ", "").split("|")
    if len(parts) == 1:
        return _TYPES.get(parts[0])
    if not all(part in _TYPES or part == "None" for part in parts):
        return None
    return tuple(t for part in parts for t in _TYPES.get(part, (type(None),)))


def check_parameters(run: RunSpec, notebooks: list[str] | None = None) -> None:
    """Check every parameter the run gives against the notebooks' ``parameters`` cells.

    Uses ``papermill.inspect_notebook`` (what ``papermill --help-notebook`` prints).

    Raises:
        RunFileError: naming the notebook and the key, for a parameter the notebook does not have
            or a value whose type does not match the parameter's annotation or ``# type:``
            comment (``null`` only where that says ``|None``; with a hint for YAML's ``1e-4``,
            which YAML reads as a string: write ``1.0e-4``).
    """
    import papermill

    problems = []
    for nb in notebooks or run.notebooks:
        source = run.source(nb)
        if not source.exists():
            raise RunFileError(f"{run.file}: notebook {nb!r} not found at {source}")
        declared = papermill.inspect_notebook(str(source))
        for key, value in run.parameters[nb].items():
            if key not in declared:
                problems.append(
                    f"{nb}: unknown parameter {key!r} (the notebook's parameters are: "
                    f"{', '.join(declared)})"
                )
                continue
            expected = declared[key]["inferred_type_name"]
            ok_types = _accepted_types(expected)
            if ok_types is None:
                continue
            if (isinstance(value, bool) and bool not in ok_types) or not isinstance(
                value, ok_types
            ):
                hint = ""
                if float in ok_types and isinstance(value, str):
                    hint = " (YAML reads 1e-4 as a string: write 1.0e-4)"
                problems.append(
                    f"{nb}: parameter {key!r} expects {expected.replace('|', ' or ')}, got "
                    f"{type(value).__name__} {value!r}{hint}"
                )
    if problems:
        raise RunFileError(f"{run.file}:\n  " + "\n  ".join(problems))
