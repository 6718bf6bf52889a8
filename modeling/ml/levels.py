"""Pain levels: named NRS ranges, e.g. "none:0,mild:1-3,moderate:4-6,severe:7-10"; and the one
rule that turns a fractional NRS (the median of two observers' scores) into a whole score."""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_LEVELS = "none:0,mild:1-3,moderate:4-6,severe:7-10"
NRS_MIN, NRS_MAX = 0, 10


def whole_nrs(nrs: float) -> int:
    """A fractional NRS score rounded to a whole one, halves up (6.5 is 7): towards more pain, the
    safer error. The platform's label median, the level mapping, the metrics and the command line
    all round with this, never with Python's round() (which sends 6.5 to 6)."""
    if nrs != nrs or not NRS_MIN <= nrs <= NRS_MAX:
        raise ValueError(f"NRS must be between {NRS_MIN} and {NRS_MAX}, got {nrs}")
    return math.floor(nrs + 0.5)


@dataclass(frozen=True)
class PainLevels:
    """An ordered partition of the NRS scale 0-10 into named levels."""

    level_names: tuple[str, ...]
    ranges: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, spec: str | PainLevels = DEFAULT_LEVELS) -> PainLevels:
        if isinstance(spec, PainLevels):
            return spec
        names: list[str] = []
        ranges: list[tuple[int, int]] = []
        for part in spec.split(","):
            name, sep, span = part.strip().partition(":")
            name = name.strip()
            if not sep or not name or not span.strip():
                raise ValueError(f"pain level {part.strip()!r} must look like 'name:low-high' or 'name:value'")
            low_text, _, high_text = span.strip().partition("-")
            try:
                low = int(low_text)
                high = int(high_text) if high_text else low
            except ValueError:
                raise ValueError(f"pain level {part.strip()!r}: NRS bounds must be whole numbers") from None
            if low > high:
                raise ValueError(f"pain level {name!r}: {low} is above {high}")
            names.append(name)
            ranges.append((low, high))
        if len(set(names)) != len(names):
            raise ValueError(f"pain level names must be unique, got {names}")
        # The levels must tile 0-10 in order, so every NRS value has exactly one level and the
        # level index is ordinal (kappa and level error rely on that).
        expected = NRS_MIN
        for name, (low, high) in zip(names, ranges):
            if low != expected:
                raise ValueError(
                    f"pain levels must cover NRS {NRS_MIN}-{NRS_MAX} in order without gaps; "
                    f"level {name!r} starts at {low}, expected {expected}"
                )
            expected = high + 1
        if expected != NRS_MAX + 1:
            raise ValueError(f"pain levels must end at NRS {NRS_MAX}, they end at {expected - 1}")
        if len(names) < 2:
            raise ValueError("at least two pain levels are needed to train a classifier")
        return cls(tuple(names), tuple(ranges))

    @property
    def names(self) -> list[str]:
        return list(self.level_names)

    @property
    def spec(self) -> str:
        return ",".join(
            f"{name}:{low}" if low == high else f"{name}:{low}-{high}"
            for name, (low, high) in zip(self.level_names, self.ranges)
        )

    def __len__(self) -> int:
        return len(self.level_names)

    def level_of(self, nrs: float) -> int:
        """The index of the level that contains this NRS score."""
        # A median of observer scores can be fractional (e.g. 3.5): it belongs to the level of
        # its whole value.
        value = whole_nrs(nrs)
        for index, (low, high) in enumerate(self.ranges):
            if low <= value <= high:
                return index
        raise AssertionError("unreachable: the levels tile 0-10")
