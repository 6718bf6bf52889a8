"""/training/loop/: the retrain policy and the gate rule, their history, and what they did."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.translation import gettext

from modeling import gate, retrain_policy
from modeling.forms_learning_loop import GateRuleForm, RetrainPolicyForm
from modeling.models import GateDecision, GateRule, RetrainPolicy, RetrainTrigger
from painsite.core.permissions import page_permissions

HISTORY_SHOWN = 20


def _policy_form(policy: RetrainPolicy) -> RetrainPolicyForm:
    initial = {**policy.config, "enabled": policy.enabled, "min_new_labels": policy.min_new_labels}
    return RetrainPolicyForm(initial=initial | {"daily_at": policy.daily_at})


def _gate_form(rule: GateRule) -> GateRuleForm:
    return GateRuleForm(initial={"margin": rule.margin, "alpha": rule.alpha, "auto_promote": rule.auto_promote})


@page_permissions(GET="modeling.view_trainingrun", POST="modeling.promote_modelversion")
def learning_loop_page(request: HttpRequest) -> HttpResponse:
    """Researchers see the policy and the gate; admins change them (each change audited)."""
    policy, rule = retrain_policy.policy_in_force(), gate.rule_in_force()
    policy_form, gate_form, status = _policy_form(policy), _gate_form(rule), 200
    if request.method == "POST":
        which = request.POST.get("form")
        if which == "policy":
            policy_form = RetrainPolicyForm(request.POST)
            if policy_form.is_valid():
                try:
                    retrain_policy.set_policy(
                        **policy_form.trigger_settings(), config=policy_form.run_config(), set_by=request.user
                    )
                except ValidationError as error:
                    for field, problems in error.message_dict.items():
                        policy_form.add_error(field if field in policy_form.fields else None, problems)
                else:
                    messages.success(request, gettext("The retrain policy is saved."))
                    return redirect("learning-loop")
            status = 422
        elif which == "gate":
            gate_form = GateRuleForm(request.POST)
            if gate_form.is_valid():
                gate.set_gate_rule(**gate_form.cleaned_data, set_by=request.user)
                messages.success(request, gettext("The gate rule is saved."))
                return redirect("learning-loop")
            status = 422
        else:
            return HttpResponseBadRequest("form must be 'policy' or 'gate'")
    context = {
        "policy": policy,
        "policy_state": retrain_policy.policy_state(),
        "policy_form": policy_form,
        "rule": rule,
        "gate_form": gate_form,
        "policies": RetrainPolicy.objects.select_related("created_by")[:HISTORY_SHOWN],
        "rules": GateRule.objects.select_related("created_by")[:HISTORY_SHOWN],
        "triggers": RetrainTrigger.objects.select_related("run", "run__model_version")[:HISTORY_SHOWN],
        "decisions": GateDecision.objects.select_related("challenger", "champion")[:HISTORY_SHOWN],
    }
    return render(request, "modeling/learning_loop.html", context, status=status)
