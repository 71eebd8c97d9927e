"""The dashboard's charts and the printable report, as a browser draws them.

Pixels, not DOM: the states chart must show bars in the state colours, and the report's
mosaic must show label colours over the grey image.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from portal.ui.pages.dashboard import STATE_COLORS
from tests.browser.conftest import ARTIFACTS
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def _screenshot(driver) -> Image.Image:  # type: ignore[no-untyped-def]
    return Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")


def _crop(driver, shot: Image.Image, element) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The element's pixels in a viewport screenshot (viewport, not page, coordinates)."""
    r = driver.execute_script("return arguments[0].getBoundingClientRect().toJSON()", element)
    box = (int(r["x"]), int(r["y"]), int(r["x"] + r["width"]), int(r["y"] + r["height"]))
    return np.asarray(shot.crop(box), dtype=np.int16)


def _near(px: np.ndarray, hex_colour: str, tolerance: int = 8) -> int:
    rgb = np.array([int(hex_colour[n : n + 2], 16) for n in (1, 3, 5)], dtype=np.int16)
    return int((np.abs(px - rgb).max(axis=2) <= tolerance).sum())


def _login(driver, url: str) -> None:  # type: ignore[no-untyped-def]
    driver.get(url + "/login")
    driver.delete_all_cookies()
    driver.get(url + "/login")
    driver.find_element(By.NAME, "username").send_keys("admin")
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    try:
        WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".ag-row"))
    except TimeoutException:
        _screenshot(driver).save(ARTIFACTS / "dashboard-login.png")
        console = [e["message"][:300] for e in driver.get_log("browser")][-20:]
        raise AssertionError("\n".join(console)) from None


def test_dashboard_draws_state_bars_and_report_shows_overlay(  # type: ignore[no-untyped-def]
    live_server: str, browser
) -> None:
    driver = browser
    _login(driver, live_server)
    # The case list's export link downloads the filter's review rows.
    link = driver.find_element(By.ID, "caselist-export-csv")
    assert link.get_attribute("href").endswith("/api/v1/exports/review.csv")
    csv_text = driver.execute_script(
        "return fetch(arguments[0]).then(r => r.text())", link.get_attribute("href")
    )
    header, *rows = csv_text.lstrip("\ufeff").splitlines()
    assert header.startswith("study_id,study,patient_name,project") and len(rows) >= 7
    # ... and follows the filter as it changes.
    driver.find_element(By.ID, "caselist-search").send_keys("MNI 1mm")
    WebDriverWait(driver, 10).until(
        lambda d: (
            d.find_element(By.ID, "caselist-export-xlsx")
            .get_attribute("href")
            .endswith("/api/v1/exports/review.xlsx?q=MNI+1mm")
        )
    )
    _screenshot(driver).save(ARTIFACTS / "caselist-export.png")

    driver.get(live_server + "/dashboard")
    states = "#dashboard-states"
    WebDriverWait(driver, 60).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, f"{states} .barlayer .point path")
    )
    WebDriverWait(driver, 30).until(
        lambda d: d.find_element(By.ID, "dashboard-summary").text.endswith("reads")
    )
    summary = driver.find_element(By.ID, "dashboard-summary").text
    shot = _screenshot(driver)
    shot.save(ARTIFACTS / "dashboard.png")
    chart = _crop(driver, shot, driver.find_element(By.CSS_SELECTOR, states))
    # Every demo study has review items, so at least one state has a bar of its colour.
    bar_pixels = {state: _near(chart, colour) for state, colour in STATE_COLORS.items()}
    assert max(bar_pixels.values()) > 1500, (bar_pixels, summary)
    for graph in ("readers", "throughput", "agreement"):
        assert driver.find_elements(By.CSS_SELECTOR, f"#dashboard-{graph} .main-svg")

    # The report of the first visible study: its mosaic shows label colours.
    first = driver.execute_script(
        "return fetch('/api/v1/studies?limit=100').then(r => r.json())"
        ".then(j => j.items.filter(s => s.segmentation_count > 0)[0].id)"
    )
    driver.get(f"{live_server}/reports/study/{first}")
    WebDriverWait(driver, 60).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "img.mosaic").get_property("naturalWidth") > 0
    )
    mosaic = driver.find_element(By.CSS_SELECTOR, "img.mosaic")
    driver.execute_script("arguments[0].scrollIntoView()", mosaic)
    shot = _screenshot(driver)
    shot.save(ARTIFACTS / "report.png")
    px = _crop(driver, shot, mosaic)
    spread = px.max(axis=2) - px.min(axis=2)
    assert (spread > 60).sum() > 500  # label overlay
    assert ((spread < 12) & (px.mean(axis=2) > 40)).sum() > 500  # grey image
    assert "Sign-off" in driver.page_source
