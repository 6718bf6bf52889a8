"""bench/report.py: docs tables come from result files, partial runs say so, unknown blocks fail."""

from __future__ import annotations

import json

import pytest

from bench import report

QUEUE_LOAD = {
    "steps": 205, "planned_steps": 480, "partial": True, "p50_ms": 89.3, "p95_ms": 111.3, "get_p50_ms": 40.0,
    "post_p50_ms": 45.0, "steps_per_second": 71.7, "server_cpu_ms_per_step": 12.0,
    "queue_sql": {"unlabeled_step_ms": 0.03, "second_observer_step_ms": 0.06},
}  # fmt: skip


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "RESULTS", tmp_path)
    return tmp_path


def write_queue(folder, *, partial: bool) -> None:
    load = {**QUEUE_LOAD, "partial": partial, "steps": 205 if partial else 480}
    queue = {
        "measured_at": "2026-12-03T10:00:00+00:00",
        "machine": {"cpu_model": "AMD EPYC", "cpu_flags": ["avx2"], "cpus": 2, "load_average_at_start": [1.0]},
        "settings": {"clients": 8, "gunicorn_workers": 4, "warmup_per_client": 5, "steps_per_client": 60},
        "sizes": {"1000": {"shape": {"never_labeled": 0.52}, "loads": {"saturated": load}}},
        "p50_ratio_large_to_small": {"saturated": 1.0},
        "targets": {"p95_ms_below": 50.0, "p50_ratio_at_most": 1.5, "p95_met": {"saturated": None if partial else False},
                    "ratio_met": {"saturated": None if partial else True}},
        "partial": partial,
    }  # fmt: skip
    (folder / "queue.json").write_text(json.dumps(queue))


def test_a_partial_load_is_shown_as_done_of_planned_and_not_judged(results):
    write_queue(results, partial=True)
    table = report.render_queue()
    assert "| 205 / 480 **partial** |" in table
    assert "not judged (partial run)" in table and "AMD EPYC, 2 cores (avx2)" in table
    write_queue(results, partial=False)
    assert "**partial**" not in report.render_queue()


def test_the_index_names_the_cpu_or_says_it_is_not_recorded(results):
    write_queue(results, partial=True)
    (results / "old.json").write_text(json.dumps({"seconds": 1, "nested": [{"partial": True}]}))
    index = report.render_results_index()
    assert "| `queue.json` | 2026-12-03 10:00 | AMD EPYC, 2 cores (avx2) | **partial** |" in index
    assert "| `old.json` | – | CPU not recorded | **partial** |" in index


def test_blocks_are_replaced_from_files_and_an_unknown_block_is_refused(results):
    write_queue(results, partial=False)
    text = "before\n<!-- report:queue -->\nhand-copied 12 ms\n<!-- /report:queue -->\nafter\n"
    rendered, unknown = report.render(text)
    assert unknown == [] and "hand-copied" not in rendered and "480 / 480" in rendered
    assert rendered.startswith("before\n") and rendered.endswith("<!-- /report:queue -->\nafter\n")
    assert report.render("<!-- report:nothing -->\nx\n<!-- /report:nothing -->\n")[1] == ["nothing"]
