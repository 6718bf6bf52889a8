"""Promotion: one production model, the previous one archived atomically, every change audited."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from modeling import services
from modeling.models import ModelVersion, PromotionEvent, Stage
from painsite.core.models import AuditEvent
from tests.conftest import PASSWORD, api_client_for
from tests.modeling.registry_data import make_model_version

pytestmark = pytest.mark.django_db


def stages() -> dict[str, str]:
    return dict(ModelVersion.objects.values_list("name", "stage"))


def make_imagenet_version(name: str, *, stage: str = Stage.CANDIDATE) -> ModelVersion:
    """A version whose backbone started from the ImageNet weights (promoted without confirmation)."""
    version = make_model_version(name, stage=stage)
    ModelVersion.objects.filter(pk=version.pk).update(backbone="imagenet:vgg16-397923af.pth")
    version.refresh_from_db()
    return version


def test_promoting_archives_the_previous_production_version(admin_user):
    v1, v2 = make_imagenet_version("v1"), make_imagenet_version("v2")
    services.promote_model_version(version=v1, actor=admin_user, reason="first clinical model")
    services.promote_model_version(version=v2, actor=admin_user, reason="better severe AUROC")
    assert stages() == {"v1": "archived", "v2": "production"}
    events = list(PromotionEvent.objects.order_by("id").values_list("model_version__name", "from_stage", "to_stage"))
    assert events == [
        ("v1", "candidate", "production"),
        ("v1", "production", "archived"),
        ("v2", "candidate", "production"),
    ]
    assert PromotionEvent.objects.filter(actor=admin_user).count() == 3
    audited = list(AuditEvent.objects.order_by("id").values_list("action", "details__name", "details__reason"))
    assert audited[-2:] == [
        ("model_version.archive", "v1", "replaced by v2: better severe AUROC"),
        ("model_version.promote", "v2", "better severe AUROC"),
    ]


def test_rollback_is_the_promotion_of_an_older_version(admin_user):
    v1 = make_imagenet_version("v1")
    make_imagenet_version("v2", stage=Stage.PRODUCTION)
    services.promote_model_version(version=v1, actor=admin_user, reason="v2 misses severe pain on ward 3")
    assert stages() == {"v1": "production", "v2": "archived"}


def test_a_failed_promotion_changes_nothing(admin_user):
    v1 = make_imagenet_version("v1", stage=Stage.PRODUCTION)
    make_imagenet_version("v2")
    with pytest.raises(services.AlreadyInProduction):
        services.promote_model_version(version=v1, actor=admin_user, reason="again")
    with pytest.raises(ValidationError):
        services.promote_model_version(version=ModelVersion.objects.get(name="v2"), actor=admin_user, reason="  ")
    assert stages() == {"v1": "production", "v2": "candidate"}
    assert not PromotionEvent.objects.exists() and not AuditEvent.objects.exists()


def test_the_api_promotes_for_admins_with_a_reason(admin_user):
    v1 = make_imagenet_version("v1")
    client = api_client_for(admin_user)
    url = reverse("api-model-version-promote", args=[v1.pk])
    missing = client.post(url, {}, format="json")
    assert missing.status_code == 400 and missing.json()["error"].startswith("reason")
    response = client.post(url, {"reason": "validated on ward data"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["stage"] == "production" and body["promotions"][0]["reason"] == "validated on ward data"
    assert client.post(url, {"reason": "again"}, format="json").status_code == 409


@pytest.mark.parametrize("who,expected", [("researcher", 403), ("clinician", 403), ("outsider", 403), (None, 401)])
def test_non_admins_cannot_promote_through_the_api(request, who, expected):
    user = request.getfixturevalue(who) if who else None
    v1 = make_imagenet_version("v1")
    response = api_client_for(user).post(
        reverse("api-model-version-promote", args=[v1.pk]), {"reason": "x"}, format="json"
    )
    assert response.status_code == expected
    assert stages() == {"v1": "candidate"}


def test_the_promote_button_redirects_back_with_a_message(client, admin_user):
    v1 = make_imagenet_version("v1")
    client.login(username=admin_user.username, password=PASSWORD)
    url = reverse("model-version-promote", args=[v1.pk])
    response = client.post(url, {"reason": "", "next": "/results/"}, follow=True)
    assert response.redirect_chain[0] == ("/results/", 302)
    assert "a reason is required" in response.content.decode()
    assert stages() == {"v1": "candidate"}
    response = client.post(url, {"reason": "pilot on ward 3", "next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == reverse("results-version", args=[v1.pk])
    assert stages() == {"v1": "production"}


def test_the_promote_button_is_refused_to_researchers(client, researcher):
    v1 = make_imagenet_version("v1")
    client.login(username=researcher.username, password=PASSWORD)
    assert client.post(reverse("model-version-promote", args=[v1.pk]), {"reason": "x"}).status_code == 403
    client.logout()
    response = client.post(reverse("model-version-promote", args=[v1.pk]), {"reason": "x"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert stages() == {"v1": "candidate"}


def test_a_random_init_version_is_promoted_only_with_explicit_confirmation(admin_user):
    version = make_model_version("v1")
    assert version.is_random_init
    with pytest.raises(services.RandomInitNotConfirmed, match="random-init"):
        services.promote_model_version(version=version, actor=admin_user, reason="only model we have")
    assert stages() == {"v1": "candidate"} and not PromotionEvent.objects.exists()
    services.promote_model_version(version=version, actor=admin_user, reason="demo ward", confirm_random_init=True)
    assert stages() == {"v1": "production"}
    assert AuditEvent.objects.get(action="model_version.promote").details["random_init_confirmed"] is True


def test_the_api_answers_400_for_a_random_init_version_without_confirmation(admin_user):
    version = make_model_version("v1")
    client = api_client_for(admin_user)
    url = reverse("api-model-version-promote", args=[version.pk])
    refused = client.post(url, {"reason": "demo"}, format="json")
    assert refused.status_code == 400
    assert "random-init" in refused.json()["error"] and "confirm_random_init" in refused.json()["details"]
    assert stages() == {"v1": "candidate"}
    assert client.post(url, {"reason": "demo", "confirm_random_init": False}, format="json").status_code == 400
    accepted = client.post(url, {"reason": "demo", "confirm_random_init": True}, format="json")
    assert accepted.status_code == 200 and accepted.json()["stage"] == "production"


def test_the_promote_form_asks_for_the_confirmation_of_a_random_init_version(client, admin_user):
    random_init, imagenet = make_model_version("v1"), make_imagenet_version("v2")
    client.force_login(admin_user)
    page = client.get(reverse("results-version", args=[random_init.pk])).content.decode()
    assert f'name="confirm_random_init" id="confirm-random-init-{random_init.pk}"' in page
    assert "confirm_random_init" not in client.get(reverse("results-version", args=[imagenet.pk])).content.decode()
    url = reverse("model-version-promote", args=[random_init.pk])
    refused = client.post(url, {"reason": "demo"}, follow=True).content.decode()
    assert "v1 was not promoted" in refused and "random-init" in refused
    assert stages() == {"v1": "candidate", "v2": "candidate"}
    client.post(url, {"reason": "demo", "confirm_random_init": "on"})
    assert stages() == {"v1": "production", "v2": "candidate"}


@pytest.mark.parametrize("url", ["/", "/assess/", "/patients/", "/results/", "/audit/"])
def test_every_page_shows_a_banner_while_a_random_init_version_is_in_production(client, admin_user, url):
    client.force_login(admin_user)
    make_imagenet_version("v1", stage=Stage.PRODUCTION)
    assert 'id="random-init-banner"' not in client.get(url).content.decode()
    ModelVersion.objects.filter(name="v1").update(stage=Stage.ARCHIVED)
    make_model_version("v2", stage=Stage.PRODUCTION)
    html = client.get(url).content.decode()
    assert 'id="random-init-banner"' in html and "The production model v2 has a random-init backbone" in html


def test_the_banner_costs_one_query_and_none_without_a_page(client, admin_user):
    make_model_version("v1", stage=Stage.PRODUCTION)
    client.force_login(admin_user)
    client.get("/")
    with CaptureQueriesContext(connection) as captured:
        assert 'id="random-init-banner"' in client.get("/").content.decode()
    assert (
        sum(
            "modeling_modelversion" in query["sql"] and '"backbone" = ' in query["sql"]
            for query in captured.captured_queries
        )
        == 1
    )
    with CaptureQueriesContext(connection) as captured:
        client.get(reverse("api-model-versions"))
    assert not any('"backbone" = ' in query["sql"] for query in captured.captured_queries)
