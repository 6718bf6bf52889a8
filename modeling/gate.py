"""The champion/challenger gate: should a new version replace the production version?

Each new version (the challenger) is scored with the production version (the champion) on one test
snapshot (modeling/evaluations.py `evaluate_rivals`). Once both evaluations are in, the gate
rule in force (GateRule, newest row; its id is the rule's version) gives its verdict on the
combined cohort:

- the macro-AUROC difference (challenger − champion) must have a paired patient-cluster bootstrap
  interval whose lower bound is above −margin (non-inferiority; margin 0.02 by default), and
- the AUROC of the highest pain level (severe) must not be significantly worse: a negative
  difference with a patient-clustered DeLong p-value below alpha (0.05 by default) holds it back.

A lower bound above 0 is "better". A number the data cannot support makes the verdict "not
estimable", never a recommendation. The verdict is stored once per challenger, audited, shown on
the version page and the dashboard, and sent to admins. With auto-promotion on (off by default) a
recommended challenger becomes the production model, audited as done by the gate; a random-init
backbone is never promoted automatically (clinical safety rule).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext

from modeling.comparisons import compare_versions
from modeling.models import (
    Evaluation,
    EvaluationStatus,
    GateDecision,
    GateRule,
    GateVerdict,
    ModelVersion,
    Stage,
)
from modeling.services import promote_model_version
from modeling.stored_text import translated_reason
from modeling.vocabulary import level_word
from painsite.core.notices import notify_admins
from painsite.core.services import record_event

logger = logging.getLogger(__name__)

GATE_COHORT = "combined"


def rule_in_force() -> GateRule:
    """The newest gate rule; the documented defaults (written as rule 1) when none was set."""
    rule = GateRule.objects.order_by("-created_at", "-id").first()
    return rule if rule is not None else GateRule.objects.create()


def set_gate_rule(*, margin: float, alpha: float, auto_promote: bool, set_by: User) -> GateRule:
    with transaction.atomic():
        previous = rule_in_force()
        rule = GateRule.objects.create(
            margin=margin,
            alpha=alpha,
            auto_promote=auto_promote,
            first_version_id=previous.first_version_id,
            created_by=set_by,
        )
        record_event(
            actor=set_by,
            action="gate_rule.set",
            target=rule,
            details={
                "margin": margin,
                "alpha": alpha,
                "auto_promote": auto_promote,
                "previous": {
                    "id": previous.pk,
                    "margin": previous.margin,
                    "alpha": previous.alpha,
                    "auto_promote": previous.auto_promote,
                },
            },
        )
    return rule


def verdict_from(comparison: dict[str, Any], *, margin: float, alpha: float) -> tuple[str, dict[str, Any]]:
    """The verdict and its numbers from `compare_versions(champion, challenger, "combined")`."""
    macro = comparison["macro"]
    severe_name = comparison["level_names"][-1] if comparison["level_names"] else None
    severe = comparison["levels"].get(severe_name, {}) if severe_name else {}
    numbers: dict[str, Any] = {
        "cohort": comparison["cohort"],
        "margin": margin,
        "alpha": alpha,
        "n_images": comparison.get("n_images"),
        "n_patients": comparison.get("n_patients"),
        "macro_auroc_champion": macro.get("auroc_a"),
        "macro_auroc_challenger": macro.get("auroc_b"),
        "macro_delta_auroc": macro.get("delta_auroc"),
        "macro_delta_ci": macro.get("delta_ci"),
        "severe_level": severe_name,
        "severe_delta_auroc": severe.get("delta_auroc"),
        "severe_delta_ci": severe.get("delta_ci"),
        "severe_p_value": severe.get("p_value"),
        "p_value_method": comparison.get("p_value_method"),
    }
    if not comparison["paired"]:
        return GateVerdict.NOT_ESTIMABLE, numbers | {"reason": comparison["reason"]}
    ci = macro.get("delta_ci")
    if not ci or ci[0] is None:
        reason = macro.get("delta_ci_not_estimable") or "the macro-AUROC difference has no confidence interval"
        return GateVerdict.NOT_ESTIMABLE, numbers | {"reason": f"not estimable: {reason}"}
    p_value, delta_severe = severe.get("p_value"), severe.get("delta_auroc")
    if p_value is None or delta_severe is None:
        reason = severe.get("p_not_estimable") or severe.get("unavailable") or "no p-value for the severe level"
        return GateVerdict.NOT_ESTIMABLE, numbers | {"reason": f"severe level not estimable: {reason}"}
    if delta_severe < 0 and p_value < alpha:
        return GateVerdict.SEVERE_WORSE, numbers | {
            "reason": f"{severe_name} AUROC is lower by {-delta_severe:.3f} (p = {p_value:.3g} < {alpha})"
        }
    if ci[0] <= -margin:
        return GateVerdict.INFERIOR, numbers | {
            "reason": f"the macro-AUROC difference's lower bound {ci[0]:.3f} is not above −{margin}"
        }
    if ci[0] > 0:
        return GateVerdict.BETTER, numbers | {"reason": f"macro AUROC higher, interval [{ci[0]:.3f}, {ci[1]:.3f}]"}
    return GateVerdict.NON_INFERIOR, numbers | {
        "reason": f"the macro-AUROC difference's lower bound {ci[0]:.3f} is above −{margin}"
    }


def _succeeded(version: ModelVersion, snapshot_id: int) -> bool:
    return Evaluation.objects.filter(
        model_version=version, snapshot_id=snapshot_id, status=EvaluationStatus.SUCCEEDED
    ).exists()


def judge(challenger: ModelVersion) -> GateDecision | None:
    """The gate's verdict on `challenger`, once both evaluations it needs are in; None while one
    is still missing or after it was already judged. Safe to call again and again."""
    rule = rule_in_force()
    if challenger.pk < rule.first_version_id:  # made before the gate existed
        return None
    if GateDecision.objects.filter(challenger=challenger).exists():
        return None
    trained = Evaluation.objects.filter(model_version=challenger, at_training=True).only("snapshot_id").first()
    if trained is None or not _succeeded(challenger, trained.snapshot_id):
        return None
    champion = ModelVersion.objects.filter(stage=Stage.PRODUCTION).exclude(pk=challenger.pk).first()
    if champion is None:
        verdict = GateVerdict.NO_PRODUCTION
        numbers = {"reason": "there is no production model to compare with", "margin": rule.margin, "alpha": rule.alpha}
        snapshot_id = trained.snapshot_id
    else:
        if not _succeeded(champion, trained.snapshot_id):
            return None
        comparison = compare_versions(champion, challenger, GATE_COHORT)
        verdict, numbers = verdict_from(comparison, margin=rule.margin, alpha=rule.alpha)
        snapshot_id = trained.snapshot_id
    try:
        with transaction.atomic():
            decision = GateDecision.objects.create(
                challenger=challenger,
                champion=champion,
                snapshot_id=snapshot_id,
                rule=rule,
                verdict=verdict,
                numbers=numbers,
            )
            record_event(
                actor=None,
                action="gate.verdict",
                target=challenger,
                details={
                    "challenger": challenger.name,
                    "champion": champion.name if champion else None,
                    "verdict": verdict,
                    "rule": rule.pk,
                    "numbers": numbers,
                },
            )
            _tell_admins(decision)
    except IntegrityError:  # judged by another process a moment ago
        return None
    if rule.auto_promote:
        _auto_promote(decision)
    return decision


def judge_published(version: ModelVersion) -> GateDecision | None:
    """After a run published `version`: judge it now if the production version was already scored
    on its snapshot (else the production version's evaluation will). Never fails the run."""
    try:
        return judge(version)
    except Exception:
        logger.exception("the gate could not judge %s (beat will try again)", version.name)
        return None


def judge_after_evaluation(evaluation: Evaluation) -> list[GateDecision]:
    """An evaluation finished: judge every unjudged version whose training snapshot it was on
    (the challenger's own evaluation, or its champion's)."""
    waiting = ModelVersion.objects.filter(
        evaluations__snapshot_id=evaluation.snapshot_id, evaluations__at_training=True, gate_decision__isnull=True
    ).distinct()
    decisions = []
    for version in waiting:
        try:
            decision = judge(version)
        except Exception:  # a verdict that cannot be computed must not fail the evaluation
            logger.exception("the gate could not judge %s", version.name)
            continue
        if decision is not None:
            decisions.append(decision)
    return decisions


def judge_waiting() -> list[GateDecision]:
    """Every version not yet judged whose evaluations are in: beat's catch-all for a verdict a
    stopped worker did not get to."""
    waiting = ModelVersion.objects.filter(
        gate_decision__isnull=True, evaluations__at_training=True, pk__gte=rule_in_force().first_version_id
    ).distinct()
    decisions = []
    for version in waiting.order_by("created_at", "id"):
        try:
            decision = judge(version)
        except Exception:
            logger.exception("the gate could not judge %s", version.name)
            continue
        if decision is not None:
            decisions.append(decision)
    return decisions


def _tell_admins(decision: GateDecision) -> None:
    """The notice and its e-mail are written in the site's language (PAINSITE_LANGUAGE): they are
    stored once and read by every admin, like what a background worker writes."""
    with translation.override(settings.LANGUAGE_CODE):
        subject, body = _notice_text(decision)
    notify_admins(
        kind="gate",
        subject=subject,
        body=body,
        link=reverse("results-version", args=[decision.challenger.pk]),
        key=f"gate:{decision.challenger.pk}",
    )


def _notice_text(decision: GateDecision) -> tuple[str, str]:
    challenger = decision.challenger
    label = str(GateVerdict(decision.verdict).label)
    champion = decision.champion.name if decision.champion else gettext("no production model")
    numbers = decision.numbers
    lines = [
        gettext("Gate rule %(rule)s: %(verdict)s.") % {"rule": decision.rule_id, "verdict": label},
        gettext("Challenger %(challenger)s against production %(champion)s.")
        % {"challenger": challenger.name, "champion": champion},
        translated_reason(numbers.get("reason", "")),
    ]
    if numbers.get("macro_delta_auroc") is not None:
        ci = numbers.get("macro_delta_ci") or [None, None]
        lines.append(
            gettext(
                "Macro ΔAUROC %(delta)s (95%% CI %(low)s to %(high)s); %(level)s ΔAUROC %(severe)s, "
                "p = %(p)s (%(method)s)."
            )
            % {
                "delta": f"{numbers['macro_delta_auroc']:+.3f}",
                "low": _fmt(ci[0]),
                "high": _fmt(ci[1]),
                "level": level_word(numbers.get("severe_level") or ""),
                "severe": _fmt(numbers.get("severe_delta_auroc")),
                "p": _p(numbers.get("severe_p_value")),
                "method": translated_reason(numbers.get("p_value_method")),
            }
        )
    subject = gettext("%(challenger)s: %(verdict)s") % {"challenger": challenger.name, "verdict": label}
    return subject, "\n".join(line for line in lines if line)


def _fmt(value: float | None) -> str:
    return gettext("n/a") if value is None else f"{value:+.3f}" if abs(value) < 1 else f"{value:.3f}"


def _p(value: float | None) -> str:
    return gettext("n/a") if value is None else f"{value:.3g}"


def _auto_promote(decision: GateDecision) -> None:
    challenger = decision.challenger
    if not decision.recommends_promotion:
        return
    if challenger.is_random_init:
        logger.warning("gate: %s is recommended but has a random-init backbone: not promoted automatically", challenger)
        return
    try:
        promote_model_version(
            version=challenger,
            actor=None,
            reason=f"auto-promoted by the gate (rule {decision.rule_id}): {decision.numbers.get('reason', '')}",
        )
    except Exception:
        logger.exception("gate: auto-promotion of %s failed", challenger.name)
        return
    GateDecision.objects.filter(pk=decision.pk).update(auto_promoted=True)
    record_event(
        actor=None,
        action="gate.auto_promote",
        target=challenger,
        details={"challenger": challenger.name, "rule": decision.rule_id, "verdict": decision.verdict},
    )
