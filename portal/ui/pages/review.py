"""The review grid page: up to `panes_per_page` panes, paged by plain links.

Paging uses full page loads on purpose: vtk.js 17.8 does not free a WebGL context when a
view unmounts, and a fresh document is the one sure way to start the next page at zero.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

from dash import html

from portal.ui.components.pane import missing_pane
from portal.ui.ids import Review


def parse_study_ids(raw: str | None, limit: int = 500) -> list[int]:
    """`"3,5, 9"` -> `[3, 5, 9]`: digits only, duplicates dropped, order kept."""
    ids: list[int] = []
    for part in (raw or "").split(","):
        part = part.strip()
        if part.isdigit() and int(part) not in ids:
            ids.append(int(part))
        if len(ids) >= limit:
            break
    return ids


def grid_columns(count: int) -> int:
    if count <= 1:
        return 1
    if count <= 4:
        return 2
    if count <= 9:
        return 3
    return 4


def pager(
    study_ids: list[int], page: int, per_page: int, keep: dict[str, str] | None = None
) -> html.Div:
    """Links to the other pages; `keep` holds query parameters every page keeps (layout,
    initial slice and mode)."""
    pages = max(1, math.ceil(len(study_ids) / per_page))
    studies = ",".join(str(i) for i in study_ids)

    def link(p: int, text: str) -> html.A:
        href = "/review?" + urlencode({"studies": studies, **(keep or {}), "page": p})
        return html.A(text, href=href, className="button" + (" current" if p == page else ""))

    items: list[Any] = [html.A("← Case list", href="/", className="button")]
    if pages > 1:
        if page > 1:
            items.append(link(page - 1, "‹ Previous"))
        items.append(html.Span(f"Page {page} of {pages} · {len(study_ids)} studies"))
        if page < pages:
            items.append(link(page + 1, "Next ›"))
    else:
        items.append(
            html.Span(f"{len(study_ids)} " + ("study" if len(study_ids) == 1 else "studies"))
        )
    return html.Div(items, id=Review.PAGER, className="pager")


def link_tools() -> html.Div:
    """Which pane changes the other panes follow (handled by `assets/viewer.js`): the
    slice position (on by default), the window/level, the view axis."""
    return html.Div(
        [
            html.Span("Link:"),
            html.Button(
                "Position",
                className="tool on",
                title="Scrolling one pane moves the others to the same world position (l)",
                **{"data-link": "position"},
            ),
            html.Button(
                "Window",
                className="tool",
                title="Window/level changes apply to every pane with the same units",
                **{"data-link": "window"},
            ),
            html.Button(
                "View",
                className="tool",
                title="Changing the view axis changes it in every pane",
                **{"data-link": "axis"},
            ),
        ],
        className="link-tools",
    )


def layout(
    study_ids: list[int],
    page: int,
    per_page: int,
    panes: list[tuple[int, html.Div | None]],
    columns: int | None = None,
    keep: dict[str, str] | None = None,
) -> html.Div:
    """`panes` holds, for each id on this page, its built pane or None if not visible;
    `columns` fixes the grid's width (a requested layout), else it follows the count."""
    cells = [found if found else missing_pane(sid) for sid, found in panes]
    cols = columns or grid_columns(len(cells))
    rows = max(1, math.ceil(len(cells) / cols))
    return html.Div(
        className="review",
        children=[
            html.Div(
                [pager(study_ids, page, per_page, keep), link_tools()], className="review-bar"
            ),
            html.Div(
                cells,
                id=Review.GRID,
                className="pane-grid",
                **({"data-layout": f"{rows}x{cols}"} if columns else {}),
                style={
                    "gridTemplateColumns": f"repeat({cols}, minmax(0, 1fr))",
                    "gridTemplateRows": f"repeat({rows}, minmax(320px, 1fr))",
                },
            ),
        ],
    )
