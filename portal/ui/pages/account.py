"""The signed-in user's own page (/account): who they are, and a password change form."""

from __future__ import annotations

from dash import dcc, html

from portal.services.auth import MIN_PASSWORD_LENGTH, Principal
from portal.ui.ids import Account


def _password(id_: Account, label: str, autocomplete: str) -> html.Label:
    return html.Label(
        [
            html.Span(label, className="admin-label"),
            dcc.Input(id=id_, type="password", autoComplete=autocomplete),
        ],
        className="admin-field",
    )


def layout(who: Principal) -> html.Div:
    return html.Div(
        className="admin",
        children=[
            html.H2("Account"),
            html.P(f"Signed in as {who.username} ({who.role.value})."),
            html.Section(
                className="admin-form",
                children=[
                    html.H3("Change your password"),
                    _password(Account.CURRENT, "Current password", "current-password"),
                    _password(
                        Account.NEW,
                        f"New password (at least {MIN_PASSWORD_LENGTH} characters)",
                        "new-password",
                    ),
                    _password(Account.REPEAT, "New password again", "new-password"),
                    html.P(
                        "Changing it signs you out everywhere else; this window stays signed in.",
                        className="muted",
                    ),
                    html.Button("Change password", id=Account.CHANGE, className="button"),
                    html.Div(id=Account.MESSAGE, className="admin-message", role="status"),
                ],
            ),
        ],
    )
