from __future__ import annotations

from django.urls import path

from modeling import api_assessment, views_assessment

urlpatterns = [
    path("assess/", views_assessment.assess_page, name="assess"),
    path("monitor/", views_assessment.monitor_page, name="monitor"),
    path("api/assessments/", api_assessment.assessments, name="api-assessments"),
    path("api/images/<int:image_id>/suggestion/", api_assessment.image_suggestion, name="api-image-suggestion"),
]
