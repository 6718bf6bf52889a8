"""API rates: assessments and uploads per account, token requests per client address."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.conftest import PASSWORD, api_client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def low_rates(settings):
    settings.PAINSITE_THROTTLE_RATES = {"assessments": "2/hour", "uploads": "2/hour", "token": "2/hour"}


def test_token_requests_are_limited_per_client_address(clinician, low_rates):
    client = api_client_for(None)
    credentials = {"username": clinician.username, "password": PASSWORD}
    for _ in range(2):
        assert (
            client.post("/api/auth/token/", credentials, format="json", REMOTE_ADDR="198.51.100.7").status_code == 200
        )
    refused = client.post("/api/auth/token/", credentials, format="json", REMOTE_ADDR="198.51.100.7")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "throttled" in refused.json()["error"].lower()
    assert client.post("/api/auth/token/", credentials, format="json", REMOTE_ADDR="198.51.100.8").status_code == 200


@pytest.mark.parametrize("path", ["/api/assessments/", "/api/images/", "/api/images/bulk/"])
def test_costly_posts_are_limited_per_account(path, clinician, clinician2, low_rates):
    client = api_client_for(clinician)
    # Empty forms are refused by the view (400) but still count: the limit is on requests.
    assert [client.post(path, {}).status_code for _ in range(2)] == [400, 400]
    refused = client.post(path, {})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert api_client_for(clinician2).post(path, {}).status_code == 400


def test_reading_is_not_limited_by_the_upload_rate(clinician, low_rates):
    client = api_client_for(clinician)
    assert [client.get(reverse("api-images")).status_code for _ in range(4)] == [200] * 4


def test_a_forwarded_for_header_written_by_the_client_does_not_reset_the_count(clinician, low_rates):
    client = api_client_for(None)
    credentials = {"username": clinician.username, "password": PASSWORD}
    codes = [
        client.post(
            "/api/auth/token/",
            credentials,
            format="json",
            REMOTE_ADDR="198.51.100.7",
            HTTP_X_FORWARDED_FOR=f"10.0.0.{n}",
        ).status_code
        for n in range(3)
    ]
    assert codes == [200, 200, 429]
