"""The feature path reaches the ML core from PAINSITE_FEATURE_PATH, and the training page shows
which path computed a version's features."""

from __future__ import annotations

import pytest
from django.urls import reverse

from modeling.training_config import default_training_config
from modeling.training_runner import train_config_for
from tests.conftest import PASSWORD
from tests.core.test_settings import run_manage
from tests.modeling.registry_data import make_model_version

pytestmark = pytest.mark.django_db


def test_the_setting_travels_in_the_training_config(settings):
    settings.PAINSITE_FEATURE_PATH = "int8-onnxruntime"
    assert train_config_for(default_training_config()).feature_path == "int8-onnxruntime"
    settings.PAINSITE_FEATURE_PATH = "auto"
    assert train_config_for(default_training_config()).feature_path == "auto"


def test_the_training_page_shows_the_path_that_computed_the_features(client, researcher):
    version = make_model_version("v1")
    version.device = "cpu (int8-onnxruntime)"
    version.save(update_fields=["device"])
    client.login(username=researcher.username, password=PASSWORD)
    page = client.get(reverse("training")).content.decode()
    assert 'class="feature-path"' in page and "cpu (int8-onnxruntime)" in page


def test_an_unknown_feature_path_stops_the_start_with_the_valid_options(tmp_path):
    result = run_manage("check", PAINSITE_FEATURE_PATH="int4", PAINSITE_VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "PAINSITE_FEATURE_PATH='int4'; valid options: auto, float32, bf16, int8-onnxruntime" in result.stderr
