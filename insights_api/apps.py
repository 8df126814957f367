from django.apps import AppConfig


class InsightsApiConfig(AppConfig):
    """Project wiring and the shared API plumbing (insights_api/api/)."""

    name = "insights_api"
    verbose_name = "Insights API"

    def ready(self) -> None:
        from insights_api.api import schema  # noqa: F401  registers the OpenAPI auth extension
