"""The application factory. Nothing here runs at import time."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import Flask

from portal.config import Settings
from portal.db.session import Database
from portal.web.context import Portal


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask server with the login guard, the REST API and the Dash UI.

    The database must already be migrated (`portal db upgrade`); the factory never
    creates tables.
    """
    settings = (settings or Settings.from_env()).with_secret()
    logging.getLogger("portal").setLevel(settings.log_level.upper())
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    app = Flask("portal")
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME="portal_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_hours),
        MAX_CONTENT_LENGTH=16 * 1024 * 1024,
    )
    from portal.services.importer import ImportSettings
    from portal.services.queue import build_queue

    database_url = settings.resolved_database_url
    queue = build_queue(
        settings.queue_url, settings.data_dir, database_url, ImportSettings.of(settings)
    )
    app.extensions["portal"] = Portal(settings=settings, db=Database(database_url), queue=queue)

    # Imported here so that importing portal.app stays cheap and free of Dash set-up.
    import portal.api.audit  # noqa: F401  (adds the audit log routes to the API blueprint)
    import portal.api.directory  # noqa: F401  (adds /projects and /users to the API)
    import portal.api.files  # noqa: F401  (adds the file routes to the API blueprint)
    import portal.api.live  # noqa: F401  (adds the live channel routes to the API blueprint)
    import portal.api.openapi  # noqa: F401  (adds /openapi.json to the API blueprint)
    import portal.api.pacs  # noqa: F401  (adds the PACS routes to the API blueprint)
    import portal.api.reports  # noqa: F401  (adds the export routes to the API blueprint)
    import portal.api.review  # noqa: F401  (adds the review routes to the API blueprint)
    import portal.api.segmentations  # noqa: F401  (adds adding a segmentation to a study)
    import portal.api.slices  # noqa: F401  (adds the full-resolution slice routes)
    import portal.api.tokens  # noqa: F401  (adds the token routes to the API blueprint)
    from portal.api import errors as api_errors
    from portal.api.docs_page import docs_bp
    from portal.api.routes import bp as api_bp
    from portal.ui.dash_app import build_dash
    from portal.web import auditing, security
    from portal.web.login import bp as web_bp
    from portal.web.reports import bp as reports_bp

    api_errors.install_converters(app)
    security.install(app)
    auditing.install(app)
    api_errors.install(app)
    app.register_blueprint(web_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(docs_bp)
    app.register_blueprint(reports_bp)
    build_dash(app)
    return app
