"""The course's graded exercises, chapter by chapter: what each check computes and compares.

Each function grades one exercise (see :mod:`fercourse.course.checks`): it computes the expected
value from the objects the notebook passes (``model``, ``history``, ...) or runs the student's
function on fixed, seeded inputs against a reference (the package's module, PyTorch's, timm's,
pytorch-grad-cam's, scikit-learn's), and raises ``Feedback`` naming the likely mistake when it
can tell. Nothing here is shown in a notebook, so the answers are not in plain view.
"""

from __future__ import annotations

import copy
from typing import Any

from ..labels import EMOJI, EMOTIONS
from .checks import Feedback, call, exercise, same_name, same_number, same_tensor


def _generator(seed: int = 0) -> Any:
    import torch

    return torch.Generator().manual_seed(seed)


# --- 01_data ------------------------------------------------------------------------------------


@exercise("01.1", "majority rate of Training", needs=("data",))
def _majority_rate(answer: Any, *, data: Any) -> str:
    counts = data.where("Training").class_counts()
    everything = data.class_counts()
    return same_number(
        answer,
        counts.max() / counts.sum(),
        tol=1e-3,
        near=[
            (
                100 * counts.max() / counts.sum(),
                "that is a percentage: answer a fraction in [0, 1]",
            ),
            (everything.max() / everything.sum(), "that counts every usage; count Training only"),
        ],
    )


@exercise("01.2", "the emotions of the codes 4, 0 and 3")
def _codes(answer: Any) -> str:
    expected = [EMOTIONS[code] for code in (4, 0, 3)]
    if not isinstance(answer, (list, tuple)) or len(answer) != 3:
        raise Feedback(f"expected a list of three names, got {answer!r}")
    if list(answer) == [EMOJI[name] for name in expected]:
        raise Feedback("close: those are their emoji; answer with the emotions' names")
    if list(answer) == [EMOTIONS[code - 1] for code in (4, 0, 3)]:
        raise Feedback("close: codes start at 0 (fc.EMOTIONS[0] is the first emotion)")
    for name in answer:
        same_name(name, name, choices=EMOTIONS)  # each one an emotion of the course
    if [str(name).strip().lower() for name in answer] != expected:
        raise Feedback(f"{list(answer)} is not right yet. The order of fc.EMOTIONS is the codes'.")
    return ""


@exercise("01.3", "validation faces of the rarest class", needs=("data", "split"))
def _rarest_val(answer: Any, *, data: Any, split: Any) -> str:
    val = data.select(split.val).class_counts()
    train = data.select(split.train).class_counts()
    return same_number(
        answer,
        int(val.min()),
        near=[(int(train.min()), "that is the training part's count; count split.val")],
    )


@exercise("01.4", "kappa of a labeller who always answers neutral", needs=("reference",))
def _always_neutral(answer: Any, *, reference: Any) -> str:
    from ..data import label_agreement

    result = label_agreement(["neutral"] * len(reference), reference)
    return same_number(
        answer,
        result.kappa,
        tol=1e-6,
        near=[(result.accuracy, "that is p_o, the raw agreement; kappa subtracts chance")],
        hint="Compare p_o with p_e.",
    )


@exercise("01.5", "Cohen's kappa, written out", kind="implement")
def _kappa(answer: Any) -> str:
    import numpy as np
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(0)
    for n, skew in ((200, 0.5), (57, 0.8)):
        a = rng.integers(0, 7, size=n)
        b = np.where(rng.random(n) < skew, a, rng.integers(0, 7, size=n))
        got = call(answer, a, b)
        observed = float(np.mean(a == b))
        same_number(
            got,
            cohen_kappa_score(a, b),
            tol=1e-6,
            near=[(observed, "that is p_o, the raw agreement; subtract p_e and divide by 1 - p_e")],
        )
    return "agrees with scikit-learn's cohen_kappa_score on two seeded labellings"


# --- 02_baseline --------------------------------------------------------------------------------


@exercise("02.1", "parameters of the first convolution", needs=("model",))
def _first_conv(answer: Any, *, model: Any) -> str:
    from torch import nn

    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    weights = conv.weight.numel()
    near = []
    if conv.bias is None:
        near.append((weights + conv.out_channels, "this convolution has no bias (bias=False)"))
    else:
        near.append((weights, "off by the bias terms, one per filter"))
    expected = sum(p.numel() for p in conv.parameters())
    near.append((expected + 2 * conv.out_channels, "that includes the batch norm after it"))
    return same_number(answer, expected, near=near, hint="filters x kernel height x width x inputs")


@exercise("02.2", "epochs trained after the kept checkpoint", needs=("history",))
def _epochs_after_best(answer: Any, *, history: Any) -> str:
    after = len(history) - history.best_epoch
    near = [(len(history), "that is every epoch; count the ones after the kept checkpoint")]
    if history.best_epoch != after:
        near.append(
            (history.best_epoch, "that is the kept epoch itself; count the epochs after it")
        )
    return same_number(answer, after, near=near)


@exercise("02.3", "emotion with the lowest PrivateTest recall", needs=("metrics",))
def _lowest_recall(answer: Any, *, metrics: dict[str, Any]) -> str:
    scores = metrics["per_class"]
    recall = min(scores, key=lambda name: scores[name]["recall"])
    for other in ("precision", "f1"):
        lowest = min(scores, key=lambda name: scores[name][other])
        if isinstance(answer, str) and answer.strip().lower() == lowest != recall:
            raise Feedback(f"close: that emotion has the lowest {other}, not the lowest recall")
    return same_name(answer, recall, choices=EMOTIONS)


def _tiny_cnn() -> Any:
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Dropout(0.2), nn.Linear(16, 7),
    )  # fmt: skip


@exercise("02.4", "a training step with gradient clipping", kind="implement")
def _clipped_step(answer: Any) -> str:
    import torch
    from torch import nn

    from ..training import train_step

    torch.manual_seed(0)
    start = _tiny_cnn()
    g = _generator()
    batches = [(torch.randn(8, 1, 12, 12, generator=g), torch.randint(0, 7, (8,), generator=g))]
    batches = batches * 3
    loss_fn = nn.CrossEntropyLoss()

    def run(step: Any) -> tuple[list[float], Any]:
        model = copy.deepcopy(start).train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        losses = []
        for i, (x, y) in enumerate(batches):
            torch.manual_seed(i)  # the same dropout masks for both
            losses.append(float(step(model, x, y, optimizer)))
        return losses, model

    def reference(max_norm: float | None) -> Any:
        return lambda m, x, y, opt: train_step(m, x, y, loss_fn, opt, grad_clip=max_norm)[0]

    def student(model: Any, x: Any, y: Any, optimizer: Any) -> Any:
        return call(answer, model, x, y, optimizer, max_norm=0.05)

    got_losses, got = run(student)
    want_losses, want = run(reference(0.05))
    _, unclipped = run(reference(None))
    same_number(got_losses[0], want_losses[0], tol=1e-5, hint="return the batch's loss")
    flat = [
        torch.cat([p.detach().flatten() for p in m.parameters()]) for m in (got, want, unclipped)
    ]
    if torch.equal(flat[0], torch.cat([p.detach().flatten() for p in start.parameters()])):
        raise Feedback("the weights did not move: call optimizer.step() after backward()")
    same_tensor(
        flat[0],
        flat[1],
        atol=1e-5,
        near=[(flat[2], "the gradients were not clipped (clip their total norm before step)")],
        what="the weights after three steps",
    )
    same_number(got_losses[-1], want_losses[-1], tol=1e-5)
    return "three steps give fc.training.train_step's losses and weights (grad_clip=0.05)"


@exercise("02.5", "the Grad-CAM map from activations and gradients", kind="implement")
def _gradcam_map(answer: Any) -> str:
    import numpy as np
    import torch
    from pytorch_grad_cam import GradCAM

    g = _generator()
    activations = torch.randn(4, 16, 6, 6, generator=g).relu()
    gradients = torch.randn(4, 16, 6, 6, generator=g) * 0.1
    layer = torch.nn.Conv2d(1, 1, 1)
    cam = GradCAM(model=torch.nn.Sequential(layer), target_layers=[layer])
    try:
        raw = cam.get_cam_image(None, layer, None, activations.numpy(), gradients.numpy())
    finally:
        cam.activations_and_grads.release()
    want = torch.from_numpy(np.maximum(raw, 0)).float()
    summed = (gradients.sum(dim=(2, 3), keepdim=True) * activations).sum(dim=1).relu()
    got = call(answer, activations.clone(), gradients.clone())
    same_tensor(
        got,
        want,
        atol=1e-5,
        near=[
            (torch.from_numpy(raw).float(), "keep only the positive evidence: a ReLU at the end"),
            (
                summed,
                "the channel weights are the mean of the gradients over positions, not the sum",
            ),
        ],
        what="the maps",
    )
    return "matches pytorch-grad-cam's GradCAM (mean gradients as channel weights, then ReLU)"


# --- 03_attention -------------------------------------------------------------------------------


@exercise("03.1", "parameters CBAM adds to a wider baseline")
def _cbam_params(answer: Any) -> str:
    from ..models import count_parameters
    from ..models.attention_cnn import CBAM

    channels = (64, 128, 256)  # baseline_cnn with width=64
    expected = sum(count_parameters(CBAM(c)) for c in channels)
    no_floor = sum(2 * c * (c // 16) + c // 16 + c + 2 * 7 * 7 + 2 for c in channels)
    default_width = sum(count_parameters(CBAM(c)) for c in (32, 64, 128))
    near = [
        (default_width, "that is for the default width (32, 64, 128): this one is twice as wide"),
        (
            expected - 2 * len(channels),
            "count the spatial attention's batch norm too (2 per block)",
        ),
    ]
    if no_floor != expected:
        near.append((no_floor, "the hidden width is at least 8: h = max(C // 16, 8)"))
    return same_number(answer, expected, near=near, hint="Sum the formula over C = 64, 128, 256.")


@exercise("03.2", "blocks with a spatial attention map", needs=("model",))
def _attention_blocks(answer: Any, *, model: Any) -> str:
    import torch

    maps = model.spatial_attention_maps(torch.zeros(1, 1, 48, 48))
    return same_number(answer, len(maps))


@exercise("03.3", "channel attention from its weights", kind="implement")
def _channel_attention(answer: Any) -> str:
    import torch

    from ..models.attention_cnn import ChannelAttention

    torch.manual_seed(0)
    module = ChannelAttention(32).eval()
    w1, b1 = module.mlp[0].weight.detach().flatten(1), module.mlp[0].bias.detach()
    w2, b2 = module.mlp[2].weight.detach().flatten(1), module.mlp[2].bias.detach()
    x = torch.randn(8, 32, 6, 6, generator=_generator())
    with torch.no_grad():
        want = module(x)
        mlp = module.mlp
        se_only = torch.sigmoid(mlp(x.mean(dim=(2, 3), keepdim=True)))
        no_sigmoid = mlp(x.mean(dim=(2, 3), keepdim=True)) + mlp(x.amax(dim=(2, 3), keepdim=True))
        got = call(answer, x.clone(), w1, b1, w2, b2)
    same_tensor(
        got,
        want,
        atol=1e-5,
        near=[
            (want[:, :, 0, 0], "return one weight per channel as (B, C, 1, 1), ready to multiply"),
            (se_only, "that is squeeze-and-excitation (mean only); CBAM adds the maximum too"),
            (no_sigmoid, "squash the sum into (0, 1) with a sigmoid"),
        ],
        what="the channel weights",
    )
    return "equals the package's ChannelAttention with the same weights"


# --- 04_multiscale ------------------------------------------------------------------------------


@exercise("04.1", "input numbers the branches read per face", needs=("model",))
def _branch_inputs(answer: Any, *, model: Any) -> str:
    total = sum(size * size for size in model.scales)
    return same_number(
        answer,
        total,
        near=[(len(model.scales) * 48 * 48, "each branch reads the face at its own size")],
    )


@exercise("04.2", "scale with the largest mean weight", needs=("model", "weights"))
def _top_scale(answer: Any, *, model: Any, weights: Any) -> str:
    index = int(weights.mean(dim=0).argmax())
    return same_number(
        answer,
        model.scales[index],
        near=[(index, "that is its index; answer with its size in pixels")],
    )


@exercise("04.3", "shrinking a face by area averaging", kind="implement")
def _shrink(answer: Any) -> str:
    import torch

    from ..models.multiscale import resize_faces

    faces = torch.randn(4, 1, 48, 48, generator=_generator())
    for k in (2, 3, 4):
        got = call(answer, faces.clone(), k)
        same_tensor(
            got,
            resize_faces(faces, 48 // k),
            atol=1e-5,
            near=[
                (
                    faces[..., ::k, ::k],
                    "that keeps one pixel of each block: average the k x k block",
                )
            ],
            what=f"the faces shrunk by {k}",
        )
    return "equals fc.models.multiscale.resize_faces for k = 2, 3 and 4"


# --- 05_hybrid ----------------------------------------------------------------------------------


@exercise("05.1", "tokens the encoder reads per face", needs=("model",))
def _hybrid_tokens(answer: Any, *, model: Any) -> str:
    grid = model.grid_size[0] * model.grid_size[1]
    return same_number(
        answer,
        grid + model.num_prefix_tokens,
        near=[(grid, "count the class token too")],
    )


@exercise("05.2", "share of the parameters in the encoder", needs=("model",))
def _encoder_share(answer: Any, *, model: Any) -> str:
    from ..models import count_parameters

    share = sum(p.numel() for p in model.encoder.parameters()) / count_parameters(model)
    return same_number(
        answer,
        share,
        tol=0.01,
        near=[(100 * share, "answer a fraction in [0, 1], not a percentage")],
    )


@exercise("05.3", "attention weights, averaged over the heads", kind="implement")
def _head_average(answer: Any) -> str:
    import torch
    from torch import nn

    torch.manual_seed(0)
    mha = nn.MultiheadAttention(64, 4, batch_first=True).eval()
    x = torch.randn(2, 10, 64, generator=_generator())
    with torch.no_grad():
        _, want = mha(x, x, x, need_weights=True, average_attn_weights=True)
        _, per_head = mha(x, x, x, need_weights=True, average_attn_weights=False)
        q, k, _ = (x @ mha.in_proj_weight.T + mha.in_proj_bias).chunk(3, dim=-1)
        q, k = (t.unflatten(-1, (4, 16)).transpose(1, 2) for t in (q, k))
        unscaled = (q @ k.transpose(-2, -1)).softmax(dim=-1).mean(dim=1)
        wrong_axis = (q @ k.transpose(-2, -1) / 4.0).softmax(dim=-2).mean(dim=1)
        got = call(answer, x.clone(), mha)
    same_tensor(
        got,
        want,
        atol=1e-5,
        near=[
            (per_head, "those are the weights of every head: average them over the heads"),
            (unscaled, "divide the scores by sqrt(d), d = 16 per head, before the softmax"),
            (wrong_axis, "each query's row must sum to 1: softmax over the keys (the last axis)"),
        ],
        what="the attention weights",
    )
    return "equals nn.MultiheadAttention's weights (need_weights=True, averaged over heads)"


# --- 06_ensemble --------------------------------------------------------------------------------


@exercise("06.1", "an expert's weight when the gate is undecided", needs=("model",))
def _undecided_gate(answer: Any, *, model: Any) -> str:
    share = 1 / len(model.experts)
    return same_number(
        answer,
        share,
        tol=1e-3,
        near=[(1.0, "that is what the weights add up to; each gets a share")],
    )


@exercise("06.2", "expert trusted most on the misclassified faces", needs=("model", "test"))
def _busiest_when_wrong(answer: Any, *, model: Any, test: Any) -> str:
    import torch

    from ..preprocessing import to_tensor

    was_training = model.training
    model.eval()
    with torch.no_grad():  # one pass gives both the predictions and the gate's weights
        parts = model.forward_experts(model.forward_features(to_tensor(test.images)))
    model.train(was_training)
    wrong = parts["logits"].argmax(dim=1).numpy() != test.labels
    weights = parts["weights"].numpy()
    if not wrong.any():
        raise Feedback("the model gets every test face right: nothing to measure")
    on_wrong = model.experts[int(weights[wrong].mean(axis=0).argmax())]
    overall = model.experts[int(weights.mean(axis=0).argmax())]
    if isinstance(answer, str) and answer.strip().lower() == overall != on_wrong:
        raise Feedback("close: that is the busiest expert over all faces; keep the wrong ones")
    return same_name(answer, on_wrong, choices=model.experts)


@exercise("06.3", "the gate's mixture of the experts", kind="implement")
def _mix_experts(answer: Any) -> str:
    import torch

    g = _generator()
    expert_logits = torch.randn(5, 3, 7, generator=g)
    gate_scores = torch.randn(5, 3, generator=g) * 2
    weights = gate_scores.softmax(dim=1)
    want = (weights[:, :, None] * expert_logits).sum(dim=1)
    got = call(answer, expert_logits.clone(), gate_scores.clone())
    same_tensor(
        got,
        want,
        atol=1e-5,
        near=[
            (
                (gate_scores[:, :, None] * expert_logits).sum(dim=1),
                "turn the scores into weights with a softmax first",
            ),
            (expert_logits.mean(dim=1), "that is a plain average: the gate decides the weights"),
        ],
        what="the mixed logits",
    )
    return _same_as_specialists(answer)


def _same_as_specialists(answer: Any) -> str:
    """The student's mixture inside the real model: the gate's scores caught with a hook."""
    import torch

    from ..models import create_model

    torch.manual_seed(0)
    model = create_model("specialists").eval()
    caught: dict[str, Any] = {}
    hook = model.gate.register_forward_hook(lambda m, i, out: caught.update(scores=out))
    try:
        with torch.no_grad():
            parts = model.forward_experts(
                model.forward_features(torch.randn(3, 1, 48, 48, generator=_generator(1)))
            )
    finally:
        hook.remove()
    got = call(answer, parts["expert_logits"], caught["scores"])
    same_tensor(got, parts["logits"], atol=1e-5, what="the specialists model's logits")
    return "equals the specialists model's output (its experts' logits mixed by its gate)"


# --- 07_vit -------------------------------------------------------------------------------------


@exercise("07.1", "patch tokens of one face", needs=("model",))
def _patch_tokens(answer: Any, *, model: Any) -> str:
    grid = model.grid_size[0] * model.grid_size[1]
    return same_number(
        answer,
        grid,
        near=[(grid + model.num_prefix_tokens, "count the patches only, no class token")],
    )


@exercise("07.2", "FLOPs of 49 patches (112 px / 16) against 36", needs=("model",))
def _flops_ratio(answer: Any, *, model: Any) -> str:
    from ..models import count_flops, create_model

    larger = create_model("vit_tiny", img_size=112, patch_size=16)
    ratio = count_flops(larger) / count_flops(model)
    return same_number(
        answer,
        ratio,
        tol=0.02,
        near=[
            ((50 / 37) ** 2, "only the attention products grow with the square of the tokens"),
            (49 / 36, "the patch embedding grows faster: each patch has 4x the pixels"),
        ],
    )


@exercise("07.3", "the patch embedding, without a convolution", kind="implement")
def _patch_embedding(answer: Any) -> str:
    import torch
    from timm.layers import PatchEmbed

    torch.manual_seed(0)
    embed = PatchEmbed(img_size=48, patch_size=8, in_chans=1, embed_dim=24).eval()
    x = torch.randn(2, 1, 48, 48, generator=_generator())
    with torch.no_grad():
        want = embed(x)
        weight, bias = embed.proj.weight.detach(), embed.proj.bias.detach()
        by_column = want.unflatten(1, (6, 6)).transpose(1, 2).flatten(1, 2)
        got = call(answer, x.clone(), weight, bias)
    same_tensor(
        got,
        want,
        atol=1e-4,
        near=[(by_column, "the patches are column by column: timm reads them row by row")],
        what="the tokens",
    )
    return "equals timm's PatchEmbed with the same weights"


# --- 08_compare ---------------------------------------------------------------------------------


@exercise("08.1", "best accuracy per millisecond", needs=("table",))
def _best_value(answer: Any, *, table: Any) -> str:
    best = (table["accuracy"] / table["cpu_ms"]).idxmax()
    if isinstance(answer, str) and answer == table["accuracy"].idxmax() != best:
        raise Feedback("close: that is the most accurate model; divide by its latency")
    return same_name(answer, best, choices=list(table.index))


@exercise("08.2", "the ensemble's gain in points", needs=("table", "ensemble"))
def _ensemble_gain(answer: Any, *, table: Any, ensemble: dict[str, Any]) -> str:
    gain = 100 * (ensemble["accuracy"] - table["accuracy"].max())
    return same_number(
        answer,
        gain,
        tol=0.05,
        near=[(gain / 100, "answer in percentage points (1.5 for 1.5 points)")],
    )


@exercise("08.3", "what flip TTA adds in the reference results", needs=("reference",))
def _flip_gain(answer: Any, *, reference: Any) -> str:
    best = reference["private_acc"].idxmax()
    gain = 100 * (reference.loc[best, "private_acc_flip"] - reference.loc[best, "private_acc"])
    return same_number(answer, gain, tol=0.05, near=[(gain / 100, "answer in percentage points")])


@exercise("08.4", "McNemar's chi-square statistic", kind="implement")
def _mcnemar_chi2(answer: Any) -> str:
    import numpy as np

    from ..evaluation import mcnemar

    rng = np.random.default_rng(0)
    for n in (400, 90):
        a = rng.random(n) < 0.7
        b = np.where(rng.random(n) < 0.8, a, ~a)
        expected = mcnemar(a, b, exact=False).statistic
        only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
        no_correction = (only_a - only_b) ** 2 / (only_a + only_b)
        same_number(
            call(answer, a.copy(), b.copy()),
            expected,
            tol=1e-9,
            near=[
                (
                    no_correction,
                    "subtract 1 from |b - c| before squaring (the continuity correction)",
                )
            ],
        )
    return "equals fc.evaluation.mcnemar(a, b, exact=False).statistic"


# --- 09_mirror ----------------------------------------------------------------------------------


@exercise("09.1", "the emoji at a 99% threshold", needs=("photo", "model"))
def _strict_emoji(answer: Any, *, photo: Any, model: Any) -> str:
    from ..mirror import snapshot

    strict = snapshot(photo, model, threshold=0.99).faces[0]
    relaxed = snapshot(photo, model, threshold=0.0).faces[0]
    if answer == relaxed.emoji != strict.emoji:
        raise Feedback("close: that is its emoji at any threshold; at 99% the mirror is less sure")
    if answer != strict.emoji:
        raise Feedback(f"{answer!r} is not right yet. Below the threshold the mirror admits doubt.")
    return ""


@exercise("09.2", "frames until the smoothed average settles")
def _settle_frames(answer: Any) -> str:
    from ..mirror import FaceTracks

    tracks = FaceTracks(smoothing=0.6)
    box = (0, 0, 10, 10)
    tracks.update(tracks.match([box]), [[1.0] + [0.0] * 6])
    frames = 0
    while tracks.tracks[0].probabilities[-1] < 0.9:
        tracks.update(tracks.match([box]), [[0.0] * 6 + [1.0]])
        frames += 1
    return same_number(answer, frames, near=[(frames - 1, "0.6 to that power is still above 0.1")])


@exercise("09.3", "the interpolation that resizes faces")
def _interpolation(answer: Any) -> str:
    from ..preprocessing import describe

    expected = describe()["resize_interpolation"]
    if not isinstance(answer, str):
        raise Feedback(f"expected a string such as 'INTER_...', got {type(answer).__name__}")
    if answer.strip().upper().removeprefix("CV2.") != expected.upper():
        raise Feedback(f"{answer!r} is not right yet: the preprocessing records what it uses")
    return ""


@exercise("09.4", "IoU of the 160 px and 640 px boxes", needs=("boxes",))
def _box_iou(answer: Any, *, boxes: dict[int, Any]) -> str:
    from ..inference import iou

    return same_number(answer, iou(boxes[160], boxes[640]), tol=0.01)
