"""modeling/ml/uncertainty.py: entropy and margin against their definitions, and the labeling orders."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import entropy as scipy_entropy

from modeling.ml.uncertainty import (
    entropy,
    level_balanced_order,
    level_ranks,
    margin,
    most_uncertain_first,
)

PROBABILITIES = np.array(
    [
        [0.97, 0.01, 0.01, 0.01],  # sure
        [0.25, 0.25, 0.25, 0.25],  # uniform
        [0.49, 0.48, 0.02, 0.01],  # a near tie between two levels
        [0.40, 0.20, 0.20, 0.20],  # spread, clear winner
    ]
)


def test_entropy_is_scipys_divided_by_log_of_the_number_of_levels():
    expected = [scipy_entropy(row) / np.log(4) for row in PROBABILITIES]
    assert entropy(PROBABILITIES) == pytest.approx(expected, abs=1e-12)
    assert entropy(PROBABILITIES)[1] == pytest.approx(1.0)


def test_margin_is_the_gap_between_the_two_likeliest_levels():
    assert margin(PROBABILITIES) == pytest.approx([0.96, 0.0, 0.01, 0.20])


def test_entropy_and_margin_disagree_on_which_image_is_least_certain():
    assert list(most_uncertain_first(PROBABILITIES, "entropy")) == [1, 3, 2, 0]
    assert list(most_uncertain_first(PROBABILITIES, "margin")) == [1, 2, 3, 0]


def test_an_unknown_measure_names_the_valid_ones():
    with pytest.raises(ValueError, match="entropy, margin"):
        most_uncertain_first(PROBABILITIES, "variance")
    with pytest.raises(ValueError, match="one row per image"):
        entropy([0.5, 0.5])


def test_level_ranks_count_each_level_on_from_where_it_stopped():
    assert level_ranks([3, 3, 0, 3, 1]) == [0, 1, 0, 2, 0]
    assert level_ranks([3, 0, 2], start={3: 5, 0: 1}) == [5, 1, 0]


def test_level_balanced_takes_the_levels_in_turn_each_in_arrival_order():
    assert list(level_balanced_order([3, 3, 3, 0, 1, 3, 0])) == [3, 4, 0, 6, 1, 2, 5]
