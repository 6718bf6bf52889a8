from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from painsite.core import views as core_views
from painsite.core import views_people
from painsite.core.api_auth import TokenView
from painsite.core.auth import ThrottledAuthenticationForm

urlpatterns = [
    path("", core_views.dashboard, name="dashboard"),
    path("audit/", core_views.audit_log, name="audit"),
    path("people/", views_people.people_page, name="people"),
    path("people/<int:user_id>/role/", views_people.person_role, name="person-role"),
    path("people/<int:user_id>/active/", views_people.person_active, name="person-active"),
    path("people/<int:user_id>/password/", views_people.person_password, name="person-password"),
    path("accounts/login/", auth_views.LoginView.as_view(authentication_form=ThrottledAuthenticationForm), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/auth/token/", TokenView.as_view(), name="api-token"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("annotation.urls")),
    path("", include("modeling.urls")),
]
