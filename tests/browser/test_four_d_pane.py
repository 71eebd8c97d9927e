"""The volume selector of a 4-D study swaps the pane's image for the chosen volume."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from portal.config import Settings
from portal.db.session import Database
from portal.services.importer import ImportSettings, import_paths
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_review_grid import _login, _wait_all_ready
from tests.integration.test_four_d import EXAMPLE_4D

pytestmark = pytest.mark.browser


def _pane_pixels(driver, pane) -> np.ndarray:  # type: ignore[no-untyped-def]
    shot = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    r = pane.find_element(By.CSS_SELECTOR, ".pane-view").rect
    box = (int(r["x"]), int(r["y"]), int(r["x"] + r["width"]), int(r["y"] + r["height"]))
    return np.asarray(shot.crop(box), dtype=np.int16)


def test_volume_slider_shows_the_other_volume(
    demo_settings: Settings, live_server: str, browser
) -> None:  # type: ignore[no-untyped-def]
    database = Database(demo_settings.resolved_database_url)
    report = import_paths(database, ImportSettings.of(demo_settings), "fmri", [EXAMPLE_4D])
    database.dispose()
    (study_id,) = report.imported
    driver = browser
    _login(driver, live_server)
    driver.get(f"{live_server}/review?studies={study_id}")
    _wait_all_ready(driver, 1)
    time.sleep(1.0)
    pane = driver.find_element(By.CSS_SELECTOR, ".pane[data-study-id]")
    control = pane.find_element(By.CSS_SELECTOR, ".volume-control")
    assert control.is_displayed() and "vol 1/2" in control.text
    before = _pane_pixels(driver, pane)
    driver.execute_script(
        "window.dash_clientside.set_props({type: 'pane-volume', study: arguments[0]}, {value: 1});",
        study_id,
    )
    WebDriverWait(driver, 30).until(lambda d: "vol 2/2" in control.text)
    # The browser fetches the second volume...
    WebDriverWait(driver, 60).until(
        lambda d: d.execute_script(
            "return performance.getEntriesByType('resource')"
            ".some(e => e.name.includes('/volumes/1/values.vti'));"
        )
    )
    # ...and draws it: this example's volumes differ by a few grey levels voxel to voxel.
    WebDriverWait(driver, 60).until(
        lambda d: (np.abs(_pane_pixels(d, pane) - before).max(axis=2) > 6).sum() > 200
    )
    after = _pane_pixels(driver, pane)
    Image.fromarray(after.astype(np.uint8)).save(ARTIFACTS / "four-d-volume-2.png")
    assert (after.mean(axis=2) > 30).sum() > 1000
