from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Organizations, their members and projects, users and personal API keys: who may act where."""

    name = "accounts"
