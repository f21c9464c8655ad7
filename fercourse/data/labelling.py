"""Label it yourself: how often do people agree with FER2013's labels?

Each FER2013 label is one judgement: the emotion word of the web search that found the image,
checked by a person who could reject the face (Goodfellow et al. 2013). A person who labels the
faces again agrees with that label about 65% of the time. FER+ (Barsoum et al. 2016) had ten
people label every face again (``fer2013new.csv``, read by :mod:`fercourse.data.ferplus`).

This module measures agreement the same way for your own labels:

- :func:`labelling_sample`: which faces to label (seeded, in the data's class proportions);
- :func:`parse_labels`: your answers as letters (``"h s n"``), names, codes or emoji;
- :func:`label_agreement` -> :class:`LabelAgreement`: the share of faces where two labellings
  agree, Cohen's kappa (agreement corrected for chance) and the confusion between them, and,
  with the FER+ votes, how many of the ten voters chose your label and FER2013's;
- :func:`cohen_kappa`: kappa from a confusion matrix;
- :class:`Labeller`: seven buttons under one face at a time, in JupyterLab.

Introduced in ``notebooks/01_data.ipynb``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..labels import EMOJI, EMOTIONS, NUM_CLASSES
from .ferplus import fer_columns, ferplus_labels

if TYPE_CHECKING:
    import pandas as pd

    from .dataset import FER2013

__all__ = [
    "LETTERS",
    "LabelAgreement",
    "Labeller",
    "cohen_kappa",
    "label_agreement",
    "labelling_sample",
    "parse_labels",
]

LETTERS: dict[str, str] = {
    "a": "angry",
    "d": "disgust",
    "f": "fear",
    "h": "happy",
    "s": "sad",
    "u": "surprise",
    "n": "neutral",
}
"""One letter per emotion for typing labels quickly (``u`` for surprise: ``s`` is sad)."""

_LETTER_OF = {name: letter for letter, name in LETTERS.items()}
_EMOJI_CODE = {emoji: EMOTIONS.index(name) for name, emoji in EMOJI.items()}


def labelling_sample(
    data: FER2013, n: int = 21, *, usage: str = "Training", seed: int = 0
) -> np.ndarray:
    """Indices of ``n`` faces of one part of ``data`` to label yourself, in a random order.

    The faces are drawn at random, so their classes follow the data's proportions (a stratified
    draw would tell you how many faces of each emotion to expect).

    Args:
        data: the dataset.
        n: how many faces (all of the part when it has fewer).
        usage: ``"Training"``, ``"PublicTest"`` or ``"PrivateTest"``.
        seed: which faces.

    Returns:
        int64 indices into ``data``.

    Example:
        >>> import fercourse as fc
        >>> faces = fc.data.make_synthetic_faces(n=300)
        >>> fc.data.labelling_sample(faces, n=5).shape
        (5,)
    """
    members = np.flatnonzero(data.usage == usage)
    if len(members) == 0:
        raise ValueError(f"no {usage} faces in {data.source or 'the data'}")
    rng = np.random.default_rng(seed)
    return rng.choice(members, size=min(n, len(members)), replace=False).astype(np.int64)


def _code(token: Any, position: int) -> int:
    """One answer as a FER2013 code; ValueError naming the answer and its position."""
    if isinstance(token, (bool, np.bool_)):
        raise ValueError(f"answer {position}: {token!r} is not an emotion")
    if isinstance(token, (int, np.integer)):
        if 0 <= int(token) < NUM_CLASSES:
            return int(token)
    elif isinstance(token, str):
        key = token.strip().lower()
        if key in LETTERS:
            return EMOTIONS.index(LETTERS[key])
        if key in EMOTIONS:
            return EMOTIONS.index(key)
        if key in _EMOJI_CODE:
            return _EMOJI_CODE[key]
        if key.isdigit() and 0 <= int(key) < NUM_CLASSES:
            return int(key)
    letters = " ".join(f"{k}={v}" for k, v in LETTERS.items())
    raise ValueError(
        f"answer {position}: {token!r} is not an emotion; use a letter ({letters}), a name, "
        "a code 0-6 or an emoji"
    )


def parse_labels(answers: str | Iterable[Any] | None) -> np.ndarray:
    """Turn answers into FER2013 codes.

    Args:
        answers: a string of letters (``"hsn"``, or ``"h s n"``: see :data:`LETTERS`), of names
            (``"happy, sad, neutral"``), codes or emoji; or a sequence of any of these
            (``["happy", 4, "😐"]``). ``None`` or ``""`` means nothing labelled yet.

    Returns:
        int64 codes in FER2013 order (empty when nothing is labelled).

    Raises:
        ValueError: an answer that is no emotion, naming its position (from 1) and value.

    Example:
        >>> parse_labels("h s n").tolist(), parse_labels(["angry", 6]).tolist()
        ([3, 4, 6], [0, 6])
    """
    if answers is None:
        return np.zeros(0, dtype=np.int64)
    if isinstance(answers, str):
        tokens: list[Any] = [t for t in re.split(r"[\s,;]+", answers.strip()) if t]
        if len(tokens) == 1 and tokens[0].lower() not in EMOTIONS:
            tokens = list(tokens[0])  # "hsn", "346", or emoji typed together
    else:
        tokens = list(np.asarray(answers, dtype=object).reshape(-1))
    return np.array([_code(t, i) for i, t in enumerate(tokens, start=1)], dtype=np.int64)


def cohen_kappa(confusion: np.ndarray) -> float:
    """Cohen's kappa of two labellings from their confusion matrix (counts).

    ``kappa = (p_o - p_e) / (1 - p_e)``: ``p_o`` is the share of faces where the two agree,
    ``p_e`` the share they would agree on by chance, labelling independently with the same
    class frequencies (Cohen 1960). 1 is perfect agreement, 0 what chance gives.

    Returns:
        kappa, or NaN when it is undefined (no faces, or both labellings use one class only).

    Example:
        >>> cohen_kappa(np.array([[8, 2], [2, 8]]))
        0.6
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    n = confusion.sum()
    if n == 0:
        return float("nan")
    p_o = np.trace(confusion) / n
    p_e = float((confusion.sum(axis=1) * confusion.sum(axis=0)).sum() / n**2)
    if math.isclose(p_e, 1.0):
        return float("nan")
    return float((p_o - p_e) / (1.0 - p_e))


@dataclass
class LabelAgreement:
    """How two labellings of the same faces agree (what :func:`label_agreement` returns).

    Attributes:
        n: faces compared (answered, and with a reference label).
        total: faces in the reference (``n`` is smaller while you are still labelling).
        skipped: answered faces without a reference label (e.g. no FER+ majority).
        accuracy: the share of the ``n`` faces where the two labels are the same.
        kappa: Cohen's kappa (:func:`cohen_kappa`).
        confusion: (7, 7) counts, rows the reference label, columns the answer (code order).
        ferplus: with the FER+ votes: ``agrees_with_majority`` (the share of faces with a
            FER+ majority emotion where you chose it), ``faces_with_majority``,
            ``your_vote_share`` and ``reference_vote_share`` (how many of the ten FER+ voters
            chose your label, and the reference's, on average); else ``None``.
    """

    n: int
    total: int
    skipped: int
    accuracy: float
    kappa: float
    confusion: np.ndarray = field(repr=False)
    ferplus: dict[str, float] | None = None

    def summary(self) -> dict[str, float]:
        """Plain numbers, one row of a comparison table."""
        row: dict[str, float] = {"faces": self.n, "agreement": self.accuracy, "kappa": self.kappa}
        if self.ferplus is not None:
            row["FER+ majority"] = self.ferplus["agrees_with_majority"]
            row["FER+ voters"] = self.ferplus["your_vote_share"]
        return row

    def confusion_frame(self) -> pd.DataFrame:
        """The confusion matrix with emotion names (rows: the reference, columns: the answers)."""
        import pandas as pd

        return pd.DataFrame(
            self.confusion,
            index=pd.Index(EMOTIONS, name="reference"),
            columns=pd.Index(EMOTIONS, name="answer"),
        )

    def __str__(self) -> str:
        if self.n == 0:
            return f"no faces compared yet (0 of {self.total})"
        text = (
            f"{self.n} of {self.total} faces: the labels agree on {self.accuracy:.0%} of them, "
            f"Cohen's kappa {self.kappa:.2f}"
        )
        if self.skipped:
            text += f" ({self.skipped} without a reference label left out)"
        if self.ferplus is not None:
            f = self.ferplus
            text += (
                f"; FER+ majority chosen on {f['agrees_with_majority']:.0%} of "
                f"{int(f['faces_with_majority'])} faces; of the ten FER+ voters, "
                f"{10 * f['your_vote_share']:.1f} chose the answer and "
                f"{10 * f['reference_vote_share']:.1f} the reference label, on average"
            )
        return text

    def _repr_markdown_(self) -> str:
        return str(self)


def label_agreement(
    answers: str | Iterable[Any] | None,
    reference: Sequence[int] | np.ndarray,
    *,
    ferplus_votes: np.ndarray | None = None,
) -> LabelAgreement:
    """Compare answers with reference labels of the same faces, in the same order.

    Introduced in ``notebooks/01_data.ipynb``: your labels against FER2013's, FER2013 against
    itself (identical images), FER2013 against the FER+ majority.

    Args:
        answers: anything :func:`parse_labels` reads. Fewer answers than faces compares the
            first ones (so you can check half-way); none gives ``n == 0``.
        reference: the reference codes (e.g. ``data.labels[indices]``); ``-1`` marks a face
            without a reference label, which is left out (counted in ``skipped``).
        ferplus_votes: the FER+ votes of the same faces, (N, 10), e.g.
            ``fc.data.ferplus_votes_for(data)[indices]``.

    Returns:
        A :class:`LabelAgreement`.

    Raises:
        ValueError: more answers than faces, an answer that is no emotion, or votes of another
            length.

    Example:
        >>> label_agreement("h h s", [3, 4, 4]).accuracy
        0.6666666666666666
    """
    codes = parse_labels(answers)
    ref = np.asarray(reference, dtype=np.int64).reshape(-1)
    if len(codes) > len(ref):
        raise ValueError(f"{len(codes)} answers for {len(ref)} faces")
    if ref.size and (ref.min() < -1 or ref.max() >= NUM_CLASSES):
        raise ValueError("reference labels must be codes 0-6 (or -1: no label)")
    answered = ref[: len(codes)]
    has_ref = answered >= 0
    a, r = codes[has_ref], answered[has_ref]
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(confusion, (r, a), 1)
    n = int(has_ref.sum())
    ferplus = None
    if ferplus_votes is not None:
        votes = np.asarray(ferplus_votes)
        if votes.shape != (len(ref), 10):
            raise ValueError(f"ferplus_votes must be ({len(ref)}, 10), got {votes.shape}")
        ferplus = _ferplus_agreement(codes, ref, votes[: len(codes)])
    return LabelAgreement(
        n=n,
        total=len(ref),
        skipped=int((~has_ref).sum()),
        accuracy=float((a == r).mean()) if n else float("nan"),
        kappa=cohen_kappa(confusion),
        confusion=confusion,
        ferplus=ferplus,
    )


def _ferplus_agreement(codes: np.ndarray, ref: np.ndarray, votes: np.ndarray) -> dict[str, float]:
    majority = ferplus_labels(votes)
    with_majority = majority >= 0
    totals = np.maximum(votes.sum(axis=1), 1)
    columns = fer_columns()
    answered = len(codes)
    your_share = votes[np.arange(answered), columns[codes]] / totals if answered else np.zeros(0)
    has_ref = ref[:answered] >= 0
    rows = np.flatnonzero(has_ref)
    ref_share = votes[rows, columns[ref[:answered][has_ref]]] / totals[rows]
    return {
        "agrees_with_majority": float((codes[with_majority] == majority[with_majority]).mean())
        if with_majority.any()
        else float("nan"),
        "faces_with_majority": int(with_majority.sum()),
        "your_vote_share": float(your_share.mean()) if answered else float("nan"),
        "reference_vote_share": float(ref_share.mean()) if len(rows) else float("nan"),
    }


class Labeller:
    """Label faces yourself in JupyterLab: one face at a time, seven emotion buttons.

    Display it (last line of a cell), click an emotion for each face (``back`` undoes one), then
    read :attr:`answers` in the next cell: ``fc.data.label_agreement(labeller.answers, ...)``.
    Without a browser (a headless run) nothing is clicked and :attr:`answers` stays empty.

    Args:
        data: the dataset.
        indices: the faces to label, e.g. from :func:`labelling_sample`.
        size: the face's width on screen, in pixels (the 48x48 image is scaled by the browser).

    Example:
        >>> labeller = fc.data.Labeller(data, fc.data.labelling_sample(data))  # doctest: +SKIP
        >>> labeller  # doctest: +SKIP
    """

    def __init__(self, data: FER2013, indices: Sequence[int] | np.ndarray, *, size: int = 192):
        import cv2
        import ipywidgets as widgets

        self.indices = np.asarray(indices, dtype=np.int64)
        self._png = [cv2.imencode(".png", data.images[i])[1].tobytes() for i in self.indices]
        self.answers: list[str] = []
        self.image = widgets.Image(format="png", width=size, height=size)
        self.status = widgets.HTML()
        self.buttons = []
        for name in EMOTIONS:
            button = widgets.Button(
                description=f"{EMOJI[name]} {name}",
                tooltip=f"{name} (letter {_LETTER_OF[name]})",
                layout=widgets.Layout(width="auto"),
            )
            button.on_click(lambda _b, name=name: self.answer(name))
            self.buttons.append(button)
        self.back = widgets.Button(description="back", icon="undo")
        self.back.on_click(lambda _b: self.undo())
        self.widget = widgets.VBox(
            [self.status, self.image, widgets.HBox(self.buttons), self.back]
        )
        self._show()

    def answer(self, emotion: str) -> None:
        """Record ``emotion`` for the face on screen and show the next one (what a button does)."""
        if len(self.answers) < len(self.indices):
            self.answers.append(EMOTIONS[_code(emotion, len(self.answers) + 1)])
        self._show()

    def undo(self) -> None:
        """Forget the last answer and show its face again."""
        if self.answers:
            self.answers.pop()
        self._show()

    def as_letters(self) -> str:
        """The answers as letters (:data:`LETTERS`), e.g. to keep them in a parameter."""
        return " ".join(_LETTER_OF[name] for name in self.answers)

    def _show(self) -> None:
        done = len(self.answers)
        total = len(self.indices)
        for button in self.buttons:
            button.disabled = done >= total
        if done < total:
            self.image.value = self._png[done]
            self.status.value = f"<b>face {done + 1} of {total}</b>: which emotion is it?"
        else:
            self.status.value = (
                f"<b>all {total} faces labelled</b>: run the next cell "
                f"(your answers: <code>{self.as_letters()}</code>)"
            )

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return f"Labeller({len(self.answers)} of {len(self.indices)} faces labelled)"
