from django.urls import path

from governance.api import views

version = "models/<str:name>/versions/<str:version>"
urlpatterns = [
    path("models", views.ModelListView.as_view(), name="model-list"),
    path("models/<str:name>", views.ModelDetailView.as_view(), name="model-detail"),
    path("models/<str:name>/versions", views.ModelVersionsView.as_view(), name="model-versions"),
    path(version, views.ModelVersionView.as_view(), name="model-version"),
    path("models/<str:name>/aliases/<str:alias>", views.AliasView.as_view(), name="model-alias"),
    path(f"{version}/model-card", views.ModelCardView.as_view(), name="model-card"),
    path(f"{version}/annex-iv", views.AnnexIVView.as_view(), name="model-annex-iv"),
    path(f"{version}/gate", views.GateView.as_view(), name="model-gate"),
    path(
        f"{version}/promotion-requests",
        views.PromotionRequestsView.as_view(),
        name="model-promotion-requests",
    ),
    path(
        "datasets/<str:name>/versions/<str:version>/datasheet",
        views.DatasetDatasheetView.as_view(),
        name="dataset-datasheet",
    ),
    path(f"{version}/reports", views.ReportsView.as_view(), name="model-reports"),
    path(f"{version}/technical-file", views.TechnicalFileView.as_view(), name="model-technical-file"),
    path(
        f"{version}/technical-file/approvals",
        views.TechnicalFileApprovalView.as_view(),
        name="model-technical-file-approvals",
    ),
    path("reports/<uuid:report_id>", views.ReportDetailView.as_view(), name="report-detail"),
    path("policies", views.PolicyListView.as_view(), name="policy-list"),
    path("gate-decisions/<uuid:decision_id>", views.DecisionView.as_view(), name="gate-decision"),
    path("gate/public-key", views.PublicKeyView.as_view(), name="gate-public-key"),
    path("promotion-requests", views.ReviewQueueView.as_view(), name="promotion-request-list"),
    path(
        "promotion-requests/<uuid:request_id>/approve", views.ApproveView.as_view(), name="promotion-approve"
    ),
    path("promotion-requests/<uuid:request_id>/reject", views.RejectView.as_view(), name="promotion-reject"),
]
