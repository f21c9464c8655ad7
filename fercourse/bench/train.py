"""``python -m fercourse bench train``: training speed per model, and what the data pipeline costs.

For each model it times full training steps (forward, backward, AdamW step; batch 64 by
default) two ways, interleaved step by step so that load changes on a shared machine hit both
equally, and reports medians of the per-step times:

- **pipeline**: the batch comes from ``fc.data.make_loaders`` (the default ``"batch"``
  augmentation: indexing, flip, affine, jitter, erasing, normalisation), as in ``fc.fit``;
- **in memory**: the same step on one fixed, already-normalised tensor batch.

It prints images/s for both, their ratio and the data pipeline's share of a pipeline step (the
target: under 10 %); on CUDA also the seconds one FER2013-sized epoch (28,709 images) takes.
These are figures to read, not a timed test. Introduced in the README's "Speed" section.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch
from torch import nn

FER2013_TRAIN_IMAGES = 28_709


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _endless(loader: Any):
    """Batches from a training loader, epoch after epoch (as fit() draws them)."""
    epoch = 0
    while True:
        loader.set_epoch(epoch)
        yield from loader
        epoch += 1


def measure(
    name: str,
    data: Any,
    *,
    seconds: float = 10.0,
    batch_size: int = 64,
    device: str = "auto",
    warmup_steps: int = 2,
    min_steps: int = 5,
    amp: str = "auto",
    channels_last: bool | str = "auto",
) -> dict[str, Any]:
    """Time one model's training steps with and without the data pipeline.

    Args:
        name: a model name.
        data: the dataset the pipeline reads (``fc.data.load_fer2013()``).
        seconds: time budget for the measured steps (both kinds together).
        batch_size: images per step.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        warmup_steps: untimed steps first (allocations, autotuning).
        min_steps: measure at least this many interleaved steps, even past ``seconds``.
        amp: ``TrainConfig.amp``: ``"auto"`` (bf16 on CUDA, off on the CPU), ``"native"`` (and
            bf16 on a CPU that has it), ``"bf16"``, ...
        channels_last: ``TrainConfig.channels_last``.

    Returns:
        dict with ``model``, ``params``, ``steps``, ``pipeline_ips``, ``memory_ips``,
        ``ratio`` (pipeline / in-memory), ``data_share`` (fraction of a pipeline step spent
        getting the batch), ``data_ips`` (the pipeline alone) and ``epoch_seconds`` (FER2013
        epoch at the pipeline speed).
    """
    import fercourse as fc
    from fercourse.runtime import resolve_runtime

    runtime = resolve_runtime(device, amp, channels_last)
    fc.utils.seed_everything(0)
    model = runtime.prepare(fc.models.create_model(name)).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loaders = fc.data.make_loaders(
        data, fc.data.make_split(data), batch_size=batch_size, device=runtime.device
    )
    batches = _endless(loaders.train)
    x_mem, y_mem = next(iter(loaders.train))
    x_mem, y_mem = runtime.inputs(x_mem), y_mem.to(runtime.device)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:  # the training step fc.fit takes
        fc.training.train_step(model, x, y, nn.CrossEntropyLoss(), optimizer, runtime=runtime)

    for _ in range(warmup_steps):
        x, y = next(batches)
        step(runtime.inputs(x), y.to(runtime.device))
        step(x_mem, y_mem)
    _sync(runtime.device)
    fetch, pipeline, memory, steps = _timed_steps(
        step, batches, (x_mem, y_mem), runtime, seconds, min_steps
    )
    batch = len(y_mem)
    pipeline_ips = batch / statistics.median(pipeline)
    memory_ips = batch / statistics.median(memory)
    return {
        "model": name,
        "params": sum(p.numel() for p in model.parameters()),
        "steps": steps,
        "pipeline_ips": pipeline_ips,
        "memory_ips": memory_ips,
        "ratio": pipeline_ips / memory_ips,
        "data_share": statistics.median(fetch) / statistics.median(pipeline),
        "data_ips": batch / statistics.median(fetch),
        "epoch_seconds": FER2013_TRAIN_IMAGES / pipeline_ips,
        **runtime.describe(),  # device, amp, channels_last, hardware, cpu_threads
    }


def _timed_steps(
    step: Any, batches: Any, in_memory: tuple, runtime: Any, seconds: float, min_steps: int
) -> tuple[list[float], list[float], list[float], int]:
    """Interleaved pipeline and in-memory steps: per-step fetch, pipeline and in-memory times.

    Medians, not sums, decide the figures, so a burst from another process on a shared machine
    does not; full batches only (a short last batch would skew a median).
    """
    x_mem, y_mem = in_memory
    dev = runtime.device
    fetch: list[float] = []
    pipeline: list[float] = []
    memory: list[float] = []
    full: list[bool] = []
    steps = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds or steps < min_steps:
        steps += 1
        t0 = time.perf_counter()
        x, y = next(batches)
        x, y = runtime.inputs(x), y.to(dev)
        _sync(dev)
        t1 = time.perf_counter()
        step(x, y)
        _sync(dev)
        t2 = time.perf_counter()
        step(x_mem, y_mem)
        _sync(dev)
        t3 = time.perf_counter()
        full.append(len(y) == len(y_mem))
        fetch.append(t1 - t0)
        pipeline.append(t2 - t0)
        memory.append(t3 - t2)
    if any(full):
        fetch, pipeline, memory = (
            [t for t, f in zip(ts, full) if f] for ts in (fetch, pipeline, memory)
        )
    return fetch, pipeline, memory, steps


def format_table(rows: list[dict[str, Any]], cuda: bool) -> str:
    """The results as a Markdown table (the README's)."""
    head = "| model | params | pipeline img/s | in-memory img/s | ratio | data share | data alone img/s |"
    rule = "|---|---:|---:|---:|---:|---:|---:|"
    if cuda:
        head += " s / FER2013 epoch |"
        rule += "---:|"
    lines = [head, rule]
    for r in rows:
        line = (
            f"| {r['model']} | {r['params'] / 1e6:.2f}M | {r['pipeline_ips']:.0f} | "
            f"{r['memory_ips']:.0f} | {r['ratio']:.2f} | {100 * r['data_share']:.1f} % | "
            f"{r['data_ips']:,.0f} |"
        )
        if cuda:
            line += f" {r['epoch_seconds']:.1f} |"
        lines.append(line)
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """``python -m fercourse bench train [--models a,b] [--seconds S] [--batch-size B]``."""
    parser = _parser()
    args = parser.parse_args(argv)

    import fercourse as fc

    if args.threads:
        torch.set_num_threads(args.threads)
    names = [n.strip() for v in (args.models or []) for n in v.split(",") if n.strip()]
    names = names or fc.models.list_models()
    unknown = sorted(set(names) - set(fc.models.list_models()))
    if unknown:
        parser.error(
            f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(fc.models.list_models())}"
        )
    data = fc.data.load_fer2013(args.data)
    device = fc.utils.default_device(args.device)
    print(f"data: {data!r}")
    print(
        f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
        f"batch {args.batch_size}, {args.seconds:g} s per model, amp {args.amp}, "
        f"channels-last {args.channels_last}",
        flush=True,
    )
    rows = []
    for name in names:
        row = measure(
            name,
            data,
            seconds=args.seconds,
            batch_size=args.batch_size,
            device=args.device,
            min_steps=args.min_steps,
            amp=args.amp,
            channels_last={"yes": True, "no": False}.get(args.channels_last, "auto"),
        )
        rows.append(row)
        print(f"  {name}: {row['steps']} interleaved steps", flush=True)
    print()
    print(format_table(rows, cuda=device.type == "cuda"))
    return 0


def _parser() -> argparse.ArgumentParser:
    from ..training.config import AMP_MODES

    parser = argparse.ArgumentParser(
        prog="python -m fercourse bench train",
        description="Training images/s per model, with the data pipeline and on in-memory tensors.",
    )
    parser.add_argument("--models", action="append", help="model names (default: all six)")
    parser.add_argument("--seconds", type=float, default=10.0, help="budget per model (default 10)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--min-steps", type=int, default=5, help="at least this many steps")
    parser.add_argument("--data", help="FER2013 file or folder (default: fc.utils.data_dir())")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument(
        "--amp",
        default="auto",
        choices=AMP_MODES,
        help="autocast as in TrainConfig.amp (bf16 helps CPUs with AVX512-BF16 or AMX: native)",
    )
    parser.add_argument(
        "--channels-last",
        default="auto",
        choices=["auto", "yes", "no"],
        help="channels-last memory format (default: on CUDA only)",
    )
    return parser
