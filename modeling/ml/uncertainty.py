"""How unsure a model is about an image, and the labeling orders built on it (active learning).

Plain NumPy, shared by the labeling queue's predictions (modeling/queue_predictions.py) and the
active-learning benchmark (bench/active_learning.py), so both rank images by the same numbers.

- entropy: of the level probabilities, divided by log(number of levels), so 0 is a certain
  model and 1 is a uniform guess whatever the number of levels. High first.
- margin: p(likeliest level) - p(second likeliest), from 0 (a tie between two levels) to 1.
  Low first.
- level-balanced: round-robin over the predicted levels, so each level gets labels; within a
  level, images keep the order they came in.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ENTROPY = "entropy"
MARGIN = "margin"
MEASURES = (ENTROPY, MARGIN)


def _checked(probabilities: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    values = np.asarray(probabilities, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] < 2:
        raise ValueError(f"probabilities must be one row per image over at least two levels, not shape {values.shape}")
    return values


def entropy(probabilities: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Normalised entropy per row, in [0, 1]."""
    values = _checked(probabilities)
    clipped = np.clip(values, 1e-12, 1.0)
    found = -(values * np.log(clipped)).sum(axis=1) / np.log(values.shape[1])
    return np.clip(found, 0.0, 1.0)


def margin(probabilities: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """p(top level) - p(second level) per row, in [0, 1]."""
    values = _checked(probabilities)
    top_two = np.sort(values, axis=1)[:, -2:]
    return np.clip(top_two[:, 1] - top_two[:, 0], 0.0, 1.0)


def most_uncertain_first(probabilities: np.ndarray, measure: str) -> np.ndarray:
    """Row indices, least confident first (ties: the earlier row first)."""
    if measure == ENTROPY:
        key = -entropy(probabilities)
    elif measure == MARGIN:
        key = margin(probabilities)
    else:
        raise ValueError(f"unknown uncertainty measure {measure!r}; valid measures: {', '.join(MEASURES)}")
    return np.argsort(key, kind="stable")


def level_ranks(predicted_levels: Sequence[int], *, start: dict[int, int] | None = None) -> list[int]:
    """Each row's place among the rows predicted at its level, counting from `start[level]`
    (0 when not given). Ordering by (rank, level) then visits the levels in turn."""
    following = dict(start or {})
    ranks = []
    for level in predicted_levels:
        level = int(level)
        rank = following.get(level, 0)
        ranks.append(rank)
        following[level] = rank + 1
    return ranks


def level_balanced_order(predicted_levels: Sequence[int]) -> np.ndarray:
    """Row indices round-robin over the predicted levels, each level's rows in their order."""
    ranks = level_ranks(predicted_levels)
    return np.array(sorted(range(len(ranks)), key=lambda row: (ranks[row], int(predicted_levels[row]), row)), dtype=int)
