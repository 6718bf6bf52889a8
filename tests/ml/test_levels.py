"""Pain levels: parsing the NRS ranges and mapping scores to levels."""

from __future__ import annotations

import pytest

from modeling.ml.levels import DEFAULT_LEVELS, PainLevels


def test_it_parses_the_default_levels():
    levels = PainLevels.parse(DEFAULT_LEVELS)
    assert levels.names == ["none", "mild", "moderate", "severe"]
    assert len(levels) == 4
    assert levels.spec == DEFAULT_LEVELS


@pytest.mark.parametrize(("nrs", "level"), [(0, 0), (1, 1), (3, 1), (4, 2), (6, 2), (7, 3), (10, 3)])
def test_it_maps_each_nrs_boundary_to_its_level(nrs, level):
    assert PainLevels.parse().level_of(nrs) == level


def test_a_fractional_median_rounds_half_up_towards_more_pain():
    levels = PainLevels.parse()
    assert levels.level_of(3.5) == 2
    assert levels.level_of(3.4) == 1


@pytest.mark.parametrize("nrs", [-1, 11, 10.6, float("nan")])
def test_it_rejects_nrs_outside_0_to_10(nrs):
    with pytest.raises(ValueError, match="between 0 and 10"):
        PainLevels.parse().level_of(nrs)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("none:0,mild:2-3,moderate:4-6,severe:7-10", "without gaps"),
        ("none:0,mild:1-4,moderate:4-6,severe:7-10", "without gaps"),
        ("none:0,mild:1-3,moderate:4-6,severe:7-9", "end at NRS 10"),
        ("none:0,none:1-10", "unique"),
        ("all:0-10", "at least two"),
        ("none=0,pain:1-10", "name:low-high"),
        ("none:0,pain:1-ten", "whole numbers"),
    ],
)
def test_it_rejects_levels_that_do_not_tile_the_scale(spec, message):
    with pytest.raises(ValueError, match=message):
        PainLevels.parse(spec)


def test_custom_levels_round_trip_through_their_spec():
    levels = PainLevels.parse("low:0-4,high:5-10")
    assert PainLevels.parse(levels.spec) == levels
    assert levels.level_of(5) == 1


def test_nrs_6_5_is_whole_score_7_and_severe_where_python_round_would_say_6():
    from modeling.ml.levels import whole_nrs

    assert round(6.5) == 6, "Python rounds halves to even: the rule must not use it"
    assert whole_nrs(6.5) == 7 and whole_nrs(5.5) == 6 and whole_nrs(6.4) == 6
    assert PainLevels.parse().level_of(6.5) == 3


def test_the_command_line_scores_nrs_6_5_as_severe_like_its_level(tmp_path):
    import numpy as np

    from modeling.ml.cli import evaluate_records
    from modeling.ml.data import Record

    levels = PainLevels.parse()
    records = [
        Record(path=f"/{i}.png", sha256=str(i), face_box=None, nrs=nrs, level=levels.level_of(nrs), patient=f"P{i:02d}")
        for i, nrs in enumerate([6.5, 7, 8, 9, 10, 6.5, 0, 1, 2, 3, 4, 5, 6, 0, 2, 5] * 2)
    ]
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(4), len(records))
    result = evaluate_records(records, probabilities, levels, n_bootstrap=20, seed=0)["combined"]
    assert result["binary"]["nrs_ge_7"]["unavailable"] is None, result["binary"]["nrs_ge_7"]
    severe = np.array([record.level == 3 for record in records])
    from sklearn.metrics import roc_auc_score

    assert result["binary"]["nrs_ge_7"]["auroc"] == pytest.approx(roc_auc_score(severe, probabilities[:, 3]), abs=1e-9)
