# Each model version's stored test predictions become its first evaluation. A migration of its
# own: on PostgreSQL, rows deleted when going back must be committed before 0004 drops the tables.

from django.db import migrations

from modeling.snapshots import SNAPSHOT_KEYS, snapshot_sha256


def _levels_spec(pain_levels):
    names = [level["name"] if isinstance(level, dict) else str(level) for level in pain_levels or []]
    ranges = [list(level["nrs"]) if isinstance(level, dict) and level.get("nrs") else None for level in pain_levels or []]
    return {"names": names, "ranges": ranges}


def _bootstrap(metrics):
    for values in (metrics or {}).values():
        if isinstance(values, dict) and "bootstrap" in values:
            return values["bootstrap"]
    return {}


def evaluations_from_stored_predictions(apps, schema_editor):
    """Each version's stored test predictions and metrics become its first evaluation, on a
    snapshot rebuilt from those predictions (images found by id for their sha256 and file)."""
    ModelVersion = apps.get_model("modeling", "ModelVersion")
    TestSnapshot = apps.get_model("modeling", "TestSnapshot")
    Evaluation = apps.get_model("modeling", "Evaluation")
    Image = apps.get_model("annotation", "Image")
    versions = ModelVersion.objects.order_by("created_at", "pk")
    for version in versions.only("pk", "created_at", "created_by", "label_rule", "pain_levels", "seed").iterator():
        predictions = ModelVersion.objects.values_list("test_predictions", flat=True).get(pk=version.pk) or []
        if not predictions:
            continue
        stored = {
            pk: (sha256, file, face_box)
            for pk, sha256, file, face_box in Image.objects.filter(
                pk__in=[p["image_id"] for p in predictions]
            ).values_list("pk", "sha256", "file", "face_box")
        }
        images = []
        for p in sorted(predictions, key=lambda p: p["image_id"]):
            # An image no longer stored keeps its place under a name that cannot match a real sha256.
            sha256, file, face_box = stored.get(p["image_id"], (f"missing-image-{p['image_id']}", "", None))
            item = {**p, "sha256": sha256, "file": file, "face_box": face_box}
            images.append({key: item.get(key) for key in SNAPSHOT_KEYS})
        digest = snapshot_sha256(images)
        snapshot = TestSnapshot.objects.filter(sha256=digest).first()
        if snapshot is None:
            snapshot = TestSnapshot.objects.create(
                sha256=digest,
                label_rule=version.label_rule,
                pain_levels=_levels_spec(version.pain_levels),
                images=images,
                n_images=len(images),
                n_patients=len({item["patient"] for item in images}),
                reason="migrated",
            )
            # Frozen when the version was evaluated, not when this migration ran.
            TestSnapshot.objects.filter(pk=snapshot.pk).update(created_at=version.created_at)
        metrics = ModelVersion.objects.values_list("metrics", flat=True).get(pk=version.pk) or {}
        bootstrap = _bootstrap(metrics)
        evaluation = Evaluation.objects.create(
            model_version_id=version.pk,
            snapshot=snapshot,
            status="succeeded",
            progress=1.0,
            message=f"scored {len(predictions)} test images during training",
            at_training=True,
            predictions=predictions,
            metrics=metrics,
            seed=bootstrap.get("seed", version.seed),
            resamples=bootstrap.get("resamples", 0),
            requested_by_id=version.created_by_id,
        )
        Evaluation.objects.filter(pk=evaluation.pk).update(
            created_at=version.created_at, started_at=version.created_at, finished_at=version.created_at
        )


def remove_evaluations(apps, schema_editor):
    """The versions still hold their predictions and metrics: nothing is lost going back."""
    apps.get_model("modeling", "Evaluation").objects.all().delete()
    apps.get_model("modeling", "TestSnapshot").objects.all().delete()


class Migration(migrations.Migration):

    dependencies = [
        ('modeling', '0004_evaluations'),
        ('annotation', '0004_queue_partial_indexes'),
    ]

    operations = [
        migrations.RunPython(evaluations_from_stored_predictions, remove_evaluations),
    ]
