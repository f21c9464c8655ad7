"""Steady emoji: follow each face across frames and average its probabilities over time.

A classifier looking at 30 frames a second flickers: a blink or a shadow flips the top class for a
frame or two. The mirror therefore keeps one *track* per face and shows an exponential moving
average (EMA) of that face's probabilities::

    smoothed = smoothing * smoothed + (1 - smoothing) * new        # per face, per frame

``smoothing = 0`` shows every frame's raw answer; ``0.6`` (default) settles in ~5 frames (~0.2 s
at 25 frames/s); ``0.9`` is calm but slow to follow a change of expression.

Matching faces between frames is a tiny tracker: each new box is given to the track whose last
box overlaps it most (intersection over union, greedy, best pairs first), if that overlap is at
least ``min_iou``; unmatched boxes start new tracks, and tracks unseen for ``max_missed`` frames
are forgotten. Faces in a classroom mirror move little between frames, so IoU is enough.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..inference.face_detector import Box, iou


@dataclass
class Track:
    """One face followed over time.

    Attributes:
        track_id: stable number shown next to the face (1, 2, ...).
        box: the face's last box.
        probabilities: the smoothed probabilities (7,) in :data:`fercourse.EMOTIONS` order.
        age: frames since the track started.
        missed: frames in a row without a matching box.
    """

    track_id: int
    box: Box
    probabilities: np.ndarray | None
    age: int = 0
    missed: int = 0


class FaceTracks:
    """Per-face EMA of probabilities, faces matched across frames by box IoU.

    Args:
        smoothing: EMA weight of the past, in [0, 1) (0 = no smoothing).
        min_iou: least overlap for a box to continue a track.
        max_missed: frames a track survives without a matching box.
    """

    def __init__(
        self, smoothing: float = 0.6, *, min_iou: float = 0.3, max_missed: int = 5
    ) -> None:
        self.smoothing = smoothing
        self.min_iou = float(min_iou)
        self.max_missed = int(max_missed)
        self.tracks: list[Track] = []
        self._next_id = 1

    @property
    def smoothing(self) -> float:
        return self._smoothing

    @smoothing.setter
    def smoothing(self, value: float) -> None:
        if not 0.0 <= value < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {value}")
        self._smoothing = float(value)

    def reset(self) -> None:
        """Forget every face (e.g. when the model changes: old probabilities mean nothing)."""
        self.tracks.clear()

    def match(self, boxes: Sequence[Box]) -> list[Track]:
        """Assign each box to a track (creating tracks as needed); returns one track per box.

        Tracks that got no box age by one missed frame and are dropped after ``max_missed``.
        """
        pairs = sorted(
            (
                (iou(track.box, box), t, b)
                for t, track in enumerate(self.tracks)
                for b, box in enumerate(boxes)
            ),
            reverse=True,
        )
        owner: dict[int, Track] = {}
        used: set[int] = set()
        for overlap, t, b in pairs:
            if overlap < self.min_iou:
                break
            if t in used or b in owner:
                continue
            owner[b] = self.tracks[t]
            used.add(t)
        for t, track in enumerate(self.tracks):
            if t not in used:
                track.missed += 1
        result = []
        for b, box in enumerate(boxes):
            track = owner.get(b)
            if track is None:
                track = Track(self._next_id, tuple(box), None)
                self._next_id += 1
                self.tracks.append(track)
            track.box = tuple(int(v) for v in box)
            track.missed = 0
            track.age += 1
            result.append(track)
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return result

    def update(self, tracks: Sequence[Track], probabilities: np.ndarray) -> np.ndarray:
        """Blend each track's new probabilities into its average; returns the smoothed (N, 7)."""
        probabilities = np.asarray(probabilities, dtype=np.float32)
        out = np.empty_like(probabilities)
        a = self._smoothing
        for i, (track, p) in enumerate(zip(tracks, probabilities)):
            if track.probabilities is None or a == 0.0:
                track.probabilities = np.asarray(p, dtype=np.float32).copy()
            else:
                track.probabilities = (a * track.probabilities + (1.0 - a) * p).astype(np.float32)
            out[i] = track.probabilities
        return out
