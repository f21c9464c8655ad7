"""Set-up and bookkeeping shared by every notebook: seeding, devices, versions, paths.

``fc.setup()`` is the first call in every notebook (see ``notebooks/01_data.ipynb``).
"""

from __future__ import annotations

import json
import os
import platform
import random
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

PROJECT_ROOT: Path = Path(__file__).resolve().parent.parent
"""The repository root when fercourse is installed in editable mode (the course's normal set-up)."""


def _dir_from_env(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    return Path(value).expanduser().resolve() if value else default


def data_dir() -> Path:
    """Where FER2013 is looked for: ``$FERCOURSE_DATA`` or ``<repo>/data``."""
    return _dir_from_env("FERCOURSE_DATA", PROJECT_ROOT / "data")


def outputs_dir() -> Path:
    """Where runs write checkpoints and metrics: ``$FERCOURSE_OUTPUTS`` or ``<repo>/outputs``."""
    return _dir_from_env("FERCOURSE_OUTPUTS", PROJECT_ROOT / "outputs")


def in_ci() -> bool:
    """True on a CI runner (the ``CI`` environment variable is set to a true value)."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's randomness, recomputable from ``(seed, epoch)`` alone.

    The loaders' shuffling and augmentation and ``fc.fit``'s dropout and MixUp draws all start
    from it (with ``seed + 1`` for the augmentation stream), which is what makes resume exact.
    """
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def set_determinism(deterministic: bool = True) -> None:
    """Ask PyTorch for deterministic kernels (warn-only, so GPU runs still work) or let it choose.

    On a CPU, deterministic results are bit-identical from run to run; on CUDA this also turns
    cuDNN's autotuning off (it picks kernels by timing, which changes results between runs).
    """
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.benchmark = not deterministic
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


PROGRESS_ENV = "FERCOURSE_PROGRESS"
"""``FERCOURSE_PROGRESS=0`` turns every progress bar off (papermill runs, CI logs, tests)."""


def progress_enabled(progress: bool | None = None) -> bool:
    """Whether to draw progress bars: ``progress`` when given, else ``$FERCOURSE_PROGRESS``, else
    on in a Jupyter kernel or a terminal and off on CI."""
    if progress is not None:
        return bool(progress)
    env = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if env:
        return env not in ("0", "false", "no", "off")
    if in_ci():
        return False
    try:  # a Jupyter kernel: tqdm.auto draws a widget that updates in place
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None and type(shell).__name__ == "ZMQInteractiveShell":
            return True
    except ImportError:  # pragma: no cover - IPython ships with Jupyter
        pass
    import sys

    return sys.stderr.isatty()


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def setup(
    seed: int = 0, *, deterministic: bool = True, threads: int | None = None
) -> dict[str, Any]:
    """The one set-up call at the top of every notebook.

    Seeds every generator, asks PyTorch for deterministic kernels (warn-only, so GPU runs still
    work), sets a readable plotting style and returns what it set, so the notebook shows it.

    Args:
        seed: the global seed.
        deterministic: request deterministic algorithms (on CPU results are then bit-identical).
        threads: CPU threads for PyTorch (default: PyTorch's own choice).

    Example:
        >>> import fercourse as fc
        >>> fc.setup(seed=0)["seed"]
        0
    """
    seed_everything(seed)
    if threads is not None:
        torch.set_num_threads(threads)
    set_determinism(deterministic)
    try:
        import matplotlib as mpl

        mpl.rcParams.update({"figure.dpi": 100, "axes.grid": False, "image.cmap": "gray"})
        _enable_inline_figures()
    except ImportError:  # pragma: no cover - matplotlib is a core dependency
        pass
    return {
        "seed": seed,
        "deterministic": deterministic,
        "device": str(default_device()),
        "torch_threads": torch.get_num_threads(),
    }


def _enable_inline_figures() -> None:
    # In a fresh kernel the inline backend only learns to draw a Figure returned by a function
    # after pyplot has made one; without this, fc.explain.plot_* cells show "<Figure ...>" text.
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with jupyterlab
        return
    shell = get_ipython()
    if shell is not None and type(shell).__name__ == "ZMQInteractiveShell":
        shell.run_line_magic("matplotlib", "inline")


def default_device(device: str | torch.device = "auto") -> torch.device:
    """Resolve ``"auto"`` to CUDA when available, else CPU; pass anything else through."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


_VERSIONED = (
    "torch",
    "torchvision",
    "timm",
    "albumentations",
    "opencv-python-headless",
    "numpy",
    "scikit-learn",
    "grad-cam",
    "safetensors",
)


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries that decide a result; recorded next to every result."""
    versions = {"python": platform.python_version(), "fercourse": _version("fercourse")}
    for name in _VERSIONED:
        versions[name] = _version(name)
    versions["cuda"] = torch.version.cuda or "none"
    return versions


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, then rename).

    A crash or SIGKILL leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates 0600 files; give the result the usual permissions (umask applies).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically (see :func:`atomic_write_bytes`)."""
    text = json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n"
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in JSON")
