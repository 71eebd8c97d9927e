"""Who and what: the caller's projects, and (administrators) the users."""

from __future__ import annotations

from flask import Response, jsonify

from portal.api.routes import bp
from portal.services import admin, catalog
from portal.web.context import portal, principal


@bp.get("/projects")
def projects() -> Response:
    """The projects the caller belongs to (admins: all), with the caller's role in each."""
    with portal().db.session() as s:
        return jsonify(items=catalog.visible_projects(s, principal()))


@bp.get("/users")
def users() -> Response:
    """Every user with global role, state and project roles (administrators only)."""
    with portal().db.session() as s:
        rows = admin.list_users(s, principal())
        return jsonify(
            items=[
                {
                    "id": u.id,
                    "username": u.username,
                    "role": u.role.value,
                    "active": u.active,
                    "projects": [
                        {"id": m.project_id, "name": m.project, "role": m.role.value}
                        for m in u.memberships
                    ],
                    "open_sessions": u.open_sessions,
                    "last_login": u.last_login.isoformat() if u.last_login else None,
                }
                for u in rows
            ]
        )
