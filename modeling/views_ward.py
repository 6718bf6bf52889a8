"""The ward board (/ward/): every bed on one screen. The page only renders the frame; static/js/ward.js
fills it from GET /api/ward/beds/ and keeps it current."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from modeling.api_ward import ACKNOWLEDGE, VIEW_BOARD
from modeling.inference import production_version
from painsite.core.permissions import page_permissions


@page_permissions(GET=VIEW_BOARD)
def ward_page(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "modeling/ward.html",
        {
            "poll_seconds": settings.PAINSITE_WARD_BOARD_POLL_SECONDS,
            "can_acknowledge": request.user.has_perm(ACKNOWLEDGE),
            "can_manage": request.user.has_perm("modeling.change_camerasource"),
            "no_production_model": production_version() is None,
        },
    )
