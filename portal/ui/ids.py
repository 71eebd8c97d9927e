"""Component IDs. Layouts and callbacks both import these; no string ID is written twice."""

from __future__ import annotations

import enum


class Shell(enum.StrEnum):
    URL = "shell-url"
    NAV = "shell-nav"
    PAGE = "shell-page"


class CaseList(enum.StrEnum):
    GRID = "caselist-grid"
    SEARCH = "caselist-search"
    MODALITY = "caselist-modality"
    STATUS = "caselist-status"
    PROJECT = "caselist-project"
    OPEN = "caselist-open"
    SELECTION = "caselist-selection"
    REFRESH = "caselist-refresh"
    QUEUE = "caselist-queue"
    ASSIGN_BOX = "caselist-assign"
    ASSIGNEE = "caselist-assignee"
    DUE = "caselist-due"
    ASSIGN = "caselist-assign-button"
    ASSIGN_MESSAGE = "caselist-assign-message"


class Review(enum.StrEnum):
    GRID = "review-grid"
    PAGER = "review-pager"
    STUDIES = "review-studies"


class Pane(enum.StrEnum):
    """Pattern-matching types; each instance is `{"type": Pane.X, "study": <id>}`."""

    ROOT = "pane"
    VIEW = "pane-view"
    IMAGE_SLICE = "pane-image-slice"
    LABEL_SLICE = "pane-label-slice"
    SLIDER = "pane-slider"
    SLICE_TEXT = "pane-slice-text"
    MODE = "pane-mode"
    MESSAGE = "pane-message"
    # review panel
    ITEM = "pane-item"
    VERSION = "pane-version"
    NOTE = "pane-note"
    ACTIONS = "pane-actions"
    APPROVE = "pane-approve"
    NEEDS_EDIT = "pane-needs-edit"
    FLAG = "pane-flag"
    REJECT = "pane-reject"
    READS = "pane-reads"
    DETAILS = "pane-details"
    # inside DETAILS, re-rendered: {"type": ..., "study": id, "label" | "thread": n}
    LABEL_VERDICT = "pane-label-verdict"
    THREAD_REPLY = "pane-thread-reply"
    THREAD_RESOLVE = "pane-thread-resolve"
    # comments and their markers
    COMMENT = "pane-comment"
    COMMENT_ADD = "pane-comment-add"
    REPLY_TEXT = "pane-reply-text"
    PICK = "pane-pick"
    PICK_TEXT = "pane-pick-text"
    MARKERS = "pane-markers"
    PICK_MARKER = "pane-pick-marker"
    BADGE = "pane-badge"
    IMAGE_READER = "pane-image-reader"
    VOLUME = "pane-volume"
    VOLUME_TEXT = "pane-volume-text"


def pane_id(kind: Pane, study_id: int) -> dict[str, object]:
    return {"type": kind.value, "study": study_id}


class Imports(enum.StrEnum):
    PROJECT = "import-project"
    PROJECTS = "import-projects"
    DROP = "import-drop"
    STATUS = "import-status"
    RESAMPLE = "import-resample"
    HISTORY = "import-history"
