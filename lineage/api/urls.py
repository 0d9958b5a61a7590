from django.urls import path

from lineage.api import views

urlpatterns = [
    path("lineage", views.OpenLineageView.as_view(), name="openlineage"),
    path("lineage/events", views.LineageEventsView.as_view(), name="lineage-events"),
    path("lineage/nodes", views.NodeListView.as_view(), name="lineage-node-list"),
    path("lineage/nodes/<int:node_id>", views.NodeDetailView.as_view(), name="lineage-node-detail"),
    path("lineage/nodes/<int:node_id>/upstream", views.UpstreamView.as_view(), name="lineage-upstream"),
    path("lineage/nodes/<int:node_id>/downstream", views.DownstreamView.as_view(), name="lineage-downstream"),
    path("lineage/nodes/<int:node_id>/impact", views.ImpactView.as_view(), name="lineage-impact"),
    path("lineage/nodes/<int:node_id>/provenance", views.ProvenanceView.as_view(), name="lineage-provenance"),
    path("lineage/nodes/<int:node_id>/export/<str:fmt>", views.ExportView.as_view(), name="lineage-export"),
    path("lineage/path", views.PathView.as_view(), name="lineage-path"),
]
