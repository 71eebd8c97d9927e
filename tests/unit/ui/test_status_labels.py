from portal.db.models import ReviewStatus
from portal.ui.components.pane import STATUS_LABELS


def test_every_review_status_has_a_label() -> None:
    # The case list's status filter and every badge look statuses up here.
    assert set(STATUS_LABELS) == {s.value for s in ReviewStatus}
