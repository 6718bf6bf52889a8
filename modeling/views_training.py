"""The training page (start form, runs, live progress, cancel) and the promote button's POST."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext

from annotation.queue_order import current_queue_order, prediction_counts
from annotation.views_labeling import QueueOrderForm
from modeling import retrain_policy, selectors, services
from modeling.forms_training import TrainingRunForm
from modeling.models import ModelVersion, TrainingRun
from modeling.serializers_training import TrainingRunSerializer
from modeling.stored_text import translated_message
from painsite.core.permissions import page_permissions

RUNS_SHOWN = 50


@page_permissions(GET="modeling.add_trainingrun", POST="modeling.add_trainingrun")
def training_page(request: HttpRequest) -> HttpResponse:
    status = 200
    if request.method == "POST":
        form = TrainingRunForm(request.POST)
        if form.is_valid():
            try:
                run = services.start_training(requested_by=request.user, config=form.cleaned_data)
            except ValidationError as error:
                for field, problems in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, problems)
                status = 422
            except services.TrainingAlreadyActive as conflict:
                form.add_error(None, str(conflict))
                status = 409
            else:
                messages.success(request, gettext("Training run %(id)s is queued.") % {"id": run.pk})
                return redirect("training")
        else:
            status = 422
    else:
        form = TrainingRunForm.with_defaults()
        # The seed a researcher chose stays for their next run (set it again to vary it), rather
        # than silently returning to the default after each start.
        last_config = (
            TrainingRun.objects.filter(requested_by=request.user)
            .order_by("-created_at")
            .values_list("config", flat=True)
            .first()
        )
        if last_config and "seed" in last_config:
            form.initial["seed"] = last_config["seed"]
    runs = list(selectors.training_runs()[:RUNS_SHOWN])
    queue_order = current_queue_order()
    context = {
        "form": form,
        "runs": runs,
        "active_runs": [run for run in runs if run.is_active],
        "queue_order": queue_order,
        "queue_order_form": QueueOrderForm(
            initial={"order": queue_order.order, "uncertainty_measure": queue_order.uncertainty_measure}
        ),
        "queue_predictions": prediction_counts(),
        "loop_policy": retrain_policy.policy_in_force(),
        "loop_state": retrain_policy.policy_state(),
    }
    return render(request, "modeling/training.html", context, status=status)


@page_permissions(GET="modeling.view_trainingrun")
def training_run_progress(request: HttpRequest, pk: int) -> JsonResponse:
    """What the progress bar polls: the run's status and progress, as the API shows them."""
    run = get_object_or_404(selectors.training_runs(), pk=pk)
    # The API's fields, and the progress message in the reader's language for the page to show.
    response = JsonResponse({**TrainingRunSerializer(run).data, "message_text": translated_message(run.message)})
    response["Cache-Control"] = "no-store"
    return response


@page_permissions(POST="modeling.cancel_trainingrun")
def training_run_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(TrainingRun, pk=pk)
    try:
        run = services.cancel_training(run=run, actor=request.user)
    except services.RunNotActive as error:
        messages.error(request, str(error))
    else:
        if run.status == "cancelled":
            messages.success(request, gettext("Training run %(id)s was cancelled.") % {"id": run.pk})
        else:
            messages.success(
                request, gettext("Training run %(id)s will stop after its current batch.") % {"id": run.pk}
            )
    return redirect("training")


@page_permissions(POST="modeling.promote_modelversion")
def promote_version(request: HttpRequest, pk: int) -> HttpResponse:
    """The promote button of the results pages: a reason is required; back to where it came from."""
    version = get_object_or_404(ModelVersion.objects.only("pk", "name", "stage"), pk=pk)
    try:
        services.promote_model_version(
            version=version,
            actor=request.user,
            reason=request.POST.get("reason", ""),
            confirm_random_init=request.POST.get("confirm_random_init") == "on",
        )
    except ValidationError:
        messages.error(request, gettext("%(name)s was not promoted: a reason is required.") % {"name": version.name})
    except services.RandomInitNotConfirmed as error:
        messages.error(
            request,
            gettext("%(name)s was not promoted: %(reason)s. Tick the confirmation box to promote it anyway.")
            % {"name": version.name, "reason": error},
        )
    except services.AlreadyInProduction as error:
        messages.error(request, str(error))
    else:
        messages.success(request, gettext("%(name)s is now the production model.") % {"name": version.name})
    return redirect(_back_to(request, default=reverse("results-version", args=[version.pk])))


def _back_to(request: HttpRequest, *, default: str) -> str:
    target = request.POST.get("next") or request.headers.get("referer", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return target
    return default
