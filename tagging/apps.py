from django.apps import AppConfig


class TaggingConfig(AppConfig):
    """Tags and tagged items: normalisation and (bulk) tag writes."""

    name = "tagging"
