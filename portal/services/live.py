"""The live channel: a script asks that a user's open tabs show a grid of studies.

A command is a row in `live_commands`; every open tab of the user polls for ids above
the last one it saw (the catalog, not a worker's memory, because several workers serve
the tabs). Tabs report what they show into `viewer_states`, one row per user (the most
recent report wins).

Study ids are checked against the *target* user: an administrator cannot make anyone's
screen show what that user may not see.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from portal.db.models import LiveCommand, Study, User, ViewerState
from portal.imaging.windowing import CT_PRESETS
from portal.services import audit, catalog
from portal.services.auth import Principal
from portal.services.errors import InvalidInput, NotFound, PermissionDenied

MAX_STUDIES = 48
# "rows x columns", as in hanging protocols: 2x3 is two rows of three panes.
LAYOUTS: dict[str, tuple[int, int]] = {
    "1x1": (1, 1),
    "1x2": (1, 2),
    "2x2": (2, 2),
    "2x3": (2, 3),
    "3x3": (3, 3),
    "3x4": (3, 4),
}
MODES = ("2d", "3d")
AXES = ("axial", "coronal", "sagittal")
# Window presets a pane offers (CT ones apply to CT studies; others keep their window).
WINDOW_PRESETS = ("default", "auto", "full", *(p.key for p in CT_PRESETS))
STATE_KEYS = (
    "mode",
    "slice_mm",
    "axis",
    "window",
    "overlay",
    "opacity",
    "outline",
    "hidden_labels",
)
# Keys a caller might expect but the pane cannot honour: refused with the reason.
UNSUPPORTED_STATE: dict[str, str] = {
    "labels": "use 'hidden_labels' (label values to hide) and 'overlay' (true/false)",
}
# Commands are only for tabs open now; older ones are never replayed.
KEEP_COMMANDS = timedelta(days=1)
MAX_PENDING = 20
MAX_REPORTED_STATE_BYTES = 16 * 1024


@dataclass(frozen=True)
class OpenRequest:
    """A validated "open these studies" request (ids not yet checked for visibility)."""

    studies: list[int]
    layout: str | None = None
    state: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        return {"studies": self.studies, "layout": self.layout, "state": self.state}


def parse_layout(raw: Any) -> str | None:
    """`"3x3"` -> `"3x3"`; None for none given.

    Raises
    ------
    InvalidInput
        For a layout not in `LAYOUTS`.
    """
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or raw not in LAYOUTS:
        raise InvalidInput(f"layout must be one of {', '.join(LAYOUTS)} (rows x columns)")
    return raw


def parse_state(raw: Any) -> dict[str, Any]:
    """Validate viewer state.

    Keys: `mode` (2d or 3d); `axis` (axial, coronal, sagittal); `slice_mm` (RAS world
    position in mm along the axis: z for axial, y for coronal, x for sagittal; each pane
    shows its nearest slice); `window` (a preset name, or `[low, high]` in the image's
    units, HU for CT); `overlay` and `outline` (booleans); `opacity` (0 to 1);
    `hidden_labels` (label values not to draw).

    Raises
    ------
    InvalidInput
        For anything else, naming the key, rather than silently ignoring it.
    """
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidInput("state must be a JSON object such as {'slice_mm': 12.5}")
    for key in raw:
        if key in UNSUPPORTED_STATE:
            raise InvalidInput(f"state key {key!r} is not supported: {UNSUPPORTED_STATE[key]}")
        if key not in STATE_KEYS:
            raise InvalidInput(f"unknown state key {key!r}; allowed: {', '.join(STATE_KEYS)}")
    state: dict[str, Any] = {}
    if "mode" in raw:
        if raw["mode"] not in MODES:
            raise InvalidInput("state mode must be '2d' or '3d'")
        state["mode"] = raw["mode"]
    if "axis" in raw:
        if raw["axis"] not in AXES:
            raise InvalidInput(f"state axis must be one of {', '.join(AXES)}")
        state["axis"] = raw["axis"]
    if "slice_mm" in raw:
        state["slice_mm"] = _number(raw["slice_mm"], "slice_mm (RAS world mm along the axis)")
    if "window" in raw:
        state["window"] = _window(raw["window"])
    for key in ("overlay", "outline"):
        if key in raw:
            if not isinstance(raw[key], bool):
                raise InvalidInput(f"state {key} must be true or false")
            state[key] = raw[key]
    if "opacity" in raw:
        opacity = _number(raw["opacity"], "opacity")
        if not 0.0 <= opacity <= 1.0:
            raise InvalidInput("state opacity must be between 0 and 1")
        state["opacity"] = opacity
    if "hidden_labels" in raw:
        values = raw["hidden_labels"]
        if not isinstance(values, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values
        ):
            raise InvalidInput("state hidden_labels must be a list of label values (integers > 0)")
        state["hidden_labels"] = sorted(set(values))
    return state


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"state {what} must be a number")
    return float(value)


def _window(value: Any) -> str | list[float]:
    """A preset name, or `[low, high]` with low < high."""
    if isinstance(value, str):
        if value not in WINDOW_PRESETS:
            raise InvalidInput(
                f"state window must be one of {', '.join(WINDOW_PRESETS)} or [low, high]"
            )
        return value
    if isinstance(value, list) and len(value) == 2:
        low, high = (_number(v, "window bound") for v in value)
        if low < high:
            return [low, high]
    raise InvalidInput("state window must be a preset name or [low, high] with low < high")


def parse_open_request(body: Any) -> OpenRequest:
    """`{"studies": [ids], "layout": "3x3", "state": {...}}` -> an `OpenRequest`.

    Raises
    ------
    InvalidInput
        For a malformed body, no studies, more than `MAX_STUDIES`, a bad layout or state.
    """
    if not isinstance(body, dict):
        raise InvalidInput("send a JSON object with 'studies'")
    unknown = set(body) - {"studies", "layout", "state"}
    if unknown:
        raise InvalidInput(f"unknown field(s) {', '.join(sorted(unknown))}")
    raw = body.get("studies")
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("studies must be a non-empty list of study ids")
    studies: list[int] = []
    for item in raw:
        if isinstance(item, bool) or not isinstance(item, int) or item < 1:
            raise InvalidInput("studies must be a list of study ids (positive whole numbers)")
        if item not in studies:
            studies.append(item)
    if len(studies) > MAX_STUDIES:
        raise InvalidInput(f"at most {MAX_STUDIES} studies at once")
    return OpenRequest(studies, parse_layout(body.get("layout")), parse_state(body.get("state")))


def _target(session: Session, actor: Principal, user_id: int | None) -> Principal:
    if user_id is None or user_id == actor.user_id:
        return actor
    if not actor.is_admin:
        # The web layer audits the refusal in its own transaction (this one rolls back).
        raise PermissionDenied("only administrators may open studies for another user")
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise NotFound(f"user {user_id} not found")
    return Principal.of(user)


def open_studies(
    session: Session, actor: Principal, body: Any, user_id: int | None = None
) -> dict[str, Any]:
    """Queue a command making every open tab of a user show the requested grid.

    Parameters
    ----------
    actor
        Who asks. Only an administrator may name another `user_id`.
    body
        ``{"studies": [ids], "layout": "3x3", "state": {"mode", "slice_mm"}}``.
    user_id
        Whose tabs; None for the actor's own.

    Returns
    -------
    dict
        The command as tabs receive it (`id`, `studies`, `layout`, `state`).

    Raises
    ------
    InvalidInput
        For a malformed request (see `parse_open_request`).
    PermissionDenied
        If a non-administrator names another user.
    NotFound
        If the user or any study does not exist or the study is not visible to the
        *target* user; nothing is stored then.
    """
    target = _target(session, actor, user_id)
    request = parse_open_request(body)
    visible = set(
        session.scalars(
            catalog.visible_studies(target)
            .where(Study.id.in_(request.studies))
            .with_only_columns(Study.id)
        )
    )
    for sid in request.studies:
        if sid not in visible:
            raise NotFound(f"study {sid} not found")
    session.execute(
        delete(LiveCommand).where(
            LiveCommand.user_id == target.user_id,
            LiveCommand.created_at < datetime.now(UTC) - KEEP_COMMANDS,
        )
    )
    command = LiveCommand(
        user_id=target.user_id, issued_by_id=actor.user_id, payload=request.payload()
    )
    session.add(command)
    session.flush()
    detail = f"studies={len(request.studies)}"
    if target.user_id != actor.user_id:
        detail += f" for_user={target.user_id} by_user={actor.user_id}"
    audit.record(session, actor.user_id, "live.open", f"user:{target.user_id}", detail)
    return _command_view(command)


def _command_view(command: LiveCommand) -> dict[str, Any]:
    return {"id": command.id, "user_id": command.user_id, **command.payload}


def pending(session: Session, principal: Principal, after_id: int | None) -> dict[str, Any]:
    """Commands for `principal`'s tabs with ids above `after_id`, oldest first.

    With `after_id` None (a tab just loaded) no command is returned, only `latest`: a
    fresh tab must not replay what was asked before it opened.
    """
    latest = session.scalar(
        select(func.max(LiveCommand.id)).where(LiveCommand.user_id == principal.user_id)
    )
    items: list[dict[str, Any]] = []
    if after_id is not None:
        rows = session.scalars(
            select(LiveCommand)
            .where(LiveCommand.user_id == principal.user_id, LiveCommand.id > after_id)
            .order_by(LiveCommand.id)
            .limit(MAX_PENDING)
        )
        items = [_command_view(row) for row in rows]
    return {"user_id": principal.user_id, "items": items, "latest": int(latest or 0)}


def _reported(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidInput("state must be a JSON object")
    if len(json.dumps(raw)) > MAX_REPORTED_STATE_BYTES:
        raise InvalidInput("state is too large")
    state: dict[str, Any] = {}
    path = raw.get("path", "")
    if not isinstance(path, str) or not path.startswith("/") or len(path) > 2048:
        raise InvalidInput("state path must be the tab's path, such as /review")
    state["path"] = path
    studies = raw.get("studies", [])
    if not isinstance(studies, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) for s in studies
    ):
        raise InvalidInput("state studies must be a list of study ids")
    state["studies"] = studies[:MAX_STUDIES]
    state["layout"] = parse_layout(raw.get("layout"))
    slices = raw.get("slices", {})
    if not isinstance(slices, dict) or not all(
        isinstance(k, int) and not isinstance(k, bool) for k in slices.values()
    ):
        raise InvalidInput("state slices must map study ids to slice indices")
    state["slices"] = {str(sid): k for sid, k in slices.items()}
    unknown = sorted(set(raw) - {"path", "studies", "layout", "slices"})
    if unknown:
        raise InvalidInput(f"unknown state key {unknown[0]!r}")
    return state


def report_state(session: Session, principal: Principal, raw: Any) -> dict[str, Any]:
    """Store what one of `principal`'s tabs shows (path, studies, layout, slices).

    Raises
    ------
    InvalidInput
        For a malformed or oversized report.
    """
    state = _reported(raw)
    now = datetime.now(UTC)
    row = session.get(ViewerState, principal.user_id)
    if row is None:
        session.add(ViewerState(user_id=principal.user_id, state=state, updated_at=now))
    else:
        row.state = state
        row.updated_at = now
    return {**state, "updated_at": now.isoformat()}


def current_state(session: Session, principal: Principal) -> dict[str, Any] | None:
    """What `principal`'s most recently reporting tab shows, or None if none reported."""
    row = session.get(ViewerState, principal.user_id)
    if row is None:
        return None
    updated = row.updated_at if row.updated_at.tzinfo else row.updated_at.replace(tzinfo=UTC)
    return {**row.state, "updated_at": updated.isoformat()}
