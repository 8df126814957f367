from django.apps import AppConfig


class ViewTrackingConfig(AppConfig):
    """Who viewed which insight when: view events, last-viewed rows, daily rollups, trending."""

    name = "viewtracking"
