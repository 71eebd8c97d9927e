"""OpenAPI paths of a study's files: viewer previews, 4-D volumes, full-resolution
slices, the original files, and its segmentations (previews, corrected uploads, added
ones). Part of the document `portal/api/openapi.py` builds."""

from __future__ import annotations

from portal.api.openapi_parts import (
    IDEMPOTENCY,
    INT,
    NUM,
    STR,
    Schema,
    arr,
    file_response,
    json_response,
    null,
    obj,
    op,
    param,
    path_id,
    slice_paths,
)


def study_file_paths(study: Schema) -> dict[str, Schema]:
    """The paths under `/api/v1/studies/<id>/` that carry image or label data."""
    return {
        "/api/v1/studies/{study_id}/preview/{name}": {
            "get": op(
                "A viewer preview file (gzip `.vti` or PNG).",
                {"200": file_response("The file.", "application/octet-stream")},
                params=[
                    study,
                    param(
                        "name",
                        "path",
                        {
                            "type": "string",
                            "enum": [
                                "image.vti",
                                "values.vti",
                                "labels.vti",
                                "thumb.png",
                                "mosaic.png",
                            ],
                        },
                        "Which preview: `image.vti` grey levels windowed at import (uint8); "
                        "`values.vti` the same voxels in real units (HU for CT; int16, or "
                        "float32 when not whole numbers within int16; not for colour "
                        "images), made on first request for older studies; `labels.vti` the "
                        "first segmentation as RGBA; PNG thumbnail and mosaic. All `.vti` "
                        "share one grid (closest-canonical RAS, origin and spacing in mm).",
                    ),
                ],
            )
        },
        "/api/v1/studies/{study_id}/volumes/{index}/values.vti": {
            "get": op(
                "Volume `index` of a study in real units as a gzip `.vti` (made on first "
                "request), on the grid of `values.vti`.",
                {"200": file_response("The volume.", "application/octet-stream")},
                params=[study, path_id("index")],
            )
        },
        "/api/v1/studies/{study_id}/segmentations/{segmentation_id}/{name}": {
            "get": op(
                "One segmentation of the study on its preview grid: `labels.vti` (RGBA, "
                "colours of the segmentation's label table, alpha 0 off labels) or "
                "`surfaces.json` (one mesh per label). 404 for a segmentation of another "
                "study.",
                {
                    "200": {
                        "description": "The preview.",
                        "content": {
                            "application/octet-stream": {
                                "schema": {"type": "string", "format": "binary"}
                            },
                            "application/json": {"schema": arr({"type": "object"})},
                        },
                    }
                },
                params=[
                    study,
                    path_id("segmentation_id"),
                    param(
                        "name",
                        "path",
                        {"type": "string", "enum": ["labels.vti", "surfaces.json"]},
                        "Which preview.",
                    ),
                ],
            )
        },
        **slice_paths(study),
        "/api/v1/studies/{study_id}/volumes/{index}/image.vti": {
            "get": op(
                "Volume `index` of a 4-D study as a gzip `.vti`.",
                {"200": file_response("The volume.", "application/octet-stream")},
                params=[study, path_id("index")],
            )
        },
        "/api/v1/studies/{study_id}/files.zip": {
            "get": op(
                "The study's original files as a streamed zip.",
                {"200": file_response("The zip.", "application/zip")},
                params=[study],
            )
        },
        "/api/v1/studies/{study_id}/segmentations": {
            "post": op(
                "Upload a corrected label map: a new version of the study.",
                {
                    "201": json_response(
                        "The new version.", obj(["study_id"], study_id=INT, notes=arr(STR))
                    )
                },
                params=[study, IDEMPOTENCY],
                body={
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": obj(["file"], file={"type": "string", "format": "binary"})
                        }
                    },
                },
                write=True,
                scope="review",
            )
        },
        "/api/v1/studies/{study_id}/segmentations/attach": {
            "post": op(
                "Add a label map to the study (same version): a reader's edit or another "
                "model's output, on the study's grid.",
                {
                    "201": json_response(
                        "The new segmentation.",
                        obj(
                            ["id", "study_id", "name", "labels"],
                            id=INT,
                            study_id=INT,
                            name=STR,
                            labels=arr(
                                obj(
                                    ["value", "name", "color", "voxel_count", "volume_ml"],
                                    value=INT,
                                    name=STR,
                                    color=STR,
                                    voxel_count=null(INT),
                                    volume_ml=null(NUM),
                                )
                            ),
                        ),
                    )
                },
                params=[study, IDEMPOTENCY],
                body={
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": obj(
                                ["file"],
                                file={"type": "string", "format": "binary"},
                                name=STR,
                            )
                        }
                    },
                },
                write=True,
                scope="review",
            )
        },
        "/api/v1/segmentations/{segmentation_id}/labels": {
            "get": op(
                "A segmentation as NIfTI (default) or NRRD on the study's grid.",
                {"200": file_response("The label map.", "application/octet-stream")},
                params=[
                    path_id("segmentation_id"),
                    param(
                        "format", "query", {"type": "string", "enum": ["nifti", "nrrd"]}, "Format."
                    ),
                ],
            )
        },
    }
