"""API tokens: the user and their permissions come back in one query, exactly as Django grants them."""

from __future__ import annotations

import pytest
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from painsite.core.token_auth import TokenAuthentication


def token_client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.mark.parametrize("persona", ["clinician", "researcher", "admin_user", "outsider"])
def test_a_token_carries_the_same_permissions_django_grants(persona, request):
    user = request.getfixturevalue(persona)
    user.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    token = Token.objects.create(user=user)
    authenticated, auth = TokenAuthentication().authenticate_credentials(token.key)
    assert authenticated == user and auth == token and auth.created == token.created
    assert authenticated.username == user.username and authenticated.password == user.password
    assert authenticated.get_all_permissions() == ModelBackend().get_all_permissions(User.objects.get(pk=user.pk))


def test_authentication_and_the_permission_check_take_one_query(clinician, django_assert_num_queries):
    client = token_client(clinician)
    # the token with its user and permissions, then the queue's two steps (both empty)
    with django_assert_num_queries(3):
        assert client.get(reverse("api-queue-next")).status_code == 204


def test_a_token_without_the_permission_gets_403(clinician):
    assert token_client(clinician).get(reverse("api-training-runs")).status_code == 403


def test_a_superuser_token_holds_every_permission(db):
    boss = User.objects.create_superuser("boss", password="x" * 16)
    authenticated, _ = TokenAuthentication().authenticate_credentials(Token.objects.create(user=boss).key)
    assert authenticated.has_perm("modeling.add_trainingrun") and authenticated.is_superuser


def test_a_revoked_token_or_an_inactive_user_gets_401(clinician):
    client = token_client(clinician)
    User.objects.filter(pk=clinician.pk).update(is_active=False)
    response = client.get(reverse("api-queue-next"))
    assert response.status_code == 401 and "inactive" in response.json()["error"].lower()
    User.objects.filter(pk=clinician.pk).update(is_active=True)
    Token.objects.filter(user=clinician).delete()
    response = client.get(reverse("api-queue-next"))
    assert response.status_code == 401 and "invalid token" in response.json()["error"].lower()
