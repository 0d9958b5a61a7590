# Jobs record the model and dataset files they run on (fixed when asked for), so that their results
# are evidence about those exact bytes.

import django.db.models.deletion
from django.db import migrations, models


def from_nodes(apps, schema_editor):
    """Existing jobs ran on the files their nodes held."""
    Job = apps.get_model("explain", "Job")
    Node = apps.get_model("lineage", "Node")
    for job in Job.objects.all().only("id", "model_node_id", "dataset_node_id").iterator():
        artifacts = dict(
            Node.objects.filter(pk__in=[job.model_node_id, job.dataset_node_id]).values_list("pk", "artifact_id")
        )
        Job.objects.filter(pk=job.pk).update(
            model_artifact_id=artifacts[job.model_node_id], dataset_artifact_id=artifacts[job.dataset_node_id]
        )


class Migration(migrations.Migration):

    dependencies = [
        ("core", "0003_workspace_evidence_seq"),
        ("explain", "0002_job_lifecycle"),
        ("lineage", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="model_artifact",
            field=models.ForeignKey(
                null=True, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="core.artifact"
            ),
        ),
        migrations.AddField(
            model_name="job",
            name="dataset_artifact",
            field=models.ForeignKey(
                null=True, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="core.artifact"
            ),
        ),
        migrations.RunPython(from_nodes, migrations.RunPython.noop),
    ]
