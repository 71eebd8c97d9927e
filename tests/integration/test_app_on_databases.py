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

    # A review flag set through the Dash callback endpoint, then seen by the API.
    payload = _save_flag_payload(study_id)
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


def _save_flag_payload(study_id: int) -> dict[str, object]:
    return {
        # Dash keys a pattern-matching callback by its wildcard outputs.
        "output": '..{"study":["MATCH"],"type":"pane-message"}.children...'
        '{"study":["MATCH"],"type":"pane-badge"}.children...'
        '{"study":["MATCH"],"type":"pane-badge"}.className..',
        "outputs": [
            {"id": {"study": study_id, "type": "pane-message"}, "property": "children"},
            {"id": {"study": study_id, "type": "pane-badge"}, "property": "children"},
            {"id": {"study": study_id, "type": "pane-badge"}, "property": "className"},
        ],
        "inputs": [
            {"id": {"study": study_id, "type": "pane-save"}, "property": "n_clicks", "value": 1}
        ],
        "state": [
            {
                "id": {"study": study_id, "type": "pane-status"},
                "property": "value",
                "value": "needs-edit",
            },
            {
                "id": {"study": study_id, "type": "pane-reason"},
                "property": "value",
                "value": "lateral ventricle missed",
            },
            {
                "id": {"study": study_id, "type": "pane-save"},
                "property": "id",
                "value": {"study": study_id, "type": "pane-save"},
            },
        ],
        "changedPropIds": [f'{{"study":{study_id},"type":"pane-save"}}.n_clicks'],
    }
