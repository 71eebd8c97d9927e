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
    EXPORT_CSV = "caselist-export-csv"
    EXPORT_XLSX = "caselist-export-xlsx"


class Review(enum.StrEnum):
    GRID = "review-grid"
    PAGER = "review-pager"
    STUDIES = "review-studies"
    LAYOUT = "review-layout"


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
    LABEL_READER = "pane-label-reader"
    PLANE = "pane-plane"
    FINE_READER = "pane-fine-reader"
    FINE_LABEL_READER = "pane-fine-label-reader"
    VOLUME = "pane-volume"
    VOLUME_TEXT = "pane-volume-text"
    # adding a segmentation (review panel details); the pane is re-mounted in its slot
    SEG_UPLOAD = "pane-seg-upload"
    SEG_NAME = "pane-seg-name"
    SEG_MESSAGE = "pane-seg-message"
    SLOT = "pane-slot"
    # the slot's child after a re-mount: {"type": ..., "study": id, "n": segmentation id}
    MOUNT = "pane-mount"


def pane_id(kind: Pane, study_id: int) -> dict[str, object]:
    return {"type": kind.value, "study": study_id}


class Imports(enum.StrEnum):
    PROJECT = "import-project"
    PROJECTS = "import-projects"
    DROP = "import-drop"
    STATUS = "import-status"
    RESAMPLE = "import-resample"
    HISTORY = "import-history"


class Pacs(enum.StrEnum):
    SOURCE = "pacs-source"
    PATIENT_NAME = "pacs-patient-name"
    PATIENT_ID = "pacs-patient-id"
    STUDY_DATE = "pacs-study-date"
    MODALITY = "pacs-modality"
    ACCESSION = "pacs-accession"
    SEARCH = "pacs-search"
    RESULTS = "pacs-results"
    PROJECT = "pacs-project"
    IMPORT = "pacs-import"
    MESSAGE = "pacs-message"


class Admin(enum.StrEnum):
    """The admin pages: /admin/users and /admin/projects."""

    USER_MESSAGE = "admin-user-message"
    USER_TABLE = "admin-user-table"
    NEW_USERNAME = "admin-new-username"
    NEW_PASSWORD = "admin-new-password"
    NEW_ROLE = "admin-new-role"
    NEW_PROJECTS = "admin-new-projects"
    CREATE_USER = "admin-create-user"
    USER = "admin-user"
    ROLE = "admin-role"
    SET_ROLE = "admin-set-role"
    DEACTIVATE = "admin-deactivate"
    REACTIVATE = "admin-reactivate"
    RESET_PASSWORD = "admin-reset-password"
    RESET = "admin-reset"
    FORCE_LOGOUT = "admin-force-logout"

    PROJECT_MESSAGE = "admin-project-message"
    PROJECT_TABLE = "admin-project-table"
    NEW_PROJECT_NAME = "admin-new-project-name"
    NEW_PROJECT_DESCRIPTION = "admin-new-project-description"
    NEW_PROJECT_READS = "admin-new-project-reads"
    CREATE_PROJECT = "admin-create-project"
    PROJECT = "admin-project"
    READS = "admin-reads"
    SET_READS = "admin-set-reads"
    MEMBER = "admin-member"
    MEMBER_ROLE = "admin-member-role"
    ADD_MEMBER = "admin-add-member"
    SET_MEMBER_ROLE = "admin-set-member-role"
    REMOVE_MEMBER = "admin-remove-member"


class Account(enum.StrEnum):
    """The signed-in user's own page, /account."""

    CURRENT = "account-current"
    NEW = "account-new"
    REPEAT = "account-repeat"
    CHANGE = "account-change"
    MESSAGE = "account-message"


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


class Dashboard(enum.StrEnum):
    PROJECT = "dashboard-project"
    SUMMARY = "dashboard-summary"
    STATES = "dashboard-states"
    READERS = "dashboard-readers"
    THROUGHPUT = "dashboard-throughput"
    AGREEMENT = "dashboard-agreement"
