from django.apps import AppConfig


class InsightsConfig(AppConfig):
    """Insights, dashboards and their tiles, the activity log; query validation and execution."""

    name = "insights"
