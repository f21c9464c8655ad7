"""Two recipes, one time budget: fercourse's budgeted recipe against the original project's.

``python -m fercourse bench budget --minutes 10 --model baseline_cnn`` trains, in one process, on
the same data and the same CPU threads:

(a) **fercourse**: the ``class`` preset with ``budget_minutes`` (the schedule sized to the
    epochs that fit and decaying to zero: one-cycle, label smoothing, no class weights, the light
    augmentation, bf16 autocast where the CPU has native bf16, channels-last);
(b) **original**: the original project's recipe (AdamW at 1e-3, ReduceLROnPlateau,
    class-weighted cross-entropy, the standard augmentation, batch 64, float32) for the epochs
    that fit the same budget,

then scores both best checkpoints (chosen on val) once on PrivateTest, as they are and with
horizontal-flip test-time augmentation (the mean of a face's and its mirror image's
probabilities), and prints a table with the measured images/s. FER2013 when it is found, else
the synthetic faces (and it says so).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch

RECIPES: dict[str, dict[str, Any]] = {
    "fercourse": {"preset": "class"},
    "original": {
        "preset": "full",
        "lr": 1e-3,
        "scheduler": "plateau",
        "class_weighted": True,
        "batch_size": 64,
        "label_smoothing": 0.0,
        "amp": "off",
        "channels_last": False,
        "epochs": 1000,  # the budget decides; early stopping (patience 10) may end sooner
    },
}
"""The two recipes compared: a preset and the fields that differ from it."""


def run_recipe(
    recipe: str, model_name: str, data: Any, minutes: float, out: Path
) -> dict[str, Any]:
    """Train ``model_name`` with one recipe for ``minutes`` and score it on PrivateTest."""
    import fercourse as fc

    values = dict(RECIPES[recipe])
    preset = values.pop("preset")
    config = fc.TrainConfig.for_model(model_name, preset, budget_minutes=minutes, **values)
    fc.setup(seed=config.seed)
    model = fc.models.create_model(model_name)
    split = fc.data.make_split(data, seed=config.seed)
    started = time.perf_counter()
    history = fc.fit(model, data, config, split=split, out_dir=out / recipe, resume=False)
    minutes_used = (time.perf_counter() - started) / 60
    test = fc.evaluate(model, data, "PrivateTest", split_obj=split, save_to=out / recipe)
    flip = fc.evaluate(model, data, "PrivateTest", split_obj=split, tta="flip")
    recorded = fc.rundir.RunDir(out / recipe).config()
    plan = recorded["budget"]
    return {
        "recipe": recipe,
        "epochs": len(history),
        "planned_epochs": plan.get("measured_epochs") or plan["epochs"],  # before any shortening
        "steps": plan["steps"],
        "images_per_s": plan["images_per_s"],
        "val_acc": history.best_val_acc,
        "private_acc": test["accuracy"],
        "private_f1": test["macro_f1"],
        "private_acc_flip": flip["accuracy"],
        "minutes": minutes_used,
        "amp": recorded["runtime"]["amp"],  # what "native" became on this machine
        "stopped_early": history.stopped_early,
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| recipe | epochs (planned) | images/s | val acc | PrivateTest acc | macro-F1 "
        "| with flip TTA | minutes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['recipe']} | {r['epochs']} ({r['planned_epochs']}) | {r['images_per_s']:.0f} | "
            f"{100 * r['val_acc']:.1f}% | **{100 * r['private_acc']:.1f}%** | "
            f"{r['private_f1']:.3f} | {100 * r['private_acc_flip']:.1f}% | {r['minutes']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """``python -m fercourse bench budget [--minutes M] [--model NAME] [--data PATH]``."""
    parser = argparse.ArgumentParser(
        prog="python -m fercourse bench budget",
        description="fercourse's budgeted recipe vs the original project's, in the same budget.",
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="budget per recipe")
    parser.add_argument("--model", default="baseline_cnn")
    parser.add_argument("--data", help="FER2013 file or folder (default: fc.utils.data_dir())")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", help="where the two runs go (default: outputs/bench-budget)")
    parser.add_argument(
        "--recipes", default="fercourse,original", help="which recipes, in this order"
    )
    args = parser.parse_args(argv)

    import fercourse as fc

    if args.model not in fc.models.list_models():
        parser.error(f"unknown model {args.model!r}; choose from {fc.models.list_models()}")
    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    unknown = [r for r in recipes if r not in RECIPES]
    if unknown:
        parser.error(f"unknown recipe(s) {unknown}; choose from {list(RECIPES)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    data = fc.data.load_fer2013(args.data)
    out = Path(args.out) if args.out else fc.utils.outputs_dir() / "bench-budget" / args.model
    print(f"data: {data!r}")
    print(
        f"{args.model}, {args.minutes:g} minutes per recipe, torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads, {fc.runtime.hardware_name()}",
        flush=True,
    )
    rows = [run_recipe(r, args.model, data, args.minutes, out) for r in recipes]
    print()
    print(format_table(rows))
    if data.synthetic:
        print("note: synthetic stand-in faces, not FER2013")
    return 0
