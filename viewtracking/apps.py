from django.apps import AppConfig


class ViewTrackingConfig(AppConfig):
    """Who viewed which insight when: view events, last-viewed rows, daily rollups, trending."""

    name = "viewtracking"

    def ready(self) -> None:
        from infra.metrics import SHARED_STATE_COLLECTORS
        from viewtracking.metrics import RollupLagCollector

        SHARED_STATE_COLLECTORS.append(RollupLagCollector)
