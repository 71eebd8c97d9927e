"""The review grid's own wiring: the layout selector navigates inside the page.

The selector's option values are the URLs of each layout (built by
`portal.ui.pages.review.layout_choice`); `assets/grid.js` releases the grid's WebGL
contexts and then hands the URL to the shell's dcc.Location, so the router swaps the page
without a document reload.
"""

from __future__ import annotations

from dash import Dash, Input

from portal.ui.ids import Review


def register(app: Dash) -> None:
    app.clientside_callback(
        """function(href) {
            if (href && window.portalGrid) { window.portalGrid.go(href); }
        }""",
        Input(Review.LAYOUT, "value"),
        prevent_initial_call=True,
    )
