"""Dismissing an admin notice from the dashboard."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect

from painsite.core.models import AdminNotice
from painsite.core.notices import dismiss_notice
from painsite.core.permissions import page_permissions


@page_permissions(POST="core.change_adminnotice")
def dismiss(request: HttpRequest, pk: int) -> HttpResponse:
    dismiss_notice(notice=get_object_or_404(AdminNotice, pk=pk), dismissed_by=request.user)
    return redirect("dashboard")
