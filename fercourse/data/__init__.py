"""The data room: FER2013 in any format, the synthetic stand-in, splits, reports, augmentation
and loaders. Introduced in ``notebooks/01_data.ipynb``.

    import fercourse as fc
    data = fc.data.load_fer2013()              # FER2013 if present, else the synthetic faces
    print(fc.data.data_report(data))           # imbalance, duplicates, blank images
    split = fc.data.make_split(data)           # saved once, reused by every model
    loaders = fc.data.make_loaders(data, split)
    x, y = next(iter(loaders.train))           # (64, 1, 48, 48) float, (64,) int64

One module per responsibility: ``dataset`` (the :class:`FER2013` container), ``formats`` (CSV
files), ``folders`` (image folders), ``ferplus`` (FERPlus votes), ``cache`` (the .npz cache),
``load`` (format detection and :func:`load_fer2013`), ``synthetic`` (the stand-in), ``splits``,
``report``, ``labelling`` (label faces yourself and measure agreement), ``sampling`` (class
weights, samplers, subsets), ``augment``, ``loaders``, ``fetch`` and ``cli``.
"""

from __future__ import annotations

from .augment import (
    AUGMENT_RECIPES,
    DEFAULT_AUGMENT,
    LIGHT_AUGMENT,
    NO_AUGMENT,
    AugmentSettings,
    BatchAugment,
    eval_transform,
    train_transform,
)
from .dataset import (
    FER2013,
    FER2013_CLASS_COUNTS,
    FER2013_USAGE_COUNTS,
    USAGES,
    DataError,
)
from .ferplus import apply_ferplus, ferplus_labels, ferplus_votes_for, majority_vote
from .fetch import fetch_fer2013, manual_steps, verify_counts
from .folders import read_image_folders
from .formats import read_fer2013_csv, write_fer2013_csv
from .labelling import (
    LETTERS,
    LabelAgreement,
    Labeller,
    cohen_kappa,
    label_agreement,
    labelling_sample,
    parse_labels,
)
from .load import detect_format, find_fer2013, load_fer2013, load_synthetic
from .loaders import Loaders, make_loaders
from .photos import sample_photo
from .report import NEAR_CONSTANT_STD, DataReport, data_report
from .sampling import class_weights, stratified_subset, weighted_sampler
from .splits import Split, SplitError, make_split
from .synthetic import DEFAULT_SYNTHETIC_N, make_synthetic_faces

__all__ = [
    "AUGMENT_RECIPES",
    "DEFAULT_AUGMENT",
    "DEFAULT_SYNTHETIC_N",
    "FER2013",
    "FER2013_CLASS_COUNTS",
    "FER2013_USAGE_COUNTS",
    "LETTERS",
    "LIGHT_AUGMENT",
    "NEAR_CONSTANT_STD",
    "NO_AUGMENT",
    "USAGES",
    "AugmentSettings",
    "BatchAugment",
    "DataError",
    "DataReport",
    "LabelAgreement",
    "Labeller",
    "Loaders",
    "Split",
    "SplitError",
    "apply_ferplus",
    "class_weights",
    "cohen_kappa",
    "data_report",
    "detect_format",
    "eval_transform",
    "ferplus_labels",
    "ferplus_votes_for",
    "fetch_fer2013",
    "find_fer2013",
    "label_agreement",
    "labelling_sample",
    "load_fer2013",
    "load_synthetic",
    "majority_vote",
    "make_loaders",
    "make_split",
    "make_synthetic_faces",
    "manual_steps",
    "parse_labels",
    "read_fer2013_csv",
    "read_image_folders",
    "sample_photo",
    "stratified_subset",
    "train_transform",
    "verify_counts",
    "weighted_sampler",
    "write_fer2013_csv",
]
