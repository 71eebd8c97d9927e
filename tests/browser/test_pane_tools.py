"""The pane's picture tools, read from screen pixels and from what vtk.js really draws.

* Left-right: a head with a marker only on the patient's left (and anterior, superior),
  stored RAS and LPS, shows the marker on the screen's right under the letter L in axial
  and coronal views (radiological convention), and in front (screen left, letter A) in the
  sagittal view; superior is up in both.
* Linked scrolling: wheeling one pane moves the others to the same world position, read
  back from each pane's vtk.js image mapper and image data (not from our own state).
* Overlay tools: opacity, outline-only, per-label hide and the overlay toggle change the
  label colours on screen as they should.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from selenium.webdriver.common.by import By

from portal.config import Settings
from portal.db.session import Database
from portal.services.importer import ImportSettings, import_paths
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_review_grid import (
    _crop,
    _label_pixels,
    _login,
    _screenshot,
    _wait_all_ready,
)

pytestmark = pytest.mark.browser


def _left_head(folder: Path, stored: str) -> None:
    """64×72×40 1 mm ellipsoid head centred at world 0; marker at x<0 (patient left),
    y>0 (anterior), z>0 (superior), labelled 1."""
    folder.mkdir(parents=True)
    i, j, k = np.meshgrid(np.arange(64), np.arange(72), np.arange(40), indexing="ij")
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    affine[:3, 3] = [-31.5, -35.5, -19.5]
    x, y, z = i - 31.5, j - 35.5, k - 19.5
    head = ((x / 28) ** 2 + (y / 32) ** 2 + (z / 18) ** 2) <= 1
    data = np.where(head, 400, 0).astype(np.int16)
    marker = (x > -20) & (x < -8) & (y > 10) & (y < 24) & (z > 2) & (z < 12)
    data[marker] = 900
    labels = marker.astype(np.uint8)
    if stored == "LPS":
        data, labels = data[::-1, ::-1], labels[::-1, ::-1]
        flip = np.diag([-1.0, -1.0, 1.0, 1.0])
        flip[:3, 3] = [63, 71, 0]
        affine = affine @ flip
    nib.save(nib.Nifti1Image(data, affine), folder / f"left_{stored}.nii.gz")
    nib.save(nib.Nifti1Image(labels, affine), folder / f"left_{stored}-label.nii.gz")
    assert "".join(nib.aff2axcodes(nib.load(folder / f"left_{stored}.nii.gz").affine)) == stored


# Marker centre in world mm (x, y, z) and, per view, where it must appear on screen.
MARKER_MM = (-14.0, 17.0, 7.0)
VIEWS = {
    # axis: (world dim of the slice, letters left/right/top, marker right of centre?)
    "axial": (2, ("R", "L", "A"), True),
    "coronal": (1, ("R", "L", "S"), True),
    "sagittal": (0, ("A", "P", "S"), False),
}


def _view(driver, study: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    pane = driver.find_element(By.CSS_SELECTOR, f".pane[data-study-id='{study}']")
    return json.loads(pane.get_attribute("data-view"))


def _drawn(driver, study: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return driver.execute_script(f"return window.portalViewer.drawn({study});")


def _set_slice(driver, study: int, index: int) -> None:  # type: ignore[no-untyped-def]
    driver.execute_script(
        "window.dash_clientside.set_props({type: 'pane-slider', study: arguments[0]},"
        " {value: arguments[1]});",
        study,
        index,
    )


def _wait(predicate, timeout: float = 20, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _import(settings: Settings, folders: list[Path], project: str) -> list[int]:
    database = Database(settings.resolved_database_url)
    ids: list[int] = []
    try:
        for folder in folders:
            report = import_paths(
                database,
                ImportSettings(
                    settings.store_dir,
                    settings.preview_dir,
                    settings.preview_max_dim,
                    settings.max_voxels,
                ),
                project,
                [folder],
            )
            assert report.refused == [] and len(report.imported) == 1
            ids += report.imported
    finally:
        database.dispose()
    return ids


def test_left_marker_right_of_screen_under_l_in_every_view(
    demo_settings: Settings, live_server: str, browser, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folders = []
    for stored in ("RAS", "LPS"):
        _left_head(tmp_path / stored, stored)
        folders.append(tmp_path / stored)
    ids = _import(demo_settings, folders, "left-right")
    driver = browser
    _login(driver, live_server)
    driver.get(f"{live_server}/review?studies={ids[0]},{ids[1]}")
    _wait_all_ready(driver, 2)
    for axis, (dim, (left, right, top), marker_right) in VIEWS.items():
        for study in ids:
            pane = driver.find_element(By.CSS_SELECTOR, f".pane[data-study-id='{study}']")
            pane.find_element(By.CSS_SELECTOR, f".view-axis[data-axis='{axis}']").click()
            view = _view(driver, study)
            index = round((MARKER_MM[dim] - view["origin"][dim]) / view["spacing"][dim])
            _set_slice(driver, study, index)
            _wait(
                lambda s=study, i=index, d=dim: (
                    (_drawn(driver, s) or {}).get("slice") == i and _drawn(driver, s)["dim"] == d
                ),
                what=f"{axis} slice {index} in pane {study}",
            )
        time.sleep(0.8)
        shot = _screenshot(driver)
        shot.save(ARTIFACTS / f"left-right-{axis}.png")
        for study in ids:
            pane = driver.find_element(By.CSS_SELECTOR, f".pane[data-study-id='{study}']")
            view_box = pane.find_element(By.CSS_SELECTOR, ".pane-view")
            px = _crop(shot, view_box)
            spread = px.max(axis=2) - px.min(axis=2)
            lum = px.mean(axis=2)
            h, w = lum.shape
            central = np.zeros_like(lum, dtype=bool)
            central[int(0.1 * h) : int(0.9 * h), int(0.1 * w) : int(0.9 * w)] = True
            coloured = np.argwhere((spread > 60) & central)
            content = np.argwhere((lum > 30) & central)
            title = f"{axis}, study {study}"
            assert len(coloured) > 50 and len(content) > 500, title
            (mrow, mcol), (crow, ccol) = coloured.mean(axis=0), content.mean(axis=0)
            if marker_right:
                assert mcol > ccol + 5, f"{title}: patient left is not on screen right"
            else:
                assert mcol < ccol - 5, f"{title}: anterior is not on screen left"
            assert mrow < crow - 5, f"{title}: {top} is not on top"
            letters = {
                side: pane.find_element(By.CSS_SELECTOR, f".orient-{side}")
                for side in ("left", "right", "top")
            }
            assert letters["left"].text == left and letters["right"].text == right, title
            assert letters["top"].text == top, title
            box = view_box.rect
            middle = box["x"] + box["width"] / 2
            assert letters["right"].rect["x"] > middle > letters["left"].rect["x"], title


DEMO_LINKED = ["MNI152 T1 1mm", "MNI152 T1 2mm", "MNI152 T1 1mm (LAS on disk)"]


def _demo_ids(driver, url: str, names: list[str]) -> list[int]:  # type: ignore[no-untyped-def]
    found = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0] + '/api/v1/studies?limit=100').then(r => r.json())"
        ".then(j => done(j.items.map(s => [s.name, s.id])));",
        url,
    )
    by_name = dict(found)
    return [int(by_name[n]) for n in names]


def _wheel(driver, study: int, steps: int) -> None:  # type: ignore[no-untyped-def]
    """Wheel events one at a time over the pane's view, as a hand would turn it."""
    for _ in range(abs(steps)):
        driver.execute_script(
            "const v = document.querySelector(`.pane[data-study-id='${arguments[0]}'] .pane-view`);"
            "const r = v.getBoundingClientRect();"
            "v.dispatchEvent(new WheelEvent('wheel', {deltaY: arguments[1], bubbles: true,"
            " cancelable: true, clientX: r.x + r.width / 2, clientY: r.y + r.height / 2}));",
            study,
            -100 if steps > 0 else 100,
        )
        time.sleep(0.05)


def test_linked_scrolling_moves_all_panes_to_the_same_world_z(live_server: str, browser) -> None:  # type: ignore[no-untyped-def]
    driver = browser
    _login(driver, live_server)
    ids = _demo_ids(driver, live_server, DEMO_LINKED)
    driver.get(f"{live_server}/review?studies={','.join(map(str, ids))}")
    _wait_all_ready(driver, len(ids))
    before = _screenshot(driver)
    start = _drawn(driver, ids[0])
    _wheel(driver, ids[0], 15)
    target = start["position"] + 15 * start["spacing"]
    _wait(
        lambda: abs(_drawn(driver, ids[0])["position"] - target) < 1e-3,
        what="the scrolled pane to reach its slice",
    )

    def linked() -> bool:
        drawn = [_drawn(driver, s) for s in ids]
        return all(abs(d["position"] - target) <= d["spacing"] / 2 + 1e-3 for d in drawn)

    _wait(linked, what="the linked panes to follow to the same world z")
    time.sleep(0.5)
    after = _screenshot(driver)
    after.save(ARTIFACTS / "linked-scrolling.png")
    for study in ids:
        box = driver.find_element(By.CSS_SELECTOR, f".pane[data-study-id='{study}'] .pane-view")
        # Every pane shows another slice now: its pixels changed.
        assert np.abs(_crop(after, box) - _crop(before, box)).mean() > 0.5, study
    # Unlinked, the others stay where they are.
    driver.find_element(By.CSS_SELECTOR, ".link-tools [data-link='position']").click()
    others = {s: _drawn(driver, s)["slice"] for s in ids[1:]}
    _wheel(driver, ids[0], -5)
    _wait(
        lambda: abs(_drawn(driver, ids[0])["position"] - (target - 5 * start["spacing"])) < 1e-3,
        what="the scrolled pane to move back",
    )
    time.sleep(0.5)
    assert {s: _drawn(driver, s)["slice"] for s in ids[1:]} == others
    driver.find_element(By.CSS_SELECTOR, ".link-tools [data-link='position']").click()


def _hue_pixels(px: np.ndarray, colour: list[int]) -> int:
    """Pixels tinted towards a label colour: clearly coloured and nearest that colour's hue."""
    spread = px.max(axis=2) - px.min(axis=2)
    c = np.asarray(colour, dtype=np.float64)
    c = c - c.mean()
    tint = px - px.mean(axis=2, keepdims=True)
    norm = np.linalg.norm(tint, axis=2) * (np.linalg.norm(c) or 1.0)
    cos = (tint @ c) / np.where(norm == 0, 1.0, norm)
    return int(((spread > 40) & (cos > 0.9)).sum())


def test_overlay_opacity_outline_and_label_visibility(live_server: str, browser) -> None:  # type: ignore[no-untyped-def]
    driver = browser
    _login(driver, live_server)
    (study,) = _demo_ids(driver, live_server, ["MNI152 T1 1mm"])
    driver.get(f"{live_server}/review?studies={study}")
    _wait_all_ready(driver, 1)
    time.sleep(1.0)
    pane = driver.find_element(By.CSS_SELECTOR, f".pane[data-study-id='{study}']")
    box = pane.find_element(By.CSS_SELECTOR, ".pane-view")
    labels = _view(driver, study)["labels"]
    assert len(labels) >= 2

    def pixels(name: str) -> np.ndarray:
        time.sleep(0.6)
        shot = _screenshot(driver)
        shot.save(ARTIFACTS / f"overlay-{name}.png")
        return _crop(shot, box)

    def set_opacity(percent: int) -> None:
        driver.execute_script(
            "const r = arguments[0]; r.value = arguments[1];"
            "r.dispatchEvent(new Event('input', {bubbles: true}));",
            pane.find_element(By.CSS_SELECTOR, ".overlay-opacity"),
            percent,
        )

    filled = pixels("filled")
    full = _label_pixels(filled)
    per_label = [_hue_pixels(filled, lab["color"]) for lab in labels[:2]]
    assert full > 2000 and min(per_label) > 300, per_label

    set_opacity(0)
    assert _label_pixels(pixels("opacity-0")) < 0.02 * full
    set_opacity(100)
    opaque = pixels("opacity-100")
    assert _label_pixels(opaque) >= 0.9 * full
    set_opacity(50)

    pane.find_element(By.CSS_SELECTOR, ".overlay-outline").click()
    outline = _label_pixels(pixels("outline"))
    assert 0.03 * full < outline < 0.8 * full, (outline, full)
    pane.find_element(By.CSS_SELECTOR, ".overlay-outline").click()

    pane.find_element(By.CSS_SELECTOR, f".legend-item[data-label='{labels[0]['value']}']").click()
    hidden = pixels("first-label-hidden")
    assert _hue_pixels(hidden, labels[0]["color"]) < 0.05 * per_label[0]
    assert _hue_pixels(hidden, labels[1]["color"]) > 0.7 * per_label[1]
    pane.find_element(By.CSS_SELECTOR, f".legend-item[data-label='{labels[0]['value']}']").click()

    pane.find_element(By.CSS_SELECTOR, ".overlay-toggle").click()
    assert _label_pixels(pixels("overlay-off")) < 0.02 * full
    pane.find_element(By.CSS_SELECTOR, ".overlay-toggle").click()
    assert _label_pixels(pixels("overlay-on")) > 0.9 * full
