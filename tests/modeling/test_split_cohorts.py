"""New patients' splits are stratified by cohort and maximal level; stored splits never move."""

from __future__ import annotations

from collections import Counter

import pytest

from annotation.models import Patient
from modeling import services
from modeling.models import SplitAssignment

pytestmark = pytest.mark.django_db


def labelled(code: str, cohort: str, level: int) -> dict:
    return {"patient": code, "cohort": cohort, "level": level}


def test_new_simulated_patients_get_their_cohorts_share_of_test_patients():
    # Stored clinical splits hold more severe test patients than 20%; stratified by level alone,
    # every new simulated severe patient would be sent to training.
    items = []
    for number in range(30):
        patient = Patient.objects.create(code=f"C{number:02d}", cohort="clinical")
        SplitAssignment.objects.create(patient=patient, split="test" if number < 12 else "train", seed=0)
        items.append(labelled(patient.code, "clinical", 3))
    for number in range(20):
        Patient.objects.create(code=f"S{number:02d}", cohort="simulated")
        items.append(labelled(f"S{number:02d}", "simulated", 3))
    before = dict(SplitAssignment.objects.values_list("patient__code", "split"))

    splits = services.assign_patient_splits(items)

    assert {code: splits[code] for code in before} == before
    stored = dict(SplitAssignment.objects.values_list("patient__code", "split"))
    assert stored == splits
    assert Counter(splits[f"S{number:02d}"] for number in range(20)) == {"train": 14, "val": 2, "test": 4}
