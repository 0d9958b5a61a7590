# Every job names its files (0003 filled them in; a separate migration, as PostgreSQL refuses to
# alter a table with pending constraint checks from the fill in the same transaction).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [("explain", "0003_job_artifacts")]

    operations = [
        migrations.AlterField(
            model_name="job",
            name="model_artifact",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="+", to="core.artifact"
            ),
        ),
        migrations.AlterField(
            model_name="job",
            name="dataset_artifact",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="+", to="core.artifact"
            ),
        ),
    ]
