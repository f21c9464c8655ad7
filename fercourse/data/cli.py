"""``python -m fercourse data {report,fetch,synthetic}``.

- ``data report [PATH] [--ferplus FILE] [--split] [--no-cache] [--json FILE]``: load FER2013
  (or the synthetic stand-in) and print the data report.
- ``data fetch [--dest DIR] [--source competition|folders]``: download FER2013 with the
  ``kaggle`` package and verify its counts, or print the manual steps.
- ``data synthetic --n N --seed S --out PATH``: write synthetic faces as a ``fer2013.csv``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from .dataset import DataError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fercourse data", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)

    report = sub.add_parser("report", help="class counts, imbalance, duplicates, blank images")
    report.add_argument("path", nargs="?", help="file or folder (default: search data/)")
    report.add_argument("--ferplus", help="fer2013new.csv for FERPlus majority labels")
    report.add_argument("--split", action="store_true", help="report train/val/test parts")
    report.add_argument("--no-cache", action="store_true", help="parse the source again")
    report.add_argument("--include-augmented", action="store_true", help="keep *.jpgN.jpg copies")
    report.add_argument("--json", metavar="FILE", help="also write the figures as JSON")

    fetch = sub.add_parser("fetch", help="download FER2013 (kaggle) or print the manual steps")
    fetch.add_argument("--dest", help="data folder (default: $FERCOURSE_DATA or data/)")
    fetch.add_argument("--source", choices=("competition", "folders"), default="competition")

    synthetic = sub.add_parser("synthetic", help="write synthetic faces as fer2013.csv")
    synthetic.add_argument("--n", type=int, default=None, help="number of faces")
    synthetic.add_argument("--seed", type=int, default=0)
    synthetic.add_argument("--out", required=True, help="the CSV file to write")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``data report|fetch|synthetic``; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        if args.command == "report":
            return _report(args)
        if args.command == "fetch":
            from .fetch import fetch_fer2013

            return 0 if fetch_fer2013(args.dest, source=args.source) is not None else 1
        return _synthetic(args)
    except (DataError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def _report(args) -> int:
    from .load import load_fer2013
    from .report import data_report
    from .splits import make_split

    ds = load_fer2013(
        args.path,
        ferplus=args.ferplus,
        cache=not args.no_cache,
        include_augmented=args.include_augmented,
    )
    report = data_report(ds, make_split(ds) if args.split else None)
    print(report)
    if args.json:
        from ..utils import atomic_write_json

        atomic_write_json(args.json, report.to_dict())
        print(f"\nwrote {args.json}")
    return 0


def _synthetic(args) -> int:
    from .formats import write_fer2013_csv
    from .synthetic import DEFAULT_SYNTHETIC_N, make_synthetic_faces

    ds = make_synthetic_faces(n=args.n or DEFAULT_SYNTHETIC_N, seed=args.seed)
    path = write_fer2013_csv(ds, args.out)
    counts = ", ".join(f"{k} {v}" for k, v in ds.usage_counts().items())
    print(f"wrote {len(ds)} SYNTHETIC faces (not FER2013; {counts}) to {path}")
    print(json.dumps(ds.class_counts().to_dict()))
    return 0
