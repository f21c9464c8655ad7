"""``fc.data.make_loaders``: train / val / test batches from a FER2013 dataset and its split.

Every loader yields ``(x, y)``: ``x`` the float (B, 1, 48, 48) model input made by
``fc.preprocessing.to_tensor`` and ``y`` int64 (B,) labels, on the requested device.

Two training paths, same augmentation recipe (:mod:`fercourse.data.augment`):

- ``augment="batch"`` (default): the uint8 faces live in one tensor on the device (82 MB for all
  of FER2013, moved once); each batch is indexed and augmented there with
  :class:`~fercourse.data.BatchAugment`. No worker processes, no per-image Python: fast on a CPU
  and the only fast option on a GPU.
- ``augment="albumentations"``: a ``torch.utils.data.DataLoader`` applies
  :func:`~fercourse.data.train_transform` to each image (the textbook way, slower).
- ``augment=None``: no augmentation.

Evaluation loaders never augment or shuffle. Everything is seeded: epoch ``e`` of a loader
made with ``seed`` always gives the same batches (``set_epoch`` resumes exactly).
Introduced in ``notebooks/01_data.ipynb``; used by ``fc.fit`` and ``fc.evaluate``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from ..preprocessing import to_tensor
from ..utils import default_device, epoch_seed
from .augment import DEFAULT_AUGMENT, AugmentSettings, BatchAugment, train_transform
from .dataset import FER2013
from .sampling import class_weights, stratified_subset
from .splits import PARTS, Split, check_split, make_split

AUGMENT_MODES = ("batch", "albumentations", None)


class TensorBatches:
    """Batches drawn from uint8 faces held in one tensor (on a CPU or a GPU).

    Args:
        images: (N, 48, 48) uint8 tensor of the whole dataset, already on its device.
        labels: (N,) int64 tensor on the same device.
        indices: positions of this loader's images in ``images``.
        batch_size: images per batch.
        shuffle: reshuffle every epoch.
        augment: a :class:`BatchAugment` or None.
        weights: per-class weights for class-balanced sampling with replacement, or None.
        seed: seed of the shuffling/sampling and the augmentation.
        drop_last: drop the last incomplete batch.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        indices: np.ndarray,
        *,
        batch_size: int = 64,
        shuffle: bool = False,
        augment: BatchAugment | None = None,
        weights: torch.Tensor | None = None,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        self.images, self.labels = images, labels
        self.indices = np.asarray(indices, dtype=np.int64)
        self._index_t = torch.as_tensor(self.indices)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.augment, self.seed, self.epoch = augment, seed, 0
        self._sample_weights = None
        if weights is not None:
            own_labels = labels[self._index_t.to(labels.device)].cpu()
            self._sample_weights = weights.double()[own_labels]

    @property
    def device(self) -> torch.device:
        return self.images.device

    def __len__(self) -> int:
        n = len(self.indices)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration epoch ``epoch`` (to resume a run exactly)."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.indices)
        g = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        if self.augment is not None:
            self.augment.generator.manual_seed(epoch_seed(self.seed + 1, self.epoch))
        self.epoch += 1
        if self._sample_weights is not None:
            order = torch.multinomial(self._sample_weights, n, replacement=True, generator=g)
        elif self.shuffle:
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        positions = self._index_t[order].to(self.device)
        for i in range(len(self)):
            batch = positions[i * self.batch_size : (i + 1) * self.batch_size]
            faces = self.images[batch]
            if self.augment is not None:
                faces = self.augment(faces)
            yield to_tensor(faces), self.labels[batch]


class _AugmentedFaces(torch.utils.data.Dataset):
    def __init__(self, images: np.ndarray, labels: np.ndarray, transform) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.transform(image=self.images[i])["image"], int(self.labels[i])


def _collate(batch):
    faces = np.stack([b[0] for b in batch])
    return to_tensor(faces), torch.tensor([b[1] for b in batch], dtype=torch.int64)


class AlbumentationsBatches:
    """Training batches through a ``DataLoader`` with per-image albumentations (seeded)."""

    def __init__(
        self,
        ds: FER2013,
        indices: np.ndarray,
        *,
        batch_size: int,
        settings: AugmentSettings,
        weights: torch.Tensor | None,
        seed: int,
        drop_last: bool,
        device: torch.device,
        num_workers: int = 0,
    ) -> None:
        self.indices = np.asarray(indices, dtype=np.int64)
        self.transform = train_transform(settings, seed=seed)
        self.seed, self.epoch, self.device = seed, 0, device
        self.generator = torch.Generator()
        sampler = None
        if weights is not None:
            sampler = torch.utils.data.WeightedRandomSampler(
                weights.double()[ds.labels[self.indices]],
                num_samples=len(self.indices),
                replacement=True,
                generator=self.generator,
            )
        self.loader = torch.utils.data.DataLoader(
            _AugmentedFaces(ds.images[self.indices], ds.labels[self.indices], self.transform),
            batch_size=batch_size,
            shuffle=sampler is None,
            sampler=sampler,
            generator=self.generator,
            drop_last=drop_last,
            num_workers=num_workers,
            collate_fn=_collate,
        )

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration epoch ``epoch``."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.generator.manual_seed(epoch_seed(self.seed, self.epoch))
        self.transform.set_random_seed(epoch_seed(self.seed + 1, self.epoch) % (2**32))
        self.epoch += 1
        for x, y in self.loader:
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


@dataclass
class Loaders:
    """The four loaders of one dataset and split (iterate any of them for ``(x, y)`` batches).

    Introduced in ``notebooks/01_data.ipynb``.

    Attributes:
        train, val, public_test, private_test: the loaders (``len()`` is batches per epoch).
        split: the :class:`~fercourse.data.Split` they follow.
        synthetic: True when the faces are the synthetic stand-in.
        info: how they were made (augmentation, sampler, subset sizes, device).
    """

    train: TensorBatches | AlbumentationsBatches
    val: TensorBatches
    public_test: TensorBatches
    private_test: TensorBatches
    split: Split
    synthetic: bool = False
    info: dict = field(default_factory=dict)

    def __getitem__(self, part: str):
        key = {"PublicTest": "public_test", "PrivateTest": "private_test"}.get(part, part)
        if key not in PARTS:
            raise KeyError(f"unknown loader {part!r}; expected one of {', '.join(PARTS)}")
        return getattr(self, key)

    def sizes(self) -> dict[str, int]:
        """Images per loader (after any subset)."""
        return {part: len(self[part].indices) for part in PARTS}


def _subset(split: Split, ds: FER2013, max_per_split, seed: int) -> dict[str, np.ndarray]:
    parts = {p: split[p] for p in PARTS}
    if max_per_split is None:
        return parts
    limits = (
        max_per_split if isinstance(max_per_split, dict) else dict.fromkeys(PARTS, max_per_split)
    )
    unknown = set(limits) - set(PARTS)
    if unknown:
        raise KeyError(f"max_per_split has unknown parts {sorted(unknown)}; expected {PARTS}")
    for part, limit in limits.items():
        if limit is not None:
            idx = parts[part]
            parts[part] = idx[stratified_subset(ds.labels[idx], int(limit), seed=seed)]
    return parts


def make_loaders(
    ds: FER2013,
    split: Split | None = None,
    *,
    batch_size: int = 64,
    eval_batch_size: int | None = None,
    augment: str | None = "batch",
    settings: AugmentSettings = DEFAULT_AUGMENT,
    weighted_sampler: bool = False,
    device: str | torch.device = "cpu",
    seed: int = 0,
    max_per_split: int | dict[str, int | None] | None = None,
    drop_last: bool = False,
    num_workers: int = 0,
) -> Loaders:
    """Train / val / PublicTest / PrivateTest loaders yielding ``(x, y)`` batches.

    Introduced in ``notebooks/01_data.ipynb``.

    Args:
        ds: the dataset.
        split: a :class:`~fercourse.data.Split` of ``ds`` (default: :func:`make_split` (ds),
            the saved default split).
        batch_size: training batch size.
        eval_batch_size: evaluation batch size (default: 4x ``batch_size``).
        augment: ``"batch"`` (tensor ops on the device, default), ``"albumentations"``
            (per image in a DataLoader) or None.
        settings: the augmentation recipe.
        weighted_sampler: draw training batches class-balanced (with replacement) instead of
            shuffling; combine with a plain loss (not with class weights too).
        device: where batches are delivered (``"auto"``: CUDA if available). With
            ``augment="batch"`` the uint8 faces are moved there once.
        seed: seeds shuffling, sampling, augmentation and the subset.
        max_per_split: keep at most this many images per part, stratified by class (an int for
            every part or a dict such as ``{"train": 2000, "val": 500}``): the CPU "smoke" runs.
        drop_last: drop the last incomplete training batch.
        num_workers: DataLoader workers for ``augment="albumentations"`` (0: in process).

    Returns:
        :class:`Loaders`.

    Example:
        >>> import fercourse as fc
        >>> data = fc.data.load_fer2013()  # doctest: +SKIP
        >>> loaders = fc.data.make_loaders(data, max_per_split={"train": 2000})  # doctest: +SKIP
        >>> x, y = next(iter(loaders.train))  # doctest: +SKIP
        >>> x.shape, y.dtype  # doctest: +SKIP
        (torch.Size([64, 1, 48, 48]), torch.int64)
    """
    if augment not in AUGMENT_MODES:
        raise ValueError(f"augment must be one of {AUGMENT_MODES}, got {augment!r}")
    split = make_split(ds) if split is None else split
    check_split(split, ds)
    device = default_device(device)
    parts = _subset(split, ds, max_per_split, seed)
    eval_batch_size = eval_batch_size or 4 * batch_size
    weights = class_weights(ds.labels[parts["train"]]) if weighted_sampler else None

    # One copy of the faces on the device, shared by every loader.
    images = torch.from_numpy(ds.images).to(device)
    labels = torch.from_numpy(ds.labels).to(device)

    def evaluation(part: str) -> TensorBatches:
        return TensorBatches(images, labels, parts[part], batch_size=eval_batch_size)

    if augment == "albumentations":
        train = AlbumentationsBatches(
            ds,
            parts["train"],
            batch_size=batch_size,
            settings=settings,
            weights=weights,
            seed=seed,
            drop_last=drop_last,
            device=device,
            num_workers=num_workers,
        )
    else:
        train = TensorBatches(
            images,
            labels,
            parts["train"],
            batch_size=batch_size,
            shuffle=True,
            augment=BatchAugment(settings, seed=seed) if augment == "batch" else None,
            weights=weights,
            seed=seed,
            drop_last=drop_last,
        )
    info = {
        "augment": augment,
        "weighted_sampler": weighted_sampler,
        "batch_size": batch_size,
        "eval_batch_size": eval_batch_size,
        "device": str(device),
        "seed": seed,
        "max_per_split": max_per_split,
        "sizes": {p: len(v) for p, v in parts.items()},
        "split_hash": split.hash,
        "synthetic": ds.synthetic,
    }
    return Loaders(
        train=train,
        val=evaluation("val"),
        public_test=evaluation("public_test"),
        private_test=evaluation("private_test"),
        split=split,
        synthetic=ds.synthetic,
        info=info,
    )
