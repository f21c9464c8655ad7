"""``python -m fercourse train`` and ``python -m fercourse evaluate``: thin wrappers over ``fc.fit``
and ``fc.evaluate``, the equivalents of the original project's training and evaluation scripts.

Examples::

    python -m fercourse train --model all --preset smoke
    python -m fercourse train --model baseline_cnn,vit_tiny --epochs 30 --set label_smoothing=0.1
    python -m fercourse evaluate --model baseline_cnn --tta flip
    python -m fercourse evaluate --run outputs/runs/baseline_cnn --run outputs/runs/vit_tiny --ensemble

Introduced in ``notebooks/02_baseline.ipynb`` (the same calls, one model at a time).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from ..rundir import METRICS_FILE, RunDir, find_runs
from ..utils import outputs_dir
from .config import PRESETS, TrainConfig, parse_overrides

_REPORTED_SPLITS = ("PrivateTest", "PublicTest")


def _model_names(values: list[str] | None) -> list[str]:
    from ..models import list_models

    known = list_models()
    names: list[str] = []
    for value in values or ["all"]:
        for name in (v.strip() for v in value.split(",")):
            if not name:
                continue
            if name == "all":
                names += [n for n in known if n not in names]
            elif name not in known:
                raise SystemExit(f"unknown model {name!r}; choose from all, {', '.join(known)}")
            elif name not in names:
                names.append(name)
    return names


def _load_data(path: str | None) -> Any:
    from ..data import load_fer2013

    data = load_fer2013(path)
    print(f"data: {data!r}", flush=True)
    return data


def train_main(argv: list[str]) -> int:
    """``python -m fercourse train``: train one model, several, or all six.

    Each model gets its registered recipe (``TrainConfig.for_model``), a run folder
    ``<out>/<model>`` (resumed when it exists, with a line saying from where), and, unless
    ``--no-evaluate``, its best checkpoint is scored on PrivateTest and PublicTest into that
    folder's ``metrics.json``. Every ``--set`` value is checked by ``TrainConfig`` before any
    data is loaded; one field set twice (``--epochs`` and ``--set epochs=``) is refused.

    Returns:
        0 when every model trained, 1 otherwise.
    """
    parser = _train_parser()
    args = parser.parse_args(argv)
    names, overrides, model_kwargs = _checked_settings(parser, args)
    data = _load_data(args.data)
    root = Path(args.out) if args.out else outputs_dir() / "runs"
    failed = [
        name for name in names if not _train_one(name, data, root, args, overrides, model_kwargs)
    ]
    if failed:
        print(f"failed: {', '.join(failed)}")
        return 1
    return 0


def _train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fercourse train", description="Train FER2013 models (fc.fit)."
    )
    parser.add_argument(
        "--model", action="append", metavar="all|NAME[,NAME]", help="model(s) (default: all)"
    )
    parser.add_argument(
        "--preset",
        choices=PRESETS,
        default="full",
        help="full recipe, smoke test, or class (an 8-minute budget on a CPU)",
    )
    parser.add_argument("--data", help="FER2013 file or folder (default: fc.utils.data_dir())")
    parser.add_argument("--out", help="parent of the run folders (default: outputs/runs)")
    parser.add_argument("--epochs", type=int, help="override the number of epochs")
    parser.add_argument(
        "--budget",
        type=parse_duration,
        metavar="DURATION",
        help="train for this wall-clock time, e.g. 10m, 90s, 1.5h (sets budget_minutes)",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="any TrainConfig field"
    )
    parser.add_argument(
        "--model-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a keyword argument of the model's builder, e.g. distilled=true (vit_tiny)",
    )
    parser.add_argument(
        "--pretrained",
        choices=("auto", "yes", "no"),
        default="auto",
        help="models with pretrained weights (vit_tiny): start from them when they can be had "
        "(auto), always (yes: fail without them) or never (no: from scratch)",
    )
    parser.add_argument("--no-resume", action="store_true", help="start afresh (deletes old runs)")
    parser.add_argument("--no-evaluate", action="store_true", help="skip the test-split scores")
    parser.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bars"
    )
    return parser


def parse_duration(text: str) -> float:
    """``"10m"``, ``"90s"``, ``"1.5h"`` or a bare number of minutes -> minutes.

    Example:
        >>> parse_duration("90s"), parse_duration("1.5h"), parse_duration("8")
        (1.5, 90.0, 8.0)
    """
    units = {"s": 1 / 60, "m": 1.0, "min": 1.0, "h": 60.0}
    raw = text.strip().lower()
    number, unit = raw, "m"
    for suffix in sorted(units, key=len, reverse=True):
        if raw.endswith(suffix):
            number, unit = raw[: -len(suffix)], suffix
            break
    try:
        minutes = float(number) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--budget {text!r}: expected a duration such as 10m, 90s or 1.5h"
        ) from None
    if not minutes > 0:
        raise argparse.ArgumentTypeError(f"--budget {text!r}: must be longer than zero")
    return minutes


def _checked_settings(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    """The models, config overrides and model keyword arguments, all checked before any data."""
    try:
        overrides = parse_overrides(args.set)
        model_kwargs = parse_overrides(args.model_set, check=None)
    except ValueError as exc:
        parser.error(str(exc))
    _refuse_conflicts(parser, args.set, {"epochs": args.epochs, "budget_minutes": args.budget})
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.budget is not None:
        overrides["budget_minutes"] = args.budget
    names = _model_names(args.model)
    try:  # every value checked (TrainConfig's types and ranges) before any data is loaded
        for name in names:
            TrainConfig.for_model(name, preset=args.preset, **overrides)
    except ValueError as exc:
        parser.error(str(exc))
    if args.pretrained == "yes":
        from ..models import has_pretrained_weights

        without = [n for n in names if not has_pretrained_weights(n)]
        if without:
            parser.error(
                f"--pretrained yes: {', '.join(without)} has no pretrained weights (only vit_tiny "
                "has); train those with --pretrained auto or no"
            )
    return names, overrides, model_kwargs


def _train_one(
    name: str,
    data: Any,
    root: Path,
    args: argparse.Namespace,
    overrides: dict[str, Any],
    model_kwargs: dict[str, Any],
) -> bool:
    """Train (or resume) one model and score it; False (with the reason printed) on failure."""
    import fercourse as fc

    from .state import ResumeError

    try:
        config = TrainConfig.for_model(name, preset=args.preset, **overrides)
        fc.setup(seed=config.seed)
        try:
            pretrained = fc.models.has_pretrained_weights(name) and fc.course.resolve_pretrained(
                args.pretrained
            )
        except (RuntimeError, FileNotFoundError) as err:  # --pretrained yes, no weights
            print(f"{name}: {err}", file=sys.stderr, flush=True)
            return False
        model = fc.models.create_model(name, pretrained=pretrained, **model_kwargs)
        split = fc.data.make_split(data, seed=config.seed)
        started = time.perf_counter()
        run = RunDir(root / name)
        history = fc.fit(
            model,
            data,
            config,
            split=split,
            out_dir=run.path,
            resume=not args.no_resume,
            progress=args.progress,
        )
        line = (
            f"{name:<20} best val_acc {history.best_val_acc:.4f} "
            f"(epoch {history.best_epoch}/{len(history)})"
        )
        if not args.no_evaluate:
            for split_name in _REPORTED_SPLITS:
                m = fc.evaluate(model, data, split_name, split_obj=split, save_to=run.path)
                line += f"  {split_name} {m['accuracy']:.4f}"
        elapsed = time.perf_counter() - started
        weights = run.checkpoint().with_suffix(".safetensors")
        print(f"{line}  {elapsed:.1f} s  -> {weights}", flush=True)
        return True
    except ResumeError as err:  # another run in the folder: say how to proceed here
        print(f"{name}: {err}", file=sys.stderr, flush=True)
    except Exception:  # keep training the other models; report at the end
        traceback.print_exc()
    return False


def _refuse_conflicts(
    parser: argparse.ArgumentParser, pairs: list[str], flags: dict[str, Any]
) -> None:
    """Two flags setting one field: refused, naming both (neither silently wins)."""
    seen: dict[str, str] = {}
    for pair in pairs:
        key = pair.partition("=")[0].strip().replace("-", "_")
        if key in seen:
            parser.error(f"--set {seen[key]} and --set {pair} both set {key}: give one")
        seen[key] = pair
    names = {"epochs": "--epochs", "budget_minutes": "--budget"}
    for field, value in flags.items():
        if value is not None and field in seen:
            parser.error(
                f"{names[field]} {value:g} and --set {seen[field]} both set {field}: give one"
            )


def _run_dirs(args: argparse.Namespace) -> list[RunDir]:
    runs = [RunDir(p) for p in args.run or []]
    runs += [RunDir(p) for p in args.checkpoint or []]
    for name in _model_names(args.model) if args.model else []:
        found = find_runs(args.root, model=name)
        if not found:
            raise SystemExit(
                f"no trained {name} under {args.root or outputs_dir()} (no best checkpoint)"
            )
        runs.append(found[0])
    if not runs:
        runs = find_runs(args.root)
        if not runs:
            raise SystemExit(
                f"no runs under {args.root or outputs_dir()}; pass --run or --checkpoint"
            )
    return runs


def _split_for(card: dict[str, Any], data: Any) -> Any:
    """The run's own split (its file when it still exists), so ``val`` means the run's val."""
    from ..data import make_split

    seed = int(card.get("config", {}).get("seed", 0))
    path = card.get("split_path") or None
    split = make_split(data, seed=seed, path=path if path and Path(path).is_file() else None)
    if card.get("split_hash") and not split.matches(card["split_hash"]):
        print(
            f"warning: the split differs from the one the run was trained on ({card['split_hash'][:12]})"
        )
    return split


def _row(label: str, m: dict[str, Any]) -> str:
    return (
        f"{label:<22} {m['split']:<12} {m['tta'] or '-':<8} {m['n']:>6} {m['accuracy']:>8.4f} "
        f"{m['macro_f1']:>8.4f} {m['ece']:>7.4f}  {m.get('selected_on') or '?'}"
    )


def evaluate_main(argv: list[str]) -> int:
    """``python -m fercourse evaluate``: score trained runs, write ``metrics.json``, print a table.

    The best checkpoint of each run is scored on the requested splits (default PrivateTest, the
    reported test set, and PublicTest); the last column says where the checkpoint was selected
    (``val``, carved from Training).

    Returns:
        0 on success, 1 when a checkpoint cannot be loaded (the message names the file).
    """
    from ..checkpoint import CheckpointError

    args = _evaluate_parser().parse_args(argv)
    splits = args.split or list(_REPORTED_SPLITS)
    tta = None if args.tta == "none" else args.tta
    dirs = _run_dirs(args)
    data = _load_data(args.data)
    header = (
        f"{'model':<22} {'split':<12} {'tta':<8} {'n':>6} {'accuracy':>8} {'macro-F1':>8} "
        f"{'ECE':>7}  selected on"
    )
    lines = [header, "-" * len(header)]
    models, split = [], None
    for run_dir in dirs:
        which = next((Path(c).stem for c in args.checkpoint or [] if RunDir(c) == run_dir), "best")
        try:
            run = run_dir.load(which)
        except CheckpointError as err:  # damaged weights or card: the message names the file
            print(f"error: {err}", file=sys.stderr)
            return 1
        split = _split_for(run.card, data)
        models.append(run.model)
        lines += _evaluate_run(run, run_dir, data, split, splits, tta, args)
        print(f"wrote {run_dir.metrics_file}", flush=True)
    if args.ensemble and len(models) > 1:
        lines += _evaluate_ensemble(models, data, split, splits, tta, args)
    print("\n".join(lines))
    if data.synthetic:
        print("note: synthetic stand-in faces, not FER2013")
    return 0


def _evaluate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fercourse evaluate", description="Evaluate trained runs (fc.evaluate)."
    )
    parser.add_argument("--run", action="append", help="a run folder (repeatable)")
    parser.add_argument("--checkpoint", action="append", help="a best/last checkpoint file")
    parser.add_argument("--model", action="append", help="the best run of this model under --root")
    parser.add_argument("--root", help="where --model looks (default: outputs/)")
    parser.add_argument("--data", help="FER2013 file or folder (default: fc.utils.data_dir())")
    parser.add_argument(
        "--split", action="append", help="PrivateTest, PublicTest, val or train (repeatable)"
    )
    parser.add_argument("--tta", choices=("none", "flip", "tencrop"), default="none")
    parser.add_argument("--calibrate", action="store_true", help="also with temperature scaling")
    parser.add_argument("--ensemble", action="store_true", help="also the average of the runs")
    parser.add_argument("--out", help="where the ensemble's metrics.json goes")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=256)
    return parser


def _evaluate_run(
    run: Any, run_dir: RunDir, data: Any, split: Any, splits: list[str], tta: Any, args: Any
) -> list[str]:
    """One run's table rows (and with ``--calibrate`` its temperature-scaled rows)."""
    from ..evaluation import evaluate, fit_temperature

    temperature = None
    if args.calibrate:
        temperature = fit_temperature(run.model, data, split, device=args.device)
    common = dict(split_obj=split, tta=tta, device=args.device, batch_size=args.batch_size)
    lines = []
    for split_name in splits:
        m = evaluate(run.model, data, split_name, save_to=run_dir.path, **common)
        lines.append(_row(run.model.model_name, m))
        if temperature is not None:
            m = evaluate(
                run.model, data, split_name, temperature=temperature, save_to=run_dir.path, **common
            )
            lines.append(_row(f"  T={temperature:.2f}", m))
    return lines


def _evaluate_ensemble(
    models: list[Any], data: Any, split: Any, splits: list[str], tta: Any, args: Any
) -> list[str]:
    from ..evaluation import evaluate_ensemble

    out = Path(args.out) if args.out else outputs_dir() / "ensemble"
    lines = []
    for split_name in splits:
        m = evaluate_ensemble(
            models,
            data,
            split_name,
            split_obj=split,
            tta=tta,
            device=args.device,
            batch_size=args.batch_size,
            save_to=out,
        )
        lines.append(_row("ensemble", m))
    print(f"wrote {out / METRICS_FILE}")
    return lines
