from __future__ import annotations

import math
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from modeling.evaluations import EVALUATION_COHORTS, metrics_by_cohort
from modeling.ml.levels import PainLevels
from modeling.models import ModelVersion

TOLERANCE = 1e-9


class Command(BaseCommand):
    help = (
        "Recompute a model version's metrics from its stored per-image test predictions and check "
        "they equal the stored ones (same bootstrap seed and resamples). Exits 1 on a mismatch."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("version", help="name (v3) or id")

    def handle(self, *args, version: str, **options) -> None:
        lookup = {"pk": int(version)} if version.isdigit() else {"name": version}
        found = ModelVersion.objects.filter(**lookup).first()
        if found is None:
            raise CommandError(f"no model version {version!r}")
        levels = PainLevels.parse(found.hyperparameters.get("levels") or found.data_manifest.get("pain_levels"))
        bootstrap = _stored_bootstrap(found.metrics)
        recomputed = metrics_by_cohort(
            found.test_predictions,
            levels,
            seed=bootstrap.get("seed", found.seed),
            n_bootstrap=bootstrap.get("resamples"),
        )
        self.stdout.write(
            f"{found.name} ({found.stage}), backbone {found.backbone}, {len(found.test_predictions)} test images"
        )
        for cohort in EVALUATION_COHORTS:
            values = recomputed.get(cohort, {})
            if "unavailable" in values:
                self.stdout.write(f"  {cohort}: {values['unavailable']}")
                continue
            self.stdout.write(
                f"  {cohort}: {values['n_images']} images, {values['n_patients']} patients, "
                f"macro AUROC {_fmt(values['macro_auroc'])}, macro F1 {_fmt(values['macro_f1'])}"
            )
            for name, level in values["levels"].items():
                ci = level["ci"] and f"[{_fmt(level['ci'][0])}, {_fmt(level['ci'][1])}]"
                self.stdout.write(f"    {name:>10}: AUROC {_fmt(level['auroc'])} {ci or ''}  F1 {_fmt(level['f1'])}")
        differences = list(_differences(found.metrics, recomputed))
        if differences:
            for path, stored, again in differences[:20]:
                self.stderr.write(f"MISMATCH {path}: stored {stored!r}, recomputed {again!r}")
            raise CommandError(f"{len(differences)} stored metric(s) differ from the recomputed ones")
        self.stdout.write(self.style.SUCCESS("stored metrics match the recomputed ones"))


def _stored_bootstrap(metrics: dict[str, Any]) -> dict[str, Any]:
    for values in metrics.values():
        if "bootstrap" in values:
            return values["bootstrap"]
    return {}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _differences(stored: Any, again: Any, path: str = "metrics"):
    if isinstance(stored, dict) and isinstance(again, dict):
        for key in sorted(set(stored) | set(again)):
            yield from _differences(stored.get(key), again.get(key), f"{path}.{key}")
    elif isinstance(stored, list) and isinstance(again, list) and len(stored) == len(again):
        for index, (a, b) in enumerate(zip(stored, again)):
            yield from _differences(a, b, f"{path}[{index}]")
    elif isinstance(stored, (int, float)) and isinstance(again, (int, float)) and not isinstance(stored, bool):
        if not math.isclose(stored, again, rel_tol=0, abs_tol=TOLERANCE):
            yield path, stored, again
    elif stored != again:
        yield path, stored, again
