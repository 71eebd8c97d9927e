"""Adding a segmentation from a pane's review panel, in a real browser.

The label file goes through the pane's `dcc.Upload`; the pane is re-mounted in its grid
slot and offers the new segmentation in its chooser, while the other pane keeps its DOM
element and WebGL canvas (nothing else is reloaded). Choosing the new one overlays it:
its label colour shows on screen on the side where its voxels lie.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from portal.config import Settings
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_pane_tools import _import, _left_head, _wait
from tests.browser.test_review_grid import (
    _crop,
    _login,
    _screenshot,
    _wait_all_ready,
)

pytestmark = pytest.mark.browser


def _pane(driver, study: int):  # type: ignore[no-untyped-def]
    return driver.find_element(By.CSS_SELECTOR, f".pane[data-study-id='{study}']")


def test_added_segmentation_appears_in_the_chooser_without_reloading_other_panes(
    demo_settings: Settings, live_server: str, browser, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    for stored in ("RAS", "LPS"):
        _left_head(tmp_path / stored, stored)
    ids = _import(demo_settings, [tmp_path / "RAS", tmp_path / "LPS"], "add-segmentation")
    edited, other = ids
    # A reader's edit on the RAS head's own grid: a block on the patient's right (x > 0).
    reference = nib.load(tmp_path / "RAS" / "left_RAS.nii.gz")
    labels = np.zeros(reference.shape, np.uint8)
    labels[38:54, 30:46, 14:26] = 4
    edit = tmp_path / "reader-edit.nii.gz"
    nib.save(nib.Nifti1Image(labels, reference.affine), edit)

    driver = browser
    _login(driver, live_server)
    driver.get(f"{live_server}/review?studies={edited},{other}")
    _wait_all_ready(driver, 2)
    driver.execute_script(
        'const p = document.querySelector(".pane[data-study-id=\'" + arguments[0] + "\']");'
        "p.dataset.kept = 'yes'; window.__otherCanvas = p.querySelector('.pane-view canvas');",
        other,
    )
    before = driver.execute_script("return document.querySelectorAll('canvas').length;")
    pane = _pane(driver, edited)
    assert not pane.find_elements(By.CSS_SELECTOR, ".seg-choice")  # one segmentation: no menu
    pane.find_element(By.CSS_SELECTOR, ".review-details summary").click()
    pane.find_element(By.CSS_SELECTOR, "input.seg-add-name, .seg-add-name input").send_keys(
        "reader edit"
    )
    pane.find_element(By.CSS_SELECTOR, ".seg-add-upload input[type=file]").send_keys(str(edit))

    # The pane comes back as a new element with the chooser; the other pane is untouched.
    WebDriverWait(driver, 60).until(
        lambda d: len(_pane(d, edited).find_elements(By.CSS_SELECTOR, ".seg-choice")) == 2
    )
    _wait_all_ready(driver, 2)
    pane = _pane(driver, edited)
    names = [
        b.get_attribute("textContent") for b in pane.find_elements(By.CSS_SELECTOR, ".seg-choice")
    ]
    assert names == ["left_RAS-label", "reader edit"]
    message = pane.find_element(By.CSS_SELECTOR, ".pane-message").text
    assert message == "Added 'reader edit': choose it in the segmentation menu."
    kept = driver.execute_script(
        'const p = document.querySelector(".pane[data-study-id=\'" + arguments[0] + "\']");'
        "return [p.dataset.kept, p.querySelector('.pane-view canvas') === window.__otherCanvas];",
        other,
    )
    assert kept == ["yes", True]
    # The replaced view's context went with its element: no more canvases than before.
    assert driver.execute_script("return document.querySelectorAll('canvas').length;") <= before

    # Choosing it overlays it. The middle axial slice (k = 20) misses the imported marker
    # (k 22-31) and crosses the edit (k 14-25), which lies at x > 0, the patient's right:
    # the screen's left in the radiological view.
    view_box = pane.find_element(By.CSS_SELECTOR, ".pane-view")
    # Coloured pixels already there (the legend's swatches, the imported map if any).
    before = _coloured(_crop(_screenshot(driver), view_box))
    pane.find_element(By.CSS_SELECTOR, ".seg-menu summary").click()
    pane.find_elements(By.CSS_SELECTOR, ".seg-choice")[1].click()
    _wait(
        lambda: (
            driver.execute_script(
                "return window.portalViewer.state(arguments[0]).segmentation;", edited
            )
            == 1
        ),
        what="the pane to overlay the new segmentation",
    )
    legend = pane.find_element(By.CSS_SELECTOR, ".legend-seg[data-seg='1']")
    assert "hidden" not in (legend.get_attribute("class") or "")
    assert "label 4" in legend.get_attribute("textContent")

    def new_colour() -> np.ndarray:
        after = _coloured(_crop(_screenshot(driver), view_box))
        return after & ~before if after.shape == before.shape else after

    _wait(lambda: new_colour().sum() > 200, what="the new segmentation's colour on screen")
    _screenshot(driver).save(ARTIFACTS / "add-segmentation.png")
    rows, columns = np.nonzero(new_colour())
    width = before.shape[1]
    assert columns.mean() < width / 2, (columns.mean(), width)


def _coloured(px: np.ndarray) -> np.ndarray:
    """Clearly coloured (non-grey) pixels: overlay and swatches, not the greyscale image."""
    return np.asarray((px.max(axis=2) - px.min(axis=2)) > 60)
