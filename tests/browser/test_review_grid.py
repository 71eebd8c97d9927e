"""Log in, pick 4 demo studies in the case list, review them in the grid, flag one.

The assertions read pixels from screenshots: each pane must show image content and
label colours, not just exist in the DOM.
"""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest
from PIL import Image
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import ARTIFACTS
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

GRID_STUDIES = [
    "MNI152 T1 1mm",
    "MNI152 T1 1mm (DICOM)",
    "MNI152 T1 1mm (LAS on disk)",
    "CT small (pydicom)",
]


def _screenshot(driver) -> Image.Image:  # type: ignore[no-untyped-def]
    return Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")


def _crop(shot: Image.Image, element) -> np.ndarray:  # type: ignore[no-untyped-def]
    r = element.rect
    return np.asarray(
        shot.crop((int(r["x"]), int(r["y"]), int(r["x"] + r["width"]), int(r["y"] + r["height"]))),
        dtype=np.int16,
    )


def _label_pixels(px: np.ndarray) -> int:
    """Clearly coloured (non-grey) pixels: the overlay, not the greyscale image."""
    spread = px.max(axis=2) - px.min(axis=2)
    return int((spread > 60).sum())


def _grey_pixels(px: np.ndarray) -> int:
    spread = px.max(axis=2) - px.min(axis=2)
    lum = px.mean(axis=2)
    return int(((spread < 12) & (lum > 40)).sum())


def _wait_all_ready(driver, count: int, timeout: float = 180) -> None:  # type: ignore[no-untyped-def]
    """Wait for `count` ready panes; on timeout keep the screenshot and console for diagnosis."""
    try:
        WebDriverWait(driver, timeout).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, ".pane[data-state='ready']")) == count
        )
    except TimeoutException:
        _screenshot(driver).save(ARTIFACTS / "stuck-panes.png")
        states = driver.execute_script(
            "return Array.from(document.querySelectorAll('.pane[data-study-id]'))"
            ".map(p => p.dataset.studyId + ':' + p.dataset.state + ':' "
            "+ p.querySelectorAll('canvas').length + ':nudges=' + (p.dataset.nudges || 0))"
        )
        console = [e["message"][:300] for e in driver.get_log("browser")][-20:]
        (ARTIFACTS / "stuck-panes.txt").write_text("\n".join([str(states), *console]))
        raise AssertionError(f"panes not ready after {timeout} s: {states}") from None


def _login(driver, url: str) -> None:  # type: ignore[no-untyped-def]
    driver.get(url + "/login")
    driver.delete_all_cookies()  # start signed out, whatever an earlier test left
    driver.get(url + "/login")
    driver.find_element(By.NAME, "username").send_keys("admin")
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, 60).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, ".ag-row .study-link"))
    )


def _row_for(driver, name: str):  # type: ignore[no-untyped-def]
    for link in driver.find_elements(By.CSS_SELECTOR, ".ag-center-cols-container .study-link"):
        if link.text == name:
            row_index = link.find_element(By.XPATH, "./ancestor::div[@row-index]").get_attribute(
                "row-index"
            )
            return row_index
    raise AssertionError(f"{name} not in the case list")


def test_review_grid_end_to_end(live_server: str, browser) -> None:  # type: ignore[no-untyped-def]
    driver = browser
    _login(driver, live_server)
    WebDriverWait(driver, 30).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".ag-center-cols-container .ag-row")) >= 6
    )
    # thumbnails really loaded
    WebDriverWait(driver, 30).until(
        lambda d: all(
            img.get_property("naturalWidth") > 0
            for img in d.find_elements(By.CSS_SELECTOR, "img.thumb")
        )
    )
    # Hovering a thumbnail shows the study's mosaic.
    thumb = driver.find_element(By.CSS_SELECTOR, ".ag-center-cols-container img.thumb")
    ActionChains(driver).move_to_element(thumb).perform()
    WebDriverWait(driver, 10).until(
        lambda d: any(
            img.get_property("naturalWidth") > 0
            for img in d.find_elements(By.CSS_SELECTOR, ".mosaic-tooltip img")
        )
    )
    _screenshot(driver).save(ARTIFACTS / "caselist.png")
    ActionChains(driver).move_by_offset(0, 400).perform()

    for name in GRID_STUDIES:
        index = _row_for(driver, name)
        box = driver.find_element(
            By.CSS_SELECTOR,
            f".ag-pinned-left-cols-container [row-index='{index}'] input, "
            f".ag-center-cols-container [row-index='{index}'] input[type=checkbox]",
        )
        box.click()
    open_link = driver.find_element(By.ID, "caselist-open")
    WebDriverWait(driver, 10).until(lambda d: "Review 4 studies" in open_link.text)
    started = time.monotonic()
    open_link.click()

    _wait_all_ready(driver, 4)
    elapsed = time.monotonic() - started
    time.sleep(1.0)  # let the label overlay layer finish its first frame too
    panes = driver.find_elements(By.CSS_SELECTOR, ".pane[data-study-id]")
    assert len(panes) == 4
    timing = {"all_panes_ready_s": round(elapsed, 2)}
    shot = _screenshot(driver)
    shot.save(ARTIFACTS / "review-grid.png")
    for pane in panes:
        view = pane.find_element(By.CSS_SELECTOR, ".pane-view")
        px = _crop(shot, view)
        title = pane.find_element(By.CSS_SELECTOR, ".pane-title").text
        assert _grey_pixels(px) > 500, f"{title}: no image content"
        assert _label_pixels(px) > 200, f"{title}: no label colours"
        # The whole slice fits in the pane: background shows around it (a camera that did
        # not fit the data shows a magnified patch that fills the pane instead).
        lit = np.asarray(px, dtype=np.int16).mean(axis=2) > 30
        assert lit.mean() < 0.7, f"{title}: the slice fills the pane; camera not fitted"
        letters = [e.text for e in pane.find_elements(By.CSS_SELECTOR, ".orient")]
        assert letters == ["A", "P", "R", "L"]
    (ARTIFACTS / "timing.json").write_text(json.dumps(timing))

    # Scroll one slice with the slider's keyboard and see the slice number change.
    first = panes[0]
    text = first.find_element(By.CSS_SELECTOR, ".slice-text")
    before = text.text
    handle = first.find_element(By.CSS_SELECTOR, ".slice-slider [role=slider]")
    handle.click()
    handle.send_keys("\ue013")  # arrow up
    WebDriverWait(driver, 10).until(lambda d: text.text != before)
    # The mouse wheel over the image steps slices too (instead of zooming).
    after_key = text.text
    view = first.find_element(By.CSS_SELECTOR, ".pane-view")
    ActionChains(driver).scroll_from_origin(ScrollOrigin.from_element(view), 0, -120).perform()
    WebDriverWait(driver, 10).until(lambda d: text.text != after_key)
    assert int(text.text.split("/")[0]) == int(after_key.split("/")[0]) + 1

    # Flag the first study for an expert.
    study_id = first.get_attribute("data-study-id")
    reason = first.find_element(By.CSS_SELECTOR, "input.reason, .reason input")
    reason.clear()
    reason.send_keys("grey matter label leaks into the skull")
    first.find_element(By.CSS_SELECTOR, "button.flag").click()
    WebDriverWait(driver, 20).until(
        lambda d: first.find_element(By.CSS_SELECTOR, ".pane-message").text.startswith("Saved")
    )
    assert first.find_element(By.CSS_SELECTOR, ".badge").text == "Flagged for expert"

    # 3D: volume rendering and label surfaces in the last pane.
    last = panes[2]  # MNI152 stored LAS: a real 3D volume
    last.find_element(By.XPATH, ".//label[contains(., '3D')]").click()
    WebDriverWait(driver, 60).until(lambda d: "mode-3d" in last.get_attribute("class"))
    time.sleep(4)
    shot3d = _screenshot(driver)
    shot3d.save(ARTIFACTS / "review-grid-3d.png")
    assert _label_pixels(_crop(shot3d, last.find_element(By.CSS_SELECTOR, ".pane-view"))) > 200

    # Back in the case list, the flag shows at once.
    driver.find_element(By.CSS_SELECTOR, ".pager a").click()
    WebDriverWait(driver, 30).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, ".ag-row .study-link"))
    )
    row = WebDriverWait(driver, 30).until(
        lambda d: d.find_element(
            By.CSS_SELECTOR, f".ag-center-cols-container .ag-row[row-id='{study_id}']"
        )
    )
    WebDriverWait(driver, 10).until(lambda d: "Flagged for expert" in row.text)
    assert "grey matter label leaks" in row.text
    _screenshot(driver).save(ARTIFACTS / "caselist-flagged.png")

    # Server-side search: the grid asks the server again and shows only the matches.
    driver.find_element(By.CSS_SELECTOR, "#caselist-search input, input#caselist-search").send_keys(
        "pydicom"
    )
    WebDriverWait(driver, 20).until(
        lambda d: (
            sorted(
                e.text
                for e in d.find_elements(By.CSS_SELECTOR, ".ag-center-cols-container .study-link")
            )
            == ["CT 512 (pydicom-data)", "CT small (pydicom)", "MR small (pydicom)"]
        )
    )

    # Sign out; the page is gone without a login.
    driver.find_element(By.ID, "logout-button").click()
    WebDriverWait(driver, 20).until(lambda d: "/login" in d.current_url)
    driver.get(live_server + "/")
    assert "/login" in driver.current_url
