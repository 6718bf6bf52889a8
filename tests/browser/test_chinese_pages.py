"""A clinician and a researcher whose browsers ask for Chinese: the labeling page and the results
pages read in Chinese, the words the scripts write included, and the switcher turns them to
English and back."""

from __future__ import annotations

import pytest
from django.urls import get_resolver

from annotation.models import PainLabel
from tests.annotation.factories import make_image, make_patient
from tests.core.translation_checks import english_words
from tests.modeling.factories import make_model_version, make_predictions, make_test_set

pytestmark = pytest.mark.django_db(transaction=True)

# A browser set to Chinese (China) sends zh-CN; Django falls back to zh-hans.
CHINESE_BROWSER = {"locale": "zh-CN", "viewport": {"width": 1280, "height": 900}}


def no_page_errors(page) -> bool:
    return not [m for m in page.console_messages if m.startswith("pageerror") or "Content Security Policy" in m]


def test_a_clinician_labels_in_chinese_and_the_scripts_answer_in_chinese(page_for, clinician, artifacts_dir):
    patient = make_patient("P001")
    images = [make_image(patient) for _ in range(2)]
    get_resolver().url_patterns  # noqa: B018 - imports every view before the browser's first request
    page = page_for(clinician, **CHINESE_BROWSER)
    page.goto("/label/", wait_until="domcontentloaded", timeout=60_000)
    page.wait_for_selector("#image-id:not(:empty)")
    page.wait_for_selector("#labeling[data-idle=true]", state="attached")
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    assert page.inner_text("h1") == "标注图像"
    assert page.inner_text("#image-reason") == "尚未标注"  # written by label.js

    shown = page.inner_text("#image-id")
    page.keyboard.press("3")
    page.wait_for_selector(f"#label-status:has-text('已为图像 {shown} 保存 NRS 3。')")
    assert "观察者评分" in page.inner_text("#recent-labels")
    page.keyboard.press("q")
    assert "在此无作用" in page.inner_text("#key-feedback")
    page.wait_for_selector("#labeling[data-idle=true]", state="attached")
    page.screenshot(path=str(artifacts_dir / "label-zh-hans.png"), full_page=True)

    assert PainLabel.objects.get(rater=clinician).image_id == int(shown)
    left = english_words(page.content(), data_values={clinician.username, "P001"})
    assert left == [], left
    assert {image.pk for image in images} >= {int(shown)}
    assert no_page_errors(page)


def test_a_researcher_reads_the_results_in_chinese_plots_included(page_for, researcher, artifacts_dir):
    test_set = make_test_set(patients_per_cohort=8, images_per_patient=5)
    older = make_model_version(name="v1", predictions=make_predictions(test_set, skill=1.0, seed=1))
    newer = make_model_version(name="v2", predictions=make_predictions(test_set, skill=1.8, seed=2))
    page = page_for(researcher, **CHINESE_BROWSER)

    page.goto("/results/")
    assert page.inner_text("h1") == "模型版本"
    page.get_by_role("radio", name="临床（CPD）").check()
    assert page.locator('[data-cohort-panel="clinical"]').is_visible()
    page.screenshot(path=str(artifacts_dir / "results-zh-hans.png"), full_page=True)

    page.goto(f"/results/compare/?a={older.pk}&b={newer.pk}&cohort=clinical")
    roc = page.locator('[data-plot-spec="plot-clinical-roc-severe"] svg')
    roc.wait_for()
    # Drawn by plots.js: its accessible title and the axis labels the server sent, in Chinese.
    assert roc.locator("title").first.text_content() == "ROC：重度 对其余。数值列在此图表所附的表格中。"
    assert "假阳性率（1 − 特异度）" in roc.text_content()
    confusion = page.locator('[data-plot-spec="plot-clinical-confusion-a"] svg')
    assert "颜色深浅：占该真实等级图像的比例" in confusion.text_content()
    page.locator("#compare-clinical").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts_dir / "results-compare-zh-hans.png"), full_page=True)
    left = english_words(page.content(), data_values={researcher.username, "v1", "v2"})
    assert left == [], left

    # The switcher in the header: English at once, and the choice is kept for this account.
    # The switch posts a form and the page reloads: wait for that navigation, not for the
    # load state of the page that is already there.
    with page.expect_navigation():
        page.select_option("#language-select", "en")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.inner_text("h1") == "Compare two model versions"
    assert "cohort=clinical" in page.url
    assert researcher.language_preference.language == "en"
    assert no_page_errors(page)
