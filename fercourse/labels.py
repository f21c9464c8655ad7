"""The one source of truth for FER2013's label order and each emotion's emoji.

FER2013 stores labels as integer codes 0-6 in this exact order. Every other module (data
loading, training, evaluation, the mirror) imports these names instead of spelling the order
again, because label-order mix-ups are the most common silent bug in FER projects.
Introduced in ``notebooks/01_data.ipynb``.
"""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""Emotion names in FER2013 code order: ``EMOTIONS[code]`` is the name of label ``code``."""

NUM_CLASSES: int = len(EMOTIONS)

EMOJI: dict[str, str] = {
    "angry": "\N{POUTING FACE}",
    "disgust": "\N{NAUSEATED FACE}",
    "fear": "\N{FEARFUL FACE}",
    "happy": "\N{GRINNING FACE WITH SMILING EYES}",
    "sad": "\N{CRYING FACE}",
    "surprise": "\N{ASTONISHED FACE}",
    "neutral": "\N{NEUTRAL FACE}",
}
"""Emotion name -> emoji shown by plots and the live mirror."""


def emotion_index(name: str) -> int:
    """Return the FER2013 code of an emotion name (case-insensitive).

    Raises:
        ValueError: if ``name`` is not one of :data:`EMOTIONS`.
    """
    key = name.strip().lower()
    if key not in EMOTIONS:
        raise ValueError(f"unknown emotion {name!r}; expected one of {', '.join(EMOTIONS)}")
    return EMOTIONS.index(key)
