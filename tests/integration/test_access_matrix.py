"""The access matrix: every user × every project's study × every route that takes a study.

Routes are found, not listed by hand: every Flask rule with an id argument (`study_id`,
`item_id`, `comment_id`, any new `<int:..._id>`), plus the two that carry study ids in
the query or body; and every server-side Dash callback, read from `/_dash-dependencies`
as a browser would: those whose inputs carry a `{"study": ...}` pattern id, the router
(`/review?studies=<ids>`) and the case list rows. The expected lists below only make a
new route show up as a test diff: each one then needs a row saying who may use it and
how to call it. Ids are forged both ways: real ids of other projects' studies, items
and comments, and ids that exist nowhere (the "missing" target, admins included).

For each cell the user may or may not see the study (a member of its project, or an
admin) and may or may not do the thing (their project role). Allowed calls succeed;
refused ones answer 404 (not visible, indistinguishable from a missing id) or 403
(visible, not allowed) through the API, and a refusal without data through Dash; and a
refused call changes nothing. Responses to users who may not see a study must not hold
its name, uid, patient name, or any bytes of its previews and surfaces.
"""

from __future__ import annotations

import base64
import enum
import gzip
import io
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from werkzeug.routing import Rule

from portal.app import create_app
from portal.config import Settings
from portal.db.models import (
    Assignment,
    Comment,
    ProjectMember,
    ProjectRole,
    ReviewEvent,
    ReviewItem,
    Role,
    Segmentation,
    Study,
    User,
)
from portal.db.session import Database
from portal.services import comments, review
from portal.services.auth import Principal
from portal.services.importer import import_paths
from portal.services.store import preview_file
from tests.conftest import dash_post, login, make_user
from tests.integration.test_importer import _import_settings

PROJECTS = ("alpha", "beta", "gamma")

# Users: a global role each, members of only some projects ("lea" reads globally but
# leads gamma; "out" belongs nowhere). "author" writes the comments and takes the
# assignments the matrix then resolves and ends; it is not in the matrix.
MEMBERSHIPS: dict[str, tuple[Role, dict[str, ProjectRole]]] = {
    "adm": (Role.ADMIN, {}),
    "exp": (Role.EXPERT, {"alpha": ProjectRole.EXPERT, "beta": ProjectRole.EXPERT}),
    "rev": (Role.REVIEWER, {"alpha": ProjectRole.REVIEWER, "gamma": ProjectRole.REVIEWER}),
    "vie": (Role.VIEWER, {"beta": ProjectRole.VIEWER, "gamma": ProjectRole.VIEWER}),
    "lea": (Role.REVIEWER, {"gamma": ProjectRole.LEAD}),
    "out": (Role.REVIEWER, {}),
}
MISSING = "missing"  # a forged target: ids that exist nowhere

# Int arguments that do not name a study or something in one (checked elsewhere).
NOT_STUDY_SCOPED = {
    "job_id",
    "token_id",
    "user_id",  # the live channel's target user: tests/integration/test_live_channel.py
}  # import jobs: owner or admin, tests/integration/test_import_jobs.py
# Routes that carry study ids in the query string or body instead of the path.
BODY_ID_ROUTES = {
    ("GET", "/api/v1/studies"),
    ("POST", "/api/v1/assignments"),
    ("GET", "/api/v1/exports/review.csv"),
    ("GET", "/api/v1/exports/review.xlsx"),
}
# Routes that list what the filter matches: a study one may not see is simply not listed.
LIST_ROUTES = {
    ("GET", "/api/v1/studies"),
    ("GET", "/api/v1/exports/review.csv"),
    ("GET", "/api/v1/exports/review.xlsx"),
}
# API routes that never touch a study; any other API route must be in the matrix.
API_OUTSIDE_MATRIX = {
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/imports"),
    ("POST", "/api/v1/imports"),
    ("GET", "/api/v1/imports/<int:job_id>"),
    # remote archives: no portal study until imported (tests/integration/test_pacs_import.py)
    ("GET", "/api/v1/pacs"),
    ("GET", "/api/v1/pacs/<source>/studies"),
    ("POST", "/api/v1/pacs/<source>/imports"),
    # the caller's projects, and users for admins (tests/integration/test_api.py)
    ("GET", "/api/v1/projects"),
    ("GET", "/api/v1/users"),
    # personal access tokens: one's own (tests/integration/test_tokens.py)
    ("GET", "/api/v1/tokens"),
    ("POST", "/api/v1/tokens"),
    ("DELETE", "/api/v1/tokens/<int:token_id>"),
    # the live channel: one's own tabs, or (admins) another user's; study ids in the body
    # are checked against the target user (tests/integration/test_live_channel.py)
    ("POST", "/api/v1/sessions/me/open"),
    ("POST", "/api/v1/sessions/<int:user_id>/open"),
    ("GET", "/api/v1/sessions/me/commands"),
    ("PUT", "/api/v1/sessions/me/state"),
    ("GET", "/api/v1/sessions/me/state"),
    # the audit log: admins only (tests/integration/test_audit.py)
    ("GET", "/api/v1/audit"),
    ("GET", "/api/v1/audit.csv"),
    # the API's description: static, no data (tests/integration/test_openapi.py)
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/docs"),
}

EXPECTED_API_ROUTES = {
    ("GET", "/api/v1/studies"),
    ("GET", "/api/v1/studies/<int:study_id>"),
    ("GET", "/api/v1/studies/<int:study_id>/preview/<name>"),
    ("GET", "/api/v1/studies/<int:study_id>/volumes/<int:index>/image.vti"),
    ("GET", "/api/v1/studies/<int:study_id>/volumes/<int:index>/values.vti"),
    ("GET", "/api/v1/studies/<int:study_id>/segmentations/<int:segmentation_id>/<name>"),
    ("GET", "/api/v1/studies/<int:study_id>/slices/<axis>/<int:index>/values.vti"),
    ("GET", "/api/v1/studies/<int:study_id>/slices/<axis>/<int:index>/labels.vti"),
    ("GET", "/api/v1/studies/<int:study_id>/review"),
    ("POST", "/api/v1/review-items/<int:item_id>/reads"),
    ("POST", "/api/v1/review-items/<int:item_id>/transitions"),
    ("POST", "/api/v1/review-items/<int:item_id>/comments"),
    ("POST", "/api/v1/comments/<int:comment_id>/resolve"),
    ("POST", "/api/v1/assignments"),
    ("DELETE", "/api/v1/studies/<int:study_id>/assignments/<int:user_id>"),
    ("GET", "/api/v1/studies/<int:study_id>/files.zip"),
    ("GET", "/api/v1/segmentations/<int:segmentation_id>/labels"),
    ("POST", "/api/v1/studies/<int:study_id>/segmentations"),
    ("POST", "/api/v1/studies/<int:study_id>/segmentations/attach"),
    ("GET", "/api/v1/exports/review.csv"),
    ("GET", "/api/v1/exports/review.xlsx"),
    ("GET", "/reports/study/<int:study_id>"),
    ("GET", "/reports/study/<int:study_id>/mosaic.png"),
}
# The dashboard's charts of a project (its input is a project name, not a study).
DASHBOARD_CALLBACK = (
    "dashboard-agreement,dashboard-readers,dashboard-states,dashboard-summary,dashboard-throughput"
)
# Server-side callbacks, named by the ids of their outputs.
EXPECTED_CALLBACKS = {
    "shell-nav,shell-page",  # the router: /review?studies=<ids>
    "caselist-grid",  # case list rows
    "pane,pane-view",  # 2D/3D switch
    # the pane's review panel
    "pane-actions,pane-badge,pane-comment,pane-details,pane-markers,pane-message,"
    "pane-note,pane-pick,pane-reads,pane-version",
    "pane-seg-message,pane-slot",  # adding a segmentation from the pane
    "caselist-assignee",  # readers a lead may assign the selected studies to
    "caselist-assign-message",  # bulk assignment
    DASHBOARD_CALLBACK,
}
# Server-side callbacks that never take a portal study (checked in their own tests).
CALLBACKS_OUTSIDE_MATRIX = {
    "pacs-message,pacs-results",  # PACS search: tests/integration/test_pacs_import.py
    "pacs-message",  # PACS import
    # admin and account forms: tests/integration/test_session_death.py, test_admin.py
    "admin-project,admin-project-message,admin-project-table",
    "admin-new-password,admin-reset-password,admin-user,admin-user-message,admin-user-table",
    "admin-role",
    "admin-reads",
    "account-current,account-message,account-new,account-repeat",
    # the audit page: admins only (tests/integration/test_audit.py)
    "audit-csv,audit-cursors,audit-message,audit-newer,audit-older,audit-page-text,audit-table",
}
# Today's minimum; enumeration finding fewer means a refactor hid routes from the matrix.
MIN_API_ROUTES = 11
MIN_PATTERN_CALLBACKS = 2


class Need(enum.Enum):
    """What a call needs, in terms of the user's role in the study's project."""

    SEE = "see"  # any member (viewers too)
    READ = "read"  # reviewer, expert, lead
    RESOLVE = "resolve"  # expert, lead (the comment is someone else's)
    LEAD = "lead"


READERS = {ProjectRole.REVIEWER, ProjectRole.EXPERT, ProjectRole.LEAD}
ALLOWED: dict[Need, set[ProjectRole]] = {
    Need.SEE: set(ProjectRole),
    Need.READ: READERS,
    Need.RESOLVE: {ProjectRole.EXPERT, ProjectRole.LEAD},
    Need.LEAD: {ProjectRole.LEAD},
}


@dataclass
class Target:
    """One study (or a forged one) and the ids of things inside it."""

    project: str
    study_id: int
    item_id: int  # its primary (first segmentation) review item
    comment_id: int  # a comment by "author" on that item
    segmentation_id: int  # its first segmentation
    assignee_id: int  # "author", a reviewer in every project
    texts: list[str] = field(default_factory=list)  # name, uid, patient name
    version: int = 1  # its primary item's version, as a prepare step last saw it
    blobs: list[bytes] = field(default_factory=list)  # slices of previews and surfaces

    def leaked(self, body: bytes) -> list[str]:
        found = [t for t in self.texts if t.encode() in body]
        found += [f"{len(b)} preview bytes" for b in self.blobs if b in body]
        return found


# --- the studies ----------------------------------------------------------------------


def _nifti_case(folder: Path, seed: int) -> Path:
    """A small distinct image (a noisy blob) with a two-label map beside it."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    shape = (36, 32, 24)
    centre = np.array(shape) / 2 + rng.uniform(-3, 3, 3)
    radius = np.sqrt(((np.indices(shape).T - centre) ** 2).sum(-1)).T
    image = (900 - 25 * radius + rng.normal(0, 40, shape)).astype(np.int16)
    labels = np.zeros(shape, np.uint8)
    labels[radius < 9 + seed] = 1
    labels[radius < 4 + seed] = 2
    affine = np.diag([1.0 + 0.1 * seed, 1.0, 1.5, 1.0])
    path = folder / "case.nii.gz"
    nib.save(nib.Nifti1Image(image, affine), path)
    nib.save(nib.Nifti1Image(labels, affine), folder / "case-label.nii.gz")
    return path


def _middle(data: bytes, size: int = 48) -> bytes:
    start = len(data) // 2
    return data[start : start + size]


def _blobs(settings: Settings, uid: str) -> list[bytes]:
    blobs = []
    for name in ("image.vti.gz", "values.vti.gz", "labels.vti.gz", "thumb.png", "mosaic.png"):
        path = preview_file(settings.preview_dir, uid, name)
        if path.exists():
            raw = path.read_bytes()
            blobs.append(_middle(raw))
            if name.endswith(".gz"):
                blobs.append(_middle(gzip.decompress(raw)))
    surfaces = preview_file(settings.preview_dir, uid, "surfaces.json")
    for surface in json.loads(surfaces.read_text()):
        blobs.append(surface["state"]["mesh"]["points"]["bvals"][:40].encode())
    return blobs


def _principal(db: Database, name: str) -> Principal:
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == name))
        assert user is not None
        return Principal.of(user)


def _world(db: Database, settings: Settings, tmp_path: Path) -> dict[str, Target]:
    """Three projects with one imported study each, the users, and a forged target."""
    ids = {}
    for seed, project in enumerate(PROJECTS):
        case = _nifti_case(tmp_path / project, seed)
        [ids[project]] = import_paths(db, _import_settings(settings), project, [case]).imported
    make_user(db, "author", Role.REVIEWER, list(PROJECTS))
    for name, (role, projects) in MEMBERSHIPS.items():
        make_user(db, name, role, list(projects))
        with db.session() as s:
            user_id = s.scalar(select(User.id).where(User.username == name))
            for project, project_role in projects.items():
                study = s.get(Study, ids[project])
                assert study is not None
                s.execute(
                    update(ProjectMember)
                    .where(
                        ProjectMember.user_id == user_id,
                        ProjectMember.project_id == study.project_id,
                    )
                    .values(role=project_role.value)
                )
    author = _principal(db, "author")
    targets = {}
    for project, study_id in ids.items():
        with db.session() as s:
            study = s.get(Study, study_id)
            assert study is not None
            # Distinctive texts, so a leak in any response can be spotted.
            study.name = f"Matrix{project.title()}Study"
            study.patient_name = f"DOE^SECRET^{project.upper()}"
            item = review.primary_item(study)
            comment = comments.add_comment(s, author, item.id, "please check the rim")
            targets[project] = Target(
                project=project,
                study_id=study_id,
                item_id=item.id,
                comment_id=comment.id,
                segmentation_id=study.segmentations[0].id,
                assignee_id=author.user_id,
                texts=[study.name, study.uid, study.patient_name],
                blobs=_blobs(settings, study.uid),
            )
    with db.session() as s:
        top = max(
            s.scalar(select(func.max(Study.id))) or 0,
            s.scalar(select(func.max(ReviewItem.id))) or 0,
            s.scalar(select(func.max(Comment.id))) or 0,
            s.scalar(select(func.max(Segmentation.id))) or 0,
        )
    targets[MISSING] = Target(
        MISSING, top + 1000, top + 1001, top + 1002, top + 1003, author.user_id
    )
    return targets


def _role(user: str, target: Target) -> ProjectRole | None:
    role, projects = MEMBERSHIPS[user]
    if target.project == MISSING:
        return None
    if role is Role.ADMIN:
        return ProjectRole.LEAD
    return projects.get(target.project)


# --- what a refused call must leave alone ---------------------------------------------


def _fingerprint(db: Database, study_id: int) -> tuple[Any, ...]:
    with db.session() as s:
        items = s.execute(
            select(ReviewItem.state, ReviewItem.version, ReviewItem.round)
            .where(ReviewItem.study_id == study_id)
            .order_by(ReviewItem.id)
        ).all()
        item_ids = select(ReviewItem.id).where(ReviewItem.study_id == study_id)

        def count(*where: Any) -> Any:
            return select(func.count()).where(*where).scalar_subquery()

        counts = s.execute(
            select(
                select(Study.review_status).where(Study.id == study_id).scalar_subquery(),
                count(ReviewEvent.study_id == study_id),
                count(Comment.item_id.in_(item_ids)),
                count(Comment.item_id.in_(item_ids), Comment.resolved_at.is_not(None)),
                count(Assignment.study_id == study_id),
                count(Assignment.study_id == study_id, Assignment.ended_at.is_(None)),
            )
        ).one()
        return (tuple(tuple(row) for row in items), tuple(counts))


def _set_items(db: Database, target: Target, **values: Any) -> None:
    with db.session() as s:
        s.execute(update(ReviewItem).where(ReviewItem.study_id == target.study_id).values(**values))


def _version(db: Database, target: Target) -> int:
    with db.session() as s:
        # A forged item gets version 1: the forger may guess it right.
        return s.scalar(select(ReviewItem.version).where(ReviewItem.id == target.item_id)) or 1


# --- the API routes -------------------------------------------------------------------


@dataclass(frozen=True)
class ApiCall:
    need: Need
    # Puts the study in a state where the call can succeed; returns the JSON body.
    prepare: Callable[[Database, Target], dict[str, Any] | None] = lambda db, t: None
    query: Callable[[Target], str] = lambda t: ""
    # A granted answer really holds the data (for the list: the study is in it).
    granted: Callable[[Target, Any], bool] = lambda t, r: 200 <= r.status_code < 300


def _reads(db: Database, t: Target) -> dict[str, Any]:
    with db.session() as s:  # a fresh round nobody has read yet
        s.execute(
            update(ReviewItem)
            .where(ReviewItem.study_id == t.study_id)
            .values(state="in-review", round=ReviewItem.round + 1)
        )
    return {"verdict": "approved", "version": _version(db, t)}


def _transition(db: Database, t: Target) -> dict[str, Any]:
    _set_items(db, t, state="approved")  # escalating is open to every reader
    return {"to": "flagged-for-expert", "reason": "matrix", "version": _version(db, t)}


def _unresolve(db: Database, t: Target) -> dict[str, Any]:
    with db.session() as s:
        s.execute(
            update(Comment)
            .where(Comment.id == t.comment_id)
            .values(resolved_at=None, resolved_by_id=None)
        )
    return {}


def _open_assignment(db: Database, t: Target) -> None:
    if t.project == MISSING:
        return
    with db.session() as s:
        open_ = s.scalar(
            select(Assignment.id).where(
                Assignment.study_id == t.study_id,
                Assignment.assignee_id == t.assignee_id,
                Assignment.ended_at.is_(None),
            )
        )
        if open_ is None:
            s.add(
                Assignment(
                    study_id=t.study_id, assignee_id=t.assignee_id, assigned_by_id=t.assignee_id
                )
            )


def _exported(t: Target, response: Any) -> bool:
    """The export holds the study's rows (CSV text, or the cells of the XLSX workbook)."""
    if response.status_code != 200:
        return False
    body = response.get_data()
    if body.startswith(b"PK"):
        from openpyxl import load_workbook

        sheet = load_workbook(io.BytesIO(body)).active
        assert sheet is not None
        body = repr(list(sheet.iter_rows(values_only=True))).encode()
    return f"Matrix{t.project.title()}Study".encode() in body


def _export_query(t: Target) -> str:
    return f"?q=Matrix{t.project.title()}&project={t.project}"


def _listed(t: Target, response: Any) -> bool:
    return response.status_code == 200 and t.study_id in [
        row["id"] for row in response.get_json()["items"]
    ]


API_CALLS: dict[tuple[str, str], ApiCall] = {
    ("GET", "/api/v1/studies"): ApiCall(
        Need.SEE,
        query=lambda t: f"?q=Matrix{t.project.title()}&project={t.project}&ids={t.study_id}",
        granted=_listed,
    ),
    ("GET", "/api/v1/studies/<int:study_id>"): ApiCall(Need.SEE),
    ("GET", "/api/v1/studies/<int:study_id>/preview/<name>"): ApiCall(Need.SEE),
    ("GET", "/api/v1/studies/<int:study_id>/volumes/<int:index>/image.vti"): ApiCall(Need.SEE),
    ("GET", "/api/v1/studies/<int:study_id>/volumes/<int:index>/values.vti"): ApiCall(Need.SEE),
    # The study's own first segmentation (the forged target: ids that exist nowhere);
    # another study's segmentation under a visible study: test_value_previews.py.
    (
        "GET",
        "/api/v1/studies/<int:study_id>/segmentations/<int:segmentation_id>/<name>",
    ): ApiCall(Need.SEE),
    # Full-resolution slices; the label slice of the study's own first segmentation
    # (another study's segmentation under a visible study: test_slices.py).
    ("GET", "/api/v1/studies/<int:study_id>/slices/<axis>/<int:index>/values.vti"): ApiCall(
        Need.SEE
    ),
    ("GET", "/api/v1/studies/<int:study_id>/slices/<axis>/<int:index>/labels.vti"): ApiCall(
        Need.SEE, query=lambda t: f"?segmentation={t.segmentation_id}"
    ),
    ("GET", "/api/v1/studies/<int:study_id>/review"): ApiCall(Need.SEE),
    ("POST", "/api/v1/review-items/<int:item_id>/reads"): ApiCall(Need.READ, _reads),
    ("POST", "/api/v1/review-items/<int:item_id>/transitions"): ApiCall(Need.READ, _transition),
    ("POST", "/api/v1/review-items/<int:item_id>/comments"): ApiCall(
        Need.READ, lambda db, t: {"body": "seen from the matrix"}
    ),
    ("POST", "/api/v1/comments/<int:comment_id>/resolve"): ApiCall(Need.RESOLVE, _unresolve),
    ("POST", "/api/v1/assignments"): ApiCall(
        Need.LEAD, lambda db, t: {"studies": [t.study_id], "assignee_id": t.assignee_id}
    ),
    ("DELETE", "/api/v1/studies/<int:study_id>/assignments/<int:user_id>"): ApiCall(
        Need.LEAD, lambda db, t: _open_assignment(db, t)
    ),
    ("GET", "/api/v1/studies/<int:study_id>/files.zip"): ApiCall(Need.SEE),
    ("GET", "/api/v1/segmentations/<int:segmentation_id>/labels"): ApiCall(Need.SEE),
    # The matrix sends no file: an allowed user passes the access check and is then told
    # to send one (uploads themselves: tests/integration/test_files.py).
    ("POST", "/api/v1/studies/<int:study_id>/segmentations"): ApiCall(
        Need.READ,
        granted=lambda t, r: r.status_code == 400 and "multipart" in r.get_json()["error"],
    ),
    # Adding a segmentation to the same study: as above, no file is sent (the uploads
    # themselves: tests/integration/test_add_segmentation.py).
    ("POST", "/api/v1/studies/<int:study_id>/segmentations/attach"): ApiCall(
        Need.READ,
        granted=lambda t, r: r.status_code == 400 and "multipart" in r.get_json()["error"],
    ),
    ("GET", "/api/v1/exports/review.csv"): ApiCall(
        Need.SEE, query=_export_query, granted=_exported
    ),
    ("GET", "/api/v1/exports/review.xlsx"): ApiCall(
        Need.SEE, query=_export_query, granted=_exported
    ),
    ("GET", "/reports/study/<int:study_id>"): ApiCall(Need.SEE),
    ("GET", "/reports/study/<int:study_id>/mosaic.png"): ApiCall(Need.SEE),
}


def _path_values(t: Target) -> dict[str, object]:
    return {
        "study_id": t.study_id,
        "item_id": t.item_id,
        "comment_id": t.comment_id,
        "segmentation_id": t.segmentation_id,
        "user_id": t.assignee_id,
        "index": 0,
        "axis": "axial",
        "name": "image.vti",
    }


def _url(rule: Rule, t: Target) -> str:
    values = _path_values(t)
    if "/segmentations/<int:segmentation_id>/" in rule.rule:
        values["name"] = "labels.vti"  # a study's segmentation previews
    missing = set(rule.arguments) - set(values)
    assert not missing, f"{rule.rule}: say which value the matrix sends for {missing}"
    return rule.build({k: values[k] for k in rule.arguments}, append_unknown=False)[1]


def study_rules(app: Flask) -> dict[tuple[str, str], Rule]:
    """Every (method, rule) that takes a study, item or comment id, found in the url map."""
    found: dict[tuple[str, str], Rule] = {}
    for rule in app.url_map.iter_rules():
        ids = {arg for arg in rule.arguments if arg.endswith("_id")} - NOT_STUDY_SCOPED
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            if ids or (method, rule.rule) in BODY_ID_ROUTES:
                found[(method, rule.rule)] = rule
    return found


# --- the Dash callbacks ---------------------------------------------------------------


def _parse_id(raw: str) -> str | dict[str, Any]:
    return json.loads(raw) if raw.startswith("{") else raw


def _kind(id_: str | dict[str, Any]) -> str:
    return str(id_["type"]) if isinstance(id_, dict) else id_


def _outputs(dep: dict[str, Any]) -> list[tuple[str | dict[str, Any], str]]:
    raw = dep["output"]
    parts = raw[2:-2].split("...") if raw.startswith("..") else [raw]
    out = []
    for part in parts:
        id_, prop = part.rsplit(".", 1)
        out.append((_parse_id(id_), prop))
    return out


def callback_name(dep: dict[str, Any]) -> str:
    return ",".join(sorted({_kind(id_) for id_, _ in _outputs(dep)}))


def _takes_study(dep: dict[str, Any]) -> bool:
    return any(
        isinstance(_parse_id(x["id"]), dict) and "study" in _parse_id(x["id"])
        for x in dep["inputs"] + dep["state"]
    )


@dataclass(frozen=True)
class DashCall:
    need: Need
    values: Callable[[Target], dict[tuple[str, str], Any]]
    granted: Callable[[Target, str], bool]
    prepare: Callable[[Database, Target], None] = lambda db, t: None
    # The input that changed (component type, property); default: the first input.
    trigger: tuple[str, str] | None = None


def _open_round(db: Database, t: Target) -> None:
    t.version = _reads(db, t)["version"]  # a fresh round nobody has read yet


def _pane_review_values(t: Target) -> dict[tuple[str, str], Any]:
    return {
        ("pane-approve", "n_clicks"): 1,
        ("pane-version", "data"): {"item": t.item_id, "version": t.version},
        ("pane-note", "value"): "matrix",
    }


DASH_CALLS: dict[str, DashCall] = {
    "shell-nav,shell-page": DashCall(
        Need.SEE,
        lambda t: {
            ("shell-url", "pathname"): "/review",
            ("shell-url", "search"): f"?studies={t.study_id}",
        },
        lambda t, body: f"Matrix{t.project.title()}Study" in body and "not available" not in body,
    ),
    "caselist-grid": DashCall(
        Need.SEE,
        lambda t: {
            ("caselist-grid", "getRowsRequest"): {"startRow": 0, "endRow": 50, "sortModel": []},
            ("caselist-search", "value"): f"Matrix{t.project.title()}",
            ("caselist-project", "value"): t.project,
        },
        lambda t, body: f'"id":{t.study_id},' in body.replace(" ", ""),
    ),
    "pane,pane-view": DashCall(
        Need.SEE,
        lambda t: {("pane-mode", "value"): "3d", ("pane-slider", "value"): 0},
        lambda t, body: "GeometryRepresentation" in body,
    ),
    # The pane's review panel, clicking Approve (the item id travels in the version store).
    (
        "pane-actions,pane-badge,pane-comment,pane-details,pane-markers,pane-message,"
        "pane-note,pane-pick,pane-reads,pane-version"
    ): DashCall(
        Need.READ,
        _pane_review_values,
        lambda t, body: "Saved" in body,
        _open_round,
        trigger=("pane-approve", "n_clicks"),
    ),
    # Adding a segmentation from the pane: a file that is no label map, so an allowed user
    # passes the access check and is told what is wrong with the file (nothing is added).
    "pane-seg-message,pane-slot": DashCall(
        Need.READ,
        lambda t: {
            ("pane-seg-upload", "contents"): "data:application/gzip;base64,"
            + base64.b64encode(b"not a label map").decode(),
            ("pane-seg-upload", "filename"): "matrix.nii.gz",
            ("pane-seg-name", "value"): "matrix",
        },
        lambda t, body: "matrix.nii.gz: " in body,
    ),
    # Bulk assignment from the case list selection: the readers offered, then assigning.
    "caselist-assignee": DashCall(
        Need.LEAD,
        lambda t: {("caselist-grid", "selectedRows"): [{"id": t.study_id}]},
        lambda t, body: '"author"' in body,
    ),
    "caselist-assign-message": DashCall(
        Need.LEAD,
        lambda t: {
            ("caselist-assign-button", "n_clicks"): 1,
            ("caselist-grid", "selectedRows"): [{"id": t.study_id}],
            ("caselist-assignee", "value"): t.assignee_id,
        },
        lambda t, body: "Assigned 1 study" in body,
    ),
    # Chart data of the project holding the study: one study when it is visible, else none.
    DASHBOARD_CALLBACK: DashCall(
        Need.SEE,
        lambda t: {("dashboard-project", "value"): t.project},
        lambda t, body: "1 study" in body,
    ),
}


def _concrete(id_: str | dict[str, Any], t: Target) -> str | dict[str, Any]:
    if isinstance(id_, dict):
        return {k: (t.study_id if v == ["MATCH"] else v) for k, v in id_.items()}
    return id_


def _prop_key(id_: str | dict[str, Any], prop: str) -> str:
    if isinstance(id_, dict):
        id_ = json.dumps(id_, sort_keys=True, separators=(",", ":"))
    return f"{id_}.{prop}"


def dash_body(dep: dict[str, Any], call: DashCall, t: Target) -> dict[str, Any]:
    """The `/_dash-update-component` request a browser would send, for target `t`."""
    values = call.values(t)

    def entry(x: dict[str, Any]) -> dict[str, Any] | list[Any]:
        id_ = _concrete(_parse_id(x["id"]), t)
        if isinstance(id_, dict) and ["ALL"] in id_.values():
            return []  # no such components rendered (no labels, no threads)
        prop = x["property"]
        value = id_ if prop == "id" else values.get((_kind(id_), prop))
        return {"id": id_, "property": prop, "value": value}

    inputs = [entry(x) for x in dep["inputs"]]
    changed = next(
        x
        for x in inputs
        if isinstance(x, dict)
        and (call.trigger is None or (_kind(x["id"]), x["property"]) == call.trigger)
    )
    outputs: list[dict[str, Any]] | dict[str, Any] = [
        {"id": _concrete(id_, t), "property": prop} for id_, prop in _outputs(dep)
    ]
    if not dep["output"].startswith(".."):
        outputs = outputs[0]  # a single output is sent bare, not in a list
    return {
        "output": dep["output"],
        "outputs": outputs,
        "inputs": inputs,
        "state": [entry(x) for x in dep["state"]],
        "changedPropIds": [_prop_key(changed["id"], changed["property"])],
    }


# --- the matrix -----------------------------------------------------------------------


@dataclass
class Tally:
    cells: int = 0
    problems: list[str] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    data_shown: Counter[str] = field(default_factory=Counter)
    # Per route, which kinds of cell it had: granted, denied (visible), hidden.
    kinds: dict[str, set[str]] = field(default_factory=dict)

    def cell(self, route: str, role: ProjectRole | None, need: Need) -> bool:
        """Count a cell; True if `role` may make this call."""
        allowed = role is not None and role in ALLOWED[need]
        kind = "granted" if allowed else "hidden" if role is None else "denied"
        self.cells += 1
        self.kinds.setdefault(route, set()).add(kind)
        return allowed

    def problem(self, route: str, user: str, t: Target, text: str) -> None:
        text = " ".join(text.split())[:300]
        self.problems.append(f"{route} as {user} on {t.project}: {text}")


def _api_cell(
    client: FlaskClient,
    db: Database,
    tally: Tally,
    key: tuple[str, str],
    rule: Rule,
    user: str,
    t: Target,
) -> None:
    call = API_CALLS[key]
    method, name = key
    role = _role(user, t)
    route = f"{method} {name}"
    allowed = tally.cell(route, role, call.need)
    body = call.prepare(db, t)
    # Writes refused on a real study must change nothing; a GET writes nothing anyway.
    watch = not allowed and method != "GET" and t.project != MISSING
    before = _fingerprint(db, t.study_id) if watch else None
    headers = {"X-CSRF-Token": _csrf(client)} if method != "GET" else {}
    response = client.open(_url(rule, t) + call.query(t), method=method, json=body, headers=headers)
    data = response.get_data()
    if allowed:
        expected = 0  # any 2xx
    elif role is None:
        expected = 200 if key in LIST_ROUTES else 404
    else:
        expected = 403
    tally.outcomes[f"{expected or '2xx'}"] += 1
    if expected == 0:
        if not call.granted(t, response):
            tally.problem(route, user, t, f"refused: {response.status_code} {data[:200]!r}")
        if t.leaked(data):
            tally.data_shown[route] += 1
        return
    if response.status_code != expected or (expected == 200 and call.granted(t, response)):
        tally.problem(route, user, t, f"want {expected}, got {response.status_code}")
    if role is None and (leaks := t.leaked(data)):
        tally.problem(route, user, t, f"LEAK {leaks}")
    if expected != 200 and set(response.get_json(silent=True) or {"?": 1}) - {"error", "code"}:
        tally.problem(route, user, t, f"refusal is not an error message: {data[:200]!r}")
    if before is not None and _fingerprint(db, t.study_id) != before:
        tally.problem(route, user, t, "a refused call changed the study's review")


def _dash_cell(
    client: FlaskClient,
    db: Database,
    tally: Tally,
    dep: dict[str, Any],
    user: str,
    t: Target,
) -> None:
    name = callback_name(dep)
    call = DASH_CALLS[name]
    role = _role(user, t)
    route = f"dash {name}"
    allowed = tally.cell(route, role, call.need)
    call.prepare(db, t)
    watch = not allowed and t.project != MISSING
    before = _fingerprint(db, t.study_id) if watch else None
    response = dash_post(client, dash_body(dep, call, t))
    text = response.get_data(as_text=True)
    tally.outcomes["dash granted" if allowed else "dash refused"] += 1
    if allowed:
        if response.status_code != 200 or not call.granted(t, text):
            tally.problem(route, user, t, f"refused: {response.status_code} {text[:300]}")
        if t.leaked(response.get_data()):
            tally.data_shown[route] += 1
        return
    if response.status_code not in (200, 204) or call.granted(t, text):
        tally.problem(route, user, t, f"want a refusal, got {response.status_code} {text[:300]}")
    if role is None and (leaks := t.leaked(response.get_data())):
        tally.problem(route, user, t, f"LEAK {leaks}")
    if before is not None and _fingerprint(db, t.study_id) != before:
        tally.problem(route, user, t, "a refused call changed the study's review")


def _csrf(client: FlaskClient) -> str:
    with client.session_transaction() as s:
        return str(s["csrf"])


def test_access_matrix_has_no_leaks(settings: Settings, db: Database, tmp_path: Path) -> None:
    targets = _world(db, settings, tmp_path)
    app = create_app(settings)
    clients = {}
    for user in MEMBERSHIPS:
        clients[user] = app.test_client()
        login(clients[user], user)

    rules = study_rules(app)
    assert len(rules) >= MIN_API_ROUTES, sorted(rules)
    assert set(rules) == EXPECTED_API_ROUTES, "new study route? add it to the matrix"
    api_rules = {
        (m, r.rule)
        for r in app.url_map.iter_rules()
        if r.rule.startswith("/api/")
        for m in (r.methods or set()) - {"HEAD", "OPTIONS"}
    }
    assert api_rules - set(rules) == API_OUTSIDE_MATRIX, "an API route outside the matrix"

    deps = clients["adm"].get("/_dash-dependencies").get_json()
    every = [d for d in deps if not d.get("clientside_function")]
    server_side = [d for d in every if callback_name(d) not in CALLBACKS_OUTSIDE_MATRIX]
    pattern = [d for d in server_side if _takes_study(d)]
    assert len(pattern) >= MIN_PATTERN_CALLBACKS, [callback_name(d) for d in server_side]
    assert {callback_name(d) for d in every} == EXPECTED_CALLBACKS | CALLBACKS_OUTSIDE_MATRIX, (
        "new callback? add it to the matrix"
    )

    tally = Tally()
    for user, client in clients.items():
        for t in targets.values():
            for key, rule in sorted(rules.items()):
                _api_cell(client, db, tally, key, rule, user, t)
            for dep in server_side:
                _dash_cell(client, db, tally, dep, user, t)

    routes = len(rules) + len(server_side)
    roles = {role for role, _ in MEMBERSHIPS.values()}
    print(
        f"\naccess matrix: {len(clients)} users ({len(roles)} global roles) × "
        f"{len(targets)} targets ({len(PROJECTS)} projects + forged ids) × {routes} routes "
        f"({len(rules)} API, {len(server_side)} Dash) = {tally.cells} cells; "
        f"{dict(tally.outcomes)}; {len(tally.problems)} problems"
    )
    assert len(roles) >= 4 and tally.cells >= 4 * 3 * routes
    assert not tally.problems, "\n".join(tally.problems)
    # Every route was tried by someone allowed and someone who may not see the study,
    # and every write also by someone who sees the study but may not do it.
    needs = {f"{m} {r}": c.need for (m, r), c in API_CALLS.items()}
    needs.update({f"dash {n}": c.need for n, c in DASH_CALLS.items()})
    for route, kinds in tally.kinds.items():
        want = {"granted", "hidden"} | ({"denied"} if needs[route] is not Need.SEE else set())
        assert want <= kinds, (route, kinds)
    # The leak detector sees data where data is meant to be: it can find a leak.
    for route in (
        "GET /api/v1/studies/<int:study_id>",
        "GET /api/v1/studies/<int:study_id>/preview/<name>",
        "dash pane,pane-view",
        "dash shell-nav,shell-page",
    ):
        assert tally.data_shown[route] > 0, route
    app.extensions["portal"].db.dispose()
