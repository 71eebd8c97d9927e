"""Reviewer flags a segmentation for the expert with an anchored comment; the expert finds
it in the expert queue, sees the flag and the comment marker, and resolves it.

Pixels are read from screenshots: the comment marker must really be drawn in the pane.
"""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from portal.config import Settings
from portal.db.models import ReviewStatus, Role, User
from portal.db.session import Database
from portal.services import auth, review, review_view
from portal.services.auth import Principal
from tests.browser.conftest import ARTIFACTS
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

STUDY = "MNI152 T1 2mm"
REASON = "white matter label spills into the ventricles"
COMMENT = "leak starts here"
NOTE = "confirmed: redraw the ventricle border"


def _wait(driver, seconds: float) -> WebDriverWait:  # type: ignore[no-untyped-def]
    # Dash re-renders the panel and AG Grid its rows: an element may go stale mid-poll.
    return WebDriverWait(driver, seconds, ignored_exceptions=(StaleElementReferenceException,))


def _shot(driver, name: str) -> Image.Image:  # type: ignore[no-untyped-def]
    image = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    image.save(ARTIFACTS / f"workflow-{name}.png")
    return image


def _magenta_pixels(shot: Image.Image, element) -> int:  # type: ignore[no-untyped-def]
    """Pixels of the comment marker colour (pure magenta) inside `element`."""
    r = element.rect
    px = np.asarray(
        shot.crop((int(r["x"]), int(r["y"]), int(r["x"] + r["width"]), int(r["y"] + r["height"]))),
        dtype=np.int16,
    )
    return int(((px[..., 0] > 200) & (px[..., 1] < 70) & (px[..., 2] > 200)).sum())


@pytest.fixture(scope="module")
def readers(demo_settings: Settings) -> None:
    """A reviewer and an expert in the demo project (once per catalog)."""
    database = Database(demo_settings.resolved_database_url)
    try:
        with database.session() as s:
            have = set(s.scalars(select(User.username)))
            for name, role in (("rita", Role.REVIEWER), ("ezra", Role.EXPERT)):
                if name not in have:
                    auth.create_user(s, name, PASSWORD, role, ["demo"])
    finally:
        database.dispose()


def _login(driver, url: str, username: str) -> None:  # type: ignore[no-untyped-def]
    driver.get(url + "/login")
    driver.delete_all_cookies()
    driver.get(url + "/login")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait(driver, 60).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, ".ag-row .study-link"))
    )


def _study_link(driver, name: str):  # type: ignore[no-untyped-def]
    def find(d):  # type: ignore[no-untyped-def]
        for link in d.find_elements(By.CSS_SELECTOR, ".ag-center-cols-container .study-link"):
            if link.text == name:
                return link
        return False

    return _wait(driver, 30).until(find)


def _open_pane(driver, name: str):  # type: ignore[no-untyped-def]
    _study_link(driver, name).click()
    _wait(driver, 120).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".pane[data-state='ready']")
    )
    time.sleep(1.0)  # the label layer's first frame
    return driver.find_element(By.CSS_SELECTOR, ".pane[data-study-id]")


def _choose(driver, dropdown, text: str) -> None:  # type: ignore[no-untyped-def]
    """Pick `text` in a Dash dropdown (its options open in a popover)."""
    dropdown.click()
    option = _wait(driver, 10).until(
        lambda d: next(
            (
                o
                for o in d.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option, [role=option]")
                if o.text.strip() == text and o.is_displayed()
            ),
            False,
        )
    )
    option.click()


def _message(pane) -> str:  # type: ignore[no-untyped-def]
    return pane.find_element(By.CSS_SELECTOR, ".pane-message").text


def test_reviewer_flags_expert_resolves(live_server: str, browser, readers: None) -> None:  # type: ignore[no-untyped-def]
    driver = browser

    # --- the reviewer -----------------------------------------------------------------
    _login(driver, live_server, "rita")
    pane = _open_pane(driver, STUDY)
    badge = pane.find_element(By.CSS_SELECTOR, ".badge")
    assert badge.text == "Unreviewed"
    view = pane.find_element(By.CSS_SELECTOR, ".pane-view")
    before = _magenta_pixels(_shot(driver, "1-reviewer-opens"), view)

    # Expand the panel, anchor a point by clicking the image, give a per-label verdict.
    pane.find_element(By.CSS_SELECTOR, ".review-details summary").click()
    time.sleep(1.0)  # the expanded view re-measures and renders
    view.click()  # the middle of the view: brain tissue on the middle slice
    pick = pane.find_element(By.CSS_SELECTOR, ".pick-text")
    _wait(driver, 10).until(lambda d: pick.text.startswith("Anchor:"))
    verdict = pane.find_element(By.CSS_SELECTOR, ".label-verdict .verdict-select")
    _choose(driver, verdict, "over-segmented")
    pane.find_element(By.CSS_SELECTOR, "input.reason, .reason input").send_keys(REASON)
    pane.find_element(By.CSS_SELECTOR, "button.flag").click()
    _wait(driver, 20).until(lambda d: _message(pane) == "Saved: flagged for expert")
    assert badge.text == "Flagged for expert"
    # Flagged: the reviewer no longer gets decision buttons, only the expert does.
    assert not pane.find_element(By.CSS_SELECTOR, "button.approve").is_displayed()

    pane.find_element(By.CSS_SELECTOR, "textarea.comment-text").send_keys(COMMENT)
    pane.find_element(By.CSS_SELECTOR, "button.comment-add").click()
    _wait(driver, 20).until(
        lambda d: any(COMMENT in t.text for t in pane.find_elements(By.CSS_SELECTOR, ".thread"))
    )
    thread = pane.find_element(By.CSS_SELECTOR, ".thread .thread-head").text
    assert "rita" in thread and "slice" in thread
    history = pane.find_element(By.CSS_SELECTOR, ".history").text
    assert REASON in history
    time.sleep(1.0)
    shot = _shot(driver, "2-reviewer-flagged-and-commented")
    assert _magenta_pixels(shot, view) > before + 20, "no comment marker drawn"

    driver.find_element(By.ID, "logout-button").click()
    _wait(driver, 20).until(lambda d: "/login" in d.current_url)

    # --- the expert -------------------------------------------------------------------
    _login(driver, live_server, "ezra")
    driver.find_element(By.XPATH, "//label[contains(., 'Expert queue')]").click()
    _wait(driver, 20).until(
        lambda d: all(
            "Flagged for expert" in row.text
            for row in d.find_elements(By.CSS_SELECTOR, ".ag-center-cols-container .ag-row")
        )
    )
    link = _study_link(driver, STUDY)
    row = link.find_element(By.XPATH, "./ancestor::div[@row-id]")
    assert REASON in row.text
    _shot(driver, "3-expert-queue")

    pane = _open_pane(driver, STUDY)
    badge = pane.find_element(By.CSS_SELECTOR, ".badge")
    assert badge.text == "Flagged for expert"
    view = pane.find_element(By.CSS_SELECTOR, ".pane-view")
    shot = _shot(driver, "4-expert-opens")
    assert _magenta_pixels(shot, view) > 20, "the expert does not see the comment marker"
    pane.find_element(By.CSS_SELECTOR, ".review-details summary").click()
    details = pane.find_element(By.CSS_SELECTOR, ".details-body")
    _wait(driver, 10).until(lambda d: REASON in details.text)
    assert COMMENT in details.text
    assert "over-segmented" in details.text  # the reviewer's label verdict, not blinded now
    _shot(driver, "5-expert-details")

    pane.find_element(By.CSS_SELECTOR, "input.reason, .reason input").send_keys(NOTE)
    resolve = pane.find_element(By.CSS_SELECTOR, "button.needs-edit")
    assert resolve.is_displayed()
    resolve.click()
    _wait(driver, 20).until(lambda d: _message(pane) == "Saved: needs edit")
    assert badge.text == "Needs edit"
    assert NOTE in pane.find_element(By.CSS_SELECTOR, ".history").text
    _shot(driver, "6-expert-resolved")

    # Reply in the thread, then resolve it: its marker goes.
    thread = pane.find_element(By.CSS_SELECTOR, ".thread")
    thread.find_element(By.CSS_SELECTOR, "input.reply-text, .reply-text input").send_keys(
        "agreed, sent back"
    )
    thread.find_element(By.CSS_SELECTOR, "button.reply").click()
    _wait(driver, 20).until(
        lambda d: "agreed, sent back" in pane.find_element(By.CSS_SELECTOR, ".thread").text
    )
    pane.find_element(By.CSS_SELECTOR, ".thread button.resolve").click()
    _wait(driver, 20).until(
        lambda d: "resolved by ezra" in pane.find_element(By.CSS_SELECTOR, ".thread").text
    )
    assert not pane.find_elements(By.CSS_SELECTOR, ".marker:not(.pick)")

    # --- back in the case list ----------------------------------------------------------
    driver.get(live_server + "/")
    link = _study_link(driver, STUDY)
    row = link.find_element(By.XPATH, "./ancestor::div[@row-id]")
    row_id = row.get_attribute("row-id")
    _wait(driver, 10).until(
        lambda d: (
            "Needs edit"
            in d.find_element(
                By.CSS_SELECTOR, f".ag-center-cols-container .ag-row[row-id='{row_id}']"
            ).text
        )
    )
    _shot(driver, "7-caselist-needs-edit")


def test_lead_assigns_from_case_list(live_server: str, browser, readers: None) -> None:  # type: ignore[no-untyped-def]
    driver = browser
    study = "MR small (pydicom)"
    _login(driver, live_server, "admin")  # admins lead every project
    link = _study_link(driver, study)
    row_id = link.find_element(By.XPATH, "./ancestor::div[@row-id]").get_attribute("row-id")
    driver.find_element(By.CSS_SELECTOR, f".ag-row[row-id='{row_id}'] input[type=checkbox]").click()
    assignee = driver.find_element(By.ID, "caselist-assignee")
    opener = driver.find_element(By.ID, "caselist-open")
    _wait(driver, 10).until(lambda d: "Review 1 study" in opener.text)
    _choose(driver, assignee, "rita")
    # The date field's typed format follows the browser locale; set the value directly.
    driver.execute_script(
        "window.dash_clientside.set_props('caselist-due', {value: '2030-05-01'});"
    )
    driver.find_element(By.ID, "caselist-assign-button").click()
    _wait(driver, 20).until(
        lambda d: d.find_element(By.ID, "caselist-assign-message").text == "Assigned 1 study"
    )
    row = f".ag-center-cols-container .ag-row[row-id='{row_id}']"
    _wait(driver, 20).until(lambda d: "2030-05-01" in d.find_element(By.CSS_SELECTOR, row).text)
    assert "rita" in driver.find_element(By.CSS_SELECTOR, row).text
    _shot(driver, "8-lead-assigned")

    # The reviewer's own queue holds exactly that study.
    _login(driver, live_server, "rita")
    assert not driver.find_element(By.ID, "caselist-assign").is_displayed()
    driver.find_element(By.XPATH, "//label[contains(., 'My queue')]").click()
    _wait(driver, 20).until(
        lambda d: (
            [
                e.text
                for e in d.find_elements(By.CSS_SELECTOR, ".ag-center-cols-container .study-link")
            ]
            == [study]
        )
    )
    _shot(driver, "9-reviewer-my-queue")


def test_stale_panel_gets_conflict_and_reloads(
    live_server: str, browser, readers: None, demo_settings: Settings
) -> None:  # type: ignore[no-untyped-def]
    driver = browser
    study = "CT small (pydicom)"
    _login(driver, live_server, "admin")
    pane = _open_pane(driver, study)
    badge = pane.find_element(By.CSS_SELECTOR, ".badge")
    assert badge.text == "Unreviewed"
    # Meanwhile the reviewer decides the same item from elsewhere.
    database = Database(demo_settings.resolved_database_url)
    try:
        with database.session() as s:
            rita = Principal.of(s.scalars(select(User).where(User.username == "rita")).one())
            study_id = int(pane.get_attribute("data-study-id"))
            data = review_view.study_review(s, rita, study_id)
            item = next(i for i in data["items"] if i["key"].startswith("seg:"))
            review.decide(s, rita, item["id"], ReviewStatus.APPROVED, "", None, item["version"])
    finally:
        database.dispose()
    # The admin's screen still shows version 1: the write is refused and the panel reloads.
    pane.find_element(By.CSS_SELECTOR, "input.reason, .reason input").send_keys("bone leaks")
    pane.find_element(By.CSS_SELECTOR, "button.needs-edit").click()
    _wait(driver, 20).until(lambda d: "changed by rita" in _message(pane))
    assert badge.text == "Approved"
    _shot(driver, "10-conflict-reloaded")
