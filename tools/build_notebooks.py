"""Build the course notebooks 01-08 from this one file, so their sources are reproducible.

    python tools/build_notebooks.py            # (re)write notebooks/01_data.ipynb ... 08_compare.ipynb
    python tools/build_notebooks.py --check    # exit 1 if a notebook differs from what this writes

The .ipynb files are what ships and what students open; this script is how they are edited.
Notebooks are written clean (no outputs, no execution counts), except the cells tagged
``nbval-check-output``: their stored outputs (and the ``In [n]`` nbval needs to compare them) are
kept when the cell's source did not change (``tools/refresh_checked_outputs.py`` regenerates
them by running the notebooks).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = ROOT / "notebooks"

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
CHECK_TAGS = ["nbval-check-output", "keep_output"]
"""A checked cell: nbval compares its output; nbstripout keeps it (``keep_output``)."""


# ---------------------------------------------------------------------------------------------
# Cell helpers
# ---------------------------------------------------------------------------------------------


def md(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(text.strip("\n"))


def code(src: str, *, tags: list[str] | None = None) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(src.strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def checked(src: str) -> nbformat.NotebookNode:
    """A cell whose output nbval compares (structural facts only, never noisy floats)."""
    return code(src, tags=CHECK_TAGS)


def parameters(src: str) -> nbformat.NotebookNode:
    return code(src, tags=["parameters"])


SETUP = code(
    """
import fercourse as fc

fc.setup(seed=seed)
"""
)

SETUP_MD = md(
    """
## Set-up

One import, one alias: everything that comes from the course's package is written `fc.something`,
so you always see what is library and what is lesson. `fc.setup` seeds Python, NumPy and PyTorch,
asks for deterministic kernels and sets the plotting style; it returns what it did.
"""
)

PARAMS_HELP = """
> **Parameters.** The next cell holds this notebook's settings, as plain literals. Change them here
> when you work interactively; a headless run (`python -m fercourse run papermill_runs/smoke.yaml`)
> injects its own values after it (`papermill --help-notebook notebooks/{nb}.ipynb` lists them).
> `preset="auto"` trains for real when FER2013 is in `data/` (and this is not a CI machine), and
> otherwise runs the quick CPU *smoke* preset on the synthetic faces.
"""

COMMON_PARAMS = """
preset: str = "auto"  # "auto" (full on FER2013 outside CI, else smoke), "smoke" or "full"
seed: int = 0  # the global seed: split, subsets, initial weights, batch order
run_name: str = "default"  # results go to outputs/<run_name>/
data_path: str = ""  # empty: look in data/ (FER2013 if present, else the synthetic faces)
"""


def model_params(model: str, lr: str, warmup: str, patience: str) -> str:
    return (
        COMMON_PARAMS.replace("outputs/<run_name>/", f"outputs/<run_name>/{model}/").strip("\n")
        + f"""
epochs: int = 0  # 0: the preset's value (full: up to 50, smoke: a few)
batch_size: int = 0  # 0: the preset's value (full: 64)
lr: float = 0.0  # 0: this model's rate for the preset (full: {lr})
warmup_epochs: int = 0  # 0: this model's warm-up for the preset (full: {warmup})
patience: int = 0  # 0: the preset's early-stopping patience (full: {patience})
optimizer: str = ""  # empty: the default ("adamw"); or "sgd"
device: str = "auto"  # "auto": CUDA when available, else CPU; or "cpu", "cuda"
resume: bool = True  # continue the run saved in the run folder; False starts afresh
"""
    )


def next_link(nb: str | None, what: str) -> str:
    if nb is None:
        return what
    return f"**Next:** [{nb}]({nb}.ipynb): {what}"


# ---------------------------------------------------------------------------------------------
# 01: the data
# ---------------------------------------------------------------------------------------------


def notebook_01() -> list:
    return [
        md(
            """
# 01 · The data: FER2013

FER2013 is the dataset this course learns from: 35,887 grayscale faces of 48x48 pixels, each
labelled with one of seven emotions. It was collected for a 2013 Kaggle challenge by searching the
web for emotion words, so the faces vary in pose, lighting, age and quality, and a fair share of
the labels are debatable: humans agree with them only about 65% of the time.

**What you will learn**

- how FER2013 is distributed (four file layouts) and how `fc.data.load_fer2013` finds any of them;
- why the *order* of the seven labels matters, and where the course keeps it;
- how unbalanced the classes are (16 times more happy than disgusted faces);
- what the data's quality problems are: duplicates, blank images, unreadable rows;
- how the validation split is made, and why it is saved once and reused by every model;
- what training-time augmentation does to a face.
"""
        ),
        md(PARAMS_HELP.format(nb="01_data")),
        parameters(COMMON_PARAMS),
        SETUP_MD,
        SETUP,
        md(
            """
## Loading FER2013

FER2013 circulates in several layouts, and each has tripped someone up:

| layout | files | note |
|---|---|---|
| the original | `fer2013.csv` with `emotion,pixels,Usage` | Usage is Training / PublicTest / PrivateTest |
| ICML workshop | `icml_face_data.csv` | same rows, column names with leading spaces |
| competition | `train.csv` (`emotion,pixels`) and `test.csv` | `test.csv` has **no labels** |
| Kaggle images | `train/<emotion>/*.jpg`, `test/<emotion>/*.jpg` | alphabetical folders are **not** the code order |

`fc.data.load_fer2013()` looks in `data/` (or the path you give it), recognises the layout,
and returns one `FER2013` object: `images` (N, 48, 48) uint8, `labels` in FER2013's code order and
`usage`. When no FER2013 is there, it returns the **synthetic faces**: procedural 48x48 cartoon
faces with FER2013's class and usage proportions, written in the real `fer2013.csv` format and
read back through the same code. They let every notebook run anywhere, but they are much easier
than real faces: numbers computed on them say nothing about FER2013, and every output says so.
"""
        ),
        code(
            """
data = fc.data.load_fer2013(data_path or None)
data
"""
        ),
        md(
            """
What was found, said plainly (the format, the file, and whether these are real faces):
"""
        ),
        code(
            """
print(f"format: {data.format}\\nsource: {data.source}\\nsynthetic: {data.synthetic}")
"""
        ),
        md(
            """
The shapes and sizes below are checked by the course's tests (`pytest --nbval-lax notebooks/`):
if a change to the package alters them, the test fails. Every image is a 48x48 `uint8` array,
one label per image, and the three usages of the original release.
"""
        ),
        checked(
            """
print("images:", data.images.shape, data.images.dtype)
print("labels:", data.labels.shape, data.labels.dtype)
print("usage:", data.usage_counts())
"""
        ),
        md(
            """
## The labels and their order

FER2013 stores a label as a code from 0 to 6. The order is fixed by the dataset, not by the
alphabet, and mixing the two is the most common silent bug in FER projects (a model that seems
to confuse "sad" with "happy" may just be reading the wrong list). The course keeps the order in
one place, `fc.EMOTIONS`, with an emoji per emotion in `fc.EMOJI`; every other module imports it.
"""
        ),
        checked(
            """
[(code, name, fc.EMOJI[name]) for code, name in enumerate(fc.EMOTIONS)]
"""
        ),
        md(
            """
## Class balance

Real FER2013 has 8,989 happy faces and 547 disgusted ones. A model that never predicts
"disgust" loses little accuracy, which is why this course reports **macro-F1** (the mean of the
per-class F1 scores, where every class counts the same) next to accuracy, and trains with a
class-weighted loss. The counts per class and usage:
"""
        ),
        code(
            """
data.class_counts(by_usage=True)
"""
        ),
        code(
            """
report = fc.data.data_report(data)
report.plot_class_balance();
"""
        ),
        md(
            """
## What the faces look like

A few faces per emotion, in code order. Look for what makes the task hard: faces turned away,
hands in front of the mouth, watermarks, and labels you would have chosen differently.
"""
        ),
        code(
            """
fc.runs.plot_samples(data, per_class=6)
"""
        ),
        md(
            """
## Data quality

FER2013 was scraped from the web, so it has problems a model should not learn from: exact
duplicates (some appear in both the training and the test part, which inflates test scores),
blank or near-constant images, and rows that cannot be read. `fc.data.data_report` counts them;
what the loader left out on purpose is in `data.dropped`. The report computed above says
what it found:
"""
        ),
        code(
            """
report
"""
        ),
        md(
            """
## The validation split

Training decisions (which epoch to keep, when to stop, the learning-rate schedule) need data the
model does not train on, but the test sets must stay untouched until the very end. So
`fc.data.make_split` carves a stratified **validation** set out of Training (10%, every class in
the same proportion), and keeps PublicTest and PrivateTest as they are. The split is written to a
file once and reused, so all six models are compared on exactly the same faces; its hash (of the
indices, seed and data, not of where the files lie, so a classmate with the same data and seed gets
the same hash) is stored with every checkpoint. This course reports **PrivateTest**, the set the original competition
ranked on.
"""
        ),
        code(
            """
split = fc.data.make_split(data, seed=seed)
split.hash
"""
        ),
        checked(
            """
split.sizes()
"""
        ),
        md(
            """
## From faces to tensors

Models never see the uint8 images directly. `fc.data.make_loaders` wraps each part of the split
in a PyTorch `DataLoader`; every batch goes through `fc.preprocessing.to_tensor`, the one function
training, evaluation and the webcam mirror all share: float, one channel, normalised.
"""
        ),
        code(
            """
loaders = fc.data.make_loaders(data, split, batch_size=64)
x, y = next(iter(loaders.train))
"""
        ),
        checked(
            """
print("x:", tuple(x.shape), x.dtype)
print("y:", tuple(y.shape), y.dtype)
"""
        ),
        md(
            """
## Augmentation

With ~26,000 training faces a CNN memorises quickly. Augmentation shows it a slightly different
face every epoch: flipped left-right (an expression is symmetric enough), shifted, rotated and
scaled a little, brighter or darker, sometimes with a patch erased. The validation and test faces
are never augmented. Each row below is one face and five random augmentations of it:
"""
        ),
        code(
            """
fc.data.preview_augmentations(data, n=6);
"""
        ),
        md(
            """
## Which preset this run uses

Every notebook from 02 on trains a model, with one of two presets: `full` (the real recipe,
up to 50 epochs on all the data; a GPU is advisable) or `smoke` (a few epochs on a subset of a
thousand faces or so, about a minute on a laptop CPU: enough to see every step work). `preset="auto"` picks:
"""
        ),
        code(
            """
fc.runs.resolve_preset(preset, data)
"""
        ),
        md(
            """
## Exercises

Each exercise has a cell with `answer = ...`: replace the `...` with code that computes the
answer, run it, and run the self-check under it.

**1.** What fraction of the *Training* faces show the most frequent emotion? (That is the accuracy
of a "model" that always answers the same thing: the number every model must beat.)
"""
        ),
        code(
            """
answer = ...  # e.g. start from data.where("Training").class_counts()
"""
        ),
        code(
            """
train_counts = data.where("Training").class_counts()
majority_rate = train_counts.max() / train_counts.sum()
fc.runs.check_answer(answer, majority_rate, name="majority rate", tol=1e-3)
"""
        ),
        md(
            """
**2.** Which emotion has the FER2013 code 4? Answer with its name, as a string.
"""
        ),
        code(
            """
answer = ...
"""
        ),
        code(
            """
fc.runs.check_answer(answer, fc.EMOTIONS[4], name="code 4", hint="Look at fc.EMOTIONS.")
"""
        ),
        md(
            """
**3.** How many *validation* faces are there per emotion? Are the proportions the same as in
Training? (Hint: `data.select(split.val)` is a `FER2013` too.) Answer with the number of
validation faces of the rarest class.
"""
        ),
        code(
            """
answer = ...
"""
        ),
        code(
            """
rarest = int(data.select(split.val).class_counts().min())
fc.runs.check_answer(answer, rarest, name="rarest val class")
"""
        ),
        md(
            """
## Summary

- `fc.data.load_fer2013()` reads any FER2013 layout, or the synthetic faces (and says which).
- Labels are codes in FER2013's order, kept once in `fc.EMOTIONS`.
- The classes are very unbalanced: report macro-F1 next to accuracy.
- The validation split is carved from Training, saved once and shared by every model; the
  results are reported on PrivateTest.
- Batches go through one preprocessing function, shared with the webcam mirror.

"""
            + next_link("02_baseline", "a first CNN, trained end to end.")
        ),
    ]


# ---------------------------------------------------------------------------------------------
# 02-07: one template for the six model notebooks
# ---------------------------------------------------------------------------------------------


def model_notebook(spec: dict) -> list:
    nb, model = spec["nb"], spec["model"]
    create = spec.get("create", f'model = fc.create_model("{model}")\nmodel')
    cells = [
        md(spec["intro"]),
        md(PARAMS_HELP.format(nb=nb)),
        parameters(model_params(model, *spec["defaults"]) + spec.get("extra_params", "")),
        SETUP_MD,
        SETUP,
        md(
            """
## Data, split and configuration

The same data and the same validation split as in [01_data](01_data.ipynb): `make_split` reads
the split file 01 wrote (or writes it, if you start here), so every model sees the same faces.
"""
        ),
        code(
            """
data = fc.data.load_fer2013(data_path or None)
split = fc.data.make_split(data, seed=seed)
data
"""
        ),
        code(
            f"""
run_preset = fc.runs.resolve_preset(preset, data)
out_dir = fc.utils.outputs_dir() / run_name / "{model}"
out_dir
"""
        ),
        md(
            f"""
`fc.TrainConfig.for_model("{model}", preset)` is the training recipe for this model, shrunk by
the preset; the parameters above override single values (`fc.runs.config_overrides` keeps only
those you set). It is plain data, saved as `config.json` next to the weights.
"""
        ),
        checked(
            f"""
config = fc.TrainConfig.for_model(
    "{model}",
    preset=run_preset,
    seed=seed,
    **fc.runs.config_overrides(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        warmup_epochs=warmup_epochs,
        patience=patience,
        optimizer=optimizer,
        device=device,
    ),
)
config.to_dict()
"""
        ),
        md("## The architecture\n\n" + spec["idea"].strip("\n")),
        code(create),
        md(
            """
How big is it? The parameter count says how much the model can memorise (and how large its
checkpoint is); the FLOPs, the floating-point operations of one forward pass on one face, say
how much work each prediction costs, which decides the webcam mirror's speed on a CPU.
"""
        ),
        checked(
            """
fc.models.describe_model(model)
"""
        ),
        *spec.get("after_describe", []),
        md(
            """
## Training

`fc.fit` trains on the training part of the split and, after every epoch, measures the
validation accuracy. The epoch with the best validation accuracy is the one kept (`best.*`):
this is **model selection on val**, and the test sets play no part in it. Early stopping ends
training when validation accuracy has not improved for `patience` epochs. Everything needed to
continue is saved after every epoch (and every few hundred steps), so an interrupted run
continues where it stopped when you run the cell again (`resume=True`). A progress bar shows
the loss as it trains (one line per epoch in a headless run).
"""
        ),
        code(
            """
history = fc.fit(model, data, config, split=split, out_dir=out_dir, resume=resume)
history.best
"""
        ),
        md(
            """
The learning curves: loss and accuracy on the training and the validation faces, per epoch.
Training accuracy above validation accuracy and rising while validation stalls is overfitting;
both low and flat means the model (or its learning rate) is not up to the task. With the smoke
preset the curves are short: a few epochs on a small subset.
"""
        ),
        code(
            """
fc.explain.plot_history(history)
"""
        ),
        md(
            """
## Test metrics

After training the model holds the weights of its best validation epoch. Now, once, it is
scored on **PrivateTest**. `fc.evaluate` returns accuracy, macro-F1, per-class scores, the
confusion matrix and the calibration error, and saves them in `metrics.json` in the run folder,
which [08_compare](08_compare.ipynb) reads. `majority_baseline` is what always answering the most
frequent class would score.
"""
        ),
        code(
            """
metrics = fc.evaluate(model, data, split="PrivateTest", split_obj=split, save_to=out_dir)
print(
    f"PrivateTest: accuracy {metrics['accuracy']:.1%}, macro-F1 {metrics['macro_f1']:.3f} "
    f"on {metrics['n']} faces (majority class: {metrics['majority_baseline']:.1%})"
)
"""
        ),
        md(
            """
These checks are part of the course's regression tests: they hold for any sensible run, so a
change that breaks training or evaluation fails them (nbval runs every cell). They check ranges
and consistency, never exact scores. A `full` run must beat always answering the majority class;
so must a smoke run on the synthetic faces for the models that learn fast enough to (measured:
the baseline, the attention CNN and the specialists; the transformers need more than a few
epochs).
"""
        ),
        code(spec["asserts"]),
        md(
            """
The confusion matrix: rows are the true emotion, columns the prediction, each row normalised
to 1. The diagonal is what the model gets right; large off-diagonal cells are the confusions
(on real FER2013: fear with sad and surprise, disgust with angry).
"""
        ),
        code(
            """
fc.explain.plot_confusion(metrics)
"""
        ),
        code(
            """
fc.explain.plot_per_class(metrics)
"""
        ),
        md(
            """
## Where does the model look? Grad-CAM

Grad-CAM (Selvaraju et al., ICCV 2017) asks which pixels raised the score of the predicted
class: it weights each channel of one late feature map by how much the class score depends on it,
sums them, and keeps the positive part. Red regions pushed the model towards its answer. A model
that reads expressions should look at the eyes, brows and mouth, not at the hair or the
background. Left of each pair: the test face and its true label; right: the map and the prediction.
"""
        ),
        code(
            """
test = data.select(split.private_test)
fc.explain.plot_gradcam(model, test.images[:8], test.labels[:8]);
"""
        ),
        *spec.get("view", []),
        md(
            f"""
## What was saved

The run folder `outputs/<run_name>/{model}/` holds the checkpoint (`best.safetensors` and its
card `best.json`: the weights, the architecture's arguments, the class order, the preprocessing
and the split's hash), the state to resume from, the history and `metrics.json`. No pickles:
`fc.training.load_run(out_dir)` rebuilds the model from the card and loads the weights.
"""
        ),
        checked(
            """
sorted(path.name for path in out_dir.iterdir())
"""
        ),
        md(
            """
## Exercises

Replace each `...`, run the cell, then run the self-check under it.
"""
        ),
        *spec["exercises"],
        md("## Summary\n\n" + spec["summary"].strip("\n") + "\n\n" + spec["next"]),
    ]
    return cells


def model_asserts(model: str, smoke_learns: str = "") -> str:
    """The assert cell; ``smoke_learns``: the smoke accuracy measured on the synthetic faces,
    for the models that clearly beat the majority class even in a smoke run."""
    if smoke_learns:
        floor = (
            f'learns = run_preset == "full" or data.synthetic  # smoke, synthetic: ~{smoke_learns}\n'
            "if learns:  # it must beat always answering the majority class"
        )
    else:
        floor = (
            'if run_preset == "full":  # a real run must beat always answering the majority class'
        )
    return f"""
assert metrics["model"] == "{model}" and metrics["split"] == "PrivateTest"
assert metrics["n"] == len(split.private_test) == sum(map(sum, metrics["confusion"]))
assert 0.0 <= metrics["macro_f1"] <= 1.0 and 0.0 <= metrics["accuracy"] <= 1.0
assert 1 <= history.best_epoch <= len(history) <= config.epochs
# Chance level for 7 classes is a loss of ln(7) = 1.95; a diverged run is far above it.
assert history.last["train_loss"] < 4.0, history.last
{floor}
    assert metrics["accuracy"] > metrics["majority_baseline"], metrics["accuracy"]
"""


def notebook_02() -> list:
    return model_notebook(
        {
            "nb": "02_baseline",
            "model": "baseline_cnn",
            "defaults": ("1e-3", "none", "10"),
            "intro": """
# 02 · A baseline CNN, end to end

This notebook trains the simplest model of the course, a small convolutional network, through
every step the later notebooks repeat: the configuration, the architecture, training, the
learning curves, the test metrics, the confusion matrix and Grad-CAM. Every later model is
measured against this one.

**What you will learn**

- how a VGG-style CNN turns a 48x48 face into seven scores;
- how to count a model's parameters and FLOPs, and why both matter;
- what `fc.fit` does: class-weighted loss, model selection on validation, early stopping,
  checkpoints you can resume from;
- how to read learning curves, a confusion matrix and per-class scores;
- what Grad-CAM shows, and what a run leaves on disk.
""",
            "idea": """
A convolution slides a small filter (3x3 here) over the image and responds where the pattern
it has learned appears: an edge, then (in deeper layers, which see larger regions) a corner of
the mouth, a raised brow. VGG (Simonyan & Zisserman, "Very Deep Convolutional Networks for
Large-Scale Image Recognition", ICLR 2015) showed that stacks of small 3x3 convolutions with
pooling in between work well; this is a three-block version sized for 48x48 faces:

```
face 1x48x48
 -> block 1: [conv3x3 -> BN -> ReLU] x2, max-pool, dropout ->  32 x 24 x 24
 -> block 2: [conv3x3 -> BN -> ReLU] x2, max-pool, dropout ->  64 x 12 x 12
 -> block 3: [conv3x3 -> BN -> ReLU] x2, max-pool, dropout -> 128 x  6 x  6
 -> average-pool to 2x2 (keeps "upper" vs "lower" face) -> MLP -> 7 logits
```

Batch normalisation (BN) keeps each layer's inputs in a steady range so training is fast and
stable; dropout switches random units off during training so the network cannot rely on any
single one. The printout below is PyTorch's own description of the model.
""",
            "asserts": model_asserts("baseline_cnn", smoke_learns="39% vs 25%"),
            "exercises": [
                md(
                    """
**1.** How many parameters does the first convolution have? (32 filters of 3x3 over one input
channel, plus one bias each, if it has one: look at `model` above.) Compute it from the layer's
weight with `.numel()` or by hand.
"""
                ),
                code("answer = ...  # e.g. a sum of p.numel() over a layer's parameters"),
                code(
                    """
first_conv = next(m for m in model.modules() if m.__class__.__name__ == "Conv2d")
fc.runs.check_answer(answer, sum(p.numel() for p in first_conv.parameters()), name="first conv")
"""
                ),
                md(
                    """
**2.** At which epoch was the checkpoint chosen? (It is in `history`, and in the card
`best.json`.)
"""
                ),
                code("answer = ..."),
                code(
                    """
fc.runs.check_answer(answer, history.best_epoch, name="best epoch")
"""
                ),
                md(
                    """
**3.** Which emotion has the lowest recall on PrivateTest? Answer with its name
(`metrics["per_class"]` maps each emotion to its precision, recall and F1). Then think about why:
is it a rare class?
"""
                ),
                code("answer = ..."),
                code(
                    """
recalls = {name: scores["recall"] for name, scores in metrics["per_class"].items()}
fc.runs.check_answer(answer, min(recalls, key=recalls.get), name="lowest recall")
"""
                ),
                md(
                    """
**4. (open)** Re-run this notebook with `width` doubled: `fc.create_model("baseline_cnn",
width=64)` and a new `run_name`. How do the parameter count, the FLOPs and the accuracy change?
"""
                ),
            ],
            "summary": """
- A VGG-style CNN: 3x3 convolutions, BN, pooling, dropout, a small head; ~0.4M parameters.
- `fc.fit` keeps the epoch with the best **validation** accuracy; PrivateTest is scored once,
  afterwards, with `fc.evaluate`, which also writes `metrics.json`.
- Macro-F1, per-class recall and the confusion matrix show what accuracy hides.
- Grad-CAM shows which face regions drove a prediction.
- A run folder holds safe checkpoints (safetensors + a JSON card) and can be resumed.
""",
            "next": next_link("03_attention", "teaching the CNN where to look, with attention."),
        }
    )


def notebook_03() -> list:
    return model_notebook(
        {
            "nb": "03_attention",
            "model": "attention_cnn",
            "defaults": ("1e-3", "none", "10"),
            "intro": """
# 03 · Attention: CBAM

The baseline treats every feature and every position of the face the same. An expression is
decided by a few regions (brows, eyes, mouth corners) and a few features; attention lets the
network weight them per face.

**What you will learn**

- what channel attention ("which features") and spatial attention ("where") compute;
- how CBAM inserts both after each convolution block;
- how to look at the spatial attention maps, and how they differ from Grad-CAM;
- what attention costs in parameters, FLOPs and latency compared with the baseline.
""",
            "idea": """
CBAM, the Convolutional Block Attention Module (Woo, Park, Lee & Kweon, "CBAM: Convolutional
Block Attention Module", ECCV 2018), refines a feature map in two steps:

1. **Channel attention** squeezes each channel to two numbers (its average and its maximum over
   the map), passes them through a small shared MLP and a sigmoid: one weight in [0, 1] per
   channel, "how much does this feature matter for this face" (the idea of
   Squeeze-and-Excitation, Hu et al., CVPR 2018).
2. **Spatial attention** squeezes the channels instead (average and maximum at every position),
   runs a 7x7 convolution and a sigmoid: one weight per *position*, "where to look".

```
block output (C x H x W)
  -> x * channel_weights(x)      (C x 1 x 1)
  -> x * spatial_weights(x)      (1 x H x W)   <- the map we can draw on the face
  -> next block
```

This model has four such blocks (48 -> 24 -> 12 -> 6), then global average pooling and a
linear layer. The attention is cheap: a few thousand parameters per block.
""",
            "asserts": model_asserts("attention_cnn", smoke_learns="37% vs 25%"),
            "view": [
                md(
                    """
## The attention maps

Grad-CAM is computed after the fact, from gradients; the spatial attention maps are part of the
forward pass: the network multiplies its features by them. Each row is a test face and the
spatial attention of each CBAM block laid over it (each map scaled to its own range). Early
blocks tend to follow edges; the last ones should concentrate on the regions that decide the
expression. After a smoke run the maps are still close to uniform: there was little training.
"""
                ),
                code(
                    """
fc.explain.plot_attention_maps(model, test.images[:6]);
"""
                ),
            ],
            "exercises": [
                md(
                    """
**1.** How many parameters more than the baseline does this model have? Build the baseline
with `fc.create_model("baseline_cnn")` and compare `fc.models.count_parameters` of both.
"""
                ),
                code("answer = ..."),
                code(
                    """
baseline = fc.create_model("baseline_cnn")
fc.runs.check_answer(
    answer,
    fc.models.count_parameters(model) - fc.models.count_parameters(baseline),
    name="extra parameters",
)
"""
                ),
                md(
                    """
**2.** `model.spatial_attention_maps(x)` returns one map per block. How many blocks have one?
(`x` must be a batch of normalised faces: `fc.preprocessing.to_tensor(test.images[:2])`.)
"""
                ),
                code("answer = ..."),
                code(
                    """
maps = model.spatial_attention_maps(fc.preprocessing.to_tensor(test.images[:2]))
fc.runs.check_answer(answer, len(maps), name="blocks with spatial attention")
"""
                ),
                md(
                    """
**3. (open)** Compare the Grad-CAM maps of this model with those of the baseline in 02 on the
same faces. Do they agree on where the expression is? Why might a map the network *uses*
(attention) differ from a map that *explains* a score (Grad-CAM)?
"""
                ),
            ],
            "summary": """
- Channel attention re-weights features, spatial attention re-weights positions; CBAM does both
  after every block, at a small cost in parameters.
- The spatial maps are part of the computation and can be drawn on the face; Grad-CAM is an
  explanation computed afterwards.
- Everything else (training, metrics, saving) is the same call as in 02.
""",
            "next": next_link("04_multiscale", "seeing the face at several resolutions at once."),
        }
    )


def notebook_04() -> list:
    return model_notebook(
        {
            "nb": "04_multiscale",
            "model": "multiscale",
            "defaults": ("1e-3", "none", "10"),
            "intro": """
# 04 · Multi-scale fusion

An expression has a coarse shape (the overall curve of the mouth, raised brows) and fine detail
(wrinkles at the eyes, a slightly lifted lip). A small image shows the first cheaply, a large one
shows the second. This model reads the face at three sizes at once and lets attention decide,
per face, how much each scale counts.

**What you will learn**

- why features at several scales help, and two ways to get them (Inception-style kernels, or
  multi-scale inputs);
- how the branches are fused with channel attention;
- how to read the per-face scale weights;
- what the extra branches cost.
""",
            "idea": """
Inception (Szegedy et al., "Going Deeper with Convolutions", CVPR 2015) mixes kernel sizes inside
one block; multi-scale input networks (e.g. Farabet et al., TPAMI 2013) instead feed the whole
image at several resolutions to parallel branches. This model does the latter:

```
face 48x48 -> resize to 24 px -> CNN branch -\\
face 48x48 -> (48 px)         -> CNN branch --> each pooled to 6x6 -> concat
face 48x48 -> resize to 96 px -> CNN branch -/
  -> channel attention (squeeze-and-excitation: one weight per channel, per face)
  -> 1x1 conv fuses the scales -> pool -> linear -> 7 logits
```

The resizing happens inside the network (area averaging to shrink, bilinear to enlarge), so the
model still takes the same 48x48 input as every other model. The channel attention over the
concatenated branches (Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018) is where the
scales compete: averaging its weights over each branch's channels tells how much that scale was
let through for a given face.
""",
            "asserts": model_asserts("multiscale"),
            "view": [
                md(
                    """
## How much each scale counts

`model.scale_attention(x)` averages the fusion's channel-attention weights over each branch:
one number per scale and per face. Rows are test faces, columns the scales; a larger number
means that scale's features were let through more for that face.
"""
                ),
                code(
                    """
import pandas as pd

weights = model.scale_attention(fc.preprocessing.to_tensor(test.images[:8]))
pd.DataFrame(
    weights.numpy(),
    columns=[f"{size} px" for size in model.scales],
    index=[fc.EMOTIONS[code] for code in test.labels[:8]],
).round(3)
"""
                ),
            ],
            "exercises": [
                md(
                    """
**1.** Which input sizes does this model read? Answer with the tuple of scales in pixels
(`model.scales`).
"""
                ),
                code("answer = ..."),
                code(
                    """
fc.runs.check_answer(tuple(answer) if answer is not ... else answer, model.scales, name="scales")
"""
                ),
                md(
                    """
**2.** Which scale gets the largest mean weight over the 8 faces above? Answer with its size
in pixels.
"""
                ),
                code("answer = ..."),
                code(
                    """
fc.runs.check_answer(answer, model.scales[int(weights.mean(dim=0).argmax())], name="top scale")
"""
                ),
                md(
                    """
**3. (open)** Build a two-scale model, `fc.create_model("multiscale", scales=(48, 96))`, and
compare its parameters and FLOPs with `fc.models.describe_model`. Which branch is the most
expensive, and why?
"""
                ),
            ],
            "summary": """
- Reading the face at 24, 48 and 96 px gives coarse and fine features in parallel branches.
- Channel attention over the concatenated branches decides, per face, how much each scale counts;
  `scale_attention` shows it.
- The 96 px branch costs the most FLOPs: four times the pixels of 48 px.
""",
            "next": next_link("05_hybrid", "a Transformer on top of a CNN."),
        }
    )


def notebook_05() -> list:
    return model_notebook(
        {
            "nb": "05_hybrid",
            "model": "hybrid_transformer",
            "defaults": ("1e-4", "5 epochs", "20"),
            "intro": """
# 05 · A CNN-Transformer hybrid

Convolutions see a neighbourhood at a time; relating the brows to the mouth takes many layers.
Self-attention relates every position to every other in one step. This model lets a CNN do what
it is good at (local texture) and a Transformer encoder do the rest.

**What you will learn**

- what self-attention computes, in words and shapes;
- how a CNN feature map becomes a sequence of tokens with a class token and position embeddings;
- why Transformers need a smaller learning rate and a warm-up;
- where the parameters of a Transformer are.
""",
            "idea": """
**Self-attention** (Vaswani et al., "Attention Is All You Need", NeurIPS 2017): every token
emits a *query*, a *key* and a *value*; a token's output is the average of all values, weighted
by how well its query matches each key. Several heads do this in parallel, each free to look for
a different relation, and an MLP follows. That is one encoder layer.

The hybrid (Dosovitskiy et al., "An Image is Worth 16x16 Words", ICLR 2021, section 3.1;
BoTNet, Srinivas et al., CVPR 2021) feeds the encoder with a CNN's feature map instead of raw
pixel patches:

```
face 1x48x48 -> 3 conv blocks -> C x 6 x 6 feature map
  -> 1x1 conv: each of the 36 positions becomes a token (embed dim)
  -> [CLS] token + 36 tokens, + learned position embeddings
  -> Transformer encoder (pre-norm layers: self-attention + MLP)
  -> the [CLS] token's output -> linear -> 7 logits
```

Transformers train less gently than CNNs: at the start the attention weights are nearly random
and a large step can push them into a state they do not recover from. So this model trains at
1e-4 (the CNNs use 1e-3) with a linear **warm-up** over the first epochs, and with more patience:
it improves more slowly.
""",
            "asserts": model_asserts("hybrid_transformer"),
            "view": [
                md(
                    """
## The token grid

Grad-CAM above worked on this model too: the tokens were turned back into a 6x6 map using the
model's own grid (`model.gradcam_reshape_transform()`), never a hard-coded size. The grid and the
number of prefix tokens are properties of the model:
"""
                ),
                checked(
                    """
print("tokens per face:", model.grid_size, "grid +", model.num_prefix_tokens, "class token")
"""
                ),
            ],
            "exercises": [
                md(
                    """
**1.** How many tokens does the encoder read per face (the grid's positions plus the class
token)?
"""
                ),
                code("answer = ..."),
                code(
                    """
fc.runs.check_answer(
    answer, model.grid_size[0] * model.grid_size[1] + model.num_prefix_tokens, name="tokens"
)
"""
                ),
                md(
                    """
**2.** What fraction of the parameters is in the Transformer encoder? (Sum `p.numel()` over
`model.encoder.parameters()` and divide by `fc.models.count_parameters(model)`.) Answer with a
number between 0 and 1.
"""
                ),
                code("answer = ..."),
                code(
                    """
in_encoder = sum(p.numel() for p in model.encoder.parameters())
share = in_encoder / fc.models.count_parameters(model)
fc.runs.check_answer(answer, share, name="encoder share", tol=0.01)
"""
                ),
                md(
                    """
**3. (open)** Train with `warmup_epochs=0` and `lr=1e-3` (a new `run_name`). What happens to
the validation curve in the first epochs?
"""
                ),
            ],
            "summary": """
- Self-attention relates every position to every other in one layer.
- The hybrid turns a CNN's 6x6 map into 36 tokens plus a class token; the encoder holds most of
  the parameters.
- Transformers want a smaller learning rate, a warm-up and more patience (`TrainConfig.for_model`
  sets them).
""",
            "next": next_link("06_ensemble", "experts for the eyes, the mouth and the whole face."),
        }
    )


def notebook_06() -> list:
    return model_notebook(
        {
            "nb": "06_ensemble",
            "model": "specialists",
            "defaults": ("1e-3", "none", "10"),
            "intro": """
# 06 · Specialists: a mixture of experts

Psychologists describe expressions as movements of the upper face (brows, eyelids) and the lower
face (lips, jaw). This model gives each region its own small network, an *expert*, and a *gate*
that decides per face how much to trust each expert. It is an ensemble inside one model.

**What you will learn**

- what a mixture of experts is: experts, a gate, a weighted sum;
- how region experts follow the Facial Action Coding System's split of the face;
- how to read the gate's expert weights for individual faces;
- how this differs from the ensemble of separate models in 08.
""",
            "idea": """
A **mixture of experts** (Jacobs, Jordan, Nowlan & Hinton, "Adaptive Mixtures of Local Experts",
Neural Computation 1991) combines several networks with a *gating* network that outputs one
weight per expert (a softmax, so they sum to 1); the prediction is the weighted sum of the
experts' predictions. Here the experts are told where to look. The Facial Action Coding System
(Ekman & Friesen, 1978) describes expressions as action units of the upper face (brows, eyes)
and the lower face (mouth), and region-based FER networks (e.g. Wang et al., "Region Attention
Networks", IEEE TIP 2020) classify regions separately:

```
face 1x48x48 -> upper half (brows, eyes)  -> eye expert   -> embedding, logits
             -> lower half (nose, mouth)  -> mouth expert -> embedding, logits
             -> the whole face            -> face expert  -> embedding, logits
gate(embeddings) -> softmax weights (w_eyes, w_mouth, w_face)   per face
prediction = w_eyes * logits_eyes + w_mouth * logits_mouth + w_face * logits_face
```

Because the gate's weights are per face, they show which region decided each prediction. For
Grad-CAM the three experts' maps are laid back onto one face-shaped canvas.
""",
            "asserts": model_asserts("specialists", smoke_learns="52% vs 25%"),
            "view": [
                md(
                    """
## The experts' weights

For each test face, the gate's weight for each expert (a stacked bar summing to 1). Faces whose
expression is in the mouth (happy, surprise) should lean on the mouth expert after full training;
after a smoke run the gate has barely started to specialise.
"""
                ),
                code(
                    """
fc.explain.plot_expert_weights(model, test.images[:8], test.labels[:8]);
"""
                ),
                checked(
                    """
expert_weights = model.expert_weights(fc.preprocessing.to_tensor(test.images[:4]))
print("experts:", model.experts)
print("weights for 4 faces:", tuple(expert_weights.shape))
"""
                ),
            ],
            "exercises": [
                md(
                    """
**1.** The gate's weights for one face always add up to what number?
"""
                ),
                code("answer = ..."),
                code(
                    """
fc.runs.check_answer(answer, 1.0, name="sum of expert weights", tol=1e-6)
"""
                ),
                md(
                    """
**2.** Over the PrivateTest faces, which expert gets the largest mean weight? Answer with its
name from `model.experts`.
"""
                ),
                code("answer = ..."),
                code(
                    """
mean_weights = model.expert_weights(fc.preprocessing.to_tensor(test.images)).mean(dim=0)
fc.runs.check_answer(answer, model.experts[int(mean_weights.argmax())], name="busiest expert")
"""
                ),
                md(
                    """
**3. (open)** The mixture here is inside one network, trained jointly. In 08 the course averages
the probabilities of separately trained models. Name one advantage of each.
"""
                ),
            ],
            "summary": """
- A mixture of experts: region experts (eyes, mouth, whole face) and a gate that weights them per
  face; the prediction is the weighted sum.
- The expert weights are an explanation for free: which region decided.
- It is an ensemble trained as one model; 08 builds an ensemble of separate models.
""",
            "next": next_link("07_vit", "a Vision Transformer, and what pretraining does."),
        }
    )


VIT_PARAMS = """
pretrained: str = "auto"  # "auto" (ImageNet weights if available), "yes" or "no"
"""


def notebook_07() -> list:
    return model_notebook(
        {
            "nb": "07_vit",
            "model": "vit_tiny",
            "defaults": ("5e-5", "5 epochs", "20"),
            "extra_params": VIT_PARAMS,
            "intro": """
# 07 · A Vision Transformer, and what pretraining does

The Vision Transformer drops convolutions altogether: it cuts the face into patches and treats
them like words in a sentence. With little data that is a handicap (it has to learn what a CNN
assumes, that nearby pixels belong together); with weights pretrained on millions of images it
becomes competitive. This notebook trains ViT-Tiny and shows which case you are in.

**What you will learn**

- how a ViT turns an image into tokens (patches, embedding, class token, positions);
- why the input size and the patch size decide the cost;
- what pretraining is, and how ImageNet weights are adapted to 1-channel 48x48 faces;
- how Grad-CAM is computed on tokens without hard-coding a grid.
""",
            "idea": """
The Vision Transformer (Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for
Image Recognition at Scale", ICLR 2021) splits the image into square patches, embeds each patch
as a token with one linear layer, adds a class token and position embeddings, and runs a
Transformer encoder (12 layers of self-attention and MLP, as in 05). ViT-Tiny (Touvron et al.,
DeiT, ICML 2021) has 192-dimensional tokens and 3 heads, about 5.4M parameters. The model comes
from `timm`:

```
face 1x48x48 -> 6x6 grid of 8x8 patches -> linear embedding: 36 tokens of 192
  -> [CLS] + 36 tokens + position embeddings
  -> 12 x (self-attention + MLP)
  -> [CLS] output -> linear -> 7 logits
```

The naive port upsamples the face to 224 px (196 tokens): several times slower for no new
information, since self-attention's cost grows with the square of the token count. Here the face
stays at 48 px and the patches are 8 px.

**Pretraining.** Weights trained on ImageNet already know edges, textures and object parts. To
use them here, timm folds the first layer's three colour channels into one and resizes the
position embeddings and the patch embedding to the new grid. Fine-tuning then uses a small
learning rate (5e-5, with warm-up) so that what was learned is adjusted, not overwritten.
""",
            "create": """
use_pretrained = fc.runs.resolve_pretrained(pretrained)
model = fc.create_model("vit_tiny", pretrained=use_pretrained)
model
""",
            "asserts": model_asserts("vit_tiny"),
            "after_describe": [
                md(
                    """
The patch grid and the class token, read from the model (Grad-CAM below uses the same numbers
to turn tokens back into a map):
"""
                ),
                checked(
                    """
print("patch grid:", model.grid_size, "+", model.num_prefix_tokens, "class token")
"""
                ),
            ],
            "view": [
                md(
                    """
## What pretraining does

Whether this run started from ImageNet weights was decided above, by `resolve_pretrained`
(with the reason printed there). Published results on FER2013: a pretrained ViT-B/16 reaches about
71%, close to the best CNNs; trained from scratch, ViTs stay well below the CNNs of 02-04 on a
dataset of this size, because they must learn from 28,000 faces what a convolution assumes.
The course team saw it on the real FER2013 (2-core CPU, AdamW, one-cycle schedule): ViT-Tiny from
scratch stayed at the class prior (25% validation accuracy, "happy" for every face) through its
first three epochs at a peak rate of 1e-3 and its first epoch at 3e-4, while the hybrid of `05`,
whose convolutional stem brings those assumptions with it, reached 38% after one epoch and 43%
after two. The summary of this run:
"""
                ),
                code(
                    """
start = "fine-tuned from the ImageNet weights" if use_pretrained else "trained from scratch"
print(f"this run: vit_tiny {start}, PrivateTest accuracy {metrics['accuracy']:.1%}")
print("synthetic faces: not comparable with published FER2013 results" if data.synthetic else "")
"""
                ),
            ],
            "exercises": [
                md(
                    """
**1.** How many patch tokens does the model read for one 48x48 face with 8x8 patches?
"""
                ),
                code("answer = ..."),
                code(
                    """
fc.runs.check_answer(answer, model.grid_size[0] * model.grid_size[1], name="patch tokens")
"""
                ),
                md(
                    """
**2.** How many patch tokens would the naive port read (224 px, 16 px patches)? By what factor
does that multiply the work of one self-attention layer, which grows with the square of the
number of tokens? Answer with the token count.
"""
                ),
                code("answer = ..."),
                code(
                    """
fc.runs.check_answer(answer, (224 // 16) ** 2, name="naive tokens")
"""
                ),
                md(
                    """
**3. (open)** With the ImageNet weights available (see `fc.models.vit_tiny` for how to get them
without internet), train once with `pretrained="yes"` and once with `pretrained="no"` (two
`run_name`s) and compare the validation curves of the first epochs.
"""
                ),
            ],
            "summary": """
- A ViT reads a face as a sequence of patch tokens; at 48 px with 8 px patches that is 36 tokens.
- Token count drives the cost: the naive 224 px port is several times slower for nothing.
- Pretrained weights are adapted to one channel and a new grid; from scratch, a ViT needs far
  more data than FER2013 to match a CNN.
- Grad-CAM works on tokens through the model's own grid.
""",
            "next": next_link(
                "08_compare", "every model side by side, an ensemble, and the anchors."
            ),
        }
    )


# ---------------------------------------------------------------------------------------------
# 08: compare
# ---------------------------------------------------------------------------------------------


def notebook_08() -> list:
    return [
        md(
            """
# 08 · Comparing the models

Six models, one data set, one split. This notebook reads what notebooks 02-07 saved in
`outputs/<run_name>/` (their `metrics.json`, checkpoints and histories; it never re-runs or
re-reads the notebooks), puts them side by side, combines them into an ensemble and measures
them against the published results.

**What you will learn**

- how to compare models fairly: same split, same test set, several metrics, cost as well as
  accuracy;
- where each model is strong or weak, per emotion;
- why averaging several models beats each of them;
- how far these results are from human agreement and from the best published results.
"""
        ),
        md(PARAMS_HELP.format(nb="08_compare")),
        parameters(
            COMMON_PARAMS
            + "latency_repeats: int = 30  # timed single-face forward passes per model (median)\n"
        ),
        SETUP_MD,
        SETUP,
        md(
            """
## The runs

`fc.runs.summarize_runs` collects one row per trained model of this run, from the files the
model notebooks wrote, and, given the models, measures their size in FLOPs and their CPU latency
for one face (batch 1, the webcam mirror's case).
"""
        ),
        code(
            """
run_dir = fc.utils.outputs_dir() / run_name
data = fc.data.load_fer2013(data_path or None)
split = fc.data.make_split(data, seed=seed)
run_preset = fc.runs.resolve_preset(preset, data)
models = fc.runs.load_trained_models(run_dir)
"""
        ),
        checked(
            """
list(models)
"""
        ),
        code(
            """
table = fc.runs.summarize_runs(run_dir, models=models, latency_repeats=latency_repeats)
table
"""
        ),
        md(
            """
Every model was selected on the same validation faces and scored on the same PrivateTest faces,
so the accuracies are comparable. Accuracy and cost rarely go together: the plot shows which
models are worth their FLOPs.
"""
        ),
        code(
            """
fc.runs.plot_comparison(table)
"""
        ),
        md(
            """
## Per emotion

Accuracy averages over very unequal classes. The F1 score per emotion and model shows where
the models differ: the rare and ambiguous emotions (disgust, fear) separate them most.
"""
        ),
        code(
            """
fc.explain.plot_per_class(fc.runs.load_metrics(run_dir), scores=("f1",))
"""
        ),
        md(
            """
## An ensemble of the trained models

Different architectures make different mistakes. Averaging their predicted probabilities
cancels part of those mistakes, which is how the best published FER2013 results were obtained
(Pramerdorfer & Kampel, 2016: 75.2% with an ensemble of CNNs). `fc.evaluation.evaluate_ensemble`
scores the average of all the models above, on the same PrivateTest faces, and saves the result
in `outputs/<run_name>/ensemble/metrics.json`.
"""
        ),
        code(
            """
ensemble = fc.evaluation.evaluate_ensemble(
    list(models.values()), data, split="PrivateTest", split_obj=split, save_to=run_dir / "ensemble"
)
print(f"ensemble: accuracy {ensemble['accuracy']:.1%}, macro-F1 {ensemble['macro_f1']:.3f}")
"""
        ),
        checked(
            """
print("members:", ensemble["members"])
print("test faces:", ensemble["n"], "== PrivateTest:", ensemble["n"] == len(split.private_test))
"""
        ),
        code(
            """
assert ensemble["n"] == len(split.private_test) and set(ensemble["members"]) == set(models)
assert 0.0 <= ensemble["accuracy"] <= 1.0
if run_preset == "full":  # averaging trained models rarely loses much to the best of them
    best_single = table["accuracy"].max()
    assert ensemble["accuracy"] >= best_single - 0.02, (ensemble["accuracy"], best_single)
"""
        ),
        code(
            """
fc.explain.plot_confusion(ensemble)
"""
        ),
        md(
            """
## Against the published anchors

What the numbers on FER2013 mean:

| anchor | accuracy | source |
|---|---|---|
| human agreement with the labels | ~65% | Goodfellow et al., 2013 |
| best reproducible single CNN | 73.28% | Khaireddin & Chen, 2021 (arXiv:2105.03588) |
| ensembles | 75.2% / 76.82% | Pramerdorfer & Kampel, 2016; Residual Masking Network |

Claims well above ~78% usually come from a leak (test faces in training, duplicates across the
split). The table below puts this run's models next to the anchors. **If the run used the
synthetic faces, the comparison is not meaningful**: the synthetic faces are far easier than real
ones, and `fc.runs.anchor_table` says so in its note.
"""
        ),
        code(
            """
fc.runs.anchor_table(table, ensemble)
"""
        ),
        md(
            """
## What the course's models do on the real FER2013

Your run above may have used the synthetic faces, a few epochs, or a laptop. The course team
trained the models on the real FER2013 (the commands are in the README's *Results on FER2013*
section, one per row) and recorded the results in the package: `fc.runs.reference_results()`.
Every model was selected on its validation faces (10% of Training) and scored once on PrivateTest,
plain and with flip test-time augmentation (the average of the face and its mirror image).
`original_project` is what the student project this course grew from reached with the same
architecture.
"""
        ),
        code(
            """
reference = fc.runs.reference_results()
reference[["params", "private_acc", "private_acc_flip", "private_f1", "epochs", "original_project"]]
"""
        ),
        md(
            """
On the left, each model against the published anchors (dotted: human agreement; dashed: the best
single CNN; the others: ensembles) and the original project (diamonds); the top bar is the
ensemble of all of them. On the right, how the validation accuracy grew per epoch: a curve still
rising at its last epoch means the model would gain from a longer run. One of these models ships
inside the package as the default model the mirror uses
(`fercourse/inference/default_model/MODEL_CARD.md`).
"""
        ),
        code(
            """
fc.runs.plot_reference_results(reference)
"""
        ),
        md(
            """
The course team's ensemble is the same recipe as yours above, on the real data: the average of
the members' probabilities, scored once on PrivateTest. Compare its gain over the best single
model with the gain your ensemble showed on your run.
"""
        ),
        code(
            """
team_ensemble = fc.runs.reference_ensemble()
team_ensemble
"""
        ),
        md(
            """
The bundled model needs no training and no download. Here it is on a real photo that ships with
matplotlib (Grace Hopper), through the same pipeline as the mirror in the next notebook: face
detection, `fc.prepare_face`, classification.
"""
        ),
        code(
            """
fc.mirror.snapshot(fc.mirror.sample_photo(), model="default")
"""
        ),
        md(
            """
## Exercises

**1.** Which model of this run has the best PrivateTest accuracy per millisecond of CPU
latency? Answer with its name (the table's index).
"""
        ),
        code("answer = ..."),
        code(
            """
fc.runs.check_answer(answer, (table["accuracy"] / table["cpu_ms"]).idxmax(), name="best value")
"""
        ),
        md(
            """
**2.** By how many percentage points does the ensemble beat (or trail) the best single model?
Answer with a number (e.g. `1.5` for 1.5 points).
"""
        ),
        code("answer = ..."),
        code(
            """
gain = 100 * (ensemble["accuracy"] - table["accuracy"].max())
fc.runs.check_answer(answer, gain, name="ensemble gain", tol=0.05)
"""
        ),
        md(
            """
**3.** In the course team's FER2013 results, how many percentage points does flip TTA add to
the best model's PrivateTest accuracy? Answer with a number.
"""
        ),
        code("answer = ..."),
        code(
            """
best = reference["private_acc"].idxmax()
flip_gain = 100 * (reference.loc[best, "private_acc_flip"] - reference.loc[best, "private_acc"])
fc.runs.check_answer(answer, flip_gain, name="flip TTA gain", tol=0.05)
"""
        ),
        md(
            """
**4. (open)** Build a smaller ensemble of the two or three models you would ship on a laptop
(`fc.evaluation.evaluate_ensemble([models["baseline_cnn"], ...], data, split_obj=split)`). How
much accuracy does it keep, at what latency?
"""
        ),
        md(
            """
## Summary

- Comparing models fairly needs the same split and test set for all, and more than accuracy:
  macro-F1, per-class scores, parameters, FLOPs and latency.
- Averaging the probabilities of different models is the simplest way past the best single
  model.
- On real FER2013: humans agree with the labels ~65% of the time, the best single CNN reaches
  ~73%, ensembles ~75-77%; synthetic-face numbers are not comparable with these.

"""
            + next_link("09_mirror", "the live webcam emoji mirror, with the model you choose.")
        ),
    ]


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------

NOTEBOOKS = {
    "01_data": notebook_01,
    "02_baseline": notebook_02,
    "03_attention": notebook_03,
    "04_multiscale": notebook_04,
    "05_hybrid": notebook_05,
    "06_ensemble": notebook_06,
    "07_vit": notebook_07,
    "08_compare": notebook_08,
}


def is_checked(cell: dict) -> bool:
    return "nbval-check-output" in cell.get("metadata", {}).get("tags", [])


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


def build(name: str, existing: nbformat.NotebookNode | None) -> nbformat.NotebookNode:
    """The notebook ``name`` as this file defines it, keeping stored outputs of checked cells."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    nb.cells = NOTEBOOKS[name]()
    kept = {}
    if existing is not None:
        kept = {
            c.source: c.outputs for c in existing.cells if c.cell_type == "code" and is_checked(c)
        }
    ordinal = 0
    for i, cell in enumerate(nb.cells):
        cell.id = str(i)  # what nbstripout would write: stable across rebuilds
        if cell.cell_type != "code":
            continue
        ordinal += 1
        if is_checked(cell) and cell.source in kept:
            set_checked_outputs(cell, kept[cell.source], ordinal)
    nbformat.validate(nb)
    return nb


def dumps(nb: nbformat.NotebookNode) -> str:
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a notebook would change")
    parser.add_argument("names", nargs="*", help="notebooks to build (default: all)")
    args = parser.parse_args(argv)
    changed = []
    for name in args.names or NOTEBOOKS:
        path = NOTEBOOKS_DIR / f"{name}.ipynb"
        existing = nbformat.read(path, as_version=4) if path.exists() else None
        text = dumps(build(name, existing))
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        changed.append(name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    if args.check and changed:
        print(f"out of date: {', '.join(changed)} (run python tools/build_notebooks.py)")
        return 1
    print(f"{'would change' if args.check else 'wrote'}: {', '.join(changed) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
