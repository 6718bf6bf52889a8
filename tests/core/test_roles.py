from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from painsite.core.roles import ADMIN_PERMISSIONS, CLINICIAN_PERMISSIONS, RESEARCHER_PERMISSIONS, role_of
from tests.conftest import PASSWORD, api_client_for

pytestmark = pytest.mark.django_db


def test_the_migration_creates_the_three_role_groups_with_their_permissions():
    for name, expected in (
        ("clinician", CLINICIAN_PERMISSIONS),
        ("researcher", RESEARCHER_PERMISSIONS),
        ("admin", ADMIN_PERMISSIONS),
    ):
        group = Group.objects.get(name=name)
        granted = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
        assert granted == set(expected), name


def test_each_role_holds_the_permissions_of_the_role_below():
    assert set(CLINICIAN_PERMISSIONS) < set(RESEARCHER_PERMISSIONS) < set(ADMIN_PERMISSIONS)


def test_a_clinician_records_labels_but_cannot_train_promote_or_audit(clinician):
    assert clinician.has_perms(["annotation.add_image", "annotation.add_painlabel", "modeling.add_assessment"])
    assert not clinician.has_perm("modeling.add_trainingrun")
    assert not clinician.has_perm("modeling.promote_modelversion")
    assert not clinician.has_perm("core.view_auditevent")


def test_a_researcher_trains_and_views_results_but_cannot_promote(researcher):
    assert researcher.has_perms(
        ["modeling.add_trainingrun", "modeling.cancel_trainingrun", "modeling.view_modelversion"]
    )
    assert not researcher.has_perm("modeling.promote_modelversion")
    assert not researcher.has_perm("core.view_auditevent")


def test_an_admin_is_staff_and_promotes_and_audits(admin_user):
    assert admin_user.is_staff
    assert admin_user.has_perms(["modeling.promote_modelversion", "core.view_auditevent"])
    assert role_of(admin_user) == "admin"


def test_an_outsider_without_a_role_has_no_permission(outsider):
    assert role_of(outsider) is None
    assert not outsider.get_all_permissions()


def test_the_dashboard_shows_counts_to_every_role(client, clinician, researcher, admin_user):
    for user in (clinician, researcher, admin_user):
        client.force_login(user)
        response = client.get(reverse("dashboard"))
        assert response.status_code == 200
        assert b'id="count-images"' in response.content


def test_the_dashboard_refuses_an_outsider_with_403(client, outsider):
    client.force_login(outsider)
    response = client.get(reverse("dashboard"))
    assert response.status_code == 403
    assert b"no role" in response.content


def test_anonymous_pages_redirect_to_login(client):
    for url in (reverse("dashboard"), reverse("audit")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_navigation_shows_only_what_the_role_may_use(client, clinician, admin_user):
    client.force_login(clinician)
    page = client.get(reverse("dashboard")).content.decode()
    assert 'href="/label/"' in page and 'href="/training/"' not in page and 'href="/audit/"' not in page
    client.force_login(admin_user)
    page = client.get(reverse("dashboard")).content.decode()
    assert 'href="/training/"' in page and 'href="/audit/"' in page


def test_login_page_logs_a_user_in(client, clinician):
    response = client.post(reverse("login"), {"username": "carla", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("dashboard")).status_code == 200


def test_the_api_answers_anonymous_requests_with_401():
    response = api_client_for(None).get("/api/schema/", {"format": "json"})
    assert response.status_code == 401
    assert response.json()["error"]


def test_a_token_is_issued_for_valid_credentials_and_authenticates_api_calls(clinician):
    client = api_client_for(None)
    response = client.post("/api/auth/token/", {"username": "carla", "password": PASSWORD}, format="json")
    assert response.status_code == 200
    token = response.json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/schema/").status_code == 200


def test_a_token_is_refused_for_a_wrong_password(clinician):
    response = api_client_for(None).post("/api/auth/token/", {"username": "carla", "password": "nope"}, format="json")
    assert response.status_code == 400
    assert "error" in response.json()


def test_the_api_docs_are_served_offline_from_vendored_assets(client, clinician):
    client.force_login(clinician)
    page = client.get(reverse("api-docs")).content.decode()
    assert "drf_spectacular_sidecar" in page
    assert "cdn" not in page.lower()


@pytest.mark.django_db(transaction=True)
def test_the_role_groups_keep_every_permission_after_a_database_flush():
    """Transactional tests (and `manage.py flush`) re-create permissions app by app; the roles
    must be re-synced after the last app, not after core's own turn."""
    from django.core.management import call_command

    call_command("flush", interactive=False, verbosity=0)
    granted = {
        f"{p.content_type.app_label}.{p.codename}"
        for p in Group.objects.get(name="admin").permissions.select_related("content_type")
    }
    assert granted == set(ADMIN_PERMISSIONS)


def test_permissions_come_from_the_role_and_the_user_in_one_query(clinician, django_assert_num_queries):
    from django.contrib.auth.backends import ModelBackend
    from django.contrib.auth.models import Permission, User

    clinician.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    fresh = User.objects.get(pk=clinician.pk)
    with django_assert_num_queries(1):
        granted = fresh.get_all_permissions()
        assert fresh.has_perm("annotation.add_painlabel") and fresh.has_perm("core.view_auditevent")
        assert not fresh.has_perm("modeling.add_trainingrun")
    assert granted == ModelBackend().get_all_permissions(User.objects.get(pk=clinician.pk))


def test_an_inactive_user_has_no_permission(clinician):
    from django.contrib.auth.models import User

    User.objects.filter(pk=clinician.pk).update(is_active=False)
    assert User.objects.get(pk=clinician.pk).get_all_permissions() == set()
