from django.urls import path

from privacy.api import views

prefix = "datasets/<str:name>/versions/<str:version>"
urlpatterns = [
    path(f"{prefix}/privacy-budget", views.BudgetView.as_view(), name="privacy-budget"),
    path(f"{prefix}/dp-releases", views.ReleasesView.as_view(), name="dp-releases"),
    path(f"{prefix}/dp-summary", views.SummaryView.as_view(), name="dp-summary"),
]
