"""Access to the app's services from Flask request handlers and Dash callbacks."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from flask_login import UserMixin, current_user

from portal.config import Settings
from portal.db.session import Database
from portal.services.auth import Principal
from portal.services.queue import Queue


@dataclass
class Portal:
    """What `create_app` puts in `app.extensions["portal"]`."""

    settings: Settings
    db: Database
    queue: Queue


class LoginUser(UserMixin):
    """Flask-Login's view of a signed-in user; its id is the server-side session token."""

    def __init__(self, principal: Principal, token: str) -> None:
        self.principal = principal
        self.token = token

    def get_id(self) -> str:
        return self.token


def portal() -> Portal:
    return current_app.extensions["portal"]  # type: ignore[no-any-return]


def principal() -> Principal:
    """The signed-in principal; the guard has already refused anonymous requests."""
    if not current_user.is_authenticated:
        raise PermissionError("login required")
    return current_user.principal  # type: ignore[no-any-return]
