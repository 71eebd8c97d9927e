"""Building blocks of the OpenAPI document: schema helpers, the shared component
schemas, common parameters and the operation template with the API's error answers."""

from __future__ import annotations

from typing import Any

from portal.services import live

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


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: list[str] | None = None, **props: Schema) -> Schema:
    out: Schema = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    return out


def arr(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def null(schema: Schema) -> Schema:
    return {**schema, "nullable": True}


STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NUM: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}
TIME: Schema = {"type": "string", "format": "date-time"}
ANY_OBJ: Schema = {"type": "object", "additionalProperties": True}


def schemas() -> dict[str, Schema]:
    study_summary = obj(
        ["id", "name", "project", "modality", "shape", "review_status", "version", "current"],
        id=INT,
        name=STR,
        patient_name=STR,
        project=STR,
        modality=STR,
        shape=arr(INT),
        dimensions=STR,
        segmentation_count=INT,
        review_status=STR,
        review_reason=STR,
        reviewed_by=null(STR),
        reviewed_at=null(TIME),
        created_at=null(TIME),
        version=INT,
        current=BOOL,
        assignees=arr(STR),
        due_at=null(TIME),
    )
    label = obj(
        ["value", "name"],
        value=INT,
        name=STR,
        color=STR,
        voxel_count=null(INT),
        volume_ml=null(NUM),
    )
    study_detail = {
        "allOf": [
            study_summary,
            obj(
                ["spacing_mm", "affine_ras", "orientation", "segmentations", "flag"],
                spacing_mm=arr(NUM),
                affine_ras=arr(arr(NUM)),
                orientation=STR,
                dtype=STR,
                volume_count=INT,
                value_range=arr(null(NUM)),
                window=obj(level=null(NUM), width=null(NUM)),
                notes=arr(STR),
                versions=arr(
                    obj(id=INT, version=INT, imported_at=null(TIME), current=BOOL),
                ),
                segmentations=arr(obj(["id", "name"], id=INT, name=STR, labels=arr(label))),
                flag=obj(status=STR, reason=STR, by=null(STR), at=null(TIME)),
            ),
        ]
    }
    comment = obj(
        ["id", "body"],
        id=INT,
        by=null(STR),
        at=null(TIME),
        body=STR,
        world_mm=null(arr(NUM)),
        slice_index=null(INT),
        axis=null(STR),
        label_value=null(INT),
        resolved=BOOL,
        resolved_by=null(STR),
        replies=arr(ANY_OBJ),
    )
    review_item = obj(
        ["id", "state", "version"],
        id=INT,
        key=STR,
        segmentation_id=null(INT),
        name=STR,
        labels=arr(obj(value=INT, name=STR, color=STR)),
        state=STR,
        version=INT,
        round=INT,
        updated_at=null(TIME),
        updated_by=null(STR),
        reads_required=INT,
        reads_done=INT,
        my_read_done=BOOL,
        reads=arr(
            obj(
                reader=null(STR),
                round=INT,
                verdict=STR,
                note=STR,
                label_verdicts=null(ANY_OBJ),
                segmentation_id=null(INT),
                at=null(TIME),
            )
        ),
        agreement=null(ANY_OBJ),
        history=arr(
            obj(
                at=null(TIME),
                by=null(STR),
                action=STR,
                **{"from": null(STR)},
                to=null(STR),
                reason=null(STR),
            )
        ),
        comments=arr(comment),
    )
    job = obj(
        ["id", "status", "project"],
        id=INT,
        status=STR,
        project=STR,
        total=null(INT),
        done=null(INT),
        imported=arr(INT),
        skipped=arr({}),
        refused=arr(obj(file=STR, reason=STR)),
        notes=arr(obj(file=STR, note=STR)),
        options=ANY_OBJ,
        error=null(STR),
        created_at=null(TIME),
        finished_at=null(TIME),
    )
    token = obj(
        ["id", "name", "prefix", "scopes"],
        id=INT,
        name=STR,
        prefix=STR,
        scopes=arr({"type": "string", "enum": ["read", "review", "admin"]}),
        created_at=TIME,
        expires_at=TIME,
        last_used_at=null(TIME),
        revoked=BOOL,
        expired=BOOL,
    )
    return {
        "Error": obj(
            ["error", "code"],
            error={"type": "string", "description": "For people; may change."},
            code={"type": "string", "description": "For programs; stable."},
        ),
        "StudySummary": study_summary,
        "StudyDetail": study_detail,
        "StudyPage": obj(
            ["items", "total", "offset", "limit", "next_cursor"],
            items=arr(ref("StudySummary")),
            total=INT,
            offset=INT,
            limit=INT,
            next_cursor=null(
                {"type": "string", "description": "Pass as `after` for the next page."}
            ),
        ),
        "ReviewItem": review_item,
        "StudyReview": obj(
            ["study_id", "items"],
            study_id=INT,
            status=STR,
            role=STR,
            can={"type": "object", "additionalProperties": BOOL},
            items=arr(ref("ReviewItem")),
            assignments=arr(ANY_OBJ),
        ),
        "Job": job,
        "Token": token,
        "NewToken": {
            "allOf": [
                ref("Token"),
                obj(["token"], token={"type": "string", "description": "Shown once."}),
            ]
        },
        "AuditEntry": obj(
            ["id", "at", "action"],
            id=INT,
            at=TIME,
            user_id=null(INT),
            username=STR,
            role=null(STR),
            action=STR,
            target=null(STR),
            study_uid=null(STR),
            outcome=null(STR),
            address=null(STR),
            detail=null(STR),
        ),
        "RemoteStudy": obj(
            ["study_uid"],
            study_uid=STR,
            patient_name=STR,
            patient_id=STR,
            study_date=STR,
            description=STR,
            accession=STR,
            modalities=STR,
            series_count=null(INT),
            instance_count=null(INT),
        ),
    }


def param(name: str, where: str, schema: Schema, text: str, required: bool = False) -> Schema:
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "schema": schema,
        "description": text,
    }


def path_id(name: str) -> Schema:
    return param(name, "path", {"type": "integer", "minimum": 0}, f"The {name}.")


CSRF = param(
    "X-CSRF-Token",
    "header",
    STR,
    "The session's CSRF token; needed on writes with a session cookie, not with a bearer token.",
)
IDEMPOTENCY = param(
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
    param("q", "query", STR, "Substring of the study or patient name (case-insensitive)."),
    param("modality", "query", STR, "Modality, e.g. `MR`."),
    param("status", "query", STR, "Review status, e.g. `approved`."),
    param("project", "query", STR, "Project name."),
    param(
        "queue",
        "query",
        {"type": "string", "enum": ["", "mine", "expert", "overdue"]},
        "A saved view of the case list.",
    ),
]


def json_response(text: str, schema: Schema) -> Schema:
    return {"description": text, "content": {JSON: {"schema": schema}}}


def file_response(text: str, mimetype: str) -> Schema:
    return {
        "description": text,
        "content": {mimetype: {"schema": {"type": "string", "format": "binary"}}},
    }


def op(
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
                status: json_response(text, ref("Error"))
                for status, text in errors.items()
                if status not in responses
            },
            "500": json_response("Unexpected failure (`internal`), logged.", ref("Error")),
        },
    }
    if body is not None:
        out["requestBody"] = body
    return out


def json_body(schema: Schema) -> Schema:
    return {"required": True, "content": {JSON: {"schema": schema}}}


LIVE_OPEN: Schema = obj(
    ["studies"],
    studies=arr(INT),
    layout=null({"type": "string", "enum": ["1x1", "1x2", "2x2", "2x3", "3x3", "3x4"]}),
    state=obj(
        mode={"type": "string", "enum": ["2d", "3d"]},
        axis={"type": "string", "enum": list(live.AXES)},
        slice_mm=NUM,
        window={
            "oneOf": [
                {
                    "type": "string",
                    "enum": list(live.WINDOW_PRESETS),
                },
                {"type": "array", "items": NUM, "minItems": 2, "maxItems": 2},
            ]
        },
        overlay=BOOL,
        outline=BOOL,
        opacity={"type": "number", "minimum": 0, "maximum": 1},
        hidden_labels={"type": "array", "items": {"type": "integer", "minimum": 1}},
    ),
)
LIVE_COMMAND: Schema = obj(
    ["id", "user_id", "studies"],
    id=INT,
    user_id=INT,
    studies=arr(INT),
    layout=null(STR),
    state=ANY_OBJ,
)


def slice_paths(study: Schema) -> dict[str, Schema]:
    """The full-resolution slice routes (`portal/api/slices.py`)."""
    where = [
        study,
        param(
            "axis",
            "path",
            {"type": "string", "enum": ["axial", "coronal", "sagittal"]},
            "Which canonical axis is held: `axial` k (towards Superior), `coronal` j "
            "(Anterior), `sagittal` i (Right).",
        ),
        param(
            "index",
            "path",
            {"type": "integer", "minimum": 0},
            "Full-resolution index along that axis, 0 to `source_shape[axis] - 1` of the "
            "pane meta; preview slice n is full index n × `step[axis]`.",
        ),
    ]
    grid = (
        "One voxel thick along the axis, at full resolution: spacing is the study's "
        "`source_spacing_mm`, the origin is the world (RAS) position of the slice's voxel "
        "(0, 0, 0), so it lies exactly on the preview grid. Gzip on the wire, ETag and "
        "`Cache-Control: private`; 404 for an index outside the grid or a colour image."
    )
    return {
        "/api/v1/studies/{study_id}/slices/{axis}/{index}/values.vti": {
            "get": op(
                "One slice of the study in real units (as `values.vti`: HU for CT, int16 or "
                "float32).",
                {"200": file_response("The slice as `.vti`.", "application/octet-stream")},
                params=where,
                extra=grid,
            )
        },
        "/api/v1/studies/{study_id}/slices/{axis}/{index}/labels.vti": {
            "get": op(
                "One slice of a segmentation as RGBA (the colours of its `labels.vti`).",
                {"200": file_response("The slice as `.vti`.", "application/octet-stream")},
                params=[
                    *where,
                    param(
                        "segmentation",
                        "query",
                        {"type": "integer", "minimum": 0},
                        "A segmentation of the study (default: its first); another "
                        "study's answers 404.",
                    ),
                ],
                extra=grid,
            )
        },
    }
