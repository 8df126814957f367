from django.apps import AppConfig


class InsightsConfig(AppConfig):
    """Insights, dashboards and their tiles, the activity log; query validation and execution."""

    name = "insights"

    def ready(self) -> None:
        from infra.metrics import SHARED_STATE_COLLECTORS
        from insights.query_workers import QueryWorkersCollector

        SHARED_STATE_COLLECTORS.append(QueryWorkersCollector)
