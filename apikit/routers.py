from __future__ import annotations

from rest_framework.routers import SimpleRouter


class OptionalSlashRouter(SimpleRouter):
    """Routes that answer both `…/viewed` and `…/viewed/`, so no client is ever redirected."""

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"
