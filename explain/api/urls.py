from django.urls import path

from explain.api import views

urlpatterns = [
    path(
        "models/<str:name>/versions/<str:version>/explanations",
        views.ExplanationsView.as_view(),
        name="model-explanations",
    ),
    path(
        "models/<str:name>/versions/<str:version>/fairness-assessments",
        views.FairnessAssessmentsView.as_view(),
        name="model-fairness-assessments",
    ),
    path("jobs", views.JobListView.as_view(), name="job-list"),
    path("jobs/<uuid:job_id>", views.JobDetailView.as_view(), name="job-detail"),
    path("jobs/<uuid:job_id>/cancel", views.JobCancelView.as_view(), name="job-cancel"),
]
