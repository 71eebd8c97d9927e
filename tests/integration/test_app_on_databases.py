"""The whole app (import, login, API, flags) on each database kind, PostgreSQL included."""

from __future__ import annotations

from pathlib import Path

from portal.app import create_app
from portal.config import Settings
from portal.db.models import Role
from portal.db.session import Database
from portal.services.importer import import_paths
from tests.conftest import dash_post, login, make_user
from tests.integration.test_importer import _case, _import_settings
from tests.support.dash_calls import dependencies, pane_decision


def test_import_list_detail_and_flag_through_the_api(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    [study_id] = import_paths(db, _import_settings(settings), "trial", [_case(tmp_path)]).imported
    make_user(db, "rev", Role.REVIEWER, ["trial"])
    app = create_app(settings)
    client = app.test_client()
    login(client, "rev")

    listing = client.get("/api/v1/studies?limit=10&offset=0").get_json()
    assert listing["total"] == 1 and listing["items"][0]["id"] == study_id
    detail = client.get(f"/api/v1/studies/{study_id}").get_json()
    assert detail["orientation"] and len(detail["affine_ras"]) == 4
    assert [lab["value"] for lab in detail["segmentations"][0]["labels"]] == [1, 2]

    # A decision made through the pane's Dash callback, then seen by the API.
    item = next(
        i
        for i in client.get(f"/api/v1/studies/{study_id}/review").get_json()["items"]
        if i["key"].startswith("seg:")
    )
    payload = pane_decision(
        dependencies(client),
        study_id,
        item["id"],
        item["version"],
        "pane-needs-edit",
        "lateral ventricle missed",
    )
    # Someone outside the project forging the study id gets nothing and changes nothing.
    make_user(db, "outsider", Role.EXPERT)
    other = app.test_client()
    login(other, "outsider")
    forged = dash_post(other, payload).get_data(as_text=True)
    assert "not available to you" in forged
    assert client.get(f"/api/v1/studies/{study_id}").get_json()["flag"]["status"] == "unreviewed"

    response = dash_post(client, payload)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "Saved" in response.get_data(as_text=True)
    flag = client.get(f"/api/v1/studies/{study_id}").get_json()["flag"]
    assert flag["status"] == "needs-edit" and flag["by"] == "rev"
    assert flag["reason"] == "lateral ventricle missed" and flag["at"]
    app.extensions["portal"].db.dispose()
