"""The training page at a common laptop width, in headless Chromium."""

from __future__ import annotations

import pytest

from modeling.models import RunStatus, TrainingRun

pytestmark = pytest.mark.django_db(transaction=True)

CONFIG = {
    "cohorts": ["clinical"],
    "mode": "head",
    "epochs": 30,
    "lr": 0.001,
    "batch_size": 32,
    "label_rule": "self_report_first",
    "seed": 0,
    "image_size": 224,
    "patience": 5,
}


def boxes_overlap(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


@pytest.mark.parametrize("width", [1440, 1024, 700])
def test_no_field_of_the_start_form_runs_under_another(page_for, researcher, artifacts_dir, width):
    page = page_for(researcher, viewport={"width": width, "height": 900})
    page.goto("/training/", wait_until="domcontentloaded", timeout=60_000)
    controls = page.locator(".training-form .field input, .training-form .field select").all()
    fields = page.locator(".training-form .field").all()
    assert len(controls) == len(fields) >= 8
    boxes = [control.bounding_box() for control in controls]
    problems = [
        f"{controls[i].get_attribute('name')} overlaps {controls[j].get_attribute('name')}"
        for i in range(len(boxes))
        for j in range(i + 1, len(boxes))
        if boxes_overlap(boxes[i], boxes[j])
    ]
    for control, field in zip(controls, fields):
        inner, outer = control.bounding_box(), field.bounding_box()
        if inner["x"] + inner["width"] > outer["x"] + outer["width"] + 1:
            problems.append(f"{control.get_attribute('name')} runs out of its field")
    page.screenshot(path=str(artifacts_dir / f"training-form-{width}.png"), full_page=True)
    assert not problems, problems


def test_a_run_stopped_early_says_how_far_it_went(page_for, researcher):
    TrainingRun.objects.create(
        status=RunStatus.SUCCEEDED, config=CONFIG, epoch=15, progress=1.0, requested_by=researcher
    )
    page = page_for(researcher)
    page.goto("/training/", wait_until="domcontentloaded", timeout=60_000)
    assert "stopped early after epoch 15 of 30" in page.inner_text("table.runs")
