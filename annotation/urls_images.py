from __future__ import annotations

from django.urls import path

from annotation import api_images, views_images

urlpatterns = [
    path("upload/", views_images.upload, name="upload"),
    path("upload/archive/", views_images.upload_archive, name="upload-archive"),
    path("images/", views_images.image_list, name="image-list"),
    path("images/<int:image_id>/", views_images.image_detail, name="image-detail"),
    path("imports/<int:job_id>/", views_images.import_detail, name="import-detail"),
    path("api/images/", api_images.ImageListCreate.as_view(), name="api-images"),
    path("api/images/bulk/", api_images.ArchiveImport.as_view(), name="api-images-bulk"),
    path("api/images/<int:image_id>/", api_images.ImageDetail.as_view(), name="api-image"),
    path("api/images/<int:image_id>/file/", api_images.ImageFile.as_view(), name="api-image-file"),
    path("api/imports/<int:job_id>/", api_images.ImportJobDetail.as_view(), name="api-import"),
]
