from django.apps import AppConfig


class AIMetadataConfig(AppConfig):
    """Suggested insight names and descriptions: providers, prompts and the Celery task."""

    name = "ai_metadata"
