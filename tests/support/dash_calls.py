"""Build `/_dash-update-component` requests as the renderer would, from the app's own
`/_dash-dependencies`, so tests keep working when a callback gains an output."""

from __future__ import annotations

import json
from typing import Any

from flask.testing import FlaskClient


def _parse(raw: str) -> str | dict[str, Any]:
    return json.loads(raw) if raw.startswith("{") else raw


def _outputs(raw: str) -> list[tuple[str | dict[str, Any], str]]:
    parts = raw[2:-2].split("...") if raw.startswith("..") else [raw]
    return [(_parse(p.rsplit(".", 1)[0]), p.rsplit(".", 1)[1]) for p in parts]


def _kind(id_: str | dict[str, Any]) -> str:
    return str(id_["type"]) if isinstance(id_, dict) else id_


def dependencies(client: FlaskClient) -> list[dict[str, Any]]:
    """The app's callback map, as the renderer fetches it (needs a signed-in client)."""
    return list(client.get("/_dash-dependencies").get_json())


def callback_body(
    deps: list[dict[str, Any]],
    output_kind: str,
    study_id: int,
    values: dict[tuple[str, str], Any],
    trigger: tuple[str, str],
) -> dict[str, Any]:
    """The request for the server callback with an output of type `output_kind`, for the
    pane of `study_id`; `values` fills inputs and states by (component type, property)
    (others are None; `ALL` wildcards get no components), `trigger` is what changed."""
    [dep] = [
        d
        for d in deps
        if not d.get("clientside_function")
        and output_kind in {_kind(i) for i, _ in _outputs(d["output"])}
    ]

    def concrete(id_: str | dict[str, Any]) -> str | dict[str, Any]:
        if isinstance(id_, dict):
            return {k: (study_id if v == ["MATCH"] else v) for k, v in id_.items()}
        return id_

    def entry(x: dict[str, Any]) -> dict[str, Any] | list[Any]:
        id_ = concrete(_parse(x["id"]))
        if isinstance(id_, dict) and ["ALL"] in id_.values():
            return []
        prop = x["property"]
        return {
            "id": id_,
            "property": prop,
            "value": id_ if prop == "id" else values.get((_kind(id_), prop)),
        }

    inputs = [entry(x) for x in dep["inputs"]]
    changed = next(
        x for x in inputs if isinstance(x, dict) and (_kind(x["id"]), x["property"]) == trigger
    )
    key = changed["id"]
    if isinstance(key, dict):
        key = json.dumps(key, sort_keys=True, separators=(",", ":"))
    outputs = [{"id": concrete(i), "property": p} for i, p in _outputs(dep["output"])]
    return {
        "output": dep["output"],
        "outputs": outputs if dep["output"].startswith("..") else outputs[0],
        "inputs": inputs,
        "state": [entry(x) for x in dep["state"]],
        "changedPropIds": [f"{key}.{changed['property']}"],
    }


def pane_decision(
    deps: list[dict[str, Any]],
    study_id: int,
    item_id: int,
    version: int,
    button: str,
    note: str = "",
) -> dict[str, Any]:
    """Press a decision button (`pane-approve`, `pane-needs-edit`, `pane-flag`,
    `pane-reject`) in the review panel of a study's pane, for one item at `version`."""
    return callback_body(
        deps,
        "pane-version",
        study_id,
        {
            (button, "n_clicks"): 1,
            ("pane-version", "data"): {"item": item_id, "version": version},
            ("pane-note", "value"): note,
        },
        (button, "n_clicks"),
    )
