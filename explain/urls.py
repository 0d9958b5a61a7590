from django.urls import path

from explain import views

urlpatterns = [
    path("w/<slug:slug>/jobs/", views.jobs, name="dashboard-jobs"),
    path("w/<slug:slug>/jobs/<uuid:job_id>/cancel", views.cancel, name="dashboard-job-cancel"),
]
