from django.apps import AppConfig


class InsightsApiConfig(AppConfig):
    """Project wiring: settings, urls, the Celery app, health and how gunicorn serves."""

    name = "insights_api"
    verbose_name = "Insights API"

    def ready(self) -> None:
        from apikit import schema  # noqa: F401  registers the schema's extensions
