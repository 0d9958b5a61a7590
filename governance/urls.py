from django.urls import path

from governance import views

urlpatterns = [
    path("w/<slug:slug>/", views.inventory, name="dashboard-inventory"),
    path("w/<slug:slug>/reviews/", views.queue, name="dashboard-queue"),
    path("w/<slug:slug>/reviews/<uuid:request_id>/", views.request_page, name="dashboard-request"),
    path("w/<slug:slug>/reviews/<uuid:request_id>/review", views.review, name="dashboard-review"),
    path(
        "w/<slug:slug>/models/<str:name>/<str:version>/report",
        views.report_export,
        name="dashboard-report-export",
    ),
    path("w/<slug:slug>/reports/", views.reports_page, name="dashboard-reports"),
    path(
        "w/<slug:slug>/models/<str:name>/versions/<str:version>/reports/",
        views.reports_page,
        name="dashboard-version-reports",
    ),
    path(
        "w/<slug:slug>/models/<str:name>/versions/<str:version>/technical-file/",
        views.techfile_page,
        name="dashboard-techfile",
    ),
    path("w/<slug:slug>/reports/<uuid:report_id>/", views.report_page, name="dashboard-report"),
]
