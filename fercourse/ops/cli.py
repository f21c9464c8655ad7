"""``python -m fercourse run RUN_FILE``: run the course notebooks headless (or submit to SLURM).

Examples::

    python -m fercourse run papermill_runs/smoke.yaml              # 01-08 on CPU, a few minutes
    python -m fercourse run papermill_runs/smoke.yaml --only 02_baseline,08_compare --force
    python -m fercourse run papermill_runs/a100.yaml --slurm --dry-run   # print the sbatch calls
    python -m fercourse run papermill_runs/slurm/cpu-example.yaml --slurm   # submit (CPU-only)
    python -m fercourse run papermill_runs/slurm/cpu-example.yaml --status  # where it stands
"""

from __future__ import annotations

import argparse
import sys

from .runfile import NOTEBOOKS, RunFileError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fercourse run",
        description="Execute the course notebooks 01-08 with papermill into outputs/<run>/.",
    )
    parser.add_argument("run_file", help="a parameter file, e.g. papermill_runs/smoke.yaml")
    parser.add_argument(
        "--force", action="store_true", help="run notebooks that are already complete too"
    )
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated notebooks to run, e.g. 02_baseline,08_compare ({', '.join(NOTEBOOKS)})",
    )
    parser.add_argument(
        "--slurm",
        action="store_true",
        help="submit the run as SLURM jobs instead of running it (--only and --force apply)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="with --slurm: print the sbatch commands; alone: check the run file and list the plan",
    )
    parser.add_argument(
        "--status",
        action="store_true",
        help="per notebook: complete, running, queued, failed... with its SLURM job and log",
    )
    parser.add_argument(
        "--log-output", action="store_true", help="stream the notebooks' output here (SLURM logs)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m fercourse run``; returns the exit code (0 ok, 1 failed, 2 usage)."""
    args = _parser().parse_args(argv)
    only = [nb.strip() for nb in args.only.split(",") if nb.strip()]
    try:
        if args.status:
            from .slurm_status import print_status

            print_status(args.run_file)
            return 0
        if args.slurm:
            from .slurm import submit

            submit(args.run_file, only=only, force=args.force, dry_run=args.dry_run)
            return 0
        if args.dry_run:
            return _plan(args.run_file, only, args.force)
        from .runner import run_course

        result = run_course(args.run_file, force=args.force, only=only, log_output=args.log_output)
    except (RunFileError, RuntimeError) as err:
        print(f"fercourse run: {err}", file=sys.stderr)
        return 2
    return 0 if result.ok else 1


def _plan(run_file: str, only: list[str], force: bool) -> int:
    from .runfile import check_parameters, load_run_file, select_notebooks
    from .runner import is_complete

    run = load_run_file(run_file)
    selected = select_notebooks(run, only)
    check_parameters(run, selected)
    print(f"run {run.name!r} -> {run.out_dir} (parameters checked)")
    for nb in selected:
        action = "skip (complete)" if is_complete(run, nb) and not force else "run"
        print(f"  {nb:<14} {action:<16} {run.parameters[nb]}")
    return 0
