"""Pages for image intake: upload, the image list, one image, and an import's progress."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import urlencode
from django.utils.translation import gettext

from annotation.archive import ArchiveRejected
from annotation.bulk_import import start_archive_import
from annotation.image_access import filter_images, may_view_image, parse_labeled, visible_images, visible_label_history
from annotation.models import Cohort, Image, ImportJob, Patient
from painsite.core.permissions import page_permissions

IMAGES_PER_PAGE = 48
# The patient picker suggests codes; beyond this many the user types the code.
PATIENT_SUGGESTIONS = 2000


def _upload_page(request: HttpRequest, *, archive_error: str = "", status: int = 200) -> HttpResponse:
    patients = Patient.objects.consented().order_by("code").values_list("code", flat=True)[:PATIENT_SUGGESTIONS]
    context = {
        "patient_codes": list(patients),
        "archive_error": archive_error,
        "max_upload_mb": settings.PAINSITE_MAX_UPLOAD_BYTES // (1024 * 1024),
    }
    return render(request, "annotation/upload.html", context, status=status)


@page_permissions(GET="annotation.add_image")
def upload(request: HttpRequest) -> HttpResponse:
    return _upload_page(request)


@page_permissions(POST=["annotation.add_image", "annotation.add_patient", "annotation.add_painlabel"])
def upload_archive(request: HttpRequest) -> HttpResponse:
    archive = request.FILES.get("archive")
    if archive is None:
        return _upload_page(request, archive_error=gettext("Choose a .zip archive first."), status=422)
    try:
        job = start_archive_import(archive=archive, size=archive.size, source_name=archive.name, actor=request.user)
    except ArchiveRejected as rejected:
        return _upload_page(request, archive_error=f"{archive.name}: {rejected}", status=422)
    return redirect("import-detail", job_id=job.pk)


@page_permissions(GET="annotation.view_image")
def image_list(request: HttpRequest) -> HttpResponse:
    filters = {
        "patient": request.GET.get("patient", "").strip(),
        "cohort": request.GET.get("cohort", ""),
        "labeled": request.GET.get("labeled", ""),
    }
    images = filter_images(
        visible_images(request.user),
        patient=filters["patient"],
        cohort=filters["cohort"],
        labeled=parse_labeled(filters["labeled"]),
    )
    page = Paginator(images, IMAGES_PER_PAGE).get_page(request.GET.get("page"))
    query = urlencode({key: value for key, value in filters.items() if value})
    context = {"page": page, "filters": filters, "cohorts": Cohort.choices, "query": query}
    return render(request, "annotation/images.html", context)


@page_permissions(GET="annotation.view_image")
def image_detail(request: HttpRequest, image_id: int) -> HttpResponse:
    image = get_object_or_404(Image.objects.select_related("patient", "uploaded_by"), pk=image_id)
    if not may_view_image(request.user, image):
        raise PermissionDenied(
            gettext("patient %(code)s withdrew consent: their images are hidden") % {"code": image.patient.code}
        )
    can_see_labels = request.user.has_perm("annotation.view_painlabel")
    labels = visible_label_history(request.user, image_id=image.pk) if can_see_labels else []
    return render(request, "annotation/image_detail.html", {"image": image, "labels": labels})


@page_permissions(GET="annotation.add_image")
def import_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(ImportJob.objects.select_related("created_by"), pk=job_id)
    if job.created_by_id != request.user.pk and not request.user.is_staff:
        raise PermissionDenied(gettext("only the person who started this import (or an admin) can see it"))
    return render(request, "annotation/import_detail.html", {"job": job})
