"""The OpenAPI 3.0.3 description of `/api/v1`, built as data, and its two renderings.

`GET /api/v1/openapi.json` serves `document()`; `GET /api/docs` renders the same
document as a plain HTML page on the server (no CDN, no script). A test compares the
document's paths with the app's URL map, so a route cannot be added without its entry.
Both need a login like every other route.
"""

from __future__ import annotations

import html
import json
from typing import Any

from flask import Blueprint, Response, jsonify

from portal.api.routes import bp
from portal.services.catalog import MAX_PAGE, SortKey

docs_bp = Blueprint("api_docs", __name__)

Schema = dict[str, Any]

JSON = "application/json"
ERROR_STATUSES = {
    "400": "Invalid input (`invalid`).",
    "401": "No or bad login (`login_required`, `invalid_token`).",
    "403": "Not allowed (`forbidden`): role, token scope, or a missing `X-CSRF-Token`.",
    "404": "No such object, or not visible to you (`not_found`).",
    "405": "Method not allowed on this path (`method_not_allowed`).",
}
WRITE_ERRORS = {
    "409": "Changed since you read it, a conflicting write, or the first request with this "
    "`Idempotency-Key` is still running (`conflict`).",
    "413": "Request body too large (`too_large`).",
    "422": "`Idempotency-Key` reused with a different request (`idempotency_mismatch`).",
}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str] | None = None, **props: Schema) -> Schema:
    out: Schema = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    return out


def _arr(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def _null(schema: Schema) -> Schema:
    return {**schema, "nullable": True}


STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NUM: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}
TIME: Schema = {"type": "string", "format": "date-time"}
ANY_OBJ: Schema = {"type": "object", "additionalProperties": True}


def _schemas() -> dict[str, Schema]:
    study_summary = _obj(
        ["id", "name", "project", "modality", "shape", "review_status", "version", "current"],
        id=INT,
        name=STR,
        patient_name=STR,
        project=STR,
        modality=STR,
        shape=_arr(INT),
        dimensions=STR,
        segmentation_count=INT,
        review_status=STR,
        review_reason=STR,
        reviewed_by=_null(STR),
        reviewed_at=_null(TIME),
        created_at=_null(TIME),
        version=INT,
        current=BOOL,
        assignees=_arr(STR),
        due_at=_null(TIME),
    )
    label = _obj(
        ["value", "name"],
        value=INT,
        name=STR,
        color=STR,
        voxel_count=_null(INT),
        volume_ml=_null(NUM),
    )
    study_detail = {
        "allOf": [
            study_summary,
            _obj(
                ["spacing_mm", "affine_ras", "orientation", "segmentations", "flag"],
                spacing_mm=_arr(NUM),
                affine_ras=_arr(_arr(NUM)),
                orientation=STR,
                dtype=STR,
                volume_count=INT,
                value_range=_arr(_null(NUM)),
                window=_obj(level=_null(NUM), width=_null(NUM)),
                notes=_arr(STR),
                versions=_arr(
                    _obj(id=INT, version=INT, imported_at=_null(TIME), current=BOOL),
                ),
                segmentations=_arr(_obj(["id", "name"], id=INT, name=STR, labels=_arr(label))),
                flag=_obj(status=STR, reason=STR, by=_null(STR), at=_null(TIME)),
            ),
        ]
    }
    comment = _obj(
        ["id", "body"],
        id=INT,
        by=_null(STR),
        at=_null(TIME),
        body=STR,
        world_mm=_null(_arr(NUM)),
        slice_index=_null(INT),
        axis=_null(STR),
        label_value=_null(INT),
        resolved=BOOL,
        resolved_by=_null(STR),
        replies=_arr(ANY_OBJ),
    )
    review_item = _obj(
        ["id", "state", "version"],
        id=INT,
        key=STR,
        segmentation_id=_null(INT),
        name=STR,
        labels=_arr(_obj(value=INT, name=STR, color=STR)),
        state=STR,
        version=INT,
        round=INT,
        updated_at=_null(TIME),
        updated_by=_null(STR),
        reads_required=INT,
        reads_done=INT,
        my_read_done=BOOL,
        reads=_arr(
            _obj(
                reader=_null(STR),
                round=INT,
                verdict=STR,
                note=STR,
                label_verdicts=_null(ANY_OBJ),
                segmentation_id=_null(INT),
                at=_null(TIME),
            )
        ),
        agreement=_null(ANY_OBJ),
        history=_arr(
            _obj(
                at=_null(TIME),
                by=_null(STR),
                action=STR,
                **{"from": _null(STR)},
                to=_null(STR),
                reason=_null(STR),
            )
        ),
        comments=_arr(comment),
    )
    job = _obj(
        ["id", "status", "project"],
        id=INT,
        status=STR,
        project=STR,
        total=_null(INT),
        done=_null(INT),
        imported=_arr(INT),
        skipped=_arr({}),
        refused=_arr(_obj(file=STR, reason=STR)),
        notes=_arr(_obj(file=STR, note=STR)),
        options=ANY_OBJ,
        error=_null(STR),
        created_at=_null(TIME),
        finished_at=_null(TIME),
    )
    token = _obj(
        ["id", "name", "prefix", "scopes"],
        id=INT,
        name=STR,
        prefix=STR,
        scopes=_arr({"type": "string", "enum": ["read", "review", "admin"]}),
        created_at=TIME,
        expires_at=TIME,
        last_used_at=_null(TIME),
        revoked=BOOL,
        expired=BOOL,
    )
    return {
        "Error": _obj(
            ["error", "code"],
            error={"type": "string", "description": "For people; may change."},
            code={"type": "string", "description": "For programs; stable."},
        ),
        "StudySummary": study_summary,
        "StudyDetail": study_detail,
        "StudyPage": _obj(
            ["items", "total", "offset", "limit", "next_cursor"],
            items=_arr(_ref("StudySummary")),
            total=INT,
            offset=INT,
            limit=INT,
            next_cursor=_null(
                {"type": "string", "description": "Pass as `after` for the next page."}
            ),
        ),
        "ReviewItem": review_item,
        "StudyReview": _obj(
            ["study_id", "items"],
            study_id=INT,
            status=STR,
            role=STR,
            can={"type": "object", "additionalProperties": BOOL},
            items=_arr(_ref("ReviewItem")),
            assignments=_arr(ANY_OBJ),
        ),
        "Job": job,
        "Token": token,
        "NewToken": {
            "allOf": [
                _ref("Token"),
                _obj(["token"], token={"type": "string", "description": "Shown once."}),
            ]
        },
        "AuditEntry": _obj(
            ["id", "at", "action"],
            id=INT,
            at=TIME,
            user_id=_null(INT),
            username=STR,
            role=_null(STR),
            action=STR,
            target=_null(STR),
            study_uid=_null(STR),
            outcome=_null(STR),
            address=_null(STR),
            detail=_null(STR),
        ),
        "RemoteStudy": _obj(
            ["study_uid"],
            study_uid=STR,
            patient_name=STR,
            patient_id=STR,
            study_date=STR,
            description=STR,
            accession=STR,
            modalities=STR,
            series_count=_null(INT),
            instance_count=_null(INT),
        ),
    }


def _param(name: str, where: str, schema: Schema, text: str, required: bool = False) -> Schema:
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "schema": schema,
        "description": text,
    }


def _path_id(name: str) -> Schema:
    return _param(name, "path", {"type": "integer", "minimum": 0}, f"The {name}.")


CSRF = _param(
    "X-CSRF-Token",
    "header",
    STR,
    "The session's CSRF token; needed on writes with a session cookie, not with a bearer token.",
)
IDEMPOTENCY = _param(
    "Idempotency-Key",
    "header",
    {"type": "string", "maxLength": 128},
    "Any unique string (a UUID): a retry with the same key and the same request returns the "
    "first response without doing it twice (kept 24 h; marked `Idempotent-Replayed: true`); "
    "the same key with another request answers 422 `idempotency_mismatch`, and 409 while the "
    "first request with the key is still running.",
)
VERSIONED = (
    "Protected against lost updates by the item `version` you send (409 `conflict` when it "
    "moved on), so a retry of a request that succeeded answers 409 instead of acting twice."
)
CASE_LIST_FILTERS = [
    _param("q", "query", STR, "Substring of the study or patient name (case-insensitive)."),
    _param("modality", "query", STR, "Modality, e.g. `MR`."),
    _param("status", "query", STR, "Review status, e.g. `approved`."),
    _param("project", "query", STR, "Project name."),
    _param(
        "queue",
        "query",
        {"type": "string", "enum": ["", "mine", "expert", "overdue"]},
        "A saved view of the case list.",
    ),
]


def _json_response(text: str, schema: Schema) -> Schema:
    return {"description": text, "content": {JSON: {"schema": schema}}}


def _file_response(text: str, mimetype: str) -> Schema:
    return {
        "description": text,
        "content": {mimetype: {"schema": {"type": "string", "format": "binary"}}},
    }


def _op(
    summary: str,
    responses: dict[str, Schema],
    *,
    params: list[Schema] | None = None,
    body: Schema | None = None,
    write: bool = False,
    scope: str = "read",
    extra: str = "",
) -> Schema:
    """One operation; every operation also lists the API's error responses."""
    errors = {**ERROR_STATUSES, **(WRITE_ERRORS if write else {})}
    out: Schema = {
        "summary": summary,
        "description": (extra + "\n\n" if extra else "") + f"Token scope: `{scope}`.",
        "parameters": (params or []) + ([CSRF] if write else []),
        "responses": {
            **responses,
            **{
                status: _json_response(text, _ref("Error"))
                for status, text in errors.items()
                if status not in responses
            },
            "500": _json_response("Unexpected failure (`internal`), logged.", _ref("Error")),
        },
    }
    if body is not None:
        out["requestBody"] = body
    return out


def _json_body(schema: Schema) -> Schema:
    return {"required": True, "content": {JSON: {"schema": schema}}}


LIVE_OPEN: Schema = _obj(
    ["studies"],
    studies=_arr(INT),
    layout=_null({"type": "string", "enum": ["1x1", "1x2", "2x2", "2x3", "3x3", "3x4"]}),
    state=_obj(mode={"type": "string", "enum": ["2d", "3d"]}, slice_mm=NUM),
)
LIVE_COMMAND: Schema = _obj(
    ["id", "user_id", "studies"],
    id=INT,
    user_id=INT,
    studies=_arr(INT),
    layout=_null(STR),
    state=ANY_OBJ,
)


def _paths() -> dict[str, Schema]:
    review = _json_response("The study's review after the change.", _ref("StudyReview"))
    pacs_failed = _json_response("The archive failed (`pacs_unavailable`).", _ref("Error"))
    item = _path_id("item_id")
    study = _path_id("study_id")
    source = _param("source", "path", STR, "The archive's name (see `GET /api/v1/pacs`).")
    limit = _param("limit", "query", {"type": "integer", "minimum": 1}, "Page size.")
    audit_params = [
        _param("from", "query", STR, "From this date (`YYYY-MM-DD`) or ISO time, inclusive."),
        _param("to", "query", STR, "Up to this date or ISO time, inclusive."),
        _param("user", "query", STR, "Username."),
        _param("action", "query", STR, "Audit action name."),
        _param("outcome", "query", STR, "`ok` or `denied`."),
        _param("study_uid", "query", STR, "A study's uid."),
        _param("before", "query", {"type": "integer", "minimum": 0}, "Entries older than id."),
        limit,
    ]
    return {
        "/api/v1/health": {
            "get": _op(
                "Liveness probe (no login needed).",
                {"200": _json_response("Up.", _obj(["status"], status=STR))},
            )
        },
        "/api/v1/openapi.json": {
            "get": _op("This document.", {"200": _json_response("OpenAPI 3.0.3.", ANY_OBJ)})
        },
        "/api/v1/studies": {
            "get": _op(
                "The case list: filters, sort, offset or keyset paging.",
                {"200": _json_response("One page.", _ref("StudyPage"))},
                params=[
                    *CASE_LIST_FILTERS,
                    _param(
                        "sort",
                        "query",
                        {"type": "string", "enum": [k.value for k in SortKey]},
                        "Sort key (ties broken by id).",
                    ),
                    _param(
                        "desc",
                        "query",
                        {"type": "string", "enum": ["true", "false", "1", "0"]},
                        "Descending order.",
                    ),
                    _param(
                        "limit",
                        "query",
                        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
                        "Page size.",
                    ),
                    _param("offset", "query", {"type": "integer", "minimum": 0}, "Rows to skip."),
                    _param(
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
            "get": _op(
                "A study: geometry, segmentations and labels, flag, versions.",
                {"200": _json_response("The study.", _ref("StudyDetail"))},
                params=[study],
            )
        },
        "/api/v1/studies/{study_id}/preview/{name}": {
            "get": _op(
                "A viewer preview file (gzip `.vti` or PNG).",
                {"200": _file_response("The file.", "application/octet-stream")},
                params=[
                    study,
                    _param(
                        "name",
                        "path",
                        {
                            "type": "string",
                            "enum": ["image.vti", "labels.vti", "thumb.png", "mosaic.png"],
                        },
                        "Which preview.",
                    ),
                ],
            )
        },
        "/api/v1/studies/{study_id}/volumes/{index}/image.vti": {
            "get": _op(
                "Volume `index` of a 4-D study as a gzip `.vti`.",
                {"200": _file_response("The volume.", "application/octet-stream")},
                params=[study, _path_id("index")],
            )
        },
        "/api/v1/studies/{study_id}/files.zip": {
            "get": _op(
                "The study's original files as a streamed zip.",
                {"200": _file_response("The zip.", "application/zip")},
                params=[study],
            )
        },
        "/api/v1/studies/{study_id}/segmentations": {
            "post": _op(
                "Upload a corrected label map: a new version of the study.",
                {
                    "201": _json_response(
                        "The new version.", _obj(["study_id"], study_id=INT, notes=_arr(STR))
                    )
                },
                params=[study, IDEMPOTENCY],
                body={
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": _obj(["file"], file={"type": "string", "format": "binary"})
                        }
                    },
                },
                write=True,
                scope="review",
            )
        },
        "/api/v1/segmentations/{segmentation_id}/labels": {
            "get": _op(
                "A segmentation as NIfTI (default) or NRRD on the study's grid.",
                {"200": _file_response("The label map.", "application/octet-stream")},
                params=[
                    _path_id("segmentation_id"),
                    _param(
                        "format", "query", {"type": "string", "enum": ["nifti", "nrrd"]}, "Format."
                    ),
                ],
            )
        },
        "/api/v1/studies/{study_id}/review": {
            "get": _op(
                "The study's review items, reads, history, comments and assignments.",
                {"200": _json_response("The review.", _ref("StudyReview"))},
                params=[study],
            )
        },
        "/api/v1/review-items/{item_id}/reads": {
            "post": _op(
                "Submit your read of a review item.",
                {"200": review},
                params=[item],
                body=_json_body(
                    _obj(
                        ["verdict", "version"],
                        verdict=STR,
                        version=INT,
                        note=STR,
                        label_verdicts={"type": "object", "additionalProperties": STR},
                        segmentation_id=_null(INT),
                    )
                ),
                write=True,
                scope="review",
                extra=VERSIONED,
            )
        },
        "/api/v1/review-items/{item_id}/transitions": {
            "post": _op(
                "Start, escalate, resolve or reopen a review item.",
                {"200": review},
                params=[item],
                body=_json_body(_obj(["to", "version"], to=STR, version=INT, reason=STR)),
                write=True,
                scope="review",
                extra=VERSIONED,
            )
        },
        "/api/v1/review-items/{item_id}/comments": {
            "post": _op(
                "Comment on a review item, optionally anchored at a point.",
                {"201": _json_response("Made.", _obj(["id"], id=INT, parent_id=_null(INT)))},
                params=[item, IDEMPOTENCY],
                body=_json_body(
                    _obj(
                        ["body"],
                        body=STR,
                        parent_id=_null(INT),
                        anchor=_null(
                            _obj(
                                ["world_mm"],
                                world_mm={**_arr(NUM), "minItems": 3, "maxItems": 3},
                                slice_index=_null(INT),
                                axis=STR,
                                label_value=_null(INT),
                            )
                        ),
                    )
                ),
                write=True,
                scope="review",
            )
        },
        "/api/v1/comments/{comment_id}/resolve": {
            "post": _op(
                "Resolve a comment thread (idempotent: resolving twice changes nothing).",
                {"200": _json_response("Resolved.", _obj(["id"], id=INT, resolved=BOOL))},
                params=[_path_id("comment_id")],
                write=True,
                scope="review",
            )
        },
        "/api/v1/assignments": {
            "post": _op(
                "Assign studies to a project member (project leads).",
                {"200": _json_response("Assigned.", _obj(["assigned"], assigned=_arr(INT)))},
                params=[IDEMPOTENCY],
                body=_json_body(
                    _obj(
                        ["studies", "assignee_id"],
                        studies={**_arr(INT), "minItems": 1},
                        assignee_id=INT,
                        due=_null({"type": "string", "format": "date"}),
                        replace_id=_null(INT),
                    )
                ),
                write=True,
                scope="review",
            )
        },
        "/api/v1/studies/{study_id}/assignments/{user_id}": {
            "delete": _op(
                "End a user's open assignment of a study (idempotent).",
                {"200": _json_response("Ended.", _obj(["ended"], ended=BOOL))},
                params=[study, _path_id("user_id")],
                write=True,
                scope="review",
            )
        },
        "/api/v1/imports": {
            "get": _op(
                "Your newest import jobs (admins: everyone's).",
                {"200": _json_response("Jobs.", _obj(["items"], items=_arr(_ref("Job"))))},
                params=[limit],
            ),
            "post": _op(
                "Upload files and queue their import.",
                {"202": _json_response("The queued job.", _ref("Job"))},
                params=[IDEMPOTENCY],
                body={
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": _obj(
                                ["project", "files"],
                                project=STR,
                                files=_arr({"type": "string", "format": "binary"}),
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
            "get": _op(
                "An import job's progress and report.",
                {"200": _json_response("The job.", _ref("Job"))},
                params=[_path_id("job_id")],
            )
        },
        "/api/v1/pacs": {
            "get": _op(
                "Configured archives (names and kinds only).",
                {
                    "200": _json_response(
                        "Archives.", _obj(["items"], items=_arr(_obj(name=STR, kind=STR)))
                    )
                },
            )
        },
        "/api/v1/pacs/{source}/studies": {
            "get": _op(
                "Search an archive (QIDO-RS); `*` and `?` wildcards.",
                {
                    "200": _json_response(
                        "Matches.", _obj(["items"], items=_arr(_ref("RemoteStudy")))
                    ),
                    "502": pacs_failed,
                },
                params=[
                    source,
                    *[
                        _param(name, "query", STR, "Filter.")
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
            "post": _op(
                "Import studies from an archive by StudyInstanceUID.",
                {
                    "202": _json_response("The queued job.", _ref("Job")),
                    "502": pacs_failed,
                },
                params=[source, IDEMPOTENCY],
                body=_json_body(
                    _obj(
                        ["project", "studies"],
                        project=STR,
                        studies=_arr(STR),
                        resample_labels=BOOL,
                    )
                ),
                write=True,
                scope="review",
            )
        },
        "/api/v1/exports/review.csv": {
            "get": _op(
                "Review results of the case-list filter as CSV (audited).",
                {"200": _file_response("CSV.", "text/csv")},
                params=CASE_LIST_FILTERS,
            )
        },
        "/api/v1/exports/review.xlsx": {
            "get": _op(
                "Review results of the case-list filter as an Excel workbook (audited).",
                {
                    "200": _file_response(
                        "XLSX.", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                    )
                },
                params=CASE_LIST_FILTERS,
            )
        },
        "/api/v1/audit": {
            "get": _op(
                "The audit log, newest first (admins).",
                {
                    "200": _json_response(
                        "One page.",
                        _obj(
                            ["items", "next_before"],
                            items=_arr(_ref("AuditEntry")),
                            next_before=_null(INT),
                        ),
                    )
                },
                params=audit_params,
                scope="admin",
            )
        },
        "/api/v1/audit.csv": {
            "get": _op(
                "Every audit entry of the filter as CSV (admins; the export is audited).",
                {"200": _file_response("CSV.", "text/csv")},
                params=audit_params[:-2],
                scope="admin",
            )
        },
        "/api/v1/projects": {
            "get": _op(
                "Your projects (admins: all) with your role, required reads and study count.",
                {
                    "200": _json_response(
                        "Projects.",
                        _obj(
                            ["items"],
                            items=_arr(
                                _obj(
                                    ["id", "name", "required_reads", "study_count"],
                                    id=INT,
                                    name=STR,
                                    description=STR,
                                    required_reads=INT,
                                    role=_null(STR),
                                    study_count=INT,
                                )
                            ),
                        ),
                    )
                },
            )
        },
        "/api/v1/users": {
            "get": _op(
                "Every user with global role, state and project roles (administrators).",
                {
                    "200": _json_response(
                        "Users.",
                        _obj(
                            ["items"],
                            items=_arr(
                                _obj(
                                    ["id", "username", "role", "active", "projects"],
                                    id=INT,
                                    username=STR,
                                    role=STR,
                                    active=BOOL,
                                    projects=_arr(
                                        _obj(["id", "name", "role"], id=INT, name=STR, role=STR)
                                    ),
                                    open_sessions=INT,
                                    last_login=_null(TIME),
                                )
                            ),
                        ),
                    )
                },
                scope="admin",
            )
        },
        "/api/v1/sessions/me/open": {
            "post": _op(
                "Make every open portal tab of yours show these studies (the live channel).",
                {"201": _json_response("The command, as the tabs receive it.", LIVE_COMMAND)},
                body=_json_body(LIVE_OPEN),
                write=True,
                scope="review",
                extra="Tabs poll and navigate to the grid within about a second. Every study "
                "must be visible to you (404 otherwise, nothing sent). `state` keys: `mode` "
                "(2d/3d), `slice_mm` (RAS z of the axial slice); others answer 400.",
            )
        },
        "/api/v1/sessions/{user_id}/open": {
            "post": _op(
                "An administrator opens studies on another user's tabs (audited).",
                {"201": _json_response("The command.", LIVE_COMMAND)},
                params=[_path_id("user_id")],
                body=_json_body(LIVE_OPEN),
                write=True,
                scope="admin",
                extra="The studies must be visible to that user.",
            )
        },
        "/api/v1/sessions/me/commands": {
            "get": _op(
                "Live commands for your tabs after a given id (what tabs poll).",
                {
                    "200": _json_response(
                        "Commands, oldest first, and the newest id.",
                        _obj(
                            ["user_id", "items", "latest"],
                            user_id=INT,
                            items=_arr(LIVE_COMMAND),
                            latest=INT,
                        ),
                    )
                },
                params=[_param("after", "query", INT, "Last command id seen; absent: none.")],
            )
        },
        "/api/v1/sessions/me/state": {
            "get": _op(
                "What your tabs last reported showing (null before any report).",
                {"200": _json_response("The state.", _obj(["state"], state=_null(ANY_OBJ)))},
            ),
            "put": _op(
                "A tab reports what it shows: `path`, `studies`, `layout`, `slices`.",
                {"200": _json_response("The stored state.", ANY_OBJ)},
                body=_json_body(ANY_OBJ),
                write=True,
                scope="review",
            ),
        },
        "/api/v1/tokens": {
            "get": _op(
                "Your personal access tokens (from a browser session only).",
                {"200": _json_response("Tokens.", _obj(["items"], items=_arr(_ref("Token"))))},
                extra="A bearer token cannot list, make or revoke tokens (403).",
            ),
            "post": _op(
                "Make a personal access token; the secret is in the answer only.",
                {"201": _json_response("The token.", _ref("NewToken"))},
                params=[IDEMPOTENCY],
                body=_json_body(
                    _obj(
                        ["name"],
                        name=STR,
                        scopes=_arr({"type": "string", "enum": ["read", "review", "admin"]}),
                        days=INT,
                    )
                ),
                write=True,
                extra="From a browser session only (403 with a bearer token).",
            ),
        },
        "/api/v1/tokens/{token_id}": {
            "delete": _op(
                "Revoke one of your tokens (idempotent).",
                {"200": _json_response("Revoked.", _obj(["revoked"], revoked=INT))},
                params=[_path_id("token_id")],
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
            "schemas": _schemas(),
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


# ---- the HTML rendering ------------------------------------------------------------------


def _schema_text(schema: Schema) -> str:
    return json.dumps(schema, indent=1, ensure_ascii=False)


def _operation_html(path: str, method: str, op: Schema) -> str:
    esc = html.escape
    rows = "".join(
        f"<tr><td><code>{esc(p['name'])}</code></td><td>{esc(p['in'])}</td>"
        f"<td>{'yes' if p.get('required') else ''}</td>"
        f"<td><code>{esc(_schema_text(p['schema']))}</code></td>"
        f"<td>{esc(p.get('description', ''))}</td></tr>"
        for p in op.get("parameters", [])
    )
    params = (
        "<table><tr><th>name</th><th>in</th><th>required</th><th>schema</th>"
        f"<th>about</th></tr>{rows}</table>"
        if rows
        else ""
    )
    body = ""
    if "requestBody" in op:
        parts = "".join(
            f"<p>{esc(kind)}</p><pre>{esc(_schema_text(c['schema']))}</pre>"
            for kind, c in op["requestBody"]["content"].items()
        )
        body = f"<h4>Request body</h4>{parts}"
    responses = "".join(
        f"<tr><td>{esc(status)}</td><td>{esc(r['description'])}</td><td>"
        + "".join(
            f"{esc(kind)} <code>{esc(_schema_text(c['schema']))}</code>"
            for kind, c in r.get("content", {}).items()
        )
        + "</td></tr>"
        for status, r in op["responses"].items()
    )
    anchor = esc(f"{method}-{path}")
    return (
        f'<section id="{anchor}"><h3><code>{method.upper()} {esc(path)}</code></h3>'
        f"<p>{esc(op['summary'])}</p><p>{esc(op.get('description', ''))}</p>{params}{body}"
        f"<h4>Responses</h4><table>{responses}</table></section>"
    )


def render_html(doc: dict[str, Any]) -> str:
    """The document as one self-contained HTML page (no external CSS or script)."""
    esc = html.escape
    ops = [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()]
    index = "".join(
        f'<li><a href="#{esc(f"{m}-{p}")}"><code>{m.upper()} {esc(p)}</code></a> '
        f"{esc(op['summary'])}</li>"
        for p, m, op in ops
    )
    schemas = "".join(
        f'<h3 id="schema-{esc(name)}">{esc(name)}</h3><pre>{esc(_schema_text(s))}</pre>'
        for name, s in doc["components"]["schemas"].items()
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{esc(doc['info']['title'])}</title><style>"
        "body{font-family:sans-serif;max-width:70em;margin:auto;padding:1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .4em;"
        "vertical-align:top}pre,code{white-space:pre-wrap}section{margin-bottom:2em}"
        "</style></head><body>"
        f"<h1>{esc(doc['info']['title'])} v{esc(doc['info']['version'])}</h1>"
        f"<p>{esc(doc['info']['description'])}</p>"
        '<p>Machine-readable: <a href="/api/v1/openapi.json">/api/v1/openapi.json</a></p>'
        f"<h2>Routes</h2><ul>{index}</ul>"
        + "".join(_operation_html(p, m, op) for p, m, op in ops)
        + f"<h2>Schemas</h2>{schemas}</body></html>"
    )


@docs_bp.get("/api/docs")
def docs_page() -> Response:
    return Response(render_html(document()), mimetype="text/html")
