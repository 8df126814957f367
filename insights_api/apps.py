from django.apps import AppConfig


class InsightsApiConfig(AppConfig):
    """Project wiring: settings, urls, the Celery app, health and how gunicorn serves."""

    name = "insights_api"
    verbose_name = "Insights API"

    def ready(self) -> None:
        # The schema's extensions register themselves on import: the wiring imports them, so that no
        # app's domain (an AppConfig is one) imports an HTTP layer.
        from accounts.api import schema as accounts_schema  # noqa: F401  the authentication schemes
        from apikit import schema  # noqa: F401
