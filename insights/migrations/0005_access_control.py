"""Per-insight access levels (docs/access-control.md). Every existing insight keeps behaving as before: its level is
`editor`, the default, and no member has an override."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

LEVELS = [("editor", "Editor"), ("viewer", "Viewer"), ("none", "None")]


class Migration(migrations.Migration):
    dependencies = [
        ("insights", "0004_insight_saved_results_fingerprint"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="insight",
            name="access_level",
            field=models.CharField(choices=LEVELS, default="editor", max_length=8),
        ),
        migrations.CreateModel(
            name="InsightAccessOverride",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("access_level", models.CharField(choices=LEVELS, max_length=8)),
                (
                    "insight",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="access_overrides",
                        to="insights.insight",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to=settings.AUTH_USER_MODEL
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("insight", "user"), name="access_override_insight_user_unique")
                ]
            },
        ),
    ]
