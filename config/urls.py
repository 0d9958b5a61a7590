from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core import views as core_views
from core.api.errors import api_not_found
from core.login import ThrottledLoginView
from core.signup import invitation_link
from core.sso import sso_callback, sso_start
from lineage import views as lineage_views

handler404 = "core.views.not_found"
handler500 = "core.views.server_error"

urlpatterns = [
    path("", core_views.home, name="home"),
    path(
        "invitations/<uuid:invitation_id>/accept/",
        core_views.invitation_answer_page,
        {"accept": True},
        name="dashboard-invitation-accept",
    ),
    path(
        "invitations/<uuid:invitation_id>/decline/",
        core_views.invitation_answer_page,
        {"accept": False},
        name="dashboard-invitation-decline",
    ),
    path("invitations/join/<str:secret>/", invitation_link, name="invitation-link"),
    path("w/<slug:slug>/audit/", core_views.audit_log, name="dashboard-audit"),
    path("w/<slug:slug>/lineage/", lineage_views.explorer, name="dashboard-lineage"),
    path("w/<slug:slug>/lineage/<int:node_id>/", lineage_views.explorer, name="dashboard-lineage-node"),
    path("", include("governance.urls")),
    path("", include("explain.urls")),
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("oidc/authenticate/", sso_start, name="oidc_authentication_init"),
    path("oidc/callback/", sso_callback, name="oidc_authentication_callback"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", include("core.api.urls")),
    path("api/v1/", include("lineage.api.urls")),
    path("api/v1/", include("explain.api.urls")),
    path("api/v1/", include("privacy.api.urls")),
    path("api/v1/", include("governance.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    # Any other /api/ address (a mistyped path, a job id that is not a UUID): a problem document, not
    # an HTML page, with DEBUG on as well (whose 404 page bypasses handler404). Exempt from the CSRF
    # check, which runs first: a session's POST here is a 404 too, not a 403 for a missing token.
    re_path(r"^api/", csrf_exempt(api_not_found)),
]
# The Django admin lets operators look at records (read-only for everything the audit chain covers;
# core/admin.py). Off in production unless ADMIN_ENABLED is set.
if settings.ADMIN_ENABLED:
    urlpatterns.insert(0, path("admin/", admin.site.urls))
