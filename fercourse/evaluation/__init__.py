"""Evaluation: scores, test-time augmentation, calibration and ensembles.

``fc.evaluate(model, data, split="PrivateTest")`` is the one call most notebooks make; the rest
is introduced in ``notebooks/02_baseline.ipynb`` (TTA, calibration) and
``notebooks/08_compare.ipynb`` (ensembles; whether a difference is real: bootstrap intervals and
McNemar's paired test).
"""

from __future__ import annotations

from .calibration import (
    expected_calibration_error,
    reliability_bins,
    temperature_from_logits,
)
from .ensemble import ensemble_proba, evaluate_ensemble
from .metrics import (
    METRICS_FILE,
    SPLITS,
    compute_metrics,
    evaluate,
    fit_temperature,
    predict_logits,
    predict_proba,
    save_metrics,
    split_indices,
)
from .significance import (
    McNemarResult,
    bootstrap_accuracies,
    bootstrap_ci,
    mcnemar,
    significance_table,
)
from .tta import ten_crop_views, tta_views

__all__ = [
    "METRICS_FILE",
    "SPLITS",
    "McNemarResult",
    "bootstrap_accuracies",
    "bootstrap_ci",
    "compute_metrics",
    "ensemble_proba",
    "evaluate",
    "evaluate_ensemble",
    "expected_calibration_error",
    "fit_temperature",
    "mcnemar",
    "predict_logits",
    "predict_proba",
    "reliability_bins",
    "save_metrics",
    "significance_table",
    "split_indices",
    "temperature_from_logits",
    "ten_crop_views",
    "tta_views",
]
