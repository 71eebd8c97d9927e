"""A colour DICOM shows in colour: pydicom's RGB test picture, read back from the screen."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from selenium.webdriver.common.by import By

from portal.config import Settings
from portal.db.session import Database
from portal.services.importer import ImportSettings, import_paths
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_review_grid import _login, _wait_all_ready

pytestmark = pytest.mark.browser


def test_rgb_study_is_shown_in_its_colours(
    demo_settings: Settings, live_server: str, browser
) -> None:  # type: ignore[no-untyped-def]
    # Bands from top to bottom: red, pink, green, light green, blue, light blue, greys.
    path = Path(str(get_testdata_file("SC_rgb.dcm", download=False)))
    database = Database(demo_settings.resolved_database_url)
    report = import_paths(database, ImportSettings.of(demo_settings), "colour", [path])
    database.dispose()
    assert report.refused == [] and len(report.imported) == 1
    driver = browser
    _login(driver, live_server)
    driver.get(f"{live_server}/review?studies={report.imported[0]}")
    _wait_all_ready(driver, 1)
    time.sleep(1.0)
    shot = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    shot.save(ARTIFACTS / "colour-pane.png")
    pane = driver.find_element(By.CSS_SELECTOR, ".pane[data-study-id]")
    r = pane.find_element(By.CSS_SELECTOR, ".pane-view").rect
    px = np.asarray(
        shot.crop((int(r["x"]), int(r["y"]), int(r["x"] + r["width"]), int(r["y"] + r["height"]))),
        dtype=np.int16,
    )
    red, green, blue = px[..., 0], px[..., 1], px[..., 2]
    pure = {
        "red": np.argwhere((red > 220) & (green < 40) & (blue < 40)),
        "green": np.argwhere((green > 220) & (red < 40) & (blue < 40)),
        "blue": np.argwhere((blue > 220) & (red < 40) & (green < 40)),
    }
    for name, where in pure.items():
        assert len(where) > 200, f"no {name} band on screen"
    # Row order of the bands is the picture's (row 0 at the top): red above green above blue.
    rows = {name: where[:, 0].mean() for name, where in pure.items()}
    assert rows["red"] < rows["green"] < rows["blue"], rows
    # Volume rendering is for grey-level volumes: the 3D choice is disabled here.
    mode = pane.find_element(By.CSS_SELECTOR, ".mode-toggle input[value='3d']")
    assert not mode.is_enabled()
    notes = pane.find_element(By.CSS_SELECTOR, ".pane-notes")
    assert "no patient position" in (notes.get_attribute("title") or "")
