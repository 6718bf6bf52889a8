"""API tokens: DRF's `Token <key>` scheme; the user's permissions are read afresh for each request."""

from __future__ import annotations

import pytest
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission, User
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from painsite.core.roles import CLINICIAN


def token_client(user: User, scheme: str = "Token") -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.mark.parametrize("persona", ["clinician", "researcher", "admin_user", "outsider"])
def test_a_token_carries_the_same_permissions_django_grants(persona, request):
    user = request.getfixturevalue(persona)
    user.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    response = token_client(user).get(reverse("api-schema"), {"format": "json"})
    assert response.status_code == 200
    granted = response.wsgi_request.user.get_all_permissions()
    assert granted == ModelBackend().get_all_permissions(User.objects.get(pk=user.pk))


def test_authentication_and_the_permission_check_take_two_queries(clinician, django_assert_num_queries):
    client = token_client(clinician)
    # the token with its user, the user's permissions, then the queue's hand-out: the chosen
    # order (annotation/queue_order.py), its transaction's begin and end around the two steps
    # (both empty)
    with django_assert_num_queries(7):
        assert client.get(reverse("api-queue-next")).status_code == 204


def test_a_token_without_the_permission_gets_403(clinician):
    assert token_client(clinician).get(reverse("api-training-runs")).status_code == 403


def test_a_superuser_token_holds_every_permission(db):
    boss = User.objects.create_superuser("boss", password="x" * 16)
    assert token_client(boss).get(reverse("api-training-runs")).status_code == 200


def test_a_removed_role_counts_from_the_next_request(clinician):
    client = token_client(clinician)
    assert client.get(reverse("api-queue-next")).status_code == 204
    clinician.groups.remove(Group.objects.get(name=CLINICIAN))
    assert client.get(reverse("api-queue-next")).status_code == 403


def test_a_revoked_token_or_an_inactive_user_gets_401(clinician):
    client = token_client(clinician)
    User.objects.filter(pk=clinician.pk).update(is_active=False)
    response = client.get(reverse("api-queue-next"))
    assert response.status_code == 401 and "inactive" in response.json()["error"].lower()
    User.objects.filter(pk=clinician.pk).update(is_active=True)
    assert client.get(reverse("api-queue-next")).status_code == 204
    Token.objects.filter(user=clinician).delete()
    response = client.get(reverse("api-queue-next"))
    assert response.status_code == 401 and "invalid token" in response.json()["error"].lower()


def test_a_bearer_token_gets_401_saying_which_scheme_is_expected(clinician):
    response = token_client(clinician, scheme="Bearer").get(reverse("api-queue-next"))
    assert response.status_code == 401
    assert "Authorization: Token <key>" in response.json()["error"]
