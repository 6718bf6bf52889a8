"""The OpenAPI schema, fuzzed: schemathesis generates requests for every operation it describes
and sends them to gunicorn on 127.0.0.1 (serving the test database) as an admin (token auth). No answer may be a 5xx,
and every answer must match what the schema says about its body and content type.

Bounded: a few examples per operation and no deadline per example, so the file stays well under
90 seconds on two cores.
"""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from annotation.services import record_label
from bench.load import gunicorn
from painsite.core.roles import ADMIN
from tests.annotation.factories import make_image, make_patient
from tests.conftest import make_user
from tests.modeling.factories import make_model_version
from tests.workers import database_url_for_subprocess

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

EXAMPLES_PER_OPERATION = 6
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
# Revoking the token would log the fuzzer itself out; revocation has its own test.
SKIPPED = {("DELETE", "/api/auth/token/")}


@pytest.fixture
def admin_token(settings) -> str:
    admin = make_user("fuzz-admin", ADMIN)
    # Real objects, so generated ids sometimes hit something (ids are small integers).
    patient = make_patient("P-1")
    for _ in range(3):
        record_label(image=make_image(patient), rater=admin, nrs=5, kind="observer")
    make_model_version(name="v1", n_bootstrap=20, created_by=admin)
    return Token.objects.create(user=admin).key


@pytest.fixture
def server_url(admin_token, test_broker_url, settings, tmp_path) -> str:
    env = {"CELERY_BROKER_URL": test_broker_url}  # a run the fuzzer starts goes to this test's broker
    with gunicorn(
        database_url=database_url_for_subprocess(),
        media_root=settings.MEDIA_ROOT,
        data_dir=settings.PAINSITE_DATA_DIR,
        workers=2,
        threads=2,
        log_path=tmp_path / "gunicorn.log",
        extra_env=env,
    ) as port:
        yield f"http://127.0.0.1:{port}"


def test_generated_requests_get_no_5xx_and_answers_match_the_schema(server_url, admin_token):
    headers = {"Authorization": f"Token {admin_token}"}
    raw = requests.get(f"{server_url}/api/schema/", params={"format": "json"}, headers=headers, timeout=60)
    assert raw.status_code == 200, raw.text[:500]
    schema = schemathesis.openapi.from_dict(raw.json())
    session = requests.Session()
    failures: list[str] = []
    tried = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue

        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def fuzz(case) -> None:
            response = case.call(base_url=server_url, session=session, headers=headers)
            case.validate_response(response, checks=CHECKS)

        tried += 1
        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as failure:  # collected: one run reports every failing operation
            failures.append(f"{operation.method.upper()} {operation.path}: {_first_lines(failure)}")
    assert tried >= 25, f"only {tried} operations in the schema"
    assert not failures, "\n\n".join(failures)


def _first_lines(failure: BaseException) -> str:
    text = str(failure) or repr(failure)
    if isinstance(failure, BaseExceptionGroup):
        text += "\n" + "\n".join(str(inner)[:600] for inner in failure.exceptions)
    return text[:1500]
