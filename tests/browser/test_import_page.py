"""Upload a NIfTI image with its label map on the import page and review the result."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from portal.services.discovery import NOT_AN_IMAGE
from tests.browser.test_review_grid import ARTIFACTS, _login, _screenshot, _wait_all_ready
from tests.integration.test_importer import _case

pytestmark = pytest.mark.browser


def test_upload_queues_a_job_and_opens_the_study(live_server: str, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    image = _case(tmp_path / "case")
    (tmp_path / "case" / "readme.txt").write_text("not an image")
    driver = browser
    _login(driver, live_server)
    driver.get(live_server + "/import")
    project = WebDriverWait(driver, 20).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#import-project, #import-project input")
    )
    project.send_keys(Keys.CONTROL, "a")
    project.send_keys("uploads")
    WebDriverWait(driver, 5).until(lambda d: project.get_attribute("value") == "uploads")
    chooser = WebDriverWait(driver, 20).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#import-drop input.files-input")
    )
    chooser.send_keys(
        "\n".join(
            str(p)
            for p in [image, image.with_name("case-label.nii.gz"), image.with_name("readme.txt")]
        )
    )
    status = driver.find_element(By.ID, "import-status")
    WebDriverWait(driver, 120).until(lambda d: status.get_attribute("data-state") == "done")
    text = status.text
    _screenshot(driver).save(ARTIFACTS / "import-done.png")
    assert "1 imported" in text
    assert f"readme.txt: {NOT_AN_IMAGE}" in text
    status.find_element(By.LINK_TEXT, "review them").click()
    _wait_all_ready(driver, 1)
    pane = driver.find_element(By.CSS_SELECTOR, ".pane[data-study-id]")
    assert pane.find_element(By.CSS_SELECTOR, ".pane-title").text == "case"
