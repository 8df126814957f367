"""`saved`, which PostHog's frontend lists by, and `results_fingerprint`, which names an insight's cached
results so a page of insights finds when each was last computed in one Redis round trip."""

from django.db import migrations, models

BATCH = 1000


def fingerprint_existing(apps, schema_editor):
    from insights.query_runner import insight_results_fingerprint

    Insight = apps.get_model("insights", "Insight")
    batch = []
    for insight in Insight.objects.exclude(query=None).only("id", "query").iterator(chunk_size=BATCH):
        insight.results_fingerprint = insight_results_fingerprint(insight.query)
        batch.append(insight)
        if len(batch) == BATCH:
            Insight.objects.bulk_update(batch, ["results_fingerprint"])
            batch = []
    Insight.objects.bulk_update(batch, ["results_fingerprint"])


class Migration(migrations.Migration):
    dependencies = [("insights", "0003_event_bucket_statistics")]

    operations = [
        migrations.AddField(model_name="insight", name="saved", field=models.BooleanField(default=True)),
        migrations.AddField(
            model_name="insight",
            name="results_fingerprint",
            field=models.CharField(blank=True, editable=False, max_length=64, null=True),
        ),
        migrations.RunPython(fingerprint_existing, migrations.RunPython.noop),
    ]
