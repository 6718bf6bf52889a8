"""PainSite in Simplified Chinese: every string marked, every message translated, every page in
Chinese when asked for, and a user's choice of language kept on their account."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import translation

from annotation.models import ImportJob
from annotation.services import record_label, withdraw_consent
from modeling.models import RunStatus, Stage, TrainingRun
from modeling.stored_text import translated_message, translated_reason
from painsite.core.models import LanguagePreference
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
from tests.modeling.factories import make_model_version

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
        "/results/",
        f"/results/{v1}/",
        f"/results/compare/?a={v1}&b={v2}",
        "/results/compare/",
        "/results/paper/",
        "/assess/",
        "/monitor/",
        "/audit/",
        "/people/",
        f"/imports/{data['job'].pk}/",
        "/no-such-page/",
    ]


def test_every_page_reads_in_chinese_with_no_english_left(site_with_data):
    client = chinese_client(site_with_data["admin"])
    problems = {}
    for route in page_routes(site_with_data):
        response = client.get(route)
        assert response.status_code in (200, 404), (route, response.status_code)
        html = response.content.decode()
        assert '<html lang="zh-hans">' in html, route
        if left := english_words(html, data_values=site_with_data["data"]):
            problems[route] = sorted(set(left))
    assert not problems, f"English left on pages rendered in Chinese: {problems}"


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
