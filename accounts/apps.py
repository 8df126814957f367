from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Organizations, their members and projects, users and personal API keys: who may act where."""

    name = "accounts"

    def ready(self) -> None:
        from accounts.api import schema  # noqa: F401  registers the OpenAPI auth schemes
