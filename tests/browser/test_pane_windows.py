"""Window/level, the hover readout, the 3D slice plane and volume presets, and the keys.

The readout's value is checked against pydicom: the voxel it names is taken back to the
DICOM file's row and column through world coordinates, and the HU there comes from
pydicom's modality LUT, not from our previews.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_pane_tools import _demo_ids, _drawn, _view, _wait
from tests.browser.test_review_grid import (
    _crop,
    _label_pixels,
    _login,
    _screenshot,
    _wait_all_ready,
)

pytestmark = pytest.mark.browser

CT_512 = "CT 512 (pydicom-data)"


def _pane(driver, study: int):  # type: ignore[no-untyped-def]
    return driver.find_element(By.CSS_SELECTOR, f".pane[data-study-id='{study}']")


def _hu_at(path: Path, world_ras: list[float]) -> float:
    """pydicom's HU at the pixel nearest a RAS world point of a single-frame CT."""
    ds = pydicom.dcmread(path)
    hu = apply_modality_lut(ds.pixel_array, ds).astype(np.float64)
    lps = np.array([-world_ras[0], -world_ras[1], world_ras[2]])
    origin = np.asarray(ds.ImagePositionPatient, dtype=float)
    row_dir = np.asarray(ds.ImageOrientationPatient[:3], dtype=float)  # along a row: columns
    col_dir = np.asarray(ds.ImageOrientationPatient[3:], dtype=float)  # down a column: rows
    dr, dc = (float(v) for v in ds.PixelSpacing)  # row spacing, column spacing
    d = lps - origin
    col = round(float(d @ row_dir) / dc)
    row = round(float(d @ col_dir) / dr)
    return float(hu[row, col])


def _voxel_world(view: dict[str, Any], voxel: list[int]) -> list[float]:
    """World (RAS mm) of a full-resolution canonical voxel: the preview's origin is the
    canonical corner and its spacing is `step` full voxels."""
    return [view["origin"][d] + voxel[d] * view["spacing"][d] / view["step"][d] for d in range(3)]


def _hover(driver, study: int, fx: float, fy: float) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return driver.execute_script(
        "const v = document.querySelector(`.pane[data-study-id='${arguments[0]}'] .pane-view`);"
        "const r = v.getBoundingClientRect();"
        "v.dispatchEvent(new MouseEvent('mousemove', {bubbles: true,"
        " clientX: r.x + arguments[1] * r.width, clientY: r.y + arguments[2] * r.height}));"
        "return JSON.parse(v.closest('.pane').dataset.readout || 'null');",
        study,
        fx,
        fy,
    )


def test_window_presets_drag_and_readout_in_hu(live_server: str, browser) -> None:  # type: ignore[no-untyped-def]
    driver = browser
    _login(driver, live_server)
    (study,) = _demo_ids(driver, live_server, [CT_512])
    driver.get(f"{live_server}/review?studies={study}")
    _wait_all_ready(driver, 1)
    pane = _pane(driver, study)
    box = pane.find_element(By.CSS_SELECTOR, ".pane-view")
    view = _view(driver, study)
    assert view["values"] and view["units"] == "HU"

    def use(preset: str) -> np.ndarray:
        pane.find_element(By.CSS_SELECTOR, ".wl-menu summary").click()
        pane.find_element(By.CSS_SELECTOR, f".wl-preset[data-preset='{preset}']").click()
        _wait(
            lambda: (
                _drawn(driver, study)["colorLevel"]
                == next(
                    (p["window"][0] + p["window"][1]) / 2
                    for p in view["presets"]
                    if p["key"] == preset
                )
            ),
            what=f"the {preset} window on the image actor",
        )
        time.sleep(0.6)
        shot = _screenshot(driver)
        shot.save(ARTIFACTS / f"window-{preset}.png")
        return _crop(shot, box).mean(axis=2)

    # The overlay off, so the grey levels themselves are compared.
    pane.find_element(By.CSS_SELECTOR, ".overlay-toggle").click()
    brain = use("brain")
    drawn = _drawn(driver, study)
    assert (drawn["colorWindow"], drawn["colorLevel"]) == (80, 40)
    assert "W 80 L 40 HU" in pane.find_element(By.CSS_SELECTOR, ".wl-text").text
    bone = use("bone")
    drawn = _drawn(driver, study)
    assert (drawn["colorWindow"], drawn["colorLevel"]) == (1800, 400)
    # Brain tissue (~30-40 HU) is mid-grey in the brain window (80 wide at 40) and dark in
    # the bone window (1800 wide at 400): compare the middle of the head.
    h, w = brain.shape
    middle = (slice(int(0.45 * h), int(0.55 * h)), slice(int(0.45 * w), int(0.55 * w)))
    assert brain[middle].mean() > bone[middle].mean() + 20, (
        brain[middle].mean(),
        bone[middle].mean(),
    )
    pane.find_element(By.CSS_SELECTOR, ".overlay-toggle").click()

    # Left-drag: right widens the window, down raises the level; the view does not pan.
    camera = driver.execute_script(
        "const p = document.querySelector(`.pane[data-study-id='${arguments[0]}']`);"
        "const v = window.portalPane.viewComponent(p.querySelector('.pane-view > div'));"
        "return v.renderer.getActiveCamera().getFocalPoint();",
        study,
    )
    ActionChains(driver).move_to_element(box).click_and_hold().move_by_offset(
        60, 40
    ).release().perform()
    dragged = _drawn(driver, study)
    assert dragged["colorWindow"] > 1800 and dragged["colorLevel"] > 400
    assert camera == driver.execute_script(
        "const p = document.querySelector(`.pane[data-study-id='${arguments[0]}']`);"
        "const v = window.portalPane.viewComponent(p.querySelector('.pane-view > div'));"
        "return v.renderer.getActiveCamera().getFocalPoint();",
        study,
    )

    # The preview is 171×171 (every third voxel); resting on the slice brings the full
    # 512×512 slice, drawn instead of it.
    assert view["step"][:2] == [3, 3]
    _wait(
        lambda: _drawn(driver, study)["fine"] == [512, 512, 1],
        timeout=30,
        what="the full-resolution slice",
    )
    time.sleep(0.6)
    _screenshot(driver).save(ARTIFACTS / "window-full-resolution.png")
    # Hover readout: the value at the named voxel is pydicom's HU there, at full resolution
    # (voxels between the preview's every third one included).
    source = Path(get_testdata_file("693_UNCI.dcm"))
    off_grid = 0
    for fx, fy in ((0.5, 0.5), (0.42, 0.55), (0.6, 0.4), (0.55, 0.62), (0.47, 0.45)):
        readout = _hover(driver, study, fx, fy)
        assert readout is not None and readout["value"] is not None and readout["fine"]
        world = _voxel_world(view, readout["voxel"])
        assert readout["value"] == _hu_at(source, world), (readout, world)
        off_grid += any(v % 3 for v in readout["voxel"][:2])
    assert off_grid >= 1  # not only voxels the preview has too
    text = pane.find_element(By.CSS_SELECTOR, ".readout").text
    assert " mm · " in text and "HU" in text


def test_three_d_plane_follows_the_slice_and_volume_presets(live_server: str, browser) -> None:  # type: ignore[no-untyped-def]
    driver = browser
    _login(driver, live_server)
    (study,) = _demo_ids(driver, live_server, ["MNI152 T1 2mm"])
    driver.get(f"{live_server}/review?studies={study}")
    _wait_all_ready(driver, 1)
    pane = _pane(driver, study)
    view = _view(driver, study)
    pane.find_element(By.CSS_SELECTOR, ".view-axis[data-axis='sagittal']").click()
    driver.execute_script(
        "window.dash_clientside.set_props({type: 'pane-slider', study: arguments[0]},"
        " {value: 30});",
        study,
    )
    x = view["origin"][0] + 30 * view["spacing"][0]
    _wait(lambda: _drawn(driver, study)["slice"] == 30, what="sagittal slice 30")
    pane.find_element(By.XPATH, ".//label[contains(., '3D')]").click()

    def drawn3d() -> dict[str, Any]:
        return driver.execute_script(f"return window.portalViewer.drawn3d({study});")

    _wait(
        lambda: (
            (d := drawn3d()) is not None
            and d["plane"] is not None
            and abs(d["plane"][0] - x) < 1e-3
            and abs(d["plane"][1] - x) < 1e-3
        ),
        timeout=60,
        what="the 3D plane frame at the sagittal slice",
    )
    state = drawn3d()
    assert state["planeVisible"] and not state["volumeVisible"] and state["surfaces"] >= 2
    box = pane.find_element(By.CSS_SELECTOR, ".pane-view")
    time.sleep(0.8)
    surfaces_only = _screenshot(driver)
    surfaces_only.save(ARTIFACTS / "three-d-plane.png")
    assert _label_pixels(_crop(surfaces_only, box)) > 500
    pane.find_element(By.CSS_SELECTOR, ".vol-preset[data-volume='context']").click()
    _wait(lambda: drawn3d()["volumeVisible"], what="the volume rendering")
    time.sleep(1.0)
    with_volume = _screenshot(driver)
    with_volume.save(ARTIFACTS / "three-d-volume.png")
    grey = _crop(with_volume, box)
    assert np.abs(grey - _crop(surfaces_only, box)).mean() > 1.0
    pane.find_element(By.CSS_SELECTOR, ".plane-toggle").click()
    _wait(lambda: not drawn3d()["planeVisible"], what="the plane to hide")


def test_keys_are_listed_and_act_on_the_active_pane(live_server: str, browser) -> None:  # type: ignore[no-untyped-def]
    driver = browser
    _login(driver, live_server)
    (study,) = _demo_ids(driver, live_server, ["MNI152 T1 1mm"])
    driver.get(f"{live_server}/review?studies={study}")
    _wait_all_ready(driver, 1)
    box = _pane(driver, study).find_element(By.CSS_SELECTOR, ".pane-view")
    ActionChains(driver).move_to_element(box).perform()
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys("?")
    _wait(lambda: driver.find_element(By.ID, "keys-help").is_displayed(), what="the help overlay")
    listed = driver.find_element(By.ID, "keys-help").text
    for description in (
        "Show or hide the segmentation overlay",
        "Cycle views",
        "Next window preset",
        "Flag the active pane",
        "Next slice",
    ):
        assert description in listed, description
    body.send_keys("?")
    state = lambda: driver.execute_script(f"return window.portalViewer.state({study});")  # noqa: E731
    body.send_keys("v")
    _wait(lambda: state()["axis"] == "coronal", what="v to show the coronal view")
    assert _drawn(driver, study)["dim"] == 1
    body.send_keys("o")
    _wait(lambda: state()["overlay"] is False, what="o to hide the overlay")
    body.send_keys("o")
    start = state()["index"]["coronal"]
    body.send_keys("\ue013")  # arrow up
    _wait(lambda: state()["index"]["coronal"] == start + 1, what="arrow up to step a slice")
    # Zoom in with the right-button drag, then `r` brings the whole slice back.
    scale = (
        "const p = document.querySelector(`.pane[data-study-id='${arguments[0]}']`);"
        "const v = window.portalPane.viewComponent(p.querySelector('.pane-view > div'));"
        "return v.renderer.getActiveCamera().getParallelScale();"
    )
    start_scale = driver.execute_script(scale, study)
    driver.execute_script(
        "const p = document.querySelector(`.pane[data-study-id='${arguments[0]}']`);"
        "const v = window.portalPane.viewComponent(p.querySelector('.pane-view > div'));"
        "const c = v.renderer.getActiveCamera(); c.setParallelScale(c.getParallelScale() / 3);"
        "v.renderView();",
        study,
    )
    assert driver.execute_script(scale, study) < start_scale / 2
    body.send_keys("r")
    _wait(
        # The whole slice again (vtk.js fits the visible slice's bounds, a little tighter
        # than the first fit, which took the volume's).
        lambda: driver.execute_script(scale, study) > 0.7 * start_scale,
        what="r to reset the zoom",
    )
