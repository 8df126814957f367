import django.db.models.deletion
from django.db import migrations, models

BACKFILL = """
INSERT INTO viewtracking_insightlastview (insight_id, project_id, last_viewed_at)
SELECT insight_id, min(project_id), max(last_viewed_at) FROM viewtracking_insightviewed GROUP BY insight_id
"""


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('insights', '0001_initial'),
        ('viewtracking', '0004_projectviewerday'),
    ]

    operations = [
        migrations.CreateModel(
            name='InsightLastView',
            fields=[
                ('insight', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='+', serialize=False, to='insights.insight')),
                ('last_viewed_at', models.DateTimeField()),
                ('project', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.project')),
            ],
            options={
                'indexes': [models.Index(fields=['project', 'last_viewed_at'], name='insight_last_view_stale_idx')],
            },
        ),
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop),
    ]
