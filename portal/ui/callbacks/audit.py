"""Audit page callback: filters and paging in, one page of `audit.query_audit` out."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from dash import Dash, Input, Output, State, ctx, html, no_update

from portal.services import audit
from portal.services.errors import InvalidInput, PermissionDenied
from portal.ui.ids import Audit
from portal.ui.pages.audit import table
from portal.web.auditing import record_refusal
from portal.web.context import portal, principal

PAGE_SIZE = 50


def filter_params(
    start_date: str | None,
    end_date: str | None,
    user: str | None,
    action: str | None,
    outcome: str | None,
    study_uid: str | None,
) -> dict[str, str]:
    """The page's filter fields as the query parameters the audit API takes."""
    params = {
        # The date picker may send "YYYY-MM-DDT00:00:00"; whole days are meant.
        "from": (start_date or "")[:10],
        "to": (end_date or "")[:10],
        "user": (user or "").strip(),
        "action": action or "",
        "outcome": outcome or "",
        "study_uid": (study_uid or "").strip(),
    }
    return {name: value for name, value in params.items() if value}


def move(cursors: dict[str, Any] | None, trigger: str | None) -> list[int | None]:
    """The stack of `before` ids after a click: older pushes, newer pops, a filter resets.

    The last element is the page to show (None: the newest entries).
    """
    cursors = cursors or {}
    stack: list[int | None] = list(cursors.get("stack") or [None])
    if trigger == Audit.OLDER:
        if cursors.get("next") is not None:
            stack.append(int(cursors["next"]))
    elif trigger == Audit.NEWER:
        if len(stack) > 1:
            stack.pop()
    else:
        stack = [None]
    return stack


def register(app: Dash) -> None:
    @app.callback(
        Output(Audit.TABLE, "children"),
        Output(Audit.CSV, "href"),
        Output(Audit.CURSORS, "data"),
        Output(Audit.PAGE_TEXT, "children"),
        Output(Audit.OLDER, "disabled"),
        Output(Audit.NEWER, "disabled"),
        Output(Audit.MESSAGE, "children"),
        Input(Audit.FROM_TO, "start_date"),
        Input(Audit.FROM_TO, "end_date"),
        Input(Audit.USER, "value"),
        Input(Audit.ACTION, "value"),
        Input(Audit.OUTCOME, "value"),
        Input(Audit.STUDY_UID, "value"),
        Input(Audit.OLDER, "n_clicks"),
        Input(Audit.NEWER, "n_clicks"),
        State(Audit.CURSORS, "data"),
    )
    def show(
        start_date: str | None,
        end_date: str | None,
        user: str | None,
        action: str | None,
        outcome: str | None,
        study_uid: str | None,
        _older: int | None,
        _newer: int | None,
        cursors: dict[str, Any] | None,
    ) -> tuple[Any, ...]:
        params = filter_params(start_date, end_date, user, action, outcome, study_uid)
        stack = move(cursors, ctx.triggered_id)
        try:
            filters = replace(
                audit.AuditFilter.from_params(params), before_id=stack[-1], limit=PAGE_SIZE
            )
            with portal().db.session() as s:
                page = audit.query_audit(s, principal(), filters)
        except PermissionDenied as exc:
            record_refusal(exc, "audit", "dash:audit.show")
            return html.Div(), "", no_update, "", True, True, str(exc)
        except InvalidInput as exc:
            return no_update, no_update, no_update, no_update, no_update, no_update, str(exc)
        csv_href = "/api/v1/audit.csv" + ("?" + urlencode(params) if params else "")
        return (
            table(page.items),
            csv_href,
            {"stack": stack, "next": page.next_before},
            f"Page {len(stack)}",
            page.next_before is None,
            len(stack) == 1,
            "",
        )
