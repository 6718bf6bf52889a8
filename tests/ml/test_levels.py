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
