"""Results pages: versions × metrics, the paper table, a paired comparison, one version's detail."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import translation
from django.utils.text import slugify
from django.utils.translation import gettext

from modeling import comparisons, metric_views, paper_table, results, selectors
from modeling.models import GateDecision, ModelVersion, Stage, TestSnapshot
from modeling.results_plots import (
    VERSION_STYLE,
    calibration_spec,
    confusion_spec,
    roc_levels_spec,
    roc_overlay_spec,
    training_specs,
)
from painsite.core.permissions import page_permissions

VIEW_RESULTS = "modeling.view_modelversion"


def _chosen_cohort(request: HttpRequest) -> str:
    cohort = request.GET.get("cohort", "")
    return cohort if cohort in results.COHORTS else results.DEFAULT_COHORT


def _version_choices() -> list[dict[str, Any]]:
    return list(ModelVersion.objects.values("id", "name", "stage", "cohorts"))


def _chosen_snapshot(request: HttpRequest) -> TestSnapshot | None:
    """The snapshot asked for (an unknown one reads as not found), else the default one."""
    value = request.GET.get("snapshot", "")
    if not value:
        return selectors.default_results_snapshot()
    if not value.isdigit():
        raise Http404(gettext("test snapshot ids are whole numbers"))
    return get_object_or_404(selectors.snapshots_light(), pk=int(value))


@page_permissions(GET=VIEW_RESULTS)
def results_list(request: HttpRequest) -> HttpResponse:
    stage = request.GET.get("stage", "")
    if stage not in Stage.values:
        stage = ""
    versions = list(results.versions_for_results(stage=stage))
    snapshot = _chosen_snapshot(request)
    evaluations = selectors.shown_evaluations([version.pk for version in versions], snapshot)
    context = {
        "tables": results.results_tables(versions, evaluations=evaluations, snapshot=snapshot),
        "snapshot": snapshot,
        "snapshots": list(selectors.evaluated_snapshots()[:50]),
        "versions": versions,
        "cohort": _chosen_cohort(request),
        "stage": stage,
        "stages": Stage.choices,
    }
    return render(request, "modeling/results.html", context)


@page_permissions(GET=VIEW_RESULTS)
def results_paper(request: HttpRequest) -> HttpResponse:
    everything = list(results.versions_for_results())
    requested = {value for value in request.GET.getlist("version") if value.isdigit()}
    if requested:
        chosen = [version for version in everything if str(version.pk) in requested]
    else:
        chosen = paper_table.default_paper_versions(everything)
    level_names = results.level_names_of(chosen)
    # One snapshot for every row where the chosen versions share one, so the table is comparable.
    shared = selectors.snapshot_shared_by(chosen)
    rows = paper_table.paper_rows(chosen, selectors.shown_evaluations([version.pk for version in chosen], shared))
    sources = selectors.target_sources([version.pk for version in chosen])
    for row in rows:
        row.target_sources = sources.get(row.version.pk)

    export = request.GET.get("format", "")
    if export:
        if export not in paper_table.PAPER_FORMATS:
            return HttpResponse(
                gettext("Unknown format %(format)s; choose one of: %(formats)s.")
                % {"format": repr(export), "formats": ", ".join(paper_table.PAPER_FORMATS)},
                status=400,
                content_type="text/plain; charset=utf-8",
            )
        content_type, extension, render_table = paper_table.PAPER_FORMATS[export]
        # Downloads are for papers: English whatever the page's language (and a LaTeX fragment
        # that needs no CJK package).
        with translation.override("en"):
            table = render_table(rows, level_names)
        response = HttpResponse(table, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="painsite-results.{extension}"'
        return response

    context = {
        "rows": [(row, paper_table.paper_cells(row, level_names)) for row in rows],
        "header": paper_table.paper_header(level_names),
        "footnotes": paper_table.paper_footnotes(rows),
        "versions": everything,
        "chosen_ids": {version.pk for version in chosen},
        "query": request.GET.urlencode() if requested else "",
        "formats": [("csv", "CSV"), ("md", "Markdown"), ("tex", "LaTeX")],
    }
    return render(request, "modeling/results_paper.html", context)


def _version_or_none(value: str | None) -> ModelVersion | None:
    if not value:
        return None
    if not value.isdigit():
        raise Http404(gettext("model version ids are whole numbers"))
    # Predictions load only when the comparison is not cached yet (deferred fields load on use).
    versions = ModelVersion.objects.select_related("created_by").defer(*results.HEAVY_FIELDS)
    return get_object_or_404(versions, pk=int(value))


def _with_id(spec: dict[str, Any], *parts: object) -> dict[str, Any]:
    """Give a plot spec the element id its json_script and canvas share."""
    return {**spec, "id": "plot-" + "-".join(slugify(str(part)) for part in parts)}


def _comparison_section(a: ModelVersion, b: ModelVersion, cohort: str, shown: dict) -> dict[str, Any]:
    comparison = comparisons.compare_versions(a, b, cohort)
    metrics_a = results.cohort_metrics(shown.get(a.pk), cohort)
    metrics_b = results.cohort_metrics(shown.get(b.pk), cohort)
    label = results.COHORT_LABELS[cohort]
    section: dict[str, Any] = {"cohort": cohort, "label": label, "comparison": comparison}
    if results.is_available(metrics_a) and results.is_available(metrics_b):
        sides = {"a": (a.name, metrics_a), "b": (b.name, metrics_b)}
        section["roc_specs"] = [
            _with_id(roc_overlay_spec(level, sides), cohort, "roc", level) for level in comparison["level_names"]
        ]
        section["confusion"] = [
            (a, _with_id(confusion_spec(metrics_a, f"A: {a.name}, {label}"), cohort, "confusion", "a")),
            (b, _with_id(confusion_spec(metrics_b, f"B: {b.name}, {label}"), cohort, "confusion", "b")),
        ]
        section["calibration"] = _with_id(
            calibration_spec(
                [(f"A: {a.name}", *VERSION_STYLE["a"], metrics_a), (f"B: {b.name}", *VERSION_STYLE["b"], metrics_b)],
                gettext("Reliability, %(cohort)s") % {"cohort": label},
            ),
            cohort,
            "calibration",
        )
        section["calibration_rows"] = [
            (a, metric_views.calibration(metrics_a)),
            (b, metric_views.calibration(metrics_b)),
        ]
    return section


@page_permissions(GET=VIEW_RESULTS)
def results_compare(request: HttpRequest) -> HttpResponse:
    a = _version_or_none(request.GET.get("a"))
    b = _version_or_none(request.GET.get("b"))
    context: dict[str, Any] = {
        "choices": _version_choices(),
        "a": a,
        "b": b,
        "cohort": _chosen_cohort(request),
        "cohorts": results.COHORT_LABELS,
    }
    if a is not None and b is not None:
        shared = selectors.shared_snapshot(a, b)
        shown = selectors.shown_evaluations({a.pk, b.pk}, shared)
        context["sections"] = [_comparison_section(a, b, cohort, shown) for cohort in results.COHORTS]
        context["snapshot"] = shared
        context["sides"] = [("a", a), ("b", b)]
        context["keep"] = {"a": a.pk, "b": b.pk}
    return render(request, "modeling/compare.html", context)


@page_permissions(GET=VIEW_RESULTS)
def version_detail(request: HttpRequest, pk: int) -> HttpResponse:
    version = get_object_or_404(ModelVersion.objects.select_related("created_by", "training_run"), pk=pk)
    sections = []
    for cohort in results.COHORTS:
        metrics = results.cohort_metrics(version, cohort)
        section: dict[str, Any] = {"cohort": cohort, "label": results.COHORT_LABELS[cohort], "metrics": metrics}
        if results.is_available(metrics):
            label = results.COHORT_LABELS[cohort]
            section["rows"] = metric_views.level_rows(metrics)
            section["roc"] = _with_id(
                roc_levels_spec(metrics, gettext("ROC per pain level, %(cohort)s") % {"cohort": label}), cohort, "roc"
            )
            section["confusion"] = _with_id(
                confusion_spec(metrics, gettext("Confusion matrix, %(cohort)s") % {"cohort": label}),
                cohort,
                "confusion",
            )
            section["calibration"] = _with_id(
                calibration_spec(
                    [(version.name, *VERSION_STYLE["a"], metrics)],
                    gettext("Reliability, %(cohort)s") % {"cohort": label},
                ),
                cohort,
                "calibration",
            )
            section["calibration_table"] = metric_views.calibration(metrics)
        sections.append(section)
    history = metric_views.training_curve(version)
    evaluations = list(
        version.evaluations.select_related("snapshot")
        .defer("predictions", "snapshot__images")
        .order_by("-snapshot__created_at", "-pk")
    )
    context = {
        "version": version,
        "sections": sections,
        "cohort": _chosen_cohort(request),
        "history": history,
        "training_specs": [_with_id(spec, "training", index) for index, spec in enumerate(training_specs(history))]
        if history
        else [],
        "promotions": version.promotions.select_related("actor"),
        "trained_on": results.trained_on_label(version.cohorts),
        "pain_levels": results.pain_level_descriptions(version),
        "images_without_face": selectors.manifest_images_without_face(version),
        "evaluations": evaluations,
        "training_evaluation": next((evaluation for evaluation in evaluations if evaluation.at_training), None),
        "target_sources": (version.data_manifest or {}).get("target_sources") or {},
        "gate_decision": GateDecision.objects.filter(challenger=version).select_related("champion").first(),
    }
    return render(request, "modeling/version_detail.html", context)
