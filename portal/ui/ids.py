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
    STATUS = "pane-status"
    REASON = "pane-reason"
    SAVE = "pane-save"
    MESSAGE = "pane-message"
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


class Audit(enum.StrEnum):
    FROM_TO = "audit-from-to"
    USER = "audit-user"
    ACTION = "audit-action"
    OUTCOME = "audit-outcome"
    STUDY_UID = "audit-study-uid"
    TABLE = "audit-table"
    OLDER = "audit-older"
    NEWER = "audit-newer"
    PAGE_TEXT = "audit-page-text"
    CURSORS = "audit-cursors"
    CSV = "audit-csv"
    MESSAGE = "audit-message"
