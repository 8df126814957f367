import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# The per-user days of the views still held as raw events (older ones survive only as daily counts),
# each in its project's time zone; the queued ones the next rollup counts.
VIEWER_DAYS = """
INSERT INTO viewtracking_insightviewerday (project_id, insight_id, user_id, day, views)
SELECT e.project_id, e.insight_id, e.user_id, (e.viewed_at AT TIME ZONE p.timezone)::date, count(*)
FROM viewtracking_viewevent AS e JOIN accounts_project AS p ON p.id = e.project_id
WHERE NOT EXISTS (SELECT 1 FROM viewtracking_pendingview AS q WHERE q.event_id = e.id)
GROUP BY 1, 2, 3, 4
"""
# Each user's views of a whole project per day, summed from the rows above.
PROJECT_DAYS = """
INSERT INTO viewtracking_projectviewerday (project_id, user_id, day, views)
SELECT project_id, user_id, day, sum(views) FROM viewtracking_insightviewerday GROUP BY 1, 2, 3
"""
# Each insight's latest view by anyone.
LAST_VIEWS = """
INSERT INTO viewtracking_insightlastview (insight_id, project_id, last_viewed_at)
SELECT insight_id, min(project_id), max(last_viewed_at) FROM viewtracking_insightviewed GROUP BY insight_id
"""


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('insights', '0001_initial'),
        ('viewtracking', '0002_pending_view_queue'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='InsightViewerDay',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField()),
                ('views', models.PositiveIntegerField()),
                ('insight', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='insights.insight')),
                ('project', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.project')),
                ('user', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'indexes': [models.Index(fields=['project', 'day'], include=('user', 'insight', 'views'), name='viewer_day_usage_idx')],
                'constraints': [models.UniqueConstraint(fields=('insight', 'day', 'user'), include=('views',), name='viewer_day_insight_unique')],
            },
        ),
        migrations.RunSQL(VIEWER_DAYS, reverse_sql=migrations.RunSQL.noop),
        migrations.CreateModel(
            name='ProjectViewerDay',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField()),
                ('views', models.PositiveIntegerField()),
                ('project', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.project')),
                ('user', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('project', 'day', 'user'), include=('views',), name='project_viewer_day_unique')],
            },
        ),
        migrations.RunSQL(PROJECT_DAYS, reverse_sql=migrations.RunSQL.noop),
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
        migrations.RunSQL(LAST_VIEWS, reverse_sql=migrations.RunSQL.noop),
    ]
