"""The /assess/ and /monitor/ pages: who may open them, and what they say without a model."""

from __future__ import annotations

import pytest
from django.test import Client

from annotation.models import Consent, Patient
from modeling.models import Stage
from tests.modeling.tiny_model import make_model_version, tiny_model

PAGES = ["/assess/", "/monitor/"]


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_users_are_sent_to_log_in(db, url):
    response = Client().get(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("url", PAGES)
def test_outsiders_get_403(outsider, url):
    assert client_for(outsider).get(url).status_code == 403


@pytest.mark.parametrize("url", PAGES)
def test_without_a_production_model_the_page_explains_how_to_train_and_promote_one(clinician, url):
    content = client_for(clinician).get(url).content.decode()
    assert "No production model yet" in content
    assert 'href="/training/"' in content and 'href="/results/"' in content


@pytest.mark.parametrize("url", PAGES)
def test_with_a_production_model_the_page_names_it_and_offers_consented_patients(clinician, url):
    make_model_version(tiny_model(), name="v7", stage=Stage.PRODUCTION)
    Patient.objects.create(code="P-IN", cohort="clinical", consent="granted")
    Patient.objects.create(code="P-OUT", cohort="clinical", consent=Consent.WITHDRAWN)
    content = client_for(clinician).get(url).content.decode()
    assert "No production model yet" not in content
    assert "<strong>v7</strong>" in content and "random-init backbone" in content
    assert 'value="P-IN"' in content and "P-OUT" not in content


def test_only_researchers_may_pick_a_model_version(clinician, researcher):
    make_model_version(tiny_model(), name="v7", stage=Stage.PRODUCTION)
    make_model_version(tiny_model(), name="v8", stage=Stage.CANDIDATE)
    assert 'id="assess-version"' not in client_for(clinician).get("/assess/").content.decode()
    content = client_for(researcher).get("/assess/").content.decode()
    assert 'id="assess-version"' in content and "v8 (candidate)" in content


def test_the_monitor_page_carries_the_configured_interval_and_alert_run(clinician, settings):
    settings.PAINSITE_MONITOR_INTERVAL_SECONDS = 7
    settings.PAINSITE_MONITOR_ALERT_CONSECUTIVE = 4
    content = client_for(clinician).get("/monitor/").content.decode()
    assert 'id="monitor-interval" min="1" max="600" step="1" value="7"' in content
    assert 'id="monitor-consecutive" min="1" max="100" step="1" value="4"' in content
