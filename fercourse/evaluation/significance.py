"""Is a difference real? Confidence intervals and paired tests on the same test faces.

Two models scored on the same 3,589 PrivateTest faces differ by chance as well as by skill: a
different set of test faces would have given slightly different accuracies. Two standard tools
say how much:

- :func:`bootstrap_ci`: resample the test faces with replacement, score each resample, and take
  the middle 95 % of those accuracies (the percentile bootstrap, Efron 1979);
- :func:`mcnemar`: the paired test for two classifiers on the same faces (McNemar 1947, the test
  Dietterich 1998 recommends for this case). Only the faces where exactly one of the two models is
  right carry information; if both were equally good, each such face would go either way with
  probability 1/2 (an exact binomial test on those discordant faces);
- :func:`significance_table`: both, for every model of a run against the most accurate one.

Introduced in ``notebooks/08_compare.ipynb``, which writes both in a few lines first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


def _as_correct(correct: np.ndarray, name: str = "correct") -> np.ndarray:
    array = np.asarray(correct)
    if array.ndim != 1 or len(array) == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {array.shape}")
    if array.dtype != bool and not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name} must hold booleans (or 0/1): right or wrong per test face")
    return array.astype(bool)


def bootstrap_accuracies(
    correct: np.ndarray, *, n_resamples: int = 1000, seed: int = 0
) -> np.ndarray:
    """The accuracy of each of ``n_resamples`` bootstrap resamples of the test faces.

    Each resample draws ``len(correct)`` faces with replacement (``np.random.default_rng(seed)``),
    so the same seed resamples the same faces for every model: their intervals are paired.

    Args:
        correct: (N,) bool, whether the model is right on each test face.
        n_resamples: how many resamples.
        seed: the resampling seed.

    Returns:
        (n_resamples,) float64 accuracies.
    """
    correct = _as_correct(correct)
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    rng = np.random.default_rng(seed)
    resamples = rng.integers(0, len(correct), size=(n_resamples, len(correct)))
    return correct[resamples].mean(axis=1)


def bootstrap_ci(
    correct: np.ndarray, *, n_resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of an accuracy.

    Args:
        correct: (N,) bool, whether the model is right on each test face
            (``probs.argmax(1) == labels``).
        n_resamples: bootstrap resamples (1,000 gives the 95 % bounds to about 0.1 points).
        level: the interval's coverage, e.g. ``0.95``.
        seed: the resampling seed (the same for every model: paired intervals).

    Returns:
        ``(low, high)``, fractions in [0, 1].

    Example:
        >>> correct = np.array([True] * 700 + [False] * 300)
        >>> low, high = bootstrap_ci(correct, seed=0)
        >>> round(low, 2), round(high, 2)
        (0.67, 0.73)
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    accuracies = bootstrap_accuracies(correct, n_resamples=n_resamples, seed=seed)
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(accuracies, [tail, 100.0 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's test of two classifiers on the same faces.

    Attributes:
        table: 2x2 counts ``[[both right, only A right], [only B right, both wrong]]``.
        only_a: faces only model A gets right.
        only_b: faces only model B gets right.
        statistic: the smaller discordant count (exact test) or the chi-square statistic.
        p_value: two-sided p-value: how often a difference at least this lopsided would appear
            if both models were equally accurate.
        method: ``"exact"`` (binomial) or ``"chi2"`` (with continuity correction).
    """

    table: np.ndarray
    only_a: int
    only_b: int
    statistic: float
    p_value: float
    method: str


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray, *, exact: bool = True) -> McNemarResult:
    """McNemar's paired test: are two models equally accurate on the same test faces?

    Args:
        correct_a, correct_b: (N,) bool, whether each model is right on each test face (the same
            faces in the same order).
        exact: the exact binomial test on the discordant faces (``scipy.stats.binomtest``, right
            for any count); ``False``: the chi-square approximation with continuity correction,
            ``(|b - c| - 1)^2 / (b + c)``, fine when ``b + c`` is above ~25.

    Returns:
        A :class:`McNemarResult`; ``p_value`` is 1 when no face separates the models.

    Example:
        >>> a = np.array([True] * 60 + [False] * 40)
        >>> b = np.array([True] * 50 + [False] * 50)
        >>> result = mcnemar(a, b)
        >>> result.only_a, result.only_b, round(result.p_value, 4)
        (10, 0, 0.002)
    """
    from scipy import stats

    a, b = _as_correct(correct_a, "correct_a"), _as_correct(correct_b, "correct_b")
    if a.shape != b.shape:
        raise ValueError(f"the two models were scored on different faces: {a.shape} vs {b.shape}")
    table = np.array([[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]])
    only_a, only_b = int(table[0, 1]), int(table[1, 0])
    discordant = only_a + only_b
    if exact:
        statistic = float(min(only_a, only_b))
        p = stats.binomtest(min(only_a, only_b), discordant, 0.5).pvalue if discordant else 1.0
    else:
        statistic = (abs(only_a - only_b) - 1) ** 2 / discordant if discordant else 0.0
        p = float(stats.chi2.sf(statistic, df=1)) if discordant else 1.0
    return McNemarResult(
        table=table,
        only_a=only_a,
        only_b=only_b,
        statistic=float(statistic),
        p_value=float(min(1.0, p)),
        method="exact" if exact else "chi2",
    )


def significance_table(
    correct: Mapping[str, np.ndarray],
    *,
    reference: str | None = None,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Each model's accuracy with its bootstrap interval, and McNemar's test against one model.

    Args:
        correct: model name -> (N,) bool right/wrong on the same test faces.
        reference: the model every other one is tested against (default: the most accurate).
        n_resamples, level, seed: see :func:`bootstrap_ci` (one seed: the same resamples for
            every model).

    Returns:
        A DataFrame indexed by model, most accurate first, with ``accuracy``, ``ci_low``,
        ``ci_high`` (fractions), ``only_reference_right``, ``only_this_right`` (discordant faces)
        and ``p_value`` (McNemar, exact; ``NaN`` on the reference's own row).

    Example:
        >>> table = fc.evaluation.significance_table(
        ...     {name: p.argmax(1) == labels for name, p in probs.items()}
        ... )  # doctest: +SKIP
    """
    import pandas as pd

    if not correct:
        raise ValueError("no model to compare")
    arrays = {name: _as_correct(c, f"correct[{name!r}]") for name, c in correct.items()}
    sizes = {len(c) for c in arrays.values()}
    if len(sizes) != 1:
        raise ValueError(f"the models were scored on different numbers of faces: {sorted(sizes)}")
    accuracy = {name: float(c.mean()) for name, c in arrays.items()}
    if reference is None:
        reference = max(accuracy, key=accuracy.__getitem__)
    if reference not in arrays:
        raise KeyError(f"reference {reference!r} is not among the models {list(arrays)}")
    rows = []
    for name, c in arrays.items():
        low, high = bootstrap_ci(c, n_resamples=n_resamples, level=level, seed=seed)
        row = {"model": name, "accuracy": accuracy[name], "ci_low": low, "ci_high": high}
        if name == reference:
            row |= {"only_reference_right": 0, "only_this_right": 0, "p_value": float("nan")}
        else:
            test = mcnemar(arrays[reference], c)
            row |= {
                "only_reference_right": test.only_a,
                "only_this_right": test.only_b,
                "p_value": test.p_value,
            }
        rows.append(row)
    table = pd.DataFrame(rows).set_index("model").sort_values("accuracy", ascending=False)
    table.attrs["reference"] = reference
    table.attrs["n"] = sizes.pop()
    table.attrs["level"] = level
    return table
