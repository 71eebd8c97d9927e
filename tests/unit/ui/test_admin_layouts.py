"""Admin and account layouts from plain rows, without a server."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from plotly.utils import PlotlyJSONEncoder

from portal.db.models import ProjectRole, Role
from portal.services.admin import Membership, ProjectRow, UserRow
from portal.services.auth import Principal
from portal.ui.ids import Account, Admin
from portal.ui.pages import account, admin

ANN = UserRow(
    id=2,
    username="ann",
    role=Role.REVIEWER,
    active=False,
    memberships=[Membership(1, "trial", 2, "ann", ProjectRole.EXPERT)],
    open_sessions=0,
    last_login=datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
)
TRIAL = ProjectRow(
    id=1,
    name="trial",
    description="T1",
    required_reads=2,
    study_count=7,
    members=ANN.memberships,
)


def _text(component: Any) -> str:
    return json.dumps(component, cls=PlotlyJSONEncoder)


def test_users_page_lists_users_and_offers_every_action() -> None:
    text = _text(admin.users_layout([ANN], [TRIAL]))
    assert "trial (expert)" in text and "deactivated" in text and "2026-01-02 03:04 UTC" in text
    for control in (Admin.CREATE_USER, Admin.SET_ROLE, Admin.RESET, Admin.FORCE_LOGOUT):
        assert f'"id": "{control}"' in text
    assert admin.user_options([ANN]) == [{"label": "ann (deactivated)", "value": 2}]


def test_projects_page_lists_projects_with_members() -> None:
    text = _text(admin.projects_layout([TRIAL], [ANN]))
    assert "ann (expert)" in text and "T1" in text
    for control in (Admin.CREATE_PROJECT, Admin.SET_READS, Admin.ADD_MEMBER, Admin.REMOVE_MEMBER):
        assert f'"id": "{control}"' in text
    assert "No projects yet." in _text(admin.project_table([]))


def test_not_allowed_and_account_pages() -> None:
    assert "Not allowed" in _text(admin.not_allowed())
    text = _text(account.layout(Principal(2, "ann", Role.REVIEWER)))
    assert "Signed in as ann (reviewer)" in text and f'"id": "{Account.CHANGE}"' in text
