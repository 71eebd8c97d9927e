"""The OpenAPI 3.0.3 description of `/api/v1`, built as data.

`GET /api/v1/openapi.json` serves `document()`; `GET /api/docs` renders the same
document as a plain HTML page on the server (`portal/api/docs_page.py`). A test compares
the document's paths with the app's URL map, so a route cannot be added without its entry.
Both need a login like every other route.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from portal.api.openapi_parts import (
    ANY_OBJ,
    BOOL,
    CASE_LIST_FILTERS,
    IDEMPOTENCY,
    INT,
    LIVE_COMMAND,
    LIVE_OPEN,
    NUM,
    STR,
    TIME,
    VERSIONED,
    Schema,
    arr,
    file_response,
    json_body,
    json_response,
    null,
    obj,
    op,
    param,
    path_id,
    ref,
    schemas,
)
from portal.api.openapi_studies import study_file_paths
from portal.api.routes import bp
from portal.services.catalog import MAX_PAGE, SortKey


def _paths() -> dict[str, Schema]:
    review = json_response("The study's review after the change.", ref("StudyReview"))
    pacs_failed = json_response("The archive failed (`pacs_unavailable`).", ref("Error"))
    item = path_id("item_id")
    study = path_id("study_id")
    source = param("source", "path", STR, "The archive's name (see `GET /api/v1/pacs`).")
    limit = param("limit", "query", {"type": "integer", "minimum": 1}, "Page size.")
    audit_params = [
        param("from", "query", STR, "From this date (`YYYY-MM-DD`) or ISO time, inclusive."),
        param("to", "query", STR, "Up to this date or ISO time, inclusive."),
        param("user", "query", STR, "Username."),
        param("action", "query", STR, "Audit action name."),
        param("outcome", "query", STR, "`ok` or `denied`."),
        param("study_uid", "query", STR, "A study's uid."),
        param("before", "query", {"type": "integer", "minimum": 0}, "Entries older than id."),
        limit,
    ]
    return {
        "/api/v1/health": {
            "get": op(
                "Liveness probe (no login needed).",
                {"200": json_response("Up.", obj(["status"], status=STR))},
            )
        },
        "/api/v1/openapi.json": {
            "get": op("This document.", {"200": json_response("OpenAPI 3.0.3.", ANY_OBJ)})
        },
        "/api/v1/studies": {
            "get": op(
                "The case list: filters, sort, offset or keyset paging.",
                {"200": json_response("One page.", ref("StudyPage"))},
                params=[
                    *CASE_LIST_FILTERS,
                    param(
                        "sort",
                        "query",
                        {"type": "string", "enum": [k.value for k in SortKey]},
                        "Sort key (ties broken by id).",
                    ),
                    param(
                        "desc",
                        "query",
                        {"type": "string", "enum": ["true", "false", "1", "0"]},
                        "Descending order.",
                    ),
                    param(
                        "limit",
                        "query",
                        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
                        "Page size.",
                    ),
                    param("offset", "query", {"type": "integer", "minimum": 0}, "Rows to skip."),
                    param(
                        "after",
                        "query",
                        STR,
                        "Keyset paging: the previous page's `next_cursor` (same sort and "
                        "desc; not with `offset`). No repeats or skips when studies are "
                        "added meanwhile.",
                    ),
                ],
            )
        },
        "/api/v1/studies/{study_id}": {
            "get": op(
                "A study: geometry, segmentations and labels, flag, versions.",
                {"200": json_response("The study.", ref("StudyDetail"))},
                params=[study],
            )
        },
        **study_file_paths(study),
        "/api/v1/studies/{study_id}/review": {
            "get": op(
                "The study's review items, reads, history, comments and assignments.",
                {"200": json_response("The review.", ref("StudyReview"))},
                params=[study],
            )
        },
        "/api/v1/review-items/{item_id}/reads": {
            "post": op(
                "Submit your read of a review item.",
                {"200": review},
                params=[item],
                body=json_body(
                    obj(
                        ["verdict", "version"],
                        verdict=STR,
                        version=INT,
                        note=STR,
                        label_verdicts={"type": "object", "additionalProperties": STR},
                        segmentation_id=null(INT),
                    )
                ),
                write=True,
                scope="review",
                extra=VERSIONED,
            )
        },
        "/api/v1/review-items/{item_id}/transitions": {
            "post": op(
                "Start, escalate, resolve or reopen a review item.",
                {"200": review},
                params=[item],
                body=json_body(obj(["to", "version"], to=STR, version=INT, reason=STR)),
                write=True,
                scope="review",
                extra=VERSIONED,
            )
        },
        "/api/v1/review-items/{item_id}/comments": {
            "post": op(
                "Comment on a review item, optionally anchored at a point.",
                {"201": json_response("Made.", obj(["id"], id=INT, parent_id=null(INT)))},
                params=[item, IDEMPOTENCY],
                body=json_body(
                    obj(
                        ["body"],
                        body=STR,
                        parent_id=null(INT),
                        anchor=null(
                            obj(
                                ["world_mm"],
                                world_mm={**arr(NUM), "minItems": 3, "maxItems": 3},
                                slice_index=null(INT),
                                axis=STR,
                                label_value=null(INT),
                            )
                        ),
                    )
                ),
                write=True,
                scope="review",
            )
        },
        "/api/v1/comments/{comment_id}/resolve": {
            "post": op(
                "Resolve a comment thread (idempotent: resolving twice changes nothing).",
                {"200": json_response("Resolved.", obj(["id"], id=INT, resolved=BOOL))},
                params=[path_id("comment_id")],
                write=True,
                scope="review",
            )
        },
        "/api/v1/assignments": {
            "post": op(
                "Assign studies to a project member (project leads).",
                {"200": json_response("Assigned.", obj(["assigned"], assigned=arr(INT)))},
                params=[IDEMPOTENCY],
                body=json_body(
                    obj(
                        ["studies", "assignee_id"],
                        studies={**arr(INT), "minItems": 1},
                        assignee_id=INT,
                        due=null({"type": "string", "format": "date"}),
                        replace_id=null(INT),
                    )
                ),
                write=True,
                scope="review",
            )
        },
        "/api/v1/studies/{study_id}/assignments/{user_id}": {
            "delete": op(
                "End a user's open assignment of a study (idempotent).",
                {"200": json_response("Ended.", obj(["ended"], ended=BOOL))},
                params=[study, path_id("user_id")],
                write=True,
                scope="review",
            )
        },
        "/api/v1/imports": {
            "get": op(
                "Your newest import jobs (admins: everyone's).",
                {"200": json_response("Jobs.", obj(["items"], items=arr(ref("Job"))))},
                params=[limit],
            ),
            "post": op(
                "Upload files and queue their import.",
                {"202": json_response("The queued job.", ref("Job"))},
                params=[IDEMPOTENCY],
                body={
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": obj(
                                ["project", "files"],
                                project=STR,
                                files=arr({"type": "string", "format": "binary"}),
                                resample_labels=STR,
                            )
                        }
                    },
                },
                write=True,
                scope="review",
            ),
        },
        "/api/v1/imports/{job_id}": {
            "get": op(
                "An import job's progress and report.",
                {"200": json_response("The job.", ref("Job"))},
                params=[path_id("job_id")],
            )
        },
        "/api/v1/pacs": {
            "get": op(
                "Configured archives (names and kinds only).",
                {
                    "200": json_response(
                        "Archives.", obj(["items"], items=arr(obj(name=STR, kind=STR)))
                    )
                },
            )
        },
        "/api/v1/pacs/{source}/studies": {
            "get": op(
                "Search an archive (QIDO-RS); `*` and `?` wildcards.",
                {
                    "200": json_response("Matches.", obj(["items"], items=arr(ref("RemoteStudy")))),
                    "502": pacs_failed,
                },
                params=[
                    source,
                    *[
                        param(name, "query", STR, "Filter.")
                        for name in (
                            "patient_name",
                            "patient_id",
                            "study_date",
                            "modality",
                            "accession",
                            "description",
                        )
                    ],
                    limit,
                ],
            )
        },
        "/api/v1/pacs/{source}/imports": {
            "post": op(
                "Import studies from an archive by StudyInstanceUID.",
                {
                    "202": json_response("The queued job.", ref("Job")),
                    "502": pacs_failed,
                },
                params=[source, IDEMPOTENCY],
                body=json_body(
                    obj(
                        ["project", "studies"],
                        project=STR,
                        studies=arr(STR),
                        resample_labels=BOOL,
                    )
                ),
                write=True,
                scope="review",
            )
        },
        "/api/v1/exports/review.csv": {
            "get": op(
                "Review results of the case-list filter as CSV (audited).",
                {"200": file_response("CSV.", "text/csv")},
                params=CASE_LIST_FILTERS,
            )
        },
        "/api/v1/exports/review.xlsx": {
            "get": op(
                "Review results of the case-list filter as an Excel workbook (audited).",
                {
                    "200": file_response(
                        "XLSX.", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                    )
                },
                params=CASE_LIST_FILTERS,
            )
        },
        "/api/v1/audit": {
            "get": op(
                "The audit log, newest first (admins).",
                {
                    "200": json_response(
                        "One page.",
                        obj(
                            ["items", "next_before"],
                            items=arr(ref("AuditEntry")),
                            next_before=null(INT),
                        ),
                    )
                },
                params=audit_params,
                scope="admin",
            )
        },
        "/api/v1/audit.csv": {
            "get": op(
                "Every audit entry of the filter as CSV (admins; the export is audited).",
                {"200": file_response("CSV.", "text/csv")},
                params=audit_params[:-2],
                scope="admin",
            )
        },
        "/api/v1/projects": {
            "get": op(
                "Your projects (admins: all) with your role, required reads and study count.",
                {
                    "200": json_response(
                        "Projects.",
                        obj(
                            ["items"],
                            items=arr(
                                obj(
                                    ["id", "name", "required_reads", "study_count"],
                                    id=INT,
                                    name=STR,
                                    description=STR,
                                    required_reads=INT,
                                    role=null(STR),
                                    study_count=INT,
                                )
                            ),
                        ),
                    )
                },
            )
        },
        "/api/v1/users": {
            "get": op(
                "Every user with global role, state and project roles (administrators).",
                {
                    "200": json_response(
                        "Users.",
                        obj(
                            ["items"],
                            items=arr(
                                obj(
                                    ["id", "username", "role", "active", "projects"],
                                    id=INT,
                                    username=STR,
                                    role=STR,
                                    active=BOOL,
                                    projects=arr(
                                        obj(["id", "name", "role"], id=INT, name=STR, role=STR)
                                    ),
                                    open_sessions=INT,
                                    last_login=null(TIME),
                                )
                            ),
                        ),
                    )
                },
                scope="admin",
            )
        },
        "/api/v1/sessions/me/open": {
            "post": op(
                "Make every open portal tab of yours show these studies (the live channel).",
                {"201": json_response("The command, as the tabs receive it.", LIVE_COMMAND)},
                body=json_body(LIVE_OPEN),
                write=True,
                scope="review",
                extra="Tabs poll and navigate to the grid within about a second. Every study "
                "must be visible to you (404 otherwise, nothing sent). `state` keys: `mode` "
                "(2d/3d), `axis` (axial/coronal/sagittal), `slice_mm` (RAS mm along the axis), "
                "`window` (a preset or [low, high] in the image's units), `overlay`, "
                "`outline`, `opacity` (0-1), `hidden_labels`; others answer 400.",
            )
        },
        "/api/v1/sessions/{user_id}/open": {
            "post": op(
                "An administrator opens studies on another user's tabs (audited).",
                {"201": json_response("The command.", LIVE_COMMAND)},
                params=[path_id("user_id")],
                body=json_body(LIVE_OPEN),
                write=True,
                scope="admin",
                extra="The studies must be visible to that user.",
            )
        },
        "/api/v1/sessions/me/commands": {
            "get": op(
                "Live commands for your tabs after a given id (what tabs poll).",
                {
                    "200": json_response(
                        "Commands, oldest first, and the newest id.",
                        obj(
                            ["user_id", "items", "latest"],
                            user_id=INT,
                            items=arr(LIVE_COMMAND),
                            latest=INT,
                        ),
                    )
                },
                params=[param("after", "query", INT, "Last command id seen; absent: none.")],
            )
        },
        "/api/v1/sessions/me/state": {
            "get": op(
                "What your tabs last reported showing (null before any report).",
                {"200": json_response("The state.", obj(["state"], state=null(ANY_OBJ)))},
            ),
            "put": op(
                "A tab reports what it shows: `path`, `studies`, `layout`, `slices`.",
                {"200": json_response("The stored state.", ANY_OBJ)},
                body=json_body(ANY_OBJ),
                write=True,
                scope="review",
            ),
        },
        "/api/v1/tokens": {
            "get": op(
                "Your personal access tokens (from a browser session only).",
                {"200": json_response("Tokens.", obj(["items"], items=arr(ref("Token"))))},
                extra="A bearer token cannot list, make or revoke tokens (403).",
            ),
            "post": op(
                "Make a personal access token; the secret is in the answer only.",
                {"201": json_response("The token.", ref("NewToken"))},
                params=[IDEMPOTENCY],
                body=json_body(
                    obj(
                        ["name"],
                        name=STR,
                        scopes=arr({"type": "string", "enum": ["read", "review", "admin"]}),
                        days=INT,
                    )
                ),
                write=True,
                extra="From a browser session only (403 with a bearer token).",
            ),
        },
        "/api/v1/tokens/{token_id}": {
            "delete": op(
                "Revoke one of your tokens (idempotent).",
                {"200": json_response("Revoked.", obj(["revoked"], revoked=INT))},
                params=[path_id("token_id")],
                write=True,
                extra="From a browser session only (403 with a bearer token).",
            )
        },
    }


def document() -> dict[str, Any]:
    """The OpenAPI 3.0.3 document of every `/api/v1` route."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "portal REST API",
            "version": "1",
            "description": (
                'JSON over `/api/v1`. Errors are `{"error": message, "code": stable_code}`. '
                "Sign in with the session cookie (writes then need the `X-CSRF-Token` "
                "header) or send `Authorization: Bearer ptk_...` (a personal access token, "
                "scoped read/review/admin; never in the query string)."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"session": []}, {"bearer": []}],
        "paths": _paths(),
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "portal_session",
                    "description": "Browser sign-in; writes need the X-CSRF-Token header.",
                },
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Personal access token `ptk_...` (`portal token create`).",
                },
            },
        },
    }


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return jsonify(document())
