"""Promotion: one production model, the previous one archived atomically, every change audited."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from modeling import services
from modeling.models import ModelVersion, PromotionEvent, Stage
from painsite.core.models import AuditEvent
from tests.conftest import PASSWORD, api_client_for
from tests.modeling.registry_data import make_model_version

pytestmark = pytest.mark.django_db


def stages() -> dict[str, str]:
    return dict(ModelVersion.objects.values_list("name", "stage"))


def test_promoting_archives_the_previous_production_version(admin_user):
    v1, v2 = make_model_version("v1"), make_model_version("v2")
    services.promote_model_version(version=v1, actor=admin_user, reason="first clinical model")
    services.promote_model_version(version=v2, actor=admin_user, reason="better severe AUROC")
    assert stages() == {"v1": "archived", "v2": "production"}
    events = list(PromotionEvent.objects.order_by("id").values_list("model_version__name", "from_stage", "to_stage"))
    assert events == [("v1", "candidate", "production"), ("v1", "production", "archived"), ("v2", "candidate", "production")]
    assert PromotionEvent.objects.filter(actor=admin_user).count() == 3
    audited = list(AuditEvent.objects.order_by("id").values_list("action", "details__name", "details__reason"))
    assert audited[-2:] == [
        ("model_version.archive", "v1", "replaced by v2: better severe AUROC"),
        ("model_version.promote", "v2", "better severe AUROC"),
    ]


def test_rollback_is_the_promotion_of_an_older_version(admin_user):
    v1 = make_model_version("v1")
    make_model_version("v2", stage=Stage.PRODUCTION)
    services.promote_model_version(version=v1, actor=admin_user, reason="v2 misses severe pain on ward 3")
    assert stages() == {"v1": "production", "v2": "archived"}


def test_a_failed_promotion_changes_nothing(admin_user):
    v1 = make_model_version("v1", stage=Stage.PRODUCTION)
    make_model_version("v2")
    with pytest.raises(services.AlreadyInProduction):
        services.promote_model_version(version=v1, actor=admin_user, reason="again")
    with pytest.raises(ValidationError):
        services.promote_model_version(version=ModelVersion.objects.get(name="v2"), actor=admin_user, reason="  ")
    assert stages() == {"v1": "production", "v2": "candidate"}
    assert not PromotionEvent.objects.exists() and not AuditEvent.objects.exists()


def test_the_api_promotes_for_admins_with_a_reason(admin_user):
    v1 = make_model_version("v1")
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
    v1 = make_model_version("v1")
    response = api_client_for(user).post(reverse("api-model-version-promote", args=[v1.pk]), {"reason": "x"}, format="json")
    assert response.status_code == expected
    assert stages() == {"v1": "candidate"}


def test_the_promote_button_redirects_back_with_a_message(client, admin_user):
    v1 = make_model_version("v1")
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
    v1 = make_model_version("v1")
    client.login(username=researcher.username, password=PASSWORD)
    assert client.post(reverse("model-version-promote", args=[v1.pk]), {"reason": "x"}).status_code == 403
    client.logout()
    response = client.post(reverse("model-version-promote", args=[v1.pk]), {"reason": "x"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert stages() == {"v1": "candidate"}
