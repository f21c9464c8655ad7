"""Record the course team's results on the real FER2013 (and optionally ship a default model).

After training on the real data (commands in the README's "Results on FER2013")::

    python tools/record_results.py outputs/fer2013-cpu --data data/fer2013-kaggle
    python tools/record_results.py outputs/fer2013-cpu --data data/fer2013-kaggle --bundle baseline_cnn
    python tools/record_results.py outputs/fer2013-cpu --data data/fer2013-kaggle --member default

scores every run under the folder (PrivateTest and PublicTest, plain and with flip TTA), merges
the rows into ``fercourse/course/fer2013_results.json`` (which ``08_compare`` and
``fc.course.reference_results`` read), scores the ensemble of all of them (or of the ``--ensemble`` runs; plus any ``--member``
checkpoint, such as the bundled ``default`` model whose run folder lives elsewhere), prints the
README table, and with ``--bundle`` copies that model into ``fercourse/inference/default_model/``
with its model card.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import fercourse as fc  # noqa: E402
from fercourse.course.reference import (  # noqa: E402
    REFERENCE_RESULTS_PATH,
    reference_results,
    results_markdown,
)
from fercourse.inference.bundle import bundle_model  # noqa: E402
from fercourse.inference.emotion_model import DEFAULT_MODEL_STEM  # noqa: E402
from fercourse.ops.record import choose_ensemble, collect_ensemble, collect_results  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="parent of the run folders (--out of fercourse train)")
    parser.add_argument("--data", required=True, help="the real FER2013 (file or folder)")
    parser.add_argument("--bundle", metavar="MODEL", help="ship this model as the default")
    parser.add_argument("--out", default=str(REFERENCE_RESULTS_PATH), help="results JSON")
    parser.add_argument(
        "--member",
        action="append",
        default=[],
        metavar="CHECKPOINT",
        help="add this checkpoint (stem, or 'default' for the bundled model) to the ensemble",
    )
    parser.add_argument(
        "--ensemble",
        metavar="MODEL[,MODEL]",
        help="the runs to average: MODEL[,MODEL], or 'best-val' (the subset most accurate on "
        "the validation split); default: all",
    )
    args = parser.parse_args(argv)

    data = fc.data.load_fer2013(args.data)
    if data.synthetic:
        parser.error(f"{args.data} holds the synthetic faces: only real FER2013 results ship")
    split = fc.data.make_split(data, seed=0)
    split_text = (
        f"validation (model selection): {len(split.val):,} faces, a stratified "
        f"{len(split.val) / (len(split.val) + len(split.train)):.0%} of Training; training: "
        f"{len(split.train):,}; test: the official PrivateTest ({len(split.private_test):,}), "
        "never used for selection"
    )
    data_arg = Path(args.data).resolve()
    data_arg = data_arg.relative_to(ROOT) if data_arg.is_relative_to(ROOT) else data_arg
    rows = collect_results(args.run_dir, data, data_arg=data_arg.as_posix())

    members = [DEFAULT_MODEL_STEM if m == "default" else Path(m) for m in args.member]
    runs = [m for m in args.ensemble.split(",") if m] if args.ensemble else None
    if args.ensemble == "best-val":
        runs, scored = choose_ensemble(args.run_dir, data)
        print("ensembles on the validation split (best first):")
        for subset, acc in scored[:8]:
            print(f"  {acc:.2%}  {' + '.join(subset)}")
    ensemble = collect_ensemble(args.run_dir, data, members=members, runs=runs)

    out = Path(args.out)
    record = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {"results": []}
    kept = [r for r in record["results"] if r["model"] not in {row["model"] for row in rows}]
    record.update(
        {
            "data": {
                "name": "FER2013",
                "format": data.format,
                "faces": len(data),
                "usage_counts": {
                    u: int((data.usage == u).sum())
                    for u in ("Training", "PublicTest", "PrivateTest")
                },
            },
            "split": split_text,
            "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "results": kept + rows,
        }
    )
    models = {r["model"] for r in record["results"]}
    if ensemble is not None:
        record["ensemble"] = ensemble
    elif not set(record.get("ensemble", {}).get("members", ["?"])) <= models:
        record.pop("ensemble", None)  # never keep an ensemble of models no longer in the table
    fc.utils.atomic_write_json(out, record)
    print(f"wrote {out}\n")
    print(results_markdown(reference_results(out)))
    if ensemble is not None:
        print(
            f"\nensemble of {', '.join(ensemble['members'])}: val {ensemble['val_acc']:.1%}, "
            f"PrivateTest "
            f"{ensemble['private_acc']:.1%}, with flip TTA {ensemble['private_acc_flip']:.1%}"
        )

    if args.bundle:
        row = next((r for r in rows if r["model"] == args.bundle), None)
        if row is None:
            parser.error(f"no run of {args.bundle!r} under {args.run_dir}")
        stem = bundle_model(Path(args.run_dir) / args.bundle, row, split=split_text)
        card = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
        print(f"\nbundled {args.bundle} at {stem}.safetensors")
        print("reference prediction:", card["reference_prediction"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
