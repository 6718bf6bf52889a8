"""The champion/challenger gate: verdicts on constructed challengers, auto-promotion, admins told."""

from __future__ import annotations

import numpy as np
import pytest
from django.urls import reverse

from modeling import gate
from modeling.models import GateDecision, GateRule, GateVerdict, ModelVersion, PromotionEvent, Stage
from painsite.core.models import AdminNotice, AuditEvent
from tests.modeling.factories import make_model_version, make_predictions, make_test_set

pytestmark = pytest.mark.django_db

SEVERE, NONE = 3, 0


@pytest.fixture(autouse=True)
def fewer_resamples(monkeypatch):
    """The comparison's 2,000 resamples are for the pages; 400 keep these verdicts' intervals steady."""
    monkeypatch.setattr("modeling.comparisons.COMPARISON_RESAMPLES", 400)


@pytest.fixture
def test_set():
    return make_test_set(patients_per_cohort=15, images_per_patient=4)


@pytest.fixture
def champion(test_set):
    return make_model_version(
        name="v1", predictions=make_predictions(test_set, skill=1.5, seed=1), stage=Stage.PRODUCTION, n_bootstrap=50
    )


def challenger_from(champion: ModelVersion, name: str, change) -> ModelVersion:
    """A challenger whose probabilities are the champion's, changed by `change(array, rng)`."""
    rng = np.random.default_rng(7)
    predictions = [dict(p) for p in champion.test_predictions]
    probabilities = np.asarray([p["probabilities"] for p in predictions])
    probabilities = change(probabilities, rng)
    probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
    for prediction, row in zip(predictions, probabilities, strict=True):
        prediction["probabilities"] = [float(value) for value in row]
    return make_model_version(name=name, predictions=predictions, n_bootstrap=50)


def scramble(column: int):
    def change(probabilities, rng):
        probabilities = probabilities.copy()
        probabilities[:, column] = rng.permutation(probabilities[:, column])
        return probabilities

    return change


def test_a_clearly_better_challenger_is_recommended(champion, test_set, django_capture_on_commit_callbacks):
    challenger = make_model_version(
        name="v2", predictions=make_predictions(test_set, skill=5.0, seed=2), n_bootstrap=50
    )
    decision = gate.judge(challenger)
    assert decision.verdict == GateVerdict.BETTER and decision.recommends_promotion
    numbers = decision.numbers
    assert numbers["macro_delta_ci"][0] > 0
    assert numbers["severe_level"] == "severe" and numbers["p_value_method"]
    assert decision.champion == champion and decision.rule == gate.rule_in_force()
    assert ModelVersion.objects.get(pk=challenger.pk).stage == Stage.CANDIDATE  # auto-promotion is off by default


def test_a_challenger_with_the_same_skill_is_non_inferior(champion):
    challenger = challenger_from(champion, "v2", lambda p, rng: p + rng.uniform(0, 0.002, p.shape))
    decision = gate.judge(challenger)
    assert decision.verdict == GateVerdict.NON_INFERIOR, decision.numbers
    low, high = decision.numbers["macro_delta_ci"]
    assert -0.02 < low <= 0 <= high


def test_a_challenger_worse_at_severe_pain_is_held_back(champion):
    decision = gate.judge(challenger_from(champion, "v2", scramble(SEVERE)))
    assert decision.verdict == GateVerdict.SEVERE_WORSE and not decision.recommends_promotion
    assert decision.numbers["severe_delta_auroc"] < 0 and decision.numbers["severe_p_value"] < 0.05


def test_a_challenger_worse_elsewhere_is_not_shown_non_inferior(champion):
    decision = gate.judge(challenger_from(champion, "v2", scramble(NONE)))
    assert decision.verdict == GateVerdict.INFERIOR, decision.numbers
    assert decision.numbers["macro_delta_ci"][0] <= -0.02


def test_the_margin_is_the_admins(champion, admin_user):
    gate.set_gate_rule(margin=0.3, alpha=0.05, auto_promote=False, set_by=admin_user)
    decision = gate.judge(challenger_from(champion, "v2", scramble(NONE)))
    assert decision.verdict == GateVerdict.NON_INFERIOR and decision.numbers["margin"] == 0.3
    assert AuditEvent.objects.filter(action="gate_rule.set", actor=admin_user).exists()


def test_without_a_shared_snapshot_the_gate_waits_and_judges_once_the_champion_is_scored(champion, test_set):
    other_set = make_test_set(patients_per_cohort=15, images_per_patient=4, first_image_id=900)
    challenger = make_model_version(
        name="v2", predictions=make_predictions(other_set, skill=5.0, seed=2), n_bootstrap=50
    )
    assert gate.judge(challenger) is None
    from tests.modeling.factories import record_evaluation

    evaluation = record_evaluation(champion, make_predictions(other_set, skill=1.5, seed=1), n_bootstrap=50)
    [decision] = gate.judge_after_evaluation(evaluation)
    assert decision.challenger == challenger and decision.verdict == GateVerdict.BETTER
    assert gate.judge(challenger) is None  # judged once
    assert GateDecision.objects.count() == 1


def test_not_estimable_numbers_give_no_recommendation():
    comparison = {
        "cohort": "combined",
        "paired": True,
        "reason": None,
        "level_names": ["none", "severe"],
        "macro": {"delta_auroc": 0.01, "delta_ci": None, "delta_ci_not_estimable": "only 3 test patients"},
        "levels": {"severe": {"delta_auroc": 0.0, "p_value": 0.9}},
    }
    verdict, numbers = gate.verdict_from(comparison, margin=0.02, alpha=0.05)
    assert verdict == GateVerdict.NOT_ESTIMABLE and "only 3 test patients" in numbers["reason"]


def test_the_first_version_has_nothing_to_beat(test_set):
    decision = gate.judge(make_model_version(name="v1", predictions=make_predictions(test_set, seed=1), n_bootstrap=50))
    assert decision.verdict == GateVerdict.NO_PRODUCTION


def test_admins_are_told_on_the_dashboard_and_by_e_mail(
    champion, test_set, admin_user, client, mailoutbox, django_capture_on_commit_callbacks
):
    admin_user.email = "anaesthesia-admin@example.org"
    admin_user.save()
    with django_capture_on_commit_callbacks(execute=True):
        decision = gate.judge(
            make_model_version(name="v2", predictions=make_predictions(test_set, skill=5.0, seed=2), n_bootstrap=50)
        )
    [mail] = mailoutbox
    assert mail.to == ["anaesthesia-admin@example.org"]
    assert "v2" in mail.subject and "promotion recommended" in mail.subject
    assert "Macro ΔAUROC" in mail.body and reverse("results-version", args=[decision.challenger_id]) in mail.body
    event = AuditEvent.objects.get(action="gate.verdict")
    assert event.details["verdict"] == "better" and event.details["rule"] == decision.rule_id

    client.force_login(admin_user)
    page = client.get("/").content.decode()
    assert 'id="admin-notices"' in page and "v2: Better: promotion recommended" in page
    assert 'id="latest-verdict"' in page
    version_page = client.get(reverse("results-version", args=[decision.challenger_id])).content.decode()
    assert 'id="gate-decision"' in version_page and 'data-verdict="better"' in version_page

    notice = AdminNotice.objects.get(kind="gate")
    assert client.post(reverse("notice-dismiss", args=[notice.pk])).status_code == 302
    assert 'id="admin-notices"' not in client.get("/").content.decode()
    assert AuditEvent.objects.filter(action="notice.dismiss", actor=admin_user).exists()


def test_auto_promotion_promotes_a_recommended_version_as_the_gate(champion, test_set, admin_user):
    gate.set_gate_rule(margin=0.02, alpha=0.05, auto_promote=True, set_by=admin_user)
    challenger = make_model_version(
        name="v2", predictions=make_predictions(test_set, skill=5.0, seed=2), n_bootstrap=50
    )
    decision = gate.judge(challenger)
    assert GateDecision.objects.get(pk=decision.pk).auto_promoted
    assert ModelVersion.objects.get(pk=challenger.pk).stage == Stage.PRODUCTION
    assert ModelVersion.objects.get(pk=champion.pk).stage == Stage.ARCHIVED
    promotion = PromotionEvent.objects.get(model_version=challenger, to_stage=Stage.PRODUCTION)
    assert promotion.actor is None and promotion.reason.startswith("auto-promoted by the gate")
    assert AuditEvent.objects.filter(action="gate.auto_promote", object_id=str(challenger.pk)).exists()


def test_auto_promotion_leaves_a_held_back_version_alone(champion, admin_user):
    gate.set_gate_rule(margin=0.02, alpha=0.05, auto_promote=True, set_by=admin_user)
    challenger = challenger_from(champion, "v2", scramble(SEVERE))
    gate.judge(challenger)
    assert ModelVersion.objects.get(pk=challenger.pk).stage == Stage.CANDIDATE
    assert ModelVersion.objects.get(pk=champion.pk).stage == Stage.PRODUCTION


def test_auto_promotion_never_promotes_a_random_init_backbone(champion, test_set, admin_user):
    gate.set_gate_rule(margin=0.02, alpha=0.05, auto_promote=True, set_by=admin_user)
    predictions = make_predictions(test_set, skill=5.0, seed=2)
    challenger = make_model_version(name="v2", predictions=predictions, backbone="random-init", n_bootstrap=50)
    assert gate.judge(challenger).recommends_promotion
    assert ModelVersion.objects.get(pk=challenger.pk).stage == Stage.CANDIDATE


def test_versions_made_before_the_gate_existed_are_never_judged(champion, test_set, admin_user):
    """On an upgrade the migration starts the gate after the newest version: old candidates are not
    judged against today's production model (nor auto-promoted)."""
    old = make_model_version(name="v2", predictions=make_predictions(test_set, skill=5.0, seed=2), n_bootstrap=50)
    GateRule.objects.create(first_version_id=old.pk + 1, auto_promote=True)
    assert gate.judge(old) is None and gate.judge_waiting() == []
    gate.set_gate_rule(margin=0.05, alpha=0.05, auto_promote=True, set_by=admin_user)
    assert gate.rule_in_force().first_version_id == old.pk + 1
    new = make_model_version(name="v3", predictions=make_predictions(test_set, skill=5.0, seed=3), n_bootstrap=50)
    [decision] = gate.judge_waiting()
    assert decision.challenger == new and ModelVersion.objects.get(pk=old.pk).stage == Stage.CANDIDATE


def test_the_migration_starts_the_gate_after_the_newest_existing_version(champion):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("modeling.migrations.0007_learning_loop")
    GateRule.objects.all().delete()
    migration.start_the_gate_after_existing_versions(apps, None)
    assert GateRule.objects.get().first_version_id == champion.pk + 1
    assert (GateRule.objects.get().margin, GateRule.objects.get().auto_promote) == (0.02, False)
