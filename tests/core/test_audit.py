from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from painsite.core.models import AuditEvent
from painsite.core.services import record_event

pytestmark = pytest.mark.django_db


def test_record_event_stores_who_what_and_which_object(clinician):
    event = record_event(actor=clinician, action="patient.create", target=clinician, details={"code": "P1"})
    event.refresh_from_db()
    assert event.actor == clinician and event.actor_username == "carla"
    assert (event.action, event.object_type, event.object_id) == ("patient.create", "auth.user", str(clinician.pk))
    assert event.details == {"code": "P1"}


def test_an_audit_event_cannot_be_edited_or_deleted_through_the_model(clinician):
    event = record_event(actor=clinician, action="label.create")
    event.action = "tampered"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(action="tampered")
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "label.create"


def test_the_django_admin_shows_audit_events_read_only(client, admin_user):
    event = record_event(actor=admin_user, action="model.promote")
    client.force_login(admin_user)
    change_url = reverse("admin:core_auditevent_change", args=[event.pk])
    assert client.get(change_url).status_code == 200
    assert client.post(change_url, {"action": "tampered"}).status_code == 403
    assert client.post(reverse("admin:core_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:core_auditevent_add")).status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).action == "model.promote"


def test_no_api_endpoint_accepts_writes_to_the_audit_log(admin_user):
    from django.urls import get_resolver

    patterns = [str(p.pattern) for p in get_resolver().url_patterns]
    assert not [p for p in patterns if p.startswith("api/") and "audit" in p]


def test_the_audit_page_is_for_admins_only(client, clinician, researcher, admin_user, outsider):
    for user in (clinician, researcher, outsider):
        client.force_login(user)
        assert client.get(reverse("audit")).status_code == 403
    client.force_login(admin_user)
    assert client.get(reverse("audit")).status_code == 200


def test_the_audit_page_filters_by_user_action_and_date(client, clinician, admin_user):
    record_event(actor=clinician, action="label.create", details={"nrs": 4})
    record_event(actor=admin_user, action="model.promote")
    client.force_login(admin_user)

    page = client.get(reverse("audit"), {"user": "carla"}).content.decode()
    assert "label.create" in page and "<td>model.promote</td>" not in page

    page = client.get(reverse("audit"), {"action": "model.promote"}).content.decode()
    assert "<td>model.promote</td>" in page and "<td>label.create</td>" not in page

    tomorrow = (timezone.now() + datetime.timedelta(days=1)).strftime("%Y-%m-%d")
    page = client.get(reverse("audit"), {"since": tomorrow}).content.decode()
    assert "No events match." in page
    today = timezone.now().strftime("%Y-%m-%d")
    page = client.get(reverse("audit"), {"since": today, "until": today}).content.decode()
    assert "<td>label.create</td>" in page
