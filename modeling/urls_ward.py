from __future__ import annotations

from django.urls import path

from modeling import api_ward, views_ward

urlpatterns = [
    path("ward/", views_ward.ward_page, name="ward"),
    path("api/ward/beds/", api_ward.beds, name="api-ward-beds"),
    path("api/ward/alerts/<int:pk>/acknowledge/", api_ward.acknowledge, name="api-ward-alert-acknowledge"),
    path("api/ward/sources/", api_ward.sources, name="api-ward-sources"),
    path("api/ward/sources/<int:pk>/", api_ward.source_detail, name="api-ward-source"),
]
