from __future__ import annotations

from django.urls import path

from annotation import api_labeling, api_queue_order, views_labeling

urlpatterns = [
    path("label/", views_labeling.label_page, name="label"),
    path("patients/", views_labeling.patients_page, name="patients"),
    path("patients/<str:code>/consent/", views_labeling.patient_consent, name="patient-consent"),
    path("agreement/", views_labeling.agreement_page, name="agreement"),
    path("api/patients/", api_labeling.patients, name="api-patients"),
    path("api/patients/<str:code>/", api_labeling.patient_detail, name="api-patient-detail"),
    path("api/queue/next/", api_labeling.queue_next, name="api-queue-next"),
    path("api/queue/order/", api_queue_order.queue_order, name="api-queue-order"),
    path("queue/order/", views_labeling.queue_order_change, name="queue-order"),
    path("api/images/<int:image_id>/labels/", api_labeling.image_labels, name="api-image-labels"),
    path("api/labels/", api_labeling.labels, name="api-labels"),
    path("api/labels/undo/", api_labeling.undo_label, name="api-labels-undo"),
    path("api/export/labels.csv", api_labeling.export_labels, name="api-export-labels"),
    path("api/agreement/", api_labeling.agreement, name="api-agreement"),
]
