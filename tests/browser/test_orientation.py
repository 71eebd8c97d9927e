"""Radiological display is a medical fact: patient right on screen left, anterior on top.

A synthetic head with a labelled marker in the right-anterior quadrant is imported twice,
stored RAS and stored LPS (voxel axes flipped, affine adjusted). In both panes the marker's
colour must sit left of and above the centre of the head, read from the screenshot pixels.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from selenium.webdriver.common.by import By

from portal.config import Settings
from portal.db.session import Database
from portal.services.importer import ImportSettings, import_paths
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_review_grid import _login, _wait_all_ready

pytestmark = pytest.mark.browser


def _head(folder: Path, stored: str) -> None:
    """64×72×40 1 mm ellipsoid head, world centre at 0; marker at x>0 (R), y>0 (A)."""
    folder.mkdir(parents=True)
    i, j, k = np.meshgrid(np.arange(64), np.arange(72), np.arange(40), indexing="ij")
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    affine[:3, 3] = [-31.5, -35.5, -19.5]
    x, y, z = i - 31.5, j - 35.5, k - 19.5
    head = ((x / 28) ** 2 + (y / 32) ** 2 + (z / 18) ** 2) <= 1
    data = np.where(head, 400, 0).astype(np.int16)
    marker = (x > 8) & (x < 20) & (y > 10) & (y < 24) & (np.abs(z) < 10)
    data[marker] = 900
    labels = marker.astype(np.uint8)
    if stored == "LPS":
        # Same world, voxel axes i and j reversed: the affine columns flip and the origin
        # moves to the other corner.
        data, labels = data[::-1, ::-1], labels[::-1, ::-1]
        flip = np.diag([-1.0, -1.0, 1.0, 1.0])
        flip[:3, 3] = [63, 71, 0]
        affine = affine @ flip
    nib.save(nib.Nifti1Image(data, affine), folder / f"head_{stored}.nii.gz")
    nib.save(nib.Nifti1Image(labels, affine), folder / f"head_{stored}-label.nii.gz")
    ref = nib.load(folder / f"head_{stored}.nii.gz")
    assert "".join(nib.aff2axcodes(ref.affine)) == stored


def _central(points: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    h, w = shape[:2]
    keep = (
        (points[:, 0] > 0.1 * h)
        & (points[:, 0] < 0.9 * h)
        & (points[:, 1] > 0.1 * w)
        & (points[:, 1] < 0.9 * w)
    )
    return points[keep]


def test_marker_right_anterior_shows_left_top(
    demo_settings: Settings, live_server: str, browser, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    ids = []
    database = Database(demo_settings.resolved_database_url)
    for stored in ("RAS", "LPS"):
        _head(tmp_path / stored, stored)
        report = import_paths(
            database,
            ImportSettings(
                demo_settings.store_dir,
                demo_settings.preview_dir,
                demo_settings.preview_max_dim,
                demo_settings.max_voxels,
            ),
            "orientation",
            [tmp_path / stored],
        )
        assert report.refused == [] and len(report.imported) == 1
        ids += report.imported
    database.dispose()

    driver = browser
    _login(driver, live_server)
    driver.get(f"{live_server}/review?studies={ids[0]},{ids[1]}")
    _wait_all_ready(driver, 2)
    time.sleep(1.0)
    shot = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    shot.save(ARTIFACTS / "orientation.png")
    for pane in driver.find_elements(By.CSS_SELECTOR, ".pane[data-study-id]"):
        r = pane.find_element(By.CSS_SELECTOR, ".pane-view").rect
        px = np.asarray(
            shot.crop(
                (int(r["x"]), int(r["y"]), int(r["x"] + r["width"]), int(r["y"] + r["height"]))
            ),
            dtype=np.int16,
        )
        spread = px.max(axis=2) - px.min(axis=2)
        lum = px.mean(axis=2)
        coloured = np.argwhere(spread > 60)
        content = np.argwhere(lum > 30)
        # Ignore the legend and letters at the edges: keep the central 80 %.
        coloured, content = _central(coloured, lum.shape), _central(content, lum.shape)
        assert len(coloured) > 100 and len(content) > 1000
        (mrow, mcol), (crow, ccol) = coloured.mean(axis=0), content.mean(axis=0)
        title = pane.find_element(By.CSS_SELECTOR, ".pane-title").text
        assert mcol < ccol - 5, f"{title}: patient right is not on screen left"
        assert mrow < crow - 5, f"{title}: anterior is not on top"
