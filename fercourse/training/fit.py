"""``fc.fit(model, data, config) -> History``: the long run, resumable at any point.

``fit`` is a short loop over :func:`~fercourse.training.train_one_epoch` and
:func:`~fercourse.training.evaluate_epoch` (``steps.py``), plus what a long run needs: the
learning-rate schedule and early stopping (``schedule.py``), checkpoints of the best and the
latest epoch in a :class:`~fercourse.rundir.RunDir`, an exponential moving average of the
weights, knowledge distillation from a teacher (``distill.py``), a wall-clock budget, and the
saved state that lets a run killed at any moment, even by SIGKILL in the middle of an epoch,
continue exactly where it was (``state.py``): on a CPU it ends with bit-identical weights to a
run that was never interrupted. Introduced in ``notebooks/02_baseline.ipynb``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ..history import History
from ..models.layers import FERModel
from ..rundir import BEST, LAST, RunDir, default_run_dir
from ..runtime import Runtime, resolve_runtime
from ..utils import (
    epoch_seed,
    library_versions,
    progress_enabled,
    seed_everything,
    set_determinism,
)
from .budget import BudgetClock, BudgetPlan, measure_throughput, plan_budget
from .config import TrainConfig
from .schedule import EarlyStopping, Schedule
from .state import (
    check_same_run,
    cpu_state,
    load_train_state,
    resume_message,
    rng_state,
    save_train_state,
    set_rng_state,
)
from .steps import EpochTally, evaluate_epoch, train_one_epoch

if TYPE_CHECKING:
    from ..data import FER2013, Split

__all__ = ["DEFAULT_CHECKPOINT_STEPS_CPU", "SELECTED_ON", "fit"]

DEFAULT_CHECKPOINT_STEPS_CPU = 200
"""``checkpoint_every_steps=None`` on a CPU: a mid-epoch save every 200 steps (minutes of work)."""

SELECTED_ON = "val"
"""Where fercourse picks the best epoch: ``val``, carved from Training (never a test split)."""

RESTART = "resume=False, or --no-resume on the command line,"
"""How a resumed run's message says to start afresh instead."""


def fit(
    model: nn.Module,
    data: FER2013,
    config: TrainConfig | None = None,
    *,
    split: Split | None = None,
    out_dir: str | Path | None = None,
    resume: bool = True,
    progress: bool | None = None,
    budget_minutes: float | None = None,
) -> History:
    """Train ``model`` on the training part of ``data``, choosing the best epoch on ``val``.

    The loss is cross-entropy (class-weighted and label-smoothed as the config says; with
    ``config.teacher``, DeiT-style distillation). Validation accuracy (or loss, see
    ``config.monitor``) picks the best epoch and drives early stopping and the plateau
    scheduler. The test splits are never looked at. When training ends the model holds the best
    epoch's weights (the EMA weights when ``config.ema`` is set).

    Args:
        model: a model from ``fc.models.create_model``.
        data: the dataset, e.g. ``fc.data.load_fer2013()``.
        config: hyperparameters (default ``TrainConfig.for_model(model.model_name)``).
        split: train/val/test indices (default ``fc.data.make_split(data, seed=config.seed)``).
        out_dir: the run folder (default ``outputs/runs/<model_name>``).
        resume: continue the run saved in ``out_dir`` if there is one (a finished run is
            returned as it is, without training). ``False`` deletes that run's files and starts
            afresh. Resuming with another model, split or config (other than
            ``TrainConfig.RESUME_IGNORED``) raises ``ResumeError``.
        progress: tqdm progress bars; ``None`` follows :func:`fercourse.utils.progress_enabled`
            (on in a notebook or a terminal, off in CI and with ``FERCOURSE_PROGRESS=0``).
            Without bars, one line per epoch is printed instead.
        budget_minutes: train for this much wall-clock time (sets ``config.budget_minutes``):
            the throughput is measured first, and the schedule is sized to the epochs that fit.

    Returns:
        The :class:`~fercourse.history.History` of per-epoch metrics.

    Raises:
        ResumeError: ``out_dir`` holds another run.
        ValueError: a model not built by ``create_model``, an empty split, or a teacher trained
            on another split.

    Example:
        >>> import fercourse as fc
        >>> data = fc.data.load_fer2013()
        >>> model = fc.models.create_model("baseline_cnn")
        >>> config = fc.TrainConfig.for_model("baseline_cnn", preset="smoke")
        >>> history = fc.fit(model, data, config)  # doctest: +SKIP
        >>> history.best_val_acc  # doctest: +SKIP
        0.61
    """
    if not isinstance(model, FERModel) or not model.model_name:
        raise ValueError(
            f"{type(model).__name__} is not a course model: build it with "
            "fc.models.create_model(name) (a new architecture: fc.models.register_model)"
        )
    config = config if config is not None else TrainConfig.for_model(model.model_name)
    if budget_minutes is not None:
        config = config.replace(budget_minutes=budget_minutes)
    if split is None:
        from ..data import make_split

        split = make_split(data, seed=config.seed)
    run_dir = RunDir(out_dir if out_dir is not None else default_run_dir(model.model_name))
    return _Fit(model, data, config, split, run_dir, progress_enabled(progress)).run(resume)


class _Fit:
    """One call of :func:`fit`: builds the pieces, restores a saved state, runs the epochs."""

    def __init__(
        self,
        model: FERModel,
        data: FER2013,
        config: TrainConfig,
        split: Split,
        run_dir: RunDir,
        progress: bool,
    ) -> None:
        self.model, self.data, self.config, self.split = model, data, config, split
        self.run_dir, self.progress = run_dir, progress
        self.name = model.model_name
        # Where the weights started: "scratch", or the pretrained weights the model was built with.
        self.init = f"pretrained: {model.pretrained_from}" if model.pretrained_from else "scratch"
        self.identity = {
            "model": self.name,
            "model_kwargs": dict(model.model_kwargs),
            "split_hash": str(split.hash),
            "init": self.init,
            "config": config.to_dict(),
        }
        self.history = History(model=self.name, monitor=config.monitor)
        self.started = time.perf_counter()
        self.plan: BudgetPlan | None = None
        self.clock: BudgetClock | None = None
        self.teacher: nn.Module | None = None

    # ---- the run -----------------------------------------------------------------------------

    def run(self, resume: bool) -> History:
        state = load_train_state(self.run_dir.state_file) if resume else None
        if state is not None:
            check_same_run(
                state,
                self.identity,
                self.config.differences(state.get("config", {})),
                self.run_dir.state_file,
            )
            print(resume_message(self.run_dir.state_file, state, restart=RESTART), flush=True)
            if state.get("finished"):
                self.history = History.from_dict(state["history"])
                return self._finish()
        elif not resume:
            self.run_dir.clear()
        self._build()
        self.plan = self._plan(state)
        epochs = self.plan.epochs if self.plan is not None else self.config.epochs
        self.epochs = epochs
        self.schedule = Schedule.from_config(
            self.optimizer, self.config.replace(epochs=epochs), len(self.loaders.train)
        )
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.tally = EpochTally()
        self.saved_rng: dict[str, Any] | None = None
        if state is not None:
            self._restore(state)
        self.run_dir.path.mkdir(parents=True, exist_ok=True)
        self.run_dir.write_config(self._config_record())
        self._loop()
        self.history.finished = True
        self.history.save(self.run_dir.path)
        self._save_state(finished=True)
        return self._finish()

    def _build(self) -> None:
        """Runtime, loaders, loss, teacher, optimizer, scaler, EMA and early stopping."""
        config = self.config
        seed_everything(config.seed)
        self.runtime = resolve_runtime(config.device, config.amp, config.channels_last)
        set_determinism(config.deterministic)
        self.loaders = _make_loaders(self.data, self.split, config, self.runtime)
        self.train_n, self.val_n = len(self.loaders.train.indices), len(self.loaders.val.indices)
        if self.train_n == 0 or self.val_n == 0:
            raise ValueError(f"empty training ({self.train_n}) or validation ({self.val_n}) split")
        self.runtime.prepare(self.model)
        self.loss_fn, self.teacher = self._make_loss()
        self.optimizer = make_optimizer(self.model, config)
        fp16 = self.runtime.device.type == "cuda" and self.runtime.amp_dtype == torch.float16
        self.scaler = torch.amp.GradScaler("cuda") if fp16 else None
        self.ema = None
        if config.ema is not None:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            # use_buffers: BatchNorm statistics are averaged too, so the EMA model is usable as is.
            self.ema = AveragedModel(
                self.model, multi_avg_fn=get_ema_multi_avg_fn(config.ema), use_buffers=True
            )
        self.stopper = EarlyStopping(config.monitor, config.patience, config.min_delta)
        self.mix = _make_mix(config)
        self.forward = torch.compile(self.model) if config.compile else self.model

    def _make_loss(self) -> tuple[nn.Module, nn.Module | None]:
        from ..data import class_weights

        config = self.config
        if config.weighted_sampler and config.class_weighted:
            warnings.warn(
                "weighted_sampler=True and class_weighted=True correct the class imbalance twice; "
                "set class_weighted=False with the sampler",
                stacklevel=4,
            )
        weight = None
        if config.class_weighted:
            labels = np.asarray(self.data.labels)[self.loaders.train.indices]
            weight = class_weights(labels).float().to(self.runtime.device)
        loss_fn: nn.Module = nn.CrossEntropyLoss(
            weight=weight, label_smoothing=config.label_smoothing
        )
        if config.teacher is None:
            return loss_fn, None
        from .distill import DistillationLoss, load_teacher

        teacher, card = load_teacher(config.teacher, self.runtime.device)
        self.runtime.prepare(teacher)
        if not self.split.matches(str(card.get("split_hash", ""))):
            raise ValueError(
                f"teacher {card['path']} was trained on split {card.get('split_hash')!r}, this "
                f"run uses {self.split.hash!r}: a teacher must have seen this split's training "
                "faces only (otherwise it leaks validation faces into the student's selection)"
            )
        if self.model.distilled:
            self.model.set_distilled_training(True)
        self.teacher_card = card
        loss = DistillationLoss(
            loss_fn, mode=config.distill, alpha=config.distill_alpha, tau=config.distill_tau
        )
        return loss, teacher

    def _loop(self) -> None:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=self.epochs,
            initial=self.epoch,
            desc=self.name,
            unit="epoch",
            disable=not self.progress,
            dynamic_ncols=True,
        )
        try:
            # The stop test comes first, so a run resumed after its last epoch stops at once.
            while self.epoch < self.epochs and not self.stopper.should_stop:
                if self._out_of_budget():
                    break
                if self.clock is not None:
                    self.clock.start_epoch()
                train = train_one_epoch(
                    self.forward,
                    self._epoch_batches(tqdm),
                    self.loss_fn,
                    self.optimizer,
                    scheduler=self.schedule,
                    runtime=self.runtime,
                    scaler=self.scaler,
                    grad_clip=self.config.grad_clip,
                    teacher=self.teacher,
                    mix=self.mix,
                    ema=self.ema,
                    tally=self.tally,
                    after_step=self._after_step,
                )
                row, improved = self._end_epoch(train)
                if self.clock is not None:
                    self.clock.end_epoch()
                    self._replan()
                    bar.total = self.epochs
                bar.update(1)
                bar.set_postfix(
                    loss=f"{row['train_loss']:.3f}", val_acc=f"{row['val_acc']:.3f}", refresh=False
                )
                if not self.progress:
                    print(_epoch_line(self.name, row, self.epochs, improved), flush=True)
        finally:
            bar.close()
        self.history.stopped_early = self.epoch < self.epochs

    def _epoch_batches(self, tqdm: Any) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This epoch's batches, in the order an uninterrupted run would see them."""
        loader = self.loaders.train
        # Dropout and MixUp draw from the global generators; the loader's shuffling and
        # augmentation are seeded by (seed, epoch) inside the loader (set_epoch).
        seed_everything(epoch_seed(self.config.seed, self.epoch))
        loader.set_epoch(self.epoch)
        iterator = iter(loader)
        # Resuming mid-epoch: draw (and drop) the batches already trained on, so the augmentation
        # random state advances exactly as before, then put every RNG back where it was.
        # (At an epoch boundary the epoch seed above already is that state.)
        for _ in range(self.step_in_epoch):
            next(iterator)
        if self.saved_rng is not None and self.step_in_epoch > 0:
            set_rng_state(self.saved_rng)
        self.saved_rng = None
        yield from tqdm(
            iterator,
            total=len(loader),
            initial=self.step_in_epoch,
            desc=f"epoch {self.epoch + 1}",
            leave=False,
            disable=not self.progress,
            dynamic_ncols=True,
        )

    def _after_step(self, tally: EpochTally) -> None:
        self.step_in_epoch += 1
        self.global_step += 1
        every = self.config.checkpoint_every_steps
        if every is None:
            every = 0 if self.runtime.device.type == "cuda" else DEFAULT_CHECKPOINT_STEPS_CPU
        if (
            every
            and self.step_in_epoch % every == 0
            and self.step_in_epoch < len(self.loaders.train)
        ):
            self._save_state()

    def _end_epoch(self, train: dict[str, float]) -> tuple[dict[str, Any], bool]:
        eval_model = self.ema.module if self.ema is not None else self.model
        # Plain cross-entropy on val (no class weights, no smoothing): comparable across runs.
        val = evaluate_epoch(eval_model, self.loaders.val, runtime=self.runtime)
        row = {
            "epoch": self.epoch + 1,
            "train_loss": train["loss"],
            "train_acc": train["accuracy"],
            "val_loss": val["loss"],
            "val_acc": val["accuracy"],
            "val_macro_f1": val["macro_f1"],
            "lr": float(self.optimizer.param_groups[0]["lr"]),
            "seconds": train["seconds"] + val["seconds"],
        }
        value = row[self.config.monitor]
        improved = self.stopper.update(value)
        self.schedule.after_epoch(self.epoch + 1, value)
        self.history.add(row)
        self.epoch, self.step_in_epoch, self.tally = self.epoch + 1, 0, EpochTally()
        if improved:
            self.history.best_epoch, self.history.best_val_acc = row["epoch"], row["val_acc"]
            self.run_dir.save_checkpoint(BEST, eval_model, self._card(row))
        self.run_dir.save_checkpoint(LAST, eval_model, self._card(row))
        self.history.save(self.run_dir.path)
        # Written last: a crash before this line repeats the epoch, which gives the same result.
        self._save_state()
        return row, improved

    def _finish(self) -> History:
        # The model leaves fit() holding the best epoch's weights (EMA weights when enabled).
        from .. import checkpoint as ckpt

        best = self.run_dir.checkpoint(BEST)
        if self.run_dir.has_checkpoint(BEST):
            ckpt.load_weights_into(self.model, ckpt.load_state_dict(best), str(best))
        self.model.selected_on = SELECTED_ON
        if self.model.distilled:
            self.model.set_distilled_training(False)  # back to one prediction per face
        return self.history

    # ---- the budget --------------------------------------------------------------------------

    def _plan(self, state: dict[str, Any] | None) -> BudgetPlan | None:
        """The saved plan of a resumed run, a new one for a budgeted run, else ``None``."""
        if self.config.budget_minutes is None:
            return None
        if state is not None and state.get("budget_plan"):
            plan = BudgetPlan(**state["budget_plan"])
            self.clock = BudgetClock(plan, float(state["budget_spent_s"]), guard=False)
            return plan
        self.loaders.train.set_epoch(0)
        self.run_dir.path.mkdir(parents=True, exist_ok=True)
        measured = measure_throughput(
            self.model,
            lambda model: make_optimizer(model, self.config),
            self.loaders.train,
            self.loaders.val,
            self.loss_fn,
            runtime=self.runtime,
            teacher=self.teacher,
            mix=self.mix,
            scratch_dir=self.run_dir.path,
        )
        seed_everything(self.config.seed)  # the measurement leaves no trace in the run
        plan = plan_budget(
            self.config.budget_minutes * 60.0,
            setup_s=time.perf_counter() - self.started,
            train_images=self.train_n,
            val_images=self.val_n,
            steps_per_epoch=len(self.loaders.train),
            max_epochs=self.config.epochs,
            **measured,
        )
        self.clock = BudgetClock(plan, plan.setup_s)
        print(
            f"[{self.name}] budget {self.config.budget_minutes:g} min: {plan.images_per_s:.0f} "
            f"images/s measured, so {plan.epochs} epochs ({plan.steps} steps) fit; the schedule "
            "ends there",
            flush=True,
        )
        return plan

    def _replan(self) -> None:
        """The epochs take longer, or shorter, than measured: end the schedule where the budget does.

        Slower: as many epochs as fit at the last epoch's pace. Faster: more epochs (up to the
        recipe's ``epochs``), only when the last two epochs both leave room for them (after the
        first, that epoch and the measured one), so one quick epoch on a machine that frees up
        for a moment does not buy epochs the budget cannot pay.
        """
        if self.plan is None or self.clock is None or not self.clock.guard:
            return  # a resumed run finishes the plan it saved
        if self.epoch >= self.epochs and self.schedule.decays_to_end:
            return  # its decay has ended: more epochs would only train at the last rate
        epochs = self.epoch + self.clock.epochs_that_fit()
        if not self.epoch < epochs < self.epochs:  # the plan still fits (or nothing more does)
            steady = self.clock.steady_epoch_s()
            if steady is None:
                return
            epochs = min(self.epoch + self.clock.epochs_that_fit(steady), self.config.epochs)
            if epochs <= self.epochs:
                return
        steps_per_epoch = len(self.loaders.train)
        self.schedule.end_at(epochs * steps_per_epoch)
        pace = "longer" if epochs < self.epochs else "shorter"
        print(
            f"[{self.name}] epoch {self.epoch} took {self.clock.last_epoch_s:.0f} s, {pace} than "
            f"measured: {epochs} epochs fit, not {self.epochs}; the schedule now ends there",
            flush=True,
        )
        self.plan = replace(
            self.plan,
            epochs=epochs,
            steps=epochs * steps_per_epoch,
            measured_epochs=self.plan.measured_epochs or self.plan.epochs,
        )
        self.epochs = epochs
        self.run_dir.write_config(self._config_record())
        self._save_state()  # a resume finishes the re-planned schedule

    def _out_of_budget(self) -> bool:
        """A budgeted run stops before an epoch that would clearly overrun the budget."""
        if self.clock is None or not self.history.epochs or not self.clock.next_epoch_overruns():
            return False
        warnings.warn(
            f"{self.name}: stopping after epoch {self.epoch}/{self.epochs}, the next epoch would "
            f"end past the {self.config.budget_minutes:g}-minute budget (training ran slower than "
            "measured); the schedule did not reach its end",
            stacklevel=2,
        )
        return True

    # ---- bookkeeping -------------------------------------------------------------------------

    def _card(self, row: dict[str, Any]) -> dict[str, Any]:
        card = {
            "metrics": {k: v for k, v in row.items() if k not in ("epoch", "seconds")},
            "epoch": row["epoch"],
            "selected_on": SELECTED_ON,
            "monitor": self.config.monitor,
            "ema": self.config.ema,
            "config": self.config.to_dict(),
            "split_hash": self.identity["split_hash"],
            "split_path": str(self.split.path or ""),
            "init": self.init,
            "train_samples": self.train_n,
            "val_samples": self.val_n,
            "data": self.data.info(),
        }
        if self.teacher is not None:
            card["teacher"] = self._teacher_record()
        return card

    def _teacher_record(self) -> dict[str, Any]:
        card = self.teacher_card
        return {"path": card["path"], "model": card.get("model"), "metrics": card.get("metrics")}

    def _config_record(self) -> dict[str, Any]:
        record = {
            "model": self.name,
            "model_kwargs": self.identity["model_kwargs"],
            "init": self.init,
            "config": self.config.to_dict(),
            "split": {
                "hash": self.identity["split_hash"],
                "path": str(self.split.path or ""),
                "train": self.train_n,
                "val": self.val_n,
                "selected_on": SELECTED_ON,
            },
            "data": {**self.data.info(), "n": len(self.data)},
            "runtime": self.runtime.describe(),
            "versions": library_versions(),
        }
        if self.plan is not None:
            record["budget"] = self.plan.to_dict()
        if self.teacher is not None:
            record["teacher"] = self._teacher_record()
        return record

    def _save_state(self, *, finished: bool = False) -> None:
        state = {
            **self.identity,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "finished": finished,
            "model_state": cpu_state(self.model),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "stopper": self.stopper.state_dict(),
            "tally": self.tally.state_dict(),
            "rng": rng_state(),
            "history": self.history.to_dict(),
            "budget_plan": asdict(self.plan) if self.plan is not None else None,
            "budget_spent_s": self.clock.spent() if self.clock is not None else None,
        }
        save_train_state(self.run_dir.state_file, state)

    def _restore(self, state: dict[str, Any]) -> None:
        from .. import checkpoint as ckpt

        ckpt.load_weights_into(self.model, state["model_state"], str(self.run_dir.state_file))
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        self.stopper.load_state_dict(state["stopper"])
        self.history = History.from_dict(state["history"])
        self.epoch, self.step_in_epoch = int(state["epoch"]), int(state["step_in_epoch"])
        self.global_step = int(state["global_step"])
        self.tally = EpochTally.from_state(state["tally"])
        self.saved_rng = state["rng"]


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW or SGD over ``model``, without weight decay on biases and normalisation weights."""
    from timm.optim import param_groups_weight_decay

    groups = param_groups_weight_decay(model, config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov
        )
    return torch.optim.AdamW(groups, lr=config.lr)


def _make_loaders(data: FER2013, split: Split, config: TrainConfig, runtime: Runtime) -> Any:
    from ..data import AUGMENT_RECIPES, make_loaders

    return make_loaders(
        data,
        split,
        batch_size=config.batch_size,
        augment=config.augment,
        settings=AUGMENT_RECIPES[config.augment_recipe],
        weighted_sampler=config.weighted_sampler,
        device=runtime.device,
        seed=config.seed,
        # The smoke preset's stratified subsets; the test parts are never touched here.
        max_per_split={"train": config.max_train_samples, "val": config.max_val_samples},
        num_workers=config.num_workers,
    )


def _make_mix(config: TrainConfig) -> Any:
    """torchvision's batched MixUp / CutMix (soft targets), or None when both are off."""
    if not (config.mixup_alpha or config.cutmix_alpha):
        return None
    from torchvision.transforms import v2

    from ..labels import NUM_CLASSES

    ops = []
    if config.mixup_alpha:
        ops.append(v2.MixUp(alpha=config.mixup_alpha, num_classes=NUM_CLASSES))
    if config.cutmix_alpha:
        ops.append(v2.CutMix(alpha=config.cutmix_alpha, num_classes=NUM_CLASSES))
    return ops[0] if len(ops) == 1 else v2.RandomChoice(ops)


def _epoch_line(name: str, row: dict[str, Any], epochs: int, improved: bool) -> str:
    star = " *" if improved else ""
    return (
        f"[{name}] epoch {row['epoch']}/{epochs}  "
        f"train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f} | "
        f"val loss {row['val_loss']:.4f} acc {row['val_acc']:.4f} "
        f"f1 {row['val_macro_f1']:.4f} | lr {row['lr']:.2e} | {row['seconds']:.1f} s{star}"
    )
