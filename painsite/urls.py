from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import SpectacularAPIView

from painsite import dashboard
from painsite.core import views as core_views
from painsite.core import views_notices, views_people
from painsite.core.api_auth import TokenView
from painsite.core.auth import ThrottledAuthenticationForm
from painsite.core.views_language import SetLanguage

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("audit/", core_views.audit_log, name="audit"),
    path("notices/<int:pk>/dismiss/", views_notices.dismiss, name="notice-dismiss"),
    path("people/", views_people.people_page, name="people"),
    path("people/<int:user_id>/role/", views_people.person_role, name="person-role"),
    path("people/<int:user_id>/active/", views_people.person_active, name="person-active"),
    path("people/<int:user_id>/password/", views_people.person_password, name="person-password"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(
            authentication_form=ThrottledAuthenticationForm,
            # LoginView would take PUT as a log-in too: only the methods the form uses.
            http_method_names=["get", "head", "post", "options"],
        ),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/auth/token/", TokenView.as_view(), name="api-token"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", core_views.api_docs, name="api-docs"),
    # The language selector of every page, and the translations the scripts use (base.html).
    path("i18n/setlang/", SetLanguage.as_view(), name="set_language"),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    # Pages that do not use base.html (the Django admin, the API docs) get the icon from here.
    path("favicon.ico", core_views.Favicon.as_view()),
    path("", include("annotation.urls")),
    path("", include("modeling.urls")),
]
