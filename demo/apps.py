from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo organization, project, insights, events and views that `make run` seeds."""

    name = "demo"
