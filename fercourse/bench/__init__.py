"""Speed benchmarks that print figures (never timed tests).

``python -m fercourse bench train`` (fercourse/bench/train.py),
``python -m fercourse bench budget`` (fercourse/bench/budget.py) and
``python -m fercourse bench mirror`` (fercourse/bench/mirror.py).
"""

from __future__ import annotations

import importlib

BENCHES = {
    "train": "training images/s per model, with and without the data pipeline",
    "budget": "fercourse's budgeted recipe vs the original project's, in the same time budget",
    "mirror": "per-frame latency of the mirror's Python side per model, vs the naive port",
}


def main(argv: list[str]) -> int:
    """Dispatch ``bench NAME ARGS...``."""
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in BENCHES:
        print("usage: python -m fercourse bench {train,budget,mirror} [--help]\n")
        for name, help_ in BENCHES.items():
            print(f"  {name:<8}{help_}")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return int(importlib.import_module(f".{argv[0]}", __name__).main(argv[1:]) or 0)
