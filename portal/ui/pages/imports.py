"""The import page: drop files or folders; they stream to `POST /api/v1/imports`.

Files never pass through a Dash callback (no base64 in JSON): `assets/upload.js` sends
them as multipart with progress, then polls the job and shows its report here.
"""

from __future__ import annotations

from dash import dcc, html

from portal.ui.ids import Imports


def layout(projects: list[str], may_create: bool, max_upload_mb: int) -> html.Div:
    hint = "existing project" + (" or a new name" if may_create else "")
    return html.Div(
        className="imports",
        children=[
            html.H2("Import studies"),
            html.P(
                "NIfTI, MGH/MGZ and NRRD images (a sibling NAME-label.nii.gz, NAME_seg.nii.gz "
                "or Slicer's NAME.seg.nrrd becomes the segmentation) and DICOM files or folders "
                "(one study per series; multi-frame and compressed too). Each study is imported "
                "whole or not at all; refused files are listed with the reason.",
                className="muted",
            ),
            html.Label(
                [
                    "Project ",
                    dcc.Input(
                        id=Imports.PROJECT,
                        list=Imports.PROJECTS.value,
                        value=projects[0] if projects else "",
                        placeholder=hint,
                        className="project-input",
                    ),
                ]
            ),
            html.Datalist(id=Imports.PROJECTS, children=[html.Option(value=p) for p in projects]),
            html.Div(
                id=Imports.DROP,
                className="dropzone",
                **{"data-max-mb": str(max_upload_mb)},
                children=[
                    html.P("Drop files or folders here"),
                    html.Button("Choose files…", className="button choose-files", type="button"),
                    html.Button(
                        "Choose a folder…", className="button choose-folder", type="button"
                    ),
                ],
            ),
            html.Div(id=Imports.STATUS, className="import-status"),
        ],
    )
