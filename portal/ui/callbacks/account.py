"""The /account page's password change."""

from __future__ import annotations

from dash import Dash, Input, Output, State

from portal.services import auth
from portal.services.errors import InvalidInput
from portal.ui.ids import Account
from portal.web.context import portal, principal
from portal.web.login import renew_login

OUTPUTS = [
    (Account.MESSAGE, "children"),
    (Account.CURRENT, "value"),
    (Account.NEW, "value"),
    (Account.REPEAT, "value"),
]
INPUTS = [(Account.CHANGE, "n_clicks")]
STATE = [(Account.CURRENT, "value"), (Account.NEW, "value"), (Account.REPEAT, "value")]


def register(app: Dash) -> None:
    @app.callback(
        [Output(c, p) for c, p in OUTPUTS],
        [Input(c, p) for c, p in INPUTS],
        [State(c, p) for c, p in STATE],
        prevent_initial_call=True,
    )
    def change_password(
        _clicks: int | None, current: str | None, new: str | None, repeat: str | None
    ) -> tuple[str, str, str, str]:
        who = principal()
        if (new or "") != (repeat or ""):
            return "Not changed: the two new passwords differ.", current or "", "", ""
        try:
            with portal().db.session() as s:
                user = auth.change_own_password(s, who.user_id, current or "", new or "")
                # Every session ended, this one too; a fresh one keeps this window signed in
                # while a copy of the old cookie is worthless.
                renew_login(s, user)
        except InvalidInput as exc:
            return f"Not changed: {exc}.", "", "", ""
        return "Password changed. Your other sessions have ended.", "", "", ""
