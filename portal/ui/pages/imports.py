"""The import page: drop files or folders; they stream to `POST /api/v1/imports`.

Files never pass through a Dash callback (no base64 in JSON): `assets/upload.js` sends
them as multipart with progress, then polls the job and shows its report here.
"""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from portal.ui.ids import Imports


def _job_entry(job: dict[str, Any]) -> html.Details:
    """One past job: a summary line, then what was refused and noted, file by file."""
    when = (job.get("finished_at") or job.get("created_at") or "")[:16].replace("T", " ")
    counts = (
        f"{len(job['imported'])} imported · {len(job['skipped'])} already present · "
        f"{len(job['refused'])} refused"
    )
    body: list[Any] = []
    if job["imported"]:
        ids = ",".join(str(i) for i in job["imported"])
        body.append(html.P(html.A("Review the imported studies", href=f"/review?studies={ids}")))
    if job["refused"]:
        body += [
            html.P("Refused:", className="job-bad"),
            html.Ul([html.Li(f"{r['file']}: {r['reason']}") for r in job["refused"]]),
        ]
    if job.get("notes"):
        body += [
            html.P("Notes:"),
            html.Ul([html.Li(f"{n['file']}: {n['note']}") for n in job["notes"]]),
        ]
    if job.get("error"):
        body.append(html.P(job["error"], className="job-bad"))
    return html.Details(
        className=f"job job-{job['status']}",
        **{"data-job-id": str(job["id"])},
        children=[
            html.Summary(
                f"Job {job['id']} · {when} · {job['project']} · {job['status']} · {counts}"
            ),
            *body,
        ],
    )


def layout(
    projects: list[str],
    may_create: bool,
    max_upload_mb: int,
    recent_jobs: list[dict[str, Any]] | None = None,
) -> html.Div:
    hint = "existing project" + (" or a new name" if may_create else "")
    return html.Div(
        className="imports",
        children=[
            html.H2("Import studies"),
            html.P(
                "NIfTI, MGH/MGZ and NRRD images (a sibling NAME-label.nii.gz, NAME_seg.nii.gz "
                "or Slicer's NAME.seg.nrrd becomes the segmentation), DICOM files or folders "
                "(one study per series; multi-frame, compressed and colour too; a DICOM SEG "
                "attaches to the series it references) and ZIP archives. Label names come "
                "from the file or a sidecar NAME-label.json / .txt table. A changed file "
                "becomes a new version of its study. Each study is imported whole or not at "
                "all; refused files are listed with the reason.",
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
            html.Label(
                [
                    dcc.Checklist(
                        id=Imports.RESAMPLE,
                        options=[
                            {
                                "label": " Resample a label map onto its image when their "
                                "grids differ (nearest neighbour); otherwise it is refused",
                                "value": "resample",
                            }
                        ],
                        value=[],
                        inline=True,
                    )
                ],
                className="resample-option",
            ),
            html.Div(id=Imports.STATUS, className="import-status"),
            html.H3("Recent imports"),
            html.Div(
                id=Imports.HISTORY,
                className="import-history",
                children=[_job_entry(job) for job in recent_jobs or []]
                or [html.P("No imports yet.", className="muted")],
            ),
        ],
    )
