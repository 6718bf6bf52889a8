"""Patient codes are unique whatever their case ("p001" and "P001" are one patient).

Codes that already clash are not merged silently: merging two patients moves images, labels and
split assignments, and only a person who knows the patients can say whether they are one. The
migration stops and lists every clash instead; rename or merge them, then migrate again.
"""

from __future__ import annotations

from collections import defaultdict

import django.db.models.functions.text
from django.db import migrations, models


def refuse_clashing_codes(apps, schema_editor) -> None:
    Patient = apps.get_model("annotation", "Patient")
    by_lower: dict[str, list[str]] = defaultdict(list)
    for code in Patient.objects.order_by("code").values_list("code", flat=True):
        by_lower[code.lower()].append(code)
    clashes = [codes for codes in by_lower.values() if len(codes) > 1]
    if clashes:
        listed = "; ".join(", ".join(codes) for codes in clashes)
        raise RuntimeError(
            f"patient codes that differ only in case name one patient: {listed}. "
            "Rename or merge these patients, then run the migration again."
        )


class Migration(migrations.Migration):

    dependencies = [
        ("annotation", "0005_consent_not_recorded"),
    ]

    operations = [
        migrations.RunPython(refuse_clashing_codes, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="patient",
            constraint=models.UniqueConstraint(
                django.db.models.functions.text.Lower("code"), name="patient_code_unique_ignoring_case"
            ),
        ),
    ]
