"""Patient-level splits: stratified, deterministic, stable as patients arrive, never leaking."""

from __future__ import annotations

from collections import Counter

import pytest

from modeling.ml.data import Record
from modeling.ml.splits import (
    PatientLeakage,
    assign_splits,
    check_no_leakage,
    patient_max_levels,
    split_patients,
    split_sha256,
)


def make_patients(n: int, n_levels: int = 4) -> dict[str, int]:
    return {f"P{i:03d}": i % n_levels for i in range(n)}


def make_record(patient: str, level: int = 0) -> Record:
    return Record(path=f"/{patient}.png", sha256=patient, face_box=None, nrs=level, level=level, patient=patient)


def test_it_splits_patients_70_10_20():
    counts = Counter(split_patients(make_patients(100), seed=3).values())
    assert counts == {"train": 70, "val": 10, "test": 20}


def test_it_stratifies_by_the_maximal_pain_level():
    patients = make_patients(100)
    splits = split_patients(patients, seed=3)
    for level in range(4):
        in_test = sum(1 for p, s in splits.items() if s == "test" and patients[p] == level)
        assert in_test == 5


def test_the_same_seed_gives_the_same_split_in_any_input_order():
    patients = make_patients(50)
    reversed_input = dict(reversed(list(patients.items())))
    assert split_patients(patients, seed=7) == split_patients(reversed_input, seed=7)
    assert split_patients(patients, seed=7) != split_patients(patients, seed=8)


def test_it_still_splits_when_a_level_is_too_rare_to_stratify():
    patients = {**make_patients(20, n_levels=2), "RARE": 3}
    assert set(split_patients(patients, seed=0).values()) == {"train", "val", "test"}


def test_existing_patients_never_move_and_new_ones_are_assigned():
    first = assign_splits(make_patients(60), {}, seed=1)
    grown = {**make_patients(60), **{f"N{i:03d}": i % 4 for i in range(40)}}
    second = assign_splits(grown, first, seed=1)
    assert all(second[p] == first[p] for p in first)
    assert set(second) == set(grown)
    assert Counter(second.values()) == {"train": 70, "val": 10, "test": 20}


def test_new_patients_keep_each_level_represented_in_every_split():
    patients = make_patients(40)
    first = assign_splits(patients, {}, seed=2)
    grown = {**patients, **{f"N{i:03d}": 3 for i in range(20)}}
    second = assign_splits(grown, first, seed=2)
    new_splits = Counter(second[p] for p in grown if p.startswith("N"))
    assert new_splits["test"] >= 3 and new_splits["val"] >= 1 and new_splits["train"] >= 12


def test_it_rejects_unknown_split_names_and_bad_fractions():
    with pytest.raises(ValueError, match="valid options: train, val, test"):
        assign_splits(make_patients(5), {"P000": "holdout"})
    with pytest.raises(ValueError, match="sum to 1"):
        split_patients(make_patients(5), fractions={"train": 0.5, "val": 0.1, "test": 0.1})


def test_a_patient_on_two_sides_is_reported_by_name():
    with pytest.raises(PatientLeakage, match="P2 in train, val"):
        check_no_leakage({"train": [make_record("P1"), make_record("P2")], "val": [make_record("P2")]})
    check_no_leakage({"train": [make_record("P1")], "val": [make_record("P2")]})


def test_no_patient_of_a_real_split_has_images_on_two_sides(synthetic_data):
    check_no_leakage({name: synthetic_data.split(name) for name in ("train", "val", "test")})
    assert all(synthetic_data.split(name) for name in ("train", "val", "test"))


def test_patient_max_levels_and_the_split_fingerprint():
    records = [make_record("A", 1), make_record("A", 3), make_record("B", 0)]
    assert patient_max_levels(records) == {"A": 3, "B": 0}
    assert split_sha256({"A": "train", "B": "test"}) == split_sha256({"B": "test", "A": "train"})
    assert split_sha256({"A": "train", "B": "test"}) != split_sha256({"A": "test", "B": "train"})


def test_new_patients_of_each_cohort_get_that_cohorts_share_of_test_patients():
    # Earlier assignments filled the test split with clinical severe patients (40%, not 20%);
    # stratified by level alone, the new simulated severe patients would all go to training.
    clinical = {f"C{i:03d}": 3 for i in range(50)}
    existing = {code: ("test" if i < 20 else "train") for i, code in enumerate(clinical)}
    simulated = {f"S{i:03d}": 3 for i in range(30)}
    cohorts = {**{code: "clinical" for code in clinical}, **{code: "simulated" for code in simulated}}
    assigned = assign_splits({**clinical, **simulated}, existing, seed=4, cohorts=cohorts)
    assert all(assigned[code] == split for code, split in existing.items())
    new_splits = Counter(assigned[code] for code in simulated)
    assert new_splits == {"train": 21, "val": 3, "test": 6}


def test_a_fresh_split_gives_every_cohort_its_share_of_each_level():
    levels = {f"C{i:03d}": i % 4 for i in range(80)}
    levels.update({f"S{i:03d}": i % 4 for i in range(21)})  # some cohort x level strata are small
    levels["S999"] = 3  # one stratum of a single patient: scikit-learn cannot stratify
    cohorts = {code: "clinical" if code.startswith("C") else "simulated" for code in levels}
    splits = split_patients(levels, seed=5, cohorts=cohorts)
    for cohort, size in (("clinical", 80), ("simulated", 22)):
        in_test = sum(1 for code, split in splits.items() if split == "test" and cohorts[code] == cohort)
        assert abs(in_test - 0.2 * size) <= 1, (cohort, in_test)
    assert split_patients(levels, seed=5, cohorts=cohorts) == splits


def test_growing_data_never_moves_anyone_with_cohorts():
    levels = {f"P{i:03d}": i % 4 for i in range(40)}
    cohorts = {code: "clinical" if int(code[1:]) % 3 else "simulated" for code in levels}
    first = assign_splits(levels, {}, seed=1, cohorts=cohorts)
    grown = {**levels, **{f"N{i:03d}": i % 4 for i in range(30)}}
    grown_cohorts = {**cohorts, **{f"N{i:03d}": "simulated" for i in range(30)}}
    second = assign_splits(grown, first, seed=1, cohorts=grown_cohorts)
    assert all(second[code] == first[code] for code in first)
    simulated = [code for code, cohort in grown_cohorts.items() if cohort == "simulated"]
    in_test = sum(1 for code in simulated if second[code] == "test")
    assert abs(in_test - 0.2 * len(simulated)) <= 1, in_test


def test_it_needs_a_cohort_for_every_patient_when_cohorts_are_given():
    with pytest.raises(ValueError, match="no cohort given for patient"):
        assign_splits(make_patients(5), {}, cohorts={"P000": "clinical"})


def test_the_same_image_under_two_patients_on_two_sides_is_leakage():
    twin = Record(path="/b.png", sha256="abc123def4567890", face_box=None, nrs=0, level=0, patient="P2")
    original = Record(path="/a.png", sha256="abc123def4567890", face_box=None, nrs=0, level=0, patient="P1")
    with pytest.raises(
        PatientLeakage, match="the same image on more than one side of the split: sha256 abc123def456 in test, train"
    ):
        check_no_leakage({"train": [original], "test": [twin]})
