"""PainSite in Simplified Chinese: every string marked, every message translated, every page in
Chinese when asked for, and a user's choice of language kept on their account."""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.core import mail
from django.core.cache import cache
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils import translation

from annotation.models import ImportJob
from annotation.services import record_label, withdraw_consent
from modeling import gate, retrain_policy
from modeling.drift import DriftReport
from modeling.models import Assessment, GateVerdict, RetrainTrigger, RunStatus, Stage, TrainingRun
from modeling.stored_text import translated_message, translated_reason
from painsite.core.models import AdminNotice, LanguagePreference
from painsite.core.roles import ADMIN
from painsite.core.services import record_event
from tests.annotation.factories import make_image, make_patient
from tests.conftest import PASSWORD, make_user
from tests.core.test_settings import run_manage
from tests.core.translation_checks import (
    english_words,
    untranslated_script_strings,
    untranslated_template_text,
)
from tests.modeling.factories import make_model_version, make_predictions, make_test_set, record_evaluation
from tests.modeling.training_data import SMALL_CONFIG

ROOT = Path(settings.BASE_DIR)
CATALOGS = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES"
CHINESE = "zh-hans"


@pytest.fixture(autouse=True)
def site_language_after_each_test():
    """A request activates its language in the thread that serves it, the test's own here: later
    tests in this process must not find Chinese still active."""
    yield
    translation.deactivate()


# ---------------------------------------------------------------------------------------------
# Everything a person reads is marked for translation


def test_every_template_marks_its_text_for_translation():
    problems = {
        str(path.relative_to(ROOT)): found
        for path in sorted((ROOT / "templates").rglob("*.html"))
        if (found := untranslated_template_text(path.read_text()))
    }
    assert not problems, f"text outside {{% translate %}} / {{% blocktranslate %}}: {problems}"


def test_the_template_check_finds_unmarked_text_and_attributes():
    bad = """{% load i18n %}<h1>{% translate "Patients" %}</h1>
    <p>No patients yet.</p>
    <input placeholder="search by code"><img alt="{% translate 'Face' %}">
    <button value="Save now">{% blocktranslate %}Save {{ name }}{% endblocktranslate %}</button>
    <p>AUROC · NRS · PainSite <code>manifest.csv</code> <kbd>X</kbd> {{ patient.code }}</p>"""
    assert untranslated_template_text(bad) == ["'No patients yet.'", "placeholder='search by code'", "value='Save now'"]


def test_every_script_passes_its_messages_through_gettext():
    problems = {
        path.name: found
        for path in sorted((ROOT / "static" / "js").glob("*.js"))
        if (found := untranslated_script_strings(path.read_text()))
    }
    assert not problems, f"script strings that read as English but are not gettext()'s: {problems}"


def test_the_script_check_finds_prose_outside_gettext():
    bad = """
    status.textContent = "Not saved: the server is down.";
    button.textContent = "Pause";
    note.textContent = `Saved NRS ${nrs} for image ${id}.`;
    ok.textContent = gettext("Saved.") + interpolate(gettext("Image %(id)s"), { id: 1 }, true);
    plural.textContent = ngettext("%(n)s key", "%(n)s keys", n);
    level = pgettext("pain level", "severe");
    root.querySelector("input[name=kind]:checked"); row.className = "bar-row is-current";
    if (event.key === "Enter") {}  // keys are compared, not shown
    """
    assert untranslated_script_strings(bad) == [
        '"Not saved: the server is down."',
        '"Pause"',
        "`Saved NRS ${nrs} for image ${id}.`",
    ]


# ---------------------------------------------------------------------------------------------
# Every message has a good Chinese translation, and the compiled catalogs are current

PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%[sd]|\{\w*\}|%%")


def placeholders(text: str) -> list[str]:
    # A brace pair that DRF fills in itself ({{input}}) reads as one placeholder after format_lazy.
    return sorted(PLACEHOLDER.findall(text.replace("{{", "").replace("}}", "")))


def translation_problems(catalog: polib.POFile) -> list[str]:
    problems = []
    for entry in catalog:
        name = f"{entry.msgctxt + ' | ' if entry.msgctxt else ''}{entry.msgid!r}"
        if entry.obsolete:
            problems.append(f"{name}: obsolete")
            continue
        if "fuzzy" in entry.flags:
            problems.append(f"{name}: fuzzy")
        translations = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        for text in translations:
            if not text.strip():
                problems.append(f"{name}: not translated")
            elif placeholders(text) != placeholders(entry.msgid):
                problems.append(f"{name}: placeholders {placeholders(text)} != {placeholders(entry.msgid)}")
    return problems


@pytest.mark.parametrize("domain", ["django", "djangojs"])
def test_every_message_has_a_chinese_translation_with_the_same_placeholders(domain):
    catalog = polib.pofile(str(CATALOGS / f"{domain}.po"))
    assert len(catalog) > (500 if domain == "django" else 100)
    assert catalog.metadata["Plural-Forms"] == "nplurals=1; plural=0;"
    assert not translation_problems(catalog)


def test_the_translation_check_finds_a_fuzzy_an_empty_and_a_broken_entry():
    catalog = polib.POFile()
    catalog.append(polib.POEntry(msgid="Image %(id)s", msgstr="图像"))
    catalog.append(polib.POEntry(msgid="Saved.", msgstr=""))
    catalog.append(polib.POEntry(msgid="Pause", msgstr="暂停", flags=["fuzzy"]))
    catalog.append(polib.POEntry(msgid="{name} must be a number", msgstr="{name} 必须是数字"))
    assert translation_problems(catalog) == [
        "'Image %(id)s': placeholders [] != ['%(id)s']",
        "'Saved.': not translated",
        "'Pause': fuzzy",
    ]


def catalog_messages(catalog: polib._BaseFile) -> dict[tuple[str | None, str], tuple[str, ...]]:
    return {
        (entry.msgctxt, entry.msgid): tuple(entry.msgstr_plural[k] for k in sorted(entry.msgstr_plural))
        if entry.msgid_plural
        else (entry.msgstr,)
        for entry in catalog
        if not entry.obsolete
    }


@pytest.mark.parametrize("domain", ["django", "djangojs"])
def test_the_compiled_catalog_matches_its_po_file(domain):
    """The .mo files are committed (no gettext tools needed to install PainSite); a .po edited
    without `manage.py compilemessages` afterwards fails here."""
    written = catalog_messages(polib.pofile(str(CATALOGS / f"{domain}.po")))
    compiled = catalog_messages(polib.mofile(str(CATALOGS / f"{domain}.mo")))
    compiled.pop((None, ""), None)  # the header
    assert compiled == written


def test_stored_english_reasons_are_shown_in_chinese_with_their_numbers():
    reason = "too few patients for intervals: 3 test patients, at least 10 needed"
    nested = (
        "The two versions were not evaluated on the same test images: no test snapshot holds a finished "
        "evaluation of both (A (v1) has no finished evaluation; B (v2) on test snapshot 4 (40 images)). A paired "
        "test needs identical test sets, so no ΔAUROC confidence interval or DeLong p-value is shown; the "
        "per-version intervals below are not a comparison. Evaluate both on the current test set to pair them."
    )
    with translation.override(CHINESE):
        assert translated_reason(reason) == "患者太少，无法计算区间：测试患者 3 位，至少需要 10 位"
        shown = translated_reason(nested)
        assert "A（v1）没有已完成的评估" in shown and "B（v2）在测试快照 4 上（40 张图像）" in shown
        assert translated_message(
            "WARNING: no ImageNet weights found, training on a random-init backbone; epoch 2/30"
        ) == ("警告：未找到 ImageNet 权重，正在随机初始化的主干网络上训练; 第 2/30 轮")
        assert translated_reason("a reason nobody wrote a template for") == "a reason nobody wrote a template for"
        assert (
            translated_reason(f"not estimable: {reason}")
            == "无法估计：患者太少，无法计算区间：测试患者 3 位，至少需要 10 位"
        )
        assert translated_reason("severe AUROC is lower by 0.120 (p = 0.01 < 0.05)") == (
            "重度 AUROC 低了 0.120（p = 0.01 < 0.05）"
        )
        assert translated_reason("the macro-AUROC difference's lower bound -0.031 is not above −0.02") == (
            "宏平均 AUROC 差值的下限 -0.031 不高于 −0.02"
        )
        drift_words = DriftReport(version=None, window_days=7, reason="there is no production model").words
        assert drift_words == "无法估计：没有生产模型"
    assert translated_reason(reason) == reason


# ---------------------------------------------------------------------------------------------
# Every page, rendered in Chinese, has no English left


@pytest.fixture
def site_with_data(db, isolated_media):
    """An admin and a clinician, patients (one withdrawn), images with labels, two model
    versions (one in production), training runs, an import and audit events."""
    admin = make_user("ada", ADMIN)
    clinician = make_user("carla", "clinician")
    patient = make_patient("P001")
    other = make_patient("S002", cohort="simulated")
    images = [make_image(patient, uploaded_by=admin) for _ in range(3)] + [make_image(other)]
    record_label(image=images[0], rater=admin, nrs=7, kind="observer")
    record_label(image=images[0], rater=clinician, nrs=2, kind="observer")
    record_label(image=images[1], rater=clinician, nrs=4, kind="self_report")
    record_label(image=images[3], rater=admin, nrs=0, kind="observer")
    withdrawn = make_patient("W003")
    make_image(withdrawn)
    withdraw_consent(patient=withdrawn, actor=admin, reason="")
    history = [{"epoch": 1, "loss": 1.2, "val_loss": 1.3, "val_macro_auroc": 0.6}]
    v1 = make_model_version(name="v1", stage=Stage.PRODUCTION, created_by=admin, training_history=history)
    v2 = make_model_version(name="v2", seed=1, skill=2.0, cohorts=["clinical"])
    TrainingRun.objects.create(
        config={
            "cohorts": ["clinical"],
            "mode": "head",
            "epochs": 30,
            "lr": 0.001,
            "batch_size": 32,
            "label_rule": "self_report_first",
            "seed": 0,
        },
        status=RunStatus.RUNNING,
        requested_by=admin,
        progress=0.4,
        epoch=3,
        loss=0.91,
        message="epoch 3/30, batch 2/8, loss 0.9100",
    )
    TrainingRun.objects.create(
        config={"epochs": 30}, status=RunStatus.FAILED, message="failed", error="Traceback: MemoryError"
    )
    job = ImportJob.objects.create(source_name="p.zip", created_by=admin, status="succeeded", total_rows=1)
    record_event(actor=admin, action="model.promote", target=v1, details={"reason": "first"})
    return {
        "admin": admin,
        "outsider": make_user("otto"),
        "patient": patient,
        "image": images[0],
        "v1": v1,
        "v2": v2,
        "job": job,
        # Values people typed or the site named, shown as they are in every language.
        "data": {"ada", "carla", "otto", "P001", "S002", "W003", "v1", "v2", "p.zip"},
    }


@pytest.fixture
def site_with_learning_loop(site_with_data, settings):
    """site_with_data, plus what the learning loop shows: a retrain policy with the runs it started,
    two gate verdicts (one recommending, one not estimable) with the admins' notice, and recent
    assessments enough for the drift watch's table."""
    admin, v1 = site_with_data["admin"], site_with_data["v1"]
    policy = retrain_policy.set_policy(
        enabled=True,
        min_new_labels=20,
        daily_at=datetime.time(2, 30),
        config={**SMALL_CONFIG, "cohorts": ["clinical", "simulated"]},
        set_by=admin,
    )
    for key, numbers in (
        ("labels:1", {"reason": "label count", "new_labels": 24, "min_new_labels": 20}),
        ("day:2026-12-01", {"reason": "daily time", "daily_at": "02:30:00", "new_labels": 3}),
    ):
        run = TrainingRun.objects.create(config=policy.config, status=RunStatus.SUCCEEDED, triggered_by="policy")
        RetrainTrigger.objects.create(key=key, policy=policy, run=run, numbers=numbers)
    # v1 and v3 scored on one test set large enough for intervals; v2 on the small one only.
    test_set = make_test_set(patients_per_cohort=15, images_per_patient=4, first_image_id=500)
    record_evaluation(v1, make_predictions(test_set, skill=1.5, seed=1), n_bootstrap=50)
    v3 = make_model_version(name="v3", predictions=make_predictions(test_set, skill=5.0, seed=2), n_bootstrap=50)
    # The notice is written in the site's language: here a site whose default is Chinese.
    with override_settings(LANGUAGE_CODE=CHINESE):
        judged = [gate.judge(site_with_data["v2"]), gate.judge(v3)]
    assert [decision.verdict for decision in judged] == [GateVerdict.NOT_ESTIMABLE, GateVerdict.BETTER]
    settings.PAINSITE_DRIFT_MIN_ASSESSMENTS = 5
    image = site_with_data["image"]
    Assessment.objects.bulk_create(
        Assessment(image=image, patient=image.patient, model_version=v1, level=level, face_found=True)
        for level in ("none", "mild", "moderate", "severe", "severe", "severe")
    )
    cache.clear()  # the dashboard keeps the drift report for a minute
    return site_with_data | {"v3": v3, "data": site_with_data["data"] | {"v3"}}


def chinese_client(user=None) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=CHINESE)
    if user is not None:
        client.force_login(user)
    return client


def page_routes(data: dict) -> list[str]:
    v1, v2 = data["v1"].pk, data["v2"].pk
    return [
        "/",
        "/upload/",
        "/label/",
        "/images/",
        f"/images/{data['image'].pk}/",
        "/patients/",
        f"/patients/{data['patient'].code}/",
        "/patients/W003/",
        "/agreement/",
        "/training/",
        "/training/loop/",
        "/results/",
        f"/results/{v1}/",
        f"/results/{data['v3'].pk}/",  # with its gate verdict
        f"/results/compare/?a={v1}&b={v2}",
        "/results/compare/",
        "/results/paper/",
        "/assess/",
        "/monitor/",
        "/ward/",
        "/audit/",
        "/people/",
        f"/imports/{data['job'].pk}/",
        "/no-such-page/",
    ]


def test_every_page_reads_in_chinese_with_no_english_left(site_with_learning_loop):
    site = site_with_learning_loop
    client = chinese_client(site["admin"])
    problems, pages = {}, {}
    for route in page_routes(site):
        response = client.get(route)
        assert response.status_code in (200, 404), (route, response.status_code)
        html = pages[route] = response.content.decode()
        assert '<html lang="zh-hans">' in html, route
        if left := english_words(html, data_values=site["data"]):
            problems[route] = sorted(set(left))
    assert not problems, f"English left on pages rendered in Chinese: {problems}"
    # The learning loop's sections were there to be read.
    for section in ('id="admin-notices"', 'id="learning-loop-status"', 'id="drift-watch"', "<td>重度</td>"):
        assert section in pages["/"], section
    for section in ('id="policy-runs"', 'id="gate-verdicts"', "24 条新标注", "宏平均 AUROC 更高"):
        assert section in pages["/training/loop/"], section
    assert 'id="gate-decision"' in pages[f"/results/{site['v3'].pk}/"]


# Routes that answer GET but are not pages to read in Chinese, each with why.
NOT_PAGES = {
    "login": "rendered signed out in test_the_log_in_page_and_the_refusal_page_read_in_chinese",
    "javascript-catalog": "the script catalog: test_the_script_catalog_is_served_in_the_pages_language",
    "training-run-progress": "JSON polled by the training page's script",
    None: "favicon.ico, an image",
}
NOT_PAGE_PREFIXES = ("api/", "fhir/", "admin/")


def url_patterns(patterns=None, prefix: str = ""):
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from url_patterns(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def answers_get(pattern: URLPattern) -> bool:
    view = pattern.callback
    if (table := getattr(view, "permission_table", None)) is not None:
        return "GET" in table
    view_class = getattr(view, "view_class", None)
    return view_class is None or ("get" in view_class.http_method_names and hasattr(view_class, "get"))


def test_every_page_the_site_serves_is_among_the_pages_read_in_chinese(site_with_learning_loop):
    """A new page must be added to page_routes, so it cannot ship without its Chinese."""
    routes = [route.split("?")[0] for route in page_routes(site_with_learning_loop) if route != "/no-such-page/"]
    checked = {resolve(route).url_name for route in routes}
    missing = [
        f"{route} ({pattern.name})"
        for route, pattern in url_patterns()
        if not route.startswith(NOT_PAGE_PREFIXES)
        and pattern.name not in NOT_PAGES
        and answers_get(pattern)
        and pattern.name not in checked
    ]
    assert not missing, f"pages not in page_routes: {missing}"


def test_a_sites_notices_are_written_and_e_mailed_in_its_default_language(
    site_with_data, settings, django_capture_on_commit_callbacks
):
    settings.LANGUAGE_CODE = CHINESE
    settings.PAINSITE_ADMIN_EMAILS = ["ward@example.org"]
    with django_capture_on_commit_callbacks(execute=True):
        decision = gate.judge(site_with_data["v2"])
    [message] = mail.outbox
    assert message.subject == "[PainSite] v2：无法估计：不作推荐"
    assert (
        f"门控规则 {decision.rule_id}：无法估计：不作推荐。" in message.body
        and "挑战者 v2 对比生产模型 v1。" in message.body
    )
    assert "DeLong 检验，按患者聚类的方差（Obuchowski 1997）" in message.body
    assert AdminNotice.objects.get(key=f"gate:{decision.challenger_id}").subject == "v2：无法估计：不作推荐"


def test_the_log_in_page_and_the_refusal_page_read_in_chinese(site_with_data):
    pages = {
        "/accounts/login/": chinese_client().get("/accounts/login/"),
        "403": chinese_client(site_with_data["outsider"]).get("/"),
    }
    assert pages["403"].status_code == 403
    for name, response in pages.items():
        html = response.content.decode()
        assert "登录" in html, name
        assert not english_words(html, data_values=site_with_data["data"]), name


def test_the_english_pages_stay_english_and_numbers_in_data_stay_machine_readable(site_with_data):
    html = Client(HTTP_ACCEPT_LANGUAGE="en").get("/accounts/login/").content.decode()
    assert '<html lang="en">' in html and "Log in" in html
    client = chinese_client(site_with_data["admin"])
    training = client.get("/training/").content.decode()
    assert 'value="0.4"' in training  # a progress bar's value is a number, not localised text
    assert "第 3/30 轮，批次 2/8，损失 0.9100" in training  # the worker's message, in Chinese


def test_the_script_catalog_is_served_in_the_pages_language():
    translated = json.dumps({"Assessing…": "正在评估…"})[1:-1]  # as the catalog writes it, escaped
    assert translated in Client(HTTP_ACCEPT_LANGUAGE=CHINESE).get(reverse("javascript-catalog")).content.decode()
    assert translated not in Client().get(reverse("javascript-catalog")).content.decode()


# ---------------------------------------------------------------------------------------------
# Choosing a language


def test_the_selector_on_any_page_switches_the_language_and_returns_to_that_page(site_with_data):
    client = Client()
    client.force_login(site_with_data["admin"])
    page = client.get("/patients/").content.decode()
    assert f'action="{reverse("set_language")}"' in page and 'value="zh-hans"' in page
    response = client.post(reverse("set_language"), {"language": CHINESE, "next": "/patients/"})
    assert response.status_code == 302 and response["Location"] == "/patients/"
    assert "添加患者" in client.get("/patients/").content.decode()
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    assert "Add a patient" in client.get("/patients/").content.decode()


def test_a_signed_in_users_choice_follows_them_to_a_fresh_browser(site_with_data):
    admin = site_with_data["admin"]
    first = Client(HTTP_ACCEPT_LANGUAGE="en")
    assert first.login(username=admin.username, password=PASSWORD)
    first.post(reverse("set_language"), {"language": CHINESE, "next": "/"})
    assert LanguagePreference.objects.get(user=admin).language == CHINESE
    first.post(reverse("logout"))

    fresh = Client(HTTP_ACCEPT_LANGUAGE="en")  # another device: no cookie, an English browser
    assert "Log in" in fresh.get("/accounts/login/").content.decode()
    response = fresh.post("/accounts/login/", {"username": admin.username, "password": PASSWORD}, follow=True)
    assert "仪表板" in response.content.decode()
    assert fresh.cookies[settings.LANGUAGE_COOKIE_NAME].value == CHINESE
    # Signed out again, the log-in page stays in the user's language on this device.
    fresh.post(reverse("logout"))
    assert "登录" in fresh.get("/accounts/login/").content.decode()


def test_an_anonymous_choice_is_kept_in_the_cookie_only(db):
    client = Client()
    client.post(reverse("set_language"), {"language": CHINESE, "next": "/accounts/login/"})
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == CHINESE
    assert "登录" in client.get("/accounts/login/").content.decode()
    assert not LanguagePreference.objects.exists()


def test_a_language_the_site_does_not_offer_changes_nothing(site_with_data):
    client = Client()
    client.force_login(site_with_data["admin"])
    client.post(reverse("set_language"), {"language": "xx", "next": "/"})
    assert not LanguagePreference.objects.exists()
    assert "Dashboard" in client.get("/").content.decode()


def test_a_site_whose_default_is_chinese_serves_chinese_to_a_browser_that_asks_for_neither(settings, db):
    settings.LANGUAGE_CODE = CHINESE  # what PAINSITE_LANGUAGE=zh-hans sets
    assert "登录" in Client(HTTP_ACCEPT_LANGUAGE="fr").get("/accounts/login/").content.decode()
    assert "Log in" in Client(HTTP_ACCEPT_LANGUAGE="en-GB").get("/accounts/login/").content.decode()


def test_an_unknown_default_language_is_refused_at_start(tmp_path):
    result = run_manage("check", PAINSITE_LANGUAGE="fr", PAINSITE_VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "PAINSITE_LANGUAGE='fr'; valid options: en, zh-hans" in result.stderr
