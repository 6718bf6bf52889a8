"""API: the paired comparison of two model versions, the same numbers /results/compare/ shows."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from modeling.api_evaluations import SnapshotSummarySerializer
from modeling.comparisons import compare_versions
from modeling.models import ModelVersion
from modeling.results import COHORTS, DEFAULT_COHORT, HEAVY_FIELDS
from painsite.core.api import permission_classes_for


class CompareQuerySerializer(serializers.Serializer):
    a = serializers.IntegerField(min_value=1, help_text="Model version A (the reference).")
    b = serializers.IntegerField(min_value=1, help_text="Model version B; deltas are B − A.")
    cohort = serializers.ChoiceField(choices=COHORTS, default=DEFAULT_COHORT)


def _interval(**kwargs) -> serializers.ListField:
    return serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2, allow_null=True, **kwargs)


def _not_estimable(field: str) -> serializers.CharField:
    return serializers.CharField(
        allow_null=True,
        required=False,
        help_text=f"Why {field} is null: too few test patients, or a zero-width interval (docs/metrics.md).",
    )


class ComparedVersionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    stage = serializers.CharField()
    backbone = serializers.CharField(help_text='"random-init" when no ImageNet weights were available.')
    evaluation = serializers.IntegerField(allow_null=True, help_text="The evaluation these numbers come from.")
    snapshot = serializers.IntegerField(allow_null=True, help_text="The test snapshot of that evaluation.")
    n_images = serializers.IntegerField(help_text="Test images this version was scored on in the cohort.")
    n_patients = serializers.IntegerField()
    unavailable = serializers.CharField(allow_null=True, help_text="Why the cohort has no metrics, if so.")


class LevelComparisonSerializer(serializers.Serializer):
    auroc_a = serializers.FloatField(allow_null=True, help_text="Stored AUROC of A (one-vs-rest).")
    ci_a = _interval(help_text="Stored 95% CI of A (patient-cluster bootstrap).")
    ci_a_not_estimable = _not_estimable("ci_a")
    auroc_b = serializers.FloatField(allow_null=True)
    ci_b = _interval()
    ci_b_not_estimable = _not_estimable("ci_b")
    delta_auroc = serializers.FloatField(allow_null=True, help_text="AUROC B − A; null without a paired test.")
    delta_ci = _interval(help_text="95% paired patient-cluster bootstrap CI of the difference.")
    delta_ci_not_estimable = _not_estimable("delta_ci")
    delong_p = serializers.FloatField(
        allow_null=True, help_text="Two-sided DeLong test p-value, patient-clustered variance (Obuchowski 1997)."
    )
    p_value = serializers.FloatField(allow_null=True, help_text="The same p-value as delong_p.")
    p_not_estimable = _not_estimable("delong_p")
    f1_a = serializers.FloatField(allow_null=True, help_text="F1 of A; null when the level has no case.")
    f1_b = serializers.FloatField(allow_null=True)
    delta_f1 = serializers.FloatField(allow_null=True)
    unavailable = serializers.CharField(allow_null=True)


class MacroComparisonSerializer(serializers.Serializer):
    auroc_a = serializers.FloatField(allow_null=True)
    ci_a = _interval()
    ci_a_not_estimable = _not_estimable("ci_a")
    auroc_b = serializers.FloatField(allow_null=True)
    ci_b = _interval()
    ci_b_not_estimable = _not_estimable("ci_b")
    delta_auroc = serializers.FloatField(allow_null=True)
    delta_ci = _interval()
    delta_ci_not_estimable = _not_estimable("delta_ci")
    n_levels = serializers.IntegerField(allow_null=True, help_text="Levels the paired macro average covers.")
    f1_a = serializers.FloatField(allow_null=True)
    f1_b = serializers.FloatField(allow_null=True)
    delta_f1 = serializers.FloatField(allow_null=True)


class BootstrapSerializer(serializers.Serializer):
    resamples = serializers.IntegerField()
    seed = serializers.IntegerField()
    method = serializers.CharField()
    confidence = serializers.FloatField()
    dropped = serializers.DictField(help_text="Resamples left out per statistic (one class only), by level.")


class ComparisonSerializer(serializers.Serializer):
    cohort = serializers.ChoiceField(choices=COHORTS)
    cohort_label = serializers.CharField()
    a = ComparedVersionSerializer()
    b = ComparedVersionSerializer()
    paired = serializers.BooleanField(
        help_text="True when both versions have a finished evaluation on one test snapshot (the newest such "
        "snapshot is used) with images in this cohort; only then are delta_*, delong_p and p_value filled."
    )
    snapshot = SnapshotSummarySerializer(allow_null=True, help_text="The snapshot the pair was scored on.")
    reason = serializers.CharField(allow_null=True, help_text="Why the comparison is not paired, if so.")
    level_names = serializers.ListField(child=serializers.CharField())
    same_test_images = serializers.BooleanField(help_text="The same as paired (kept for earlier clients).")
    statement = serializers.CharField(allow_null=True, help_text="The same as reason (kept for earlier clients).")
    n_images = serializers.IntegerField(allow_null=True, help_text="Images in the paired test.")
    n_patients = serializers.IntegerField(allow_null=True)
    ci_not_estimable = serializers.CharField(
        allow_null=True, required=False, help_text="Set when the cohort has too few test patients for any interval."
    )
    p_value_method = serializers.CharField(allow_null=True, required=False, help_text="How delong_p is computed.")
    levels = serializers.DictField(child=LevelComparisonSerializer(), help_text="Keyed by pain level name.")
    macro = MacroComparisonSerializer()
    bootstrap = BootstrapSerializer(allow_null=True)


@extend_schema(
    operation_id="model_versions_compare",
    summary="Compare two model versions on the newest test snapshot both were evaluated on",
    parameters=[CompareQuerySerializer],
    responses={200: ComparisonSerializer},
    tags=["model-versions"],
)
@api_view(["GET", "HEAD"])
@permission_classes(permission_classes_for(GET=["modeling.view_modelversion"]))
def compare_model_versions(request: Request) -> Response:
    query = CompareQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    # Predictions load only when the comparison is not cached yet (deferred fields load on use).
    versions = ModelVersion.objects.defer(*HEAVY_FIELDS)
    a = get_object_or_404(versions, pk=query.validated_data["a"])
    b = get_object_or_404(versions, pk=query.validated_data["b"])
    comparison = compare_versions(a, b, query.validated_data["cohort"])
    return Response(ComparisonSerializer(comparison).data)
