"""Patient-level train/validation/test splits.

A patient's images are strongly correlated, so every split is by patient: no patient ever has
images on two sides. Splits are stratified by each patient's maximal pain level (so the rare
severe patients land in every split) and stable as data grows: patients who already have a
split keep it, and the test patients stay locked.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping

from sklearn.model_selection import train_test_split

from modeling.ml.data import Record

SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS: dict[str, float] = {"train": 0.7, "val": 0.1, "test": 0.2}


class PatientLeakage(AssertionError):
    """A patient has images on more than one side of a split."""


def _check_fractions(fractions: Mapping[str, float]) -> None:
    if set(fractions) != set(SPLITS):
        raise ValueError(f"split fractions must name exactly {', '.join(SPLITS)}, got {sorted(fractions)}")
    if any(value < 0 for value in fractions.values()) or abs(sum(fractions.values()) - 1) > 1e-6:
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {dict(fractions)}")


def _stratified_take(patients: list[str], levels: list[int], size: int, seed: int) -> tuple[list[str], list[str]]:
    """Split off `size` patients, stratified by level where scikit-learn can (every level needs
    two patients, and both sides room for every level), at random otherwise."""
    if size <= 0:
        return patients, []
    if size >= len(patients):
        return [], patients
    counts = Counter(levels)
    stratify = levels if (min(counts.values()) >= 2 and len(counts) <= size and len(counts) <= len(patients) - size) else None
    rest, taken = train_test_split(patients, test_size=size, stratify=stratify, random_state=seed)
    return list(rest), list(taken)


def split_patients(patient_levels: Mapping[str, int], *, seed: int = 0,
                   fractions: Mapping[str, float] = DEFAULT_FRACTIONS) -> dict[str, str]:
    """A fresh split of all patients, deterministic from the seed (input order does not matter)."""
    _check_fractions(fractions)
    patients = sorted(patient_levels)
    n = len(patients)
    # With fewer than three patients there is nothing to hold out: everyone trains.
    n_test = round(n * fractions["test"]) if n >= 3 else 0
    n_val = round(n * fractions["val"]) if n >= 3 else 0
    if n >= 3 and fractions["test"] > 0:
        n_test = max(1, n_test)
    if n >= 3 and fractions["val"] > 0:
        n_val = max(1, n_val)
    rest, test = _stratified_take(patients, [patient_levels[p] for p in patients], n_test, seed)
    train, val = _stratified_take(rest, [patient_levels[p] for p in rest], n_val, seed + 1)
    return {**{p: "train" for p in train}, **{p: "val" for p in val}, **{p: "test" for p in test}}


def _arrival_order(patients: Iterable[str], seed: int) -> list[str]:
    # A seeded hash order, so the result does not depend on the order the caller listed them.
    return sorted(patients, key=lambda code: hashlib.sha256(f"{seed}:{code}".encode()).hexdigest())


def assign_splits(patients_with_max_level: Mapping[str, int], existing: Mapping[str, str] | None = None,
                  seed: int = 0, fractions: Mapping[str, float] = DEFAULT_FRACTIONS) -> dict[str, str]:
    """Every patient's split: existing assignments unchanged, new patients assigned.

    With no existing assignment this is `split_patients`. Otherwise each new patient goes to the
    split furthest below its target share among patients of the same maximal level (then
    overall), so the stratification holds as data grows and no one ever moves.
    """
    _check_fractions(fractions)
    existing = dict(existing or {})
    unknown = {split for split in existing.values() if split not in SPLITS}
    if unknown:
        raise ValueError(f"unknown split(s) {sorted(unknown)}; valid options: {', '.join(SPLITS)}")
    new = [patient for patient in patients_with_max_level if patient not in existing]
    if not existing:
        return split_patients(patients_with_max_level, seed=seed, fractions=fractions)
    assigned = dict(existing)
    per_level: dict[int, Counter[str]] = {}
    overall: Counter[str] = Counter(existing.values())
    for patient, split in existing.items():
        if patient in patients_with_max_level:
            per_level.setdefault(patients_with_max_level[patient], Counter())[split] += 1
    for patient in _arrival_order(new, seed):
        level = patients_with_max_level[patient]
        counts = per_level.setdefault(level, Counter())
        level_total = sum(counts.values()) + 1
        total = sum(overall.values()) + 1

        def shortfall(split: str) -> tuple[float, float, int]:
            return (
                fractions[split] * level_total - counts[split],
                fractions[split] * total - overall[split],
                -SPLITS.index(split),
            )

        split = max((s for s in SPLITS if fractions[s] > 0), key=shortfall)
        assigned[patient] = split
        counts[split] += 1
        overall[split] += 1
    return assigned


def check_no_leakage(records_by_split: Mapping[str, Iterable[Record]]) -> None:
    """Raise `PatientLeakage` naming the patients found in more than one split."""
    seen: dict[str, str] = {}
    leaks: dict[str, set[str]] = {}
    for split, records in records_by_split.items():
        for record in records:
            first = seen.setdefault(record.patient, split)
            if first != split:
                leaks.setdefault(record.patient, {first}).add(split)
    if leaks:
        detail = "; ".join(f"{patient} in {', '.join(sorted(splits))}" for patient, splits in sorted(leaks.items()))
        raise PatientLeakage(f"patients on more than one side of the split: {detail}")


def split_sha256(assignment: Mapping[str, str]) -> str:
    """A fingerprint of an assignment: equal for equal assignments in any order."""
    return hashlib.sha256(json.dumps(sorted(assignment.items())).encode()).hexdigest()


def patient_max_levels(records: Iterable[Record]) -> dict[str, int]:
    levels: dict[str, int] = {}
    for record in records:
        levels[record.patient] = max(levels.get(record.patient, record.level), record.level)
    return levels
