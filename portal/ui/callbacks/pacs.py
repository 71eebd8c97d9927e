"""PACS page callbacks: search (server-side, audited) and import (queues a job)."""

from __future__ import annotations

import uuid
from typing import Any

from dash import Dash, Input, Output, State, html

from portal.services import catalog, jobs, pacs
from portal.services.errors import InvalidInput, NotFound, PermissionDenied
from portal.ui.ids import Pacs
from portal.web.context import portal, principal


def register(app: Dash) -> None:
    @app.callback(
        Output(Pacs.RESULTS, "rowData"),
        Output(Pacs.MESSAGE, "children", allow_duplicate=True),
        Input(Pacs.SEARCH, "n_clicks"),
        State(Pacs.SOURCE, "value"),
        State(Pacs.PATIENT_NAME, "value"),
        State(Pacs.PATIENT_ID, "value"),
        State(Pacs.STUDY_DATE, "value"),
        State(Pacs.MODALITY, "value"),
        State(Pacs.ACCESSION, "value"),
        prevent_initial_call=True,
    )
    def search(_clicks: int, source: str | None, *values: str | None) -> tuple[Any, Any]:
        p = portal()
        who = principal()
        where = pacs.StudyFilter(
            patient_name=values[0] or "",
            patient_id=values[1] or "",
            study_date=values[2] or "",
            modality=values[3] or "",
            accession=values[4] or "",
        )
        try:
            with p.db.session() as s:
                found = pacs.search_audited(s, who, p.settings.pacs_sources, source or "", where)
        except (InvalidInput, NotFound, PermissionDenied, pacs.PacsError) as exc:
            return [], str(exc)
        return [st.as_dict() for st in found], f"{len(found)} studies found"

    @app.callback(
        Output(Pacs.MESSAGE, "children", allow_duplicate=True),
        Input(Pacs.IMPORT, "n_clicks"),
        State(Pacs.SOURCE, "value"),
        State(Pacs.PROJECT, "value"),
        State(Pacs.RESULTS, "selectedRows"),
        prevent_initial_call=True,
    )
    def start_import(
        _clicks: int, source: str | None, project: str | None, rows: list[dict[str, Any]] | None
    ) -> Any:
        if not project:
            return "Choose the project to import into."
        uids = [str(r.get("study_uid", "")) for r in rows or []]
        if not uids:
            return "Select the studies to import."
        p = portal()
        who = principal()
        try:
            pacs.source_named(pacs.parse_sources(p.settings.pacs_sources), source or "")
            with p.db.session() as s:
                jobs.may_import(who, project, catalog.visible_project_names(s, who))
            staging = p.settings.data_dir / "uploads" / uuid.uuid4().hex
            job_id = jobs.create_pacs_job(p.db, project, source or "", uids, who.user_id, staging)
        except (InvalidInput, NotFound, PermissionDenied) as exc:
            return str(exc)
        p.queue.enqueue_import(job_id)
        return [
            f"Import job {job_id} queued for {len(uids)} studies. ",
            html.A("Follow it on the import page", href="/import"),
        ]
