"""The review grid: every layout draws every pane, page flips stay inside the WebGL budget
without reloading the document, maximise keeps the other panes, and the shortcut help.

Pixels come from screenshots cropped to each pane; which panes must show label colours is
decided from the label preview itself (RGBA voxels on the slice the pane opens on).
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from portal.config import Settings
from portal.db.models import Study
from portal.db.session import Database
from portal.imaging.vti import read_vti_bytes
from portal.services.live import LAYOUTS
from portal.services.store import preview_file
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_review_grid import (
    _crop,
    _grey_pixels,
    _label_pixels,
    _login,
    _screenshot,
)

pytestmark = pytest.mark.browser

CONTEXT_BUDGET = 16
FLIPS = 20
HEAP_GROWTH_LIMIT = 0.20


@dataclass(frozen=True)
class GridStudy:
    study_id: int
    name: str
    labels_on_middle_slice: bool


@pytest.fixture(scope="module")
def grid_studies(demo_settings: Settings) -> Iterator[list[GridStudy]]:
    """The demo studies (the first seven by id), and whether each one's label preview has
    voxels on the middle axial slice, the one a pane opens on."""
    database = Database(demo_settings.resolved_database_url)
    found: list[GridStudy] = []
    with database.session() as s:
        for study in s.scalars(
            select(Study).where(Study.superseded_at.is_(None)).order_by(Study.id).limit(7)
        ):
            path = preview_file(demo_settings.preview_dir, study.uid, "labels.vti.gz")
            on_slice = False
            if path.exists():
                rgba = read_vti_bytes(gzip.decompress(path.read_bytes())).array
                on_slice = bool((rgba[:, :, rgba.shape[2] // 2, 3] > 0).any())
            found.append(GridStudy(study.id, study.name, on_slice))
    assert len(found) == 7, found
    yield found


def _href(studies: list[GridStudy], layout: str) -> str:
    return "/review?studies=" + ",".join(str(s.study_id) for s in studies) + f"&layout={layout}"


def _ready(driver, count: int, timeout: float = 120) -> None:  # type: ignore[no-untyped-def]
    """Wait until the grid (not mid-flip) holds `count` panes, all with a first frame."""

    def done(d) -> bool:  # type: ignore[no-untyped-def]
        panes = d.find_elements(By.CSS_SELECTOR, ".pane-grid:not(.flipping) .pane[data-study-id]")
        return len(panes) == count and all(p.get_attribute("data-state") == "ready" for p in panes)

    try:
        WebDriverWait(driver, timeout).until(done)
    except Exception:
        _screenshot(driver).save(ARTIFACTS / "grid-stuck.png")
        raise
    time.sleep(0.8)  # the label layer's first frame follows the image's


def _stats(driver) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return dict(driver.execute_script("return window.portalContexts.stats()"))


def _heap_mb(driver) -> float:  # type: ignore[no-untyped-def]
    """Used JS heap after a full collection (chromium runs with --expose-gc)."""
    return float(
        driver.execute_script(
            "window.gc(); window.gc(); return performance.memory.usedJSHeapSize / 1e6;"
        )
    )


def _check_panes(driver, studies: dict[int, GridStudy], what: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Every pane shows image content; panes with labels on their slice show colour."""
    shot = _screenshot(driver)
    problems = []
    for pane in driver.find_elements(By.CSS_SELECTOR, ".pane-grid .pane[data-study-id]"):
        study = studies[int(pane.get_attribute("data-study-id"))]
        px = _crop(shot, pane.find_element(By.CSS_SELECTOR, ".pane-view"))
        lit = int((px.mean(axis=2) > 40).sum())
        if lit < 300 or _grey_pixels(px) + _label_pixels(px) < 300:
            problems.append(f"{what}: {study.name} blank ({lit} lit pixels)")
        if study.labels_on_middle_slice and _label_pixels(px) < 50:
            problems.append(f"{what}: {study.name} has no label colours")
    return problems


def _choose_layout(driver, label: str) -> None:  # type: ignore[no-untyped-def]
    driver.find_element(By.ID, "review-layout").click()
    option = WebDriverWait(driver, 10).until(
        lambda d: next(
            (
                e
                for e in d.find_elements(By.CSS_SELECTOR, ".dash-options-list-option-text span")
                if e.text == label
            ),
            None,
        )
    )
    option.click()


def test_every_layout_draws_every_pane(  # type: ignore[no-untyped-def]
    live_server: str, browser, grid_studies: list[GridStudy]
) -> None:
    driver = browser
    _login(driver, live_server)
    by_id = {s.study_id: s for s in grid_studies}
    driver.get(live_server + _href(grid_studies, "1x1"))
    driver.execute_script("window.__sameDocument = true;")
    problems: list[str] = []
    figures: dict[str, Any] = {}
    for name, (rows, cols) in LAYOUTS.items():
        if name != "1x1":
            _choose_layout(driver, f"{rows}×{cols}")
        count = min(rows * cols, len(grid_studies))
        started = time.monotonic()
        _ready(driver, count)
        grid = driver.find_element(By.CSS_SELECTOR, ".pane-grid")
        assert grid.get_attribute("data-layout") == name
        assert f"layout={name}" in driver.current_url
        shown = [
            int(p.get_attribute("data-study-id"))
            for p in driver.find_elements(By.CSS_SELECTOR, ".pane[data-study-id]")
        ]
        assert shown == [s.study_id for s in grid_studies[:count]], (name, shown)
        stats = _stats(driver)
        figures[name] = {"ready_s": round(time.monotonic() - started, 1), **stats}
        assert stats["live"] <= CONTEXT_BUDGET and stats["evicted"] == 0, (name, stats)
        _screenshot(driver).save(ARTIFACTS / f"grid-layout-{name}.png")
        problems += _check_panes(driver, by_id, name)
    assert driver.execute_script("return window.__sameDocument === true"), "document reloaded"
    print("layouts:", json.dumps(figures))
    assert not problems, problems


def test_twenty_page_flips_stay_within_the_context_budget(  # type: ignore[no-untyped-def]
    live_server: str, browser, grid_studies: list[GridStudy]
) -> None:
    """2×2 over seven studies: pages of 4 and 3 panes. Without releasing the old page's
    contexts, 20 flips would mount 70 views against a budget of 16."""
    driver = browser
    _login(driver, live_server)
    by_id = {s.study_id: s for s in grid_studies}
    driver.get(live_server + _href(grid_studies, "2x2"))
    _ready(driver, 4)
    driver.execute_script("window.__sameDocument = true;")
    heap_before = _heap_mb(driver)
    created_before = _stats(driver)["created"]
    problems: list[str] = []
    flips = []
    for flip in range(FLIPS):
        forward = flip % 2 == 0
        started = time.monotonic()
        if flip % 4 < 2:
            driver.find_element(
                By.CSS_SELECTOR, ".pager a.page-next" if forward else ".pager a.page-prev"
            ).click()
        else:  # the keyboard flips too
            driver.find_element(By.TAG_NAME, "body").send_keys(
                Keys.PAGE_DOWN if forward else Keys.PAGE_UP
            )
        _ready(driver, 3 if forward else 4)
        assert f"page={2 if forward else 1}" in driver.current_url
        stats = _stats(driver)
        flips.append({"flip": flip + 1, "s": round(time.monotonic() - started, 1), **stats})
        assert stats["live"] <= CONTEXT_BUDGET, flips[-1]
        assert stats["evicted"] == 0, flips[-1]
        problems += _check_panes(driver, by_id, f"flip {flip + 1}")
    _screenshot(driver).save(ARTIFACTS / "grid-after-20-flips.png")
    heap_after = _heap_mb(driver)
    growth = (heap_after - heap_before) / heap_before
    stats = _stats(driver)
    report = {
        "heap_before_mb": round(heap_before, 1),
        "heap_after_mb": round(heap_after, 1),
        "growth": round(growth, 3),
        "contexts": stats,
        "flips": flips,
    }
    (ARTIFACTS / "grid-flips.json").write_text(json.dumps(report, indent=1))
    print("page flips:", json.dumps({k: v for k, v in report.items() if k != "flips"}))
    assert driver.execute_script("return window.__sameDocument === true"), "document reloaded"
    # 70 views were mounted over the flips; every one had its own context.
    assert stats["created"] - created_before >= 70
    assert not problems, problems
    assert growth <= HEAP_GROWTH_LIMIT, report


def test_maximise_and_restore_keep_the_other_panes(  # type: ignore[no-untyped-def]
    live_server: str, browser, grid_studies: list[GridStudy]
) -> None:
    driver = browser
    _login(driver, live_server)
    driver.get(live_server + _href(grid_studies, "2x2"))
    _ready(driver, 4)
    driver.execute_script(
        "window.__canvases = Array.from(document.querySelectorAll('.pane-grid canvas'));"
    )
    before = _stats(driver)
    fetches = (
        "return performance.getEntriesByType('resource').filter(e => /\\.vti/.test(e.name)).length"
    )
    fetched = driver.execute_script(fetches)
    panes = driver.find_elements(By.CSS_SELECTOR, ".pane[data-study-id]")
    grid_rect = driver.find_element(By.CSS_SELECTOR, ".pane-grid").rect
    small = panes[1].rect
    panes[1].find_element(By.CSS_SELECTOR, ".pane-max").click()
    WebDriverWait(driver, 10).until(lambda d: "pane-maximised" in panes[1].get_attribute("class"))
    time.sleep(2)  # the view re-renders at its new size
    big = panes[1].rect
    assert big["width"] >= grid_rect["width"] - 2 and big["height"] >= grid_rect["height"] - 2
    assert big["width"] > 1.8 * small["width"]
    shot = _screenshot(driver)
    shot.save(ARTIFACTS / "grid-maximised.png")
    px = _crop(shot, panes[1].find_element(By.CSS_SELECTOR, ".pane-view"))
    assert _grey_pixels(px) + _label_pixels(px) > 2000, "maximised pane is blank"

    # Restore with the key (the maximised pane is the active one).
    driver.find_element(By.TAG_NAME, "body").send_keys("m")
    WebDriverWait(driver, 10).until(
        lambda d: not d.find_elements(By.CSS_SELECTOR, ".pane.pane-maximised")
    )
    time.sleep(1.5)
    same = driver.execute_script(
        "const now = Array.from(document.querySelectorAll('.pane-grid canvas'));"
        "return now.length === window.__canvases.length"
        " && now.every((c, i) => c === window.__canvases[i] && c.isConnected);"
    )
    assert same, "the panes' canvases were replaced"
    after = _stats(driver)
    assert after["live"] == before["live"] and after["created"] == before["created"], (
        before,
        after,
    )
    assert driver.execute_script(fetches) == fetched, "volumes fetched again"
    by_id = {s.study_id: s for s in grid_studies}
    _screenshot(driver).save(ARTIFACTS / "grid-restored.png")
    assert not _check_panes(driver, by_id, "restored")


def test_shortcut_help_lists_the_registered_keys(  # type: ignore[no-untyped-def]
    live_server: str, browser, grid_studies: list[GridStudy]
) -> None:
    driver = browser
    _login(driver, live_server)
    driver.get(live_server + _href(grid_studies, "2x2"))
    _ready(driver, 4)
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys("?")
    help_box = WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "keys-help"))
    labels = [r.get_attribute("data-label") for r in help_box.find_elements(By.CSS_SELECTOR, "tr")]
    for label in ["Help", "Next page", "Previous page", "Next study", "Previous study", "Maximise"]:
        assert label in labels, labels
    assert "PageDown" in help_box.text and "?" in help_box.text
    _screenshot(driver).save(ARTIFACTS / "grid-help.png")
    body.send_keys(Keys.ESCAPE)
    WebDriverWait(driver, 10).until(lambda d: not d.find_elements(By.ID, "keys-help"))

    # Another script's key shows the next time the list opens; a taken key is refused.
    driver.execute_script(
        "window.__hits = 0; window.portalKeys.register({key: 'x', label: 'Test key',"
        " description: 'counts', handler: () => { window.__hits += 1; }});"
    )
    refused = driver.execute_script(
        "try { window.portalKeys.register({key: 'm', label: 'Again', handler: () => 0});"
        " return null; } catch (e) { return e.message; }"
    )
    assert refused and "Maximise" in refused
    body.send_keys("x")
    assert driver.execute_script("return window.__hits") == 1
    body.send_keys("?")
    help_box = WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "keys-help"))
    assert "Test key" in help_box.text
    body.send_keys("?")
    WebDriverWait(driver, 10).until(lambda d: not d.find_elements(By.ID, "keys-help"))

    # Keys typed into a form field are text, not shortcuts.
    reason = driver.find_element(By.CSS_SELECTOR, ".pane input.reason, .pane .reason input")
    reason.send_keys("x?")
    assert driver.execute_script("return window.__hits") == 1
    assert not driver.find_elements(By.ID, "keys-help")
    reason.clear()

    # ] moves the active pane along the grid.
    first = driver.find_elements(By.CSS_SELECTOR, ".pane[data-study-id]")[0]
    first.find_element(By.CSS_SELECTOR, ".pane-title").click()
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys("]")
    active = driver.execute_script("return window.portalKeys.activePane().dataset.studyId")
    assert int(active) == grid_studies[1].study_id
