"""Test snapshots: the locked test patients' images and reference levels, frozen at one moment.

A snapshot is identified by its content: the sha256 over (image sha256, patient, cohort, NRS,
level) of every image, in a fixed order. Taking a snapshot of content that already has one
returns that one, so versions evaluated at different times on unchanged data share a snapshot
and their comparison is paired.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext

from modeling.ml.levels import PainLevels
from modeling.models import Split, TestSnapshot

SNAPSHOT_KEYS = ("image_id", "sha256", "file", "face_box", "patient", "cohort", "nrs", "level")
# What the snapshot's identity covers: the images' pixels and their references, not storage
# names or database ids, which can differ for the same content (an import into a new site).
HASHED_KEYS = ("sha256", "patient", "cohort", "nrs", "level")


def snapshot_sha256(images: Iterable[dict[str, Any]]) -> str:
    rows = sorted([item[key] for key in HASHED_KEYS] for item in images)
    return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()


def levels_spec(levels: PainLevels) -> dict[str, Any]:
    return {"names": list(levels.names), "ranges": [list(span) for span in levels.ranges]}


def version_levels_spec(pain_levels: list[Any]) -> dict[str, Any]:
    """A model version's `pain_levels` ({"name", "nrs": [low, high]} entries) in snapshot form."""
    return {
        "names": [level["name"] for level in pain_levels],
        "ranges": [list(level["nrs"]) for level in pain_levels],
    }


def snapshot_of(
    *, images: list[dict[str, Any]], label_rule: str, pain_levels: dict[str, Any], reason: str
) -> TestSnapshot:
    """The snapshot holding exactly `images` (test images with their references): the existing
    one when the same content was frozen before, else a new one."""
    images = sorted(({key: item.get(key) for key in SNAPSHOT_KEYS} for item in images), key=lambda i: i["image_id"])
    digest = snapshot_sha256(images)
    found = TestSnapshot.objects.defer("images").filter(sha256=digest).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return TestSnapshot.objects.create(
                sha256=digest,
                label_rule=label_rule,
                pain_levels=pain_levels,
                images=images,
                n_images=len(images),
                n_patients=len({item["patient"] for item in images}),
                reason=reason,
            )
    except IntegrityError:
        # Two requests froze the same content at once: the first one's row stands.
        return TestSnapshot.objects.defer("images").get(sha256=digest)


def take_test_snapshot(*, label_rule: str, reason: str = "requested") -> TestSnapshot:
    """Freeze the current locked test set under `label_rule`: every labelled test image of a
    consenting patient, of every cohort (new patients get their split now, as a run would)."""
    from modeling.services import snapshot_training_data

    manifest = snapshot_training_data(cohorts=[], label_rule=label_rule)
    images = [item for item in manifest["images"] if item["split"] == Split.TEST]
    if not images:
        raise ValidationError(
            {
                "snapshot": [
                    gettext("there are no labelled test images under the label rule %(rule)s yet")
                    % {"rule": repr(label_rule)}
                ]
            }
        )
    levels = PainLevels.parse(settings.PAINSITE_PAIN_LEVELS)
    return snapshot_of(images=images, label_rule=label_rule, pain_levels=levels_spec(levels), reason=reason)


def summary(snapshot: TestSnapshot) -> dict[str, Any]:
    """How the API and the pages name a snapshot."""
    return {
        "id": snapshot.pk,
        "created_at": snapshot.created_at,
        "n_images": snapshot.n_images,
        "n_patients": snapshot.n_patients,
        "sha256": snapshot.sha256,
    }


def target_source_counts(images: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per split, how many training targets came from a self-report and how many from the
    observers' median. Images snapshotted before the source was recorded count as "unknown"."""
    counts: dict[str, Counter] = {}
    for item in images:
        counts.setdefault(item["split"], Counter())[item.get("target_source") or "unknown"] += 1
    return {split: dict(sorted(found.items())) for split, found in sorted(counts.items())}
