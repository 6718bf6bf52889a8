"""Training settings are checked by one serializer, whichever way a run is started."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from modeling.models import TrainingRun
from modeling.serializers_training import clean_training_config
from modeling.training_config import LIMITS
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db


def api_error(user, **config) -> dict:
    response = api_client_for(user).post(reverse("api-training-runs"), config, format="json")
    assert response.status_code == 400, response.content
    return response.json()["details"]


def page_errors(client, user, **config) -> dict:
    client.force_login(user)
    data = {"cohorts": ["clinical", "simulated"], "mode": "head", "epochs": "3", "lr": "0.001", "batch_size": "8",
            "label_rule": "self_report_first", "seed": "1", "image_size": "64", "patience": "3", **config}  # fmt: skip
    response = client.post(reverse("training"), data)
    assert response.status_code == 422
    return response.context["form"].errors


@pytest.mark.parametrize("value", [True, False, "true", 2.5, "2.5", [3], {"n": 3}])
def test_epochs_must_be_a_whole_number_and_a_boolean_is_not_one(researcher, value):
    with pytest.raises(ValidationError) as refused:
        clean_training_config({"epochs": value})
    assert refused.value.message_dict["epochs"] == ["epochs must be a whole number"]
    assert api_error(researcher, epochs=value)["epochs"] == ["epochs must be a whole number"]
    assert not TrainingRun.objects.exists()


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_each_setting_is_held_to_its_range_at_both_ends(name):
    low, high = LIMITS[name]
    below, above = (low - 1, high + 1) if name != "lr" else (low / 10, high * 10)
    for value in (below, above):
        with pytest.raises(ValidationError) as refused:
            clean_training_config({name: value})
        assert refused.value.message_dict[name] == [f"{name} must be between {low:g} and {high:g}"]
    for value in (low, high):
        assert clean_training_config({name: value})[name] == value


def test_the_api_the_page_and_the_command_give_the_same_error(client, researcher):
    expected = ["epochs must be between 1 and 500"]
    assert api_error(researcher, epochs=0)["epochs"] == expected
    assert page_errors(client, researcher, epochs="0")["epochs"] == expected
    with pytest.raises(CommandError) as refused:
        call_command("train", "--epochs", "0")
    assert str(refused.value) == f"epochs: {expected[0]}"
    assert not TrainingRun.objects.exists()


def test_the_schema_shows_the_ranges(researcher):
    schema = api_client_for(researcher).get("/api/schema/", {"format": "json"}).json()
    properties = schema["components"]["schemas"]["TrainingConfigRequest"]["properties"]
    for name, (low, high) in LIMITS.items():
        assert (properties[name]["minimum"], properties[name]["maximum"]) == (low, high), name
