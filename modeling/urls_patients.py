from __future__ import annotations

from django.urls import path

from modeling import views_patients

urlpatterns = [
    path("patients/<str:code>/", views_patients.patient_detail_page, name="patient-detail"),
]
