"""``python -m fercourse COMMAND``: thin command-line wrappers over the package's functions.

Commands (each lives beside the code it wraps; ``python -m fercourse COMMAND --help``):

- ``data``      report, fetch, synthetic   (fercourse/data/cli.py)
- ``train``     train one model or all     (fercourse/training/cli.py)
- ``evaluate``  evaluate checkpoints       (fercourse/training/cli.py)
- ``bench``     ``train``, ``budget`` or ``mirror`` figures (fercourse/bench/)
- ``run``       run the notebooks headless with papermill (fercourse/ops/cli.py)
- ``student``   write the student edition (fercourse/ops/edition.py)
- ``grade``     grade a folder of submitted notebooks (fercourse/ops/grader.py)
- ``mirror``    ``serve``: the mirror page with Voila on localhost, with a token (fercourse/mirror/server.py)
"""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str, str]] = {
    "data": ("fercourse.data.cli", "main", "FER2013 data: report, fetch, synthetic"),
    "train": ("fercourse.training.cli", "train_main", "train a model (or all) on FER2013"),
    "evaluate": ("fercourse.training.cli", "evaluate_main", "evaluate trained checkpoints"),
    "bench": ("fercourse.bench", "main", "speed benchmarks: train | budget | mirror"),
    "run": ("fercourse.ops.cli", "main", "run the course notebooks headless with papermill"),
    "student": ("fercourse.ops.edition", "main", "write the student edition (no solutions)"),
    "grade": ("fercourse.ops.grader", "main", "grade submitted notebooks: a score table"),
    "mirror": ("fercourse.mirror.server", "main", "serve the mirror page: Voila, localhost, token"),
}


def _usage() -> str:
    lines = ["usage: python -m fercourse COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<10}{help_}" for name, (_, _, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``argv[0]`` to its command's ``main``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"fercourse: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module, func, _ = COMMANDS[name]
    return int(getattr(importlib.import_module(module), func)(rest) or 0)
