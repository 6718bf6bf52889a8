"""Patient-level train/validation/test splits.

A patient's images are strongly correlated, so every split is by patient: no patient ever has
images on two sides, and no image (by its sha256) either. Splits are stratified by each patient's
cohort and maximal pain level (so every cohort gets its share of test patients, and the rare
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
    """A patient, or one same image, is on more than one side of a split."""


def _check_fractions(fractions: Mapping[str, float]) -> None:
    if set(fractions) != set(SPLITS):
        raise ValueError(f"split fractions must name exactly {', '.join(SPLITS)}, got {sorted(fractions)}")
    if any(value < 0 for value in fractions.values()) or abs(sum(fractions.values()) - 1) > 1e-6:
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {dict(fractions)}")


def _stratified_take(patients: list[str], levels: list[object], size: int, seed: int) -> tuple[list[str], list[str]]:
    """Split off `size` patients, stratified by level where scikit-learn can (every level needs
    two patients, and both sides room for every level), at random otherwise."""
    if size <= 0:
        return patients, []
    if size >= len(patients):
        return [], patients
    counts = Counter(levels)
    stratify = (
        levels if (min(counts.values()) >= 2 and len(counts) <= size and len(counts) <= len(patients) - size) else None
    )
    rest, taken = train_test_split(patients, test_size=size, stratify=stratify, random_state=seed)
    return list(rest), list(taken)


def _strata(patient_levels: Mapping[str, int], cohorts: Mapping[str, str] | None) -> dict[str, str]:
    """Each patient's stratum: cohort and maximal level ("clinical/3"); the level alone without cohorts."""
    if cohorts is None:
        return {patient: str(level) for patient, level in patient_levels.items()}
    missing = sorted(set(patient_levels) - set(cohorts))
    if missing:
        raise ValueError(f"no cohort given for patient(s) {', '.join(missing[:5])}")
    return {patient: f"{cohorts[patient]}/{level}" for patient, level in patient_levels.items()}


def split_patients(
    patient_levels: Mapping[str, int],
    *,
    seed: int = 0,
    fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
    cohorts: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """A fresh split of all patients, deterministic from the seed (input order does not matter).

    Stratified by cohort x maximal level where scikit-learn can (every stratum needs two
    patients); failing that by cohort alone, so each cohort still gets its share of test
    patients; then by level alone; at random as the last resort.
    """
    _check_fractions(fractions)
    strata = _strata(patient_levels, cohorts)
    for candidate in (strata, cohorts or {}, {patient: str(level) for patient, level in patient_levels.items()}):
        if candidate and patient_levels and min(Counter(candidate[p] for p in patient_levels).values()) >= 2:
            strata = {patient: candidate[patient] for patient in patient_levels}
            break
    patients = sorted(strata)
    n = len(patients)
    # With fewer than three patients there is nothing to hold out: everyone trains.
    n_test = round(n * fractions["test"]) if n >= 3 else 0
    n_val = round(n * fractions["val"]) if n >= 3 else 0
    if n >= 3 and fractions["test"] > 0:
        n_test = max(1, n_test)
    if n >= 3 and fractions["val"] > 0:
        n_val = max(1, n_val)
    rest, test = _stratified_take(patients, [strata[p] for p in patients], n_test, seed)
    train, val = _stratified_take(rest, [strata[p] for p in rest], n_val, seed + 1)
    return {**{p: "train" for p in train}, **{p: "val" for p in val}, **{p: "test" for p in test}}


def _arrival_order(patients: Iterable[str], seed: int) -> list[str]:
    # A seeded hash order, so the result does not depend on the order the caller listed them.
    return sorted(patients, key=lambda code: hashlib.sha256(f"{seed}:{code}".encode()).hexdigest())


def assign_splits(
    patients_with_max_level: Mapping[str, int],
    existing: Mapping[str, str] | None = None,
    seed: int = 0,
    fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
    *,
    cohorts: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Every patient's split: existing assignments unchanged, new patients assigned.

    ``cohorts`` (patient -> cohort) stratifies by cohort x maximal level; without it, by level
    alone. With no existing assignment this is `split_patients`. Otherwise each new patient goes
    to the split furthest below its target share among patients of the same stratum, then of the
    same cohort, then overall, so the stratification holds as data grows and no one ever moves.
    """
    _check_fractions(fractions)
    existing = dict(existing or {})
    unknown = {split for split in existing.values() if split not in SPLITS}
    if unknown:
        raise ValueError(f"unknown split(s) {sorted(unknown)}; valid options: {', '.join(SPLITS)}")
    if not existing:
        return split_patients(patients_with_max_level, seed=seed, fractions=fractions, cohorts=cohorts)
    return _allocate(_strata(patients_with_max_level, cohorts), existing, cohorts or {}, seed, fractions)


def _allocate(
    strata: Mapping[str, str],
    existing: Mapping[str, str],
    cohorts: Mapping[str, str],
    seed: int,
    fractions: Mapping[str, float],
) -> dict[str, str]:
    """Existing assignments kept; each new patient, in a seeded order, to the split furthest below
    its share within its stratum, then its cohort, then overall."""
    assigned = dict(existing)
    per_stratum: dict[str, Counter[str]] = {}
    per_cohort: dict[str, Counter[str]] = {}
    overall: Counter[str] = Counter(existing.values())
    for patient, split in existing.items():
        if patient in strata:
            per_stratum.setdefault(strata[patient], Counter())[split] += 1
            per_cohort.setdefault(cohorts.get(patient, ""), Counter())[split] += 1
    new = [patient for patient in strata if patient not in existing]
    for patient in _arrival_order(new, seed):
        groups = [
            per_stratum.setdefault(strata[patient], Counter()),
            per_cohort.setdefault(cohorts.get(patient, ""), Counter()),
            overall,
        ]
        totals = [sum(group.values()) + 1 for group in groups]

        def shortfall(split: str, groups: list[Counter] = groups, totals: list[int] = totals) -> tuple[float, ...]:
            return (
                *(fractions[split] * total - group[split] for group, total in zip(groups, totals)),
                -SPLITS.index(split),
            )

        split = max((s for s in SPLITS if fractions[s] > 0), key=shortfall)
        assigned[patient] = split
        for group in groups:
            group[split] += 1
    return assigned


def check_no_leakage(records_by_split: Mapping[str, Iterable[Record]]) -> None:
    """Raise `PatientLeakage` naming the patients, and the images (by sha256), found in more
    than one split: the same photo filed under two patient codes leaks as surely as one patient."""
    patient_seen: dict[str, str] = {}
    image_seen: dict[str, str] = {}
    leaks: dict[str, set[str]] = {}
    image_leaks: dict[str, set[str]] = {}
    for split, records in records_by_split.items():
        for record in records:
            first = patient_seen.setdefault(record.patient, split)
            if first != split:
                leaks.setdefault(record.patient, {first}).add(split)
            if record.sha256:  # a missing file has no hash; it is reported when read
                first = image_seen.setdefault(record.sha256, split)
                if first != split:
                    image_leaks.setdefault(record.sha256, {first}).add(split)
    problems = []
    if leaks:
        detail = "; ".join(f"{patient} in {', '.join(sorted(splits))}" for patient, splits in sorted(leaks.items()))
        problems.append(f"patients on more than one side of the split: {detail}")
    if image_leaks:
        detail = "; ".join(
            f"sha256 {sha[:12]} in {', '.join(sorted(splits))}" for sha, splits in sorted(image_leaks.items())
        )
        problems.append(f"the same image on more than one side of the split: {detail}")
    if problems:
        raise PatientLeakage(". ".join(problems))


def split_sha256(assignment: Mapping[str, str]) -> str:
    """A fingerprint of an assignment: equal for equal assignments in any order."""
    return hashlib.sha256(json.dumps(sorted(assignment.items())).encode()).hexdigest()


def patient_cohorts(records: Iterable[Record]) -> dict[str, str]:
    """Each patient's cohort (a patient's images share one)."""
    return {record.patient: record.cohort for record in records}


def patient_max_levels(records: Iterable[Record]) -> dict[str, int]:
    levels: dict[str, int] = {}
    for record in records:
        levels[record.patient] = max(levels.get(record.patient, record.level), record.level)
    return levels
