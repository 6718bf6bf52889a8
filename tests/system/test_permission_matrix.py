"""Every URL × every role × every HTTP method, from one table.

The routes are discovered from the URL resolver, so a new page or endpoint without an entry in
ENDPOINTS fails the test with its route named: whoever adds it decides who may use it. Path
parameters are filled with real objects, so "allowed" means the view ran (not 401/403, no 5xx,
and a GET finds its object), not that it 404ed before checking anything.

Every method is tried, not only the listed ones: HEAD is allowed where GET is, to the same
people; OPTIONS to whoever may use one of the route's methods; anything else is refused with 405.
No refused request may leave an audit event behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from annotation.models import ImportJob
from annotation.services import record_label, withdraw_consent
from modeling.models import RunStatus, TrainingRun
from modeling.ward_models import CameraSource, ReadingKind, StreamAssessment, WardAlert
from painsite.core.models import AdminNotice, AuditEvent
from tests.annotation.factories import make_image, make_patient
from tests.modeling.factories import make_model_version

pytestmark = pytest.mark.django_db

# Who may call a method, lowest first. "anyone" needs no login; "user" any login, role or not.
ANYONE, USER, CLINICIAN, RESEARCHER, ADMIN = "anyone", "user", "clinician", "researcher", "admin"
RANK = {ANYONE: 0, USER: 1, CLINICIAN: 2, RESEARCHER: 3, ADMIN: 4}
PERSONAS = ("anonymous", "outsider", CLINICIAN, RESEARCHER, ADMIN)
PERSONA_RANK = {"anonymous": 0, "outsider": 1, CLINICIAN: 2, RESEARCHER: 3, ADMIN: 4}
ALL_METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class Endpoint:
    """`api` endpoints answer anonymous callers 401; pages redirect them to the log-in page."""

    api: bool
    methods: dict[str, str]
    # Which fixture object fills a path parameter, when the parameter name alone cannot say.
    params: dict[str, str] = field(default_factory=dict)


def page(**methods: str) -> Endpoint:
    return Endpoint(api=False, methods=methods)


def api(params: dict[str, str] | None = None, **methods: str) -> Endpoint:
    return Endpoint(api=True, methods=methods, params=params or {})


RUN = {"pk": "run"}
VERSION = {"pk": "version"}

ENDPOINTS: dict[str, Endpoint] = {
    "": page(GET=CLINICIAN),
    "audit/": page(GET=ADMIN),
    "people/": page(GET=ADMIN, POST=ADMIN),
    "people/<int:user_id>/role/": page(POST=ADMIN),
    "people/<int:user_id>/active/": page(POST=ADMIN),
    "people/<int:user_id>/password/": page(POST=ADMIN),
    "accounts/login/": page(GET=ANYONE, POST=ANYONE),
    "accounts/logout/": page(POST=ANYONE),
    "api/auth/token/": api(POST=ANYONE, DELETE=USER),
    # The schema describes the API, not patient data: any account may read it. The docs are a
    # page for people with a role (anonymous: the log-in page).
    "api/schema/": api(GET=USER),
    "api/docs/": page(GET=CLINICIAN),
    "favicon.ico": page(GET=ANYONE),
    # The language selector (on the log-in page too) and the scripts' translations.
    "i18n/setlang/": page(POST=ANYONE),
    "jsi18n/": page(GET=ANYONE),
    # Images and imports
    "upload/": page(GET=CLINICIAN),
    "upload/archive/": page(POST=CLINICIAN),
    "images/": page(GET=CLINICIAN),
    "images/<int:image_id>/": page(GET=CLINICIAN),
    "imports/<int:job_id>/": page(GET=CLINICIAN),
    "api/images/": api(GET=CLINICIAN, POST=CLINICIAN),
    "api/images/bulk/": api(POST=CLINICIAN),
    "api/images/<int:image_id>/": api(GET=CLINICIAN),
    "api/images/<int:image_id>/file/": api(GET=CLINICIAN),
    "api/imports/<int:job_id>/": api(GET=CLINICIAN),
    # Labeling and patients
    "label/": page(GET=CLINICIAN),
    "patients/": page(GET=CLINICIAN, POST=CLINICIAN),
    "patients/<str:code>/": page(GET=CLINICIAN),
    "patients/<str:code>/consent/": page(POST=CLINICIAN),
    "agreement/": page(GET=CLINICIAN),
    "api/patients/": api(GET=CLINICIAN, POST=CLINICIAN),
    "api/patients/<str:code>/": api(GET=CLINICIAN, PATCH=CLINICIAN),
    "api/queue/next/": api(GET=CLINICIAN),
    # Which order the queue uses is no secret to whoever labels; choosing it is for researchers.
    "api/queue/order/": api(GET=CLINICIAN, PUT=RESEARCHER),
    "queue/order/": page(POST=RESEARCHER),
    "api/images/<int:image_id>/labels/": api(GET=CLINICIAN, POST=CLINICIAN),
    "api/labels/": api(GET=CLINICIAN),
    "api/labels/undo/": api(POST=CLINICIAN),
    "api/export/labels.csv": api(GET=RESEARCHER),
    "api/agreement/": api(GET=CLINICIAN),
    # Training and the model registry
    "training/": page(GET=RESEARCHER, POST=RESEARCHER),
    "training/loop/": page(GET=RESEARCHER, POST=ADMIN),
    "notices/<int:pk>/dismiss/": Endpoint(api=False, methods={"POST": ADMIN}, params={"pk": "notice"}),
    "training/runs/<int:pk>/progress/": Endpoint(api=False, methods={"GET": RESEARCHER}, params=RUN),
    "training/runs/<int:pk>/cancel/": Endpoint(api=False, methods={"POST": RESEARCHER}, params=RUN),
    "model-versions/<int:pk>/promote/": Endpoint(api=False, methods={"POST": ADMIN}, params=VERSION),
    "api/training-runs/": api(GET=RESEARCHER, POST=RESEARCHER),
    "api/training-runs/<int:pk>/": api(RUN, GET=RESEARCHER),
    "api/training-runs/<int:pk>/cancel/": api(RUN, POST=RESEARCHER),
    "api/model-versions/": api(GET=RESEARCHER),
    "api/model-versions/<int:pk>/": api(VERSION, GET=RESEARCHER),
    "api/model-versions/<int:pk>/promote/": api(VERSION, POST=ADMIN),
    "api/model-versions/compare/": api(GET=RESEARCHER),
    "api/model-versions/<int:pk>/evaluations/": api(VERSION, GET=RESEARCHER, POST=RESEARCHER),
    "api/test-snapshots/": api(GET=RESEARCHER),
    # Results
    "results/": page(GET=RESEARCHER),
    "results/paper/": page(GET=RESEARCHER),
    "results/compare/": page(GET=RESEARCHER),
    "results/<int:pk>/": Endpoint(api=False, methods={"GET": RESEARCHER}, params=VERSION),
    # Assessment
    "assess/": page(GET=CLINICIAN),
    "monitor/": page(GET=CLINICIAN),
    "api/assessments/": api(POST=CLINICIAN),
    "api/images/<int:image_id>/suggestion/": api(GET=CLINICIAN),
    # Ward monitoring: clinicians watch the board and acknowledge alerts; admins attach the cameras.
    "ward/": page(GET=CLINICIAN),
    "api/ward/beds/": api(GET=CLINICIAN),
    "api/ward/alerts/<int:pk>/acknowledge/": api({"pk": "ward_alert"}, POST=CLINICIAN),
    "api/ward/sources/": api(GET=ADMIN, POST=ADMIN),
    "api/ward/sources/<int:pk>/": api({"pk": "camera"}, GET=ADMIN, PATCH=ADMIN, DELETE=ADMIN),
    # FHIR export: the scores leave PainSite, so the label export's people (researchers, admins).
    "fhir/Observation": api(GET=RESEARCHER),
    "fhir/Patient/<str:code>/$everything": api(GET=RESEARCHER),
}

# Query strings that make a GET do its real work instead of showing an empty form.
QUERIES = {
    "api/model-versions/compare/": lambda objects: f"?a={objects['version'].pk}&b={objects['version2'].pk}",
    "results/compare/": lambda objects: f"?a={objects['version'].pk}&b={objects['version2'].pk}",
    "api/labels/": lambda objects: f"?image={objects['image'].pk}",
    "fhir/Observation": lambda objects: f"?patient={objects['code'].code}",
}
DJANGO_ADMIN_PREFIX = "admin/"


def discovered_routes(patterns=None, prefix: str = "") -> Iterator[str]:
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from discovered_routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def our_routes() -> list[str]:
    # Django's own admin checks is_staff itself; one check of its index below covers the gate.
    return [route for route in discovered_routes() if not route.startswith(DJANGO_ADMIN_PREFIX)]


def fill(route: str, endpoint: Endpoint, objects: dict, user: User | None) -> str:
    path = route
    for converter_and_name in _parameters(route):
        name = converter_and_name.split(":")[-1]
        key = endpoint.params.get(name, name)
        value = objects[key](user) if callable(objects[key]) else objects[key]
        path = path.replace(f"<{converter_and_name}>", str(getattr(value, "code", None) or value.pk))
    return "/" + path + QUERIES.get(route, lambda _: "")(objects)


def _parameters(route: str) -> list[str]:
    return [part.split(">")[0] for part in route.split("<")[1:]]


@pytest.fixture
def people(clinician, researcher, admin_user, outsider) -> dict[str, User | None]:
    return {"anonymous": None, "outsider": outsider, CLINICIAN: clinician, RESEARCHER: researcher, ADMIN: admin_user}


@pytest.fixture
def objects(people) -> dict:
    users = [user for user in people.values() if user is not None]
    patient = make_patient("P-granted")
    image = make_image(patient)
    withdrawn_patient = make_patient("P-withdrawn")
    withdrawn_image = make_image(withdrawn_patient)
    for user in (people[CLINICIAN], people[RESEARCHER], people[ADMIN]):
        # The model's suggestion is shown only to someone who already scored the image.
        record_label(image=image, rater=user, nrs=4, kind="observer")
    record_label(image=withdrawn_image, rater=people[ADMIN], nrs=6, kind="observer")
    withdraw_consent(patient=withdrawn_patient, actor=people[ADMIN], reason="permission matrix")
    jobs = {user.pk: ImportJob.objects.create(source_name="a.zip", created_by=user) for user in users}
    version = make_model_version(name="v1", n_bootstrap=20)
    version2 = make_model_version(name="v2", seed=1, n_bootstrap=20)
    run = TrainingRun.objects.create(config={}, status=RunStatus.QUEUED)
    notice = AdminNotice.objects.create(kind="gate", subject="v2: promotion recommended")
    camera = CameraSource.objects.create(name="bed 1 camera", url="rtsp://camera-1/stream", bed="1", patient=patient)
    reading = StreamAssessment.objects.create(
        source=camera, bed="1", patient=patient, slot=1, last_slot=1, interval_seconds=10, kind=ReadingKind.NO_FACE
    )
    ward_alert = WardAlert.objects.create(
        source=camera, bed="1", patient=patient, reading=reading, severe_run=3, severe_probability=0.9
    )
    return {
        "camera": camera,
        "ward_alert": ward_alert,
        "notice": notice,
        "image_id": image,
        "image": image,
        "withdrawn_image": withdrawn_image,
        "code": patient,
        # Imports are private to whoever started them: each persona asks about their own.
        "job_id": lambda user: jobs[user.pk] if user is not None else jobs[users[0].pk],
        "pk": run,
        "run": run,
        "version": version,
        "version2": version2,
        "user_id": people["outsider"],
    }


def client_for(user: User | None) -> APIClient:
    # A server error is reported with the others, not raised out of the first request.
    client = APIClient(raise_request_exception=False)
    if user is not None:
        client.force_login(user)
    return client


def call(user: User | None, method: str, path: str):
    """One request, its writes rolled back, so no request changes what the next one sees."""
    return call_counting_audit_events(user, method, path)[0]


def call_counting_audit_events(user: User | None, method: str, path: str):
    """One request, rolled back; with the number of audit events it wrote."""
    with transaction.atomic():
        before = AuditEvent.objects.count()
        response = getattr(client_for(user), method.lower())(path)
        written = AuditEvent.objects.count() - before
        transaction.set_rollback(True)
    return response, written


def answered_methods(endpoint: Endpoint) -> dict[str, str]:
    """The listed methods, HEAD with GET's minimum and OPTIONS with the lowest of them."""
    methods = dict(endpoint.methods)
    if "GET" in methods:
        methods["HEAD"] = methods["GET"]
    methods["OPTIONS"] = min(methods.values(), key=RANK.__getitem__)
    return methods


def is_refusal(endpoint: Endpoint, response) -> bool:
    code = response.status_code
    if code in (401, 403, 405):
        return True
    return not endpoint.api and code == 302 and response.headers.get("Location", "").startswith("/accounts/login/")


def expectation_problem(endpoint: Endpoint, persona: str, method: str, response) -> str | None:
    code = response.status_code
    if code >= 500:
        return f"server error {code}"
    methods = answered_methods(endpoint)
    if method not in methods:
        if code == 405:
            return None
        if persona == "anonymous" and is_refusal(endpoint, response):
            return None  # asked to log in first, before anyone says which methods exist
        return f"{code} for a method the table does not list, expected 405"
    minimum = methods[method]
    allowed = PERSONA_RANK[persona] >= RANK[minimum]
    if allowed:
        if code in (401, 403, 405):
            return f"refused with {code} but {minimum} may {method}"
        if method in ("GET", "HEAD") and code == 404:
            return "404 for an object that exists"
        return None
    if persona == "anonymous" and endpoint.api:
        return None if code == 401 else f"anonymous API call got {code}, expected 401"
    if persona == "anonymous":
        location = response.headers.get("Location", "")
        return (
            None if code == 302 and location.startswith("/accounts/login/") else f"anonymous page got {code} {location}"
        )
    return None if code == 403 else f"{persona} got {code}, expected 403 (needs {minimum})"


def test_every_route_has_an_entry_in_the_permission_table():
    missing = sorted(set(our_routes()) - set(ENDPOINTS))
    assert not missing, f"routes without an entry in ENDPOINTS (who may call them?): {missing}"
    stale = sorted(set(ENDPOINTS) - set(our_routes()))
    assert not stale, f"ENDPOINTS lists routes that no longer exist: {stale}"


def test_every_route_answers_each_role_and_method_as_the_table_says(people, objects):
    problems = []
    tried = 0
    for route in our_routes():
        endpoint = ENDPOINTS.get(route)
        if endpoint is None:
            continue  # reported by the test above
        for persona in PERSONAS:
            user = people[persona]
            path = fill(route, endpoint, objects, user)
            for method in ALL_METHODS:
                response, audit_events = call_counting_audit_events(user, method, path)
                tried += 1
                problem = expectation_problem(endpoint, persona, method, response)
                if problem:
                    problems.append(f"{method} {path} as {persona}: {problem}")
                if audit_events and is_refusal(endpoint, response):
                    problems.append(
                        f"{method} {path} as {persona}: refused with {response.status_code} but wrote {audit_events} audit events"
                    )
    assert tried > 1500
    assert not problems, "\n".join(problems)


def test_head_of_an_image_tells_an_outsider_nothing_and_audits_nothing(people, objects):
    """HEAD runs GET's code in Django and DRF: it must pass GET's permission check first."""
    image = objects["image"]
    for path in ("/api/images/", f"/api/images/{image.pk}/", f"/api/images/{image.pk}/file/"):
        response, audit_events = call_counting_audit_events(people["outsider"], "HEAD", path)
        assert response.status_code == 403, path
        assert "Content-Disposition" not in response.headers
        assert audit_events == 0
    response, audit_events = call_counting_audit_events(people[CLINICIAN], "HEAD", f"/api/images/{image.pk}/file/")
    assert response.status_code == 200 and response.headers["Content-Disposition"].startswith("inline")
    assert audit_events == 1


def test_options_lists_the_methods_only_to_someone_who_may_use_the_route(people, objects):
    assert call(people["outsider"], "OPTIONS", "/patients/").status_code == 403
    assert call(people["outsider"], "OPTIONS", "/api/patients/").status_code == 403
    page_answer = call(people[CLINICIAN], "OPTIONS", "/patients/")
    assert page_answer.status_code == 200
    assert page_answer.headers["Allow"] == "GET, POST, HEAD, OPTIONS"
    assert call(people[CLINICIAN], "OPTIONS", "/api/patients/").status_code == 200


def test_withdrawn_patients_images_are_served_to_admins_only(people, objects):
    image = objects["withdrawn_image"]
    image_routes = [r for r in our_routes() if "<int:image_id>" in r and "GET" in ENDPOINTS[r].methods]
    assert len(image_routes) >= 4
    problems = []
    for route in image_routes:
        path = "/" + route.replace("<int:image_id>", str(image.pk))
        for persona in (CLINICIAN, RESEARCHER, ADMIN):
            code = call(people[persona], "GET", path).status_code
            expected_refusal = persona != ADMIN
            if expected_refusal and code != 403:
                problems.append(f"GET {path} as {persona}: {code}, expected 403")
            if not expected_refusal and (code in (401, 403, 404) or code >= 500):
                problems.append(f"GET {path} as admin: {code}")
    assert not problems, "\n".join(problems)


def test_withdrawn_patients_images_are_left_out_of_lists_and_the_queue(people, objects):
    withdrawn = objects["withdrawn_image"]
    for persona in (CLINICIAN, RESEARCHER):
        client = client_for(people[persona])
        listed = [item["id"] for item in client.get("/api/images/").json()["results"]]
        assert objects["image"].pk in listed and withdrawn.pk not in listed
        labels = client.get(f"/api/labels/?image={withdrawn.pk}").json()["results"]
        assert labels == []
        queued = client.get("/api/queue/next/")
        assert queued.status_code == 204 or queued.json()["id"] != withdrawn.pk
    admin_listed = [item["id"] for item in client_for(people[ADMIN]).get("/api/images/").json()["results"]]
    assert withdrawn.pk in admin_listed


def test_an_import_report_is_shown_only_to_whoever_started_it_and_admins(people, objects):
    clinicians_job = objects["job_id"](people[CLINICIAN])
    for path in (f"/api/imports/{clinicians_job.pk}/", f"/imports/{clinicians_job.pk}/"):
        assert call(people[RESEARCHER], "GET", path).status_code == 403
        assert call(people[CLINICIAN], "GET", path).status_code == 200
        assert call(people[ADMIN], "GET", path).status_code == 200


def test_the_django_admin_is_for_staff_only(people):
    for persona in ("anonymous", "outsider", CLINICIAN, RESEARCHER):
        response = call(people[persona], "GET", "/admin/")
        assert response.status_code == 302 and "/admin/login/" in response.headers["Location"], persona
    assert call(people[ADMIN], "GET", "/admin/").status_code == 200


def test_a_withdrawn_patients_scores_and_raters_are_shown_to_admins_only(people, objects):
    """The patient page and its timeline follow the same rule as /api/labels/ and the images."""
    withdrawn = objects["withdrawn_image"]
    code = withdrawn.patient.code
    rater = people[ADMIN].get_username()
    for persona in (CLINICIAN, RESEARCHER):
        response = call(people[persona], "GET", f"/patients/{code}/")
        assert response.status_code == 200, persona
        assert response.context["points"] == []
        table = response.content.decode().split('id="timeline-table"')[1]
        assert rater not in table and f"/api/images/{withdrawn.pk}/file/" not in table
        assert client_for(people[persona]).get(f"/api/labels/?patient={code}").json()["results"] == []
    response = call(people[ADMIN], "GET", f"/patients/{code}/")
    assert [(point["who"], point["nrs"]) for point in response.context["points"]] == [(rater, 6)]
    assert [
        label["nrs"] for label in client_for(people[ADMIN]).get(f"/api/labels/?patient={code}").json()["results"]
    ] == [6]
