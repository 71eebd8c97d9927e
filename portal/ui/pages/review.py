"""The review grid page: up to `panes_per_page` panes in a chosen layout, paged.

The pager links and the layout choice are real URLs (`/review?studies=..&layout=..&page=..`)
that `assets/grid.js` follows inside the page: it releases the grid's WebGL contexts
(vtk.js 17.8 frees none when a view unmounts) before the router swaps the page, so each
page starts from zero contexts without a document reload.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

from dash import dcc, html

from portal.services.live import LAYOUTS
from portal.ui.components.pane import missing_pane
from portal.ui.ids import Pane, Review, pane_id


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


def review_href(study_ids: list[int], page: int, keep: dict[str, str] | None = None) -> str:
    """The URL of one page of the grid; `keep` holds the query parameters every page keeps
    (layout, initial slice and mode)."""
    studies = ",".join(str(i) for i in study_ids)
    return "/review?" + urlencode({"studies": studies, **(keep or {}), "page": page})


def layout_choice(
    study_ids: list[int], page: int, per_page: int, max_per_page: int, keep: dict[str, str]
) -> dcc.Dropdown:
    """The layout selector. Each option's value is the URL of that layout, on the page that
    keeps this page's first study on screen, so choosing one is a plain navigation."""
    first = (page - 1) * per_page
    options = []
    current = review_href(study_ids, page, keep)
    for name, (rows, cols) in LAYOUTS.items():
        size = min(rows * cols, max_per_page)
        href = review_href(study_ids, first // size + 1, {**keep, "layout": name})
        label = f"{rows}×{cols}"
        if keep.get("layout") == name:
            href = current
        options.append({"label": label, "value": href})
    auto = {k: v for k, v in keep.items() if k != "layout"}
    auto_href = (
        current if "layout" not in keep else review_href(study_ids, first // max_per_page + 1, auto)
    )
    options.insert(0, {"label": "Auto", "value": auto_href})
    return dcc.Dropdown(
        id=Review.LAYOUT,
        options=options,
        value=current,
        clearable=False,
        searchable=False,
        className="layout-choice",
    )


def pager(
    study_ids: list[int],
    page: int,
    per_page: int,
    keep: dict[str, str] | None = None,
    max_per_page: int = 12,
) -> html.Div:
    """Links to the other pages, and the layout selector."""
    keep = keep or {}
    pages = max(1, math.ceil(len(study_ids) / per_page))

    def link(p: int, text: str, which: str) -> html.A:
        return html.A(
            text,
            href=review_href(study_ids, p, keep),
            className=f"button page-link page-{which}",
            title="Previous page (PageUp)" if which == "prev" else "Next page (PageDown)",
        )

    items: list[Any] = [html.A("← Case list", href="/", className="button")]
    if pages > 1:
        if page > 1:
            items.append(link(page - 1, "‹ Previous", "prev"))
        items.append(
            html.Span(
                f"Page {page} of {pages} · {len(study_ids)} studies",
                className="page-text",
            )
        )
        if page < pages:
            items.append(link(page + 1, "Next ›", "next"))
    else:
        items.append(
            html.Span(f"{len(study_ids)} " + ("study" if len(study_ids) == 1 else "studies"))
        )
    items.append(html.Span(className="pager-spacer"))
    items.append(html.Label("Layout", className="layout-label"))
    items.append(layout_choice(study_ids, page, per_page, max_per_page, keep))
    items.append(html.Span("? shortcuts", className="keys-hint", title="Press ? for shortcuts"))
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


def slot(study_id: int, found: html.Div) -> html.Div:
    """The grid cell of a pane: a box without a box of its own (`display: contents`), so
    the pane stays the grid item; a callback can mount a rebuilt pane in it (adding a
    segmentation) without touching the other panes."""
    return html.Div(found, id=pane_id(Pane.SLOT, study_id), style={"display": "contents"})


def layout(
    study_ids: list[int],
    page: int,
    per_page: int,
    panes: list[tuple[int, html.Div | None]],
    shape: tuple[int, int] | None = None,
    keep: dict[str, str] | None = None,
    max_per_page: int = 12,
) -> html.Div:
    """`panes` holds, for each id on this page, its built pane or None if not visible;
    `shape` (rows, columns) is a requested layout, else the grid follows the count."""
    cells = [slot(sid, found) if found else missing_pane(sid) for sid, found in panes]
    cols = shape[1] if shape else grid_columns(len(cells))
    rows = shape[0] if shape else max(1, math.ceil(len(cells) / cols))
    return html.Div(
        className="review",
        children=[
            html.Div(
                [pager(study_ids, page, per_page, keep, max_per_page), link_tools()],
                className="review-bar",
            ),
            html.Div(
                cells,
                id=Review.GRID,
                className="pane-grid",
                **({"data-layout": f"{rows}x{cols}"} if shape else {}),
                style={
                    "gridTemplateColumns": f"repeat({cols}, minmax(0, 1fr))",
                    "gridTemplateRows": f"repeat({rows}, minmax(320px, 1fr))",
                },
            ),
        ],
    )
