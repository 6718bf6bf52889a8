"""The random-init warning every page shows while such a model is in production."""

from __future__ import annotations

import functools

from django.http import HttpRequest

from modeling.models import RANDOM_INIT_BACKBONE, ModelVersion, Stage


def random_init_production(request: HttpRequest) -> dict[str, object]:
    """`random_init_production`: the production version when its backbone is random-init, else None.

    A callable, so the template asks only when it renders the banner (one query per page, none for
    JSON answers or anonymous visitors), and the answer is kept for the rest of the request.
    """

    @functools.cache
    def production_with_random_init() -> ModelVersion | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        return (
            ModelVersion.objects.filter(stage=Stage.PRODUCTION, backbone=RANDOM_INIT_BACKBONE)
            .only("pk", "name")
            .first()
        )

    return {"random_init_production": production_with_random_init}
