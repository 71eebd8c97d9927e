"""Review grid against a bare dash-vtk page and NiiVue on a 512x512x300 CT, same browser run.

Run: ``python benchmarks/grid.py [--runs N]`` (default 3). Needs Debian's chromium and
chromium-driver, npm for NiiVue; uses the helpers of ``benchmarks/first_pane.py``.

* Builds the demo catalog in a temporary folder, then generates the CT phantom of
  ``benchmarks/phantoms.py`` at 512x512x300 (0.7x0.7x1 mm) and at 320x320x160 (another
  seed), each with its organ label map, as ``.nii.gz`` pairs, and imports them. Starts
  ``portal serve`` (gunicorn, 2 workers).
* Per run, each in a fresh chromium profile (cold cache), logged in where it applies:
  1. portal, the CT alone in a 1x1 layout: time until its pane is ready. The preview files
     the pane fetched are found with the Resource Timing API (every request under
     ``/api/v1/studies/<id>/`` made by script) and, in the first run, downloaded with the
     session cookie exactly as sent (gzip, not inflated).
  2. the bare page (``benchmarks/bare_vtk.py``): a Dash app with one ``dash_vtk.View`` of the
     pane's size and a ``SliceRepresentation`` + ``Reader`` per fetched file, served from a
     static route with the same bytes and Content-Encoding; no portal code, no login. Same
     ready detection (non-black canvas, 100 ms poll), same slice.
  3. NiiVue 0.69.0 (``first_pane.NIIVUE_PAGE``) on the CT's ``.nii.gz`` image and label
     map, one canvas of the pane's size; the clock stops after a pixel read-back.
  4. portal, 3x3 grid of 9 different studies (7 demo + the two CTs): all panes ready; then,
     with the 9 shown, 100 slice steps in the CT pane by wheel events over its view, each
     step waiting for the slice text and then the pixels to change.
* For the portal's and the bare page's first pane, where the time goes, from Resource
  Timing and the texture-upload calls (see ``grid_js.INSTRUMENT``).

Software WebGL (SwiftShader) on a small, shared machine: compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grid_js
import grid_report
from first_pane import (
    NIIVUE_PAGE,
    PANE_TIMEOUT_S,
    PASSWORD,
    browser,
    free_port,
    install_niivue,
    login,
    portal_server,
    static_server,
    stop_group,
    study_ids,
    time_niivue,
)
from phantoms import CT_LABELS, write_ct_study
from selenium import webdriver

from portal.cli import prepare_demo
from portal.config import Settings
from portal.db.session import Database
from portal.imaging.vti import read_vti_bytes
from portal.services.discovery import StudySource
from portal.services.importer import ImportSettings, import_sources

HERE = Path(__file__).resolve().parent
CT_SMALL = ("CT phantom 320x320x160", (320, 320, 160), 1)
SCROLL_STEPS = 100
PORTAL_THREADS = 1  # `portal serve`'s default, as first_pane.portal_server runs it
NIIVUE_CT_TIMEOUT_S = 900  # NiiVue blocked its page for over 120 s on this CT


# ---------------------------------------------------------------- data


def ct_name(shape: tuple[int, int, int]) -> str:
    return "CT phantom " + "x".join(map(str, shape))


def import_cts(settings: Settings, src: Path, shape: tuple[int, int, int]) -> tuple[Path, Path]:
    """Write both CT phantoms with label maps and import them; return the big pair."""
    src.mkdir(parents=True)
    big = write_ct_study(src, shape, name="ct")
    small_name, small_shape, seed = CT_SMALL
    small = write_ct_study(src, small_shape, seed, name="ct320")
    sources = [
        StudySource(
            name=name,
            image_paths=(image,),
            kind="nifti",
            label_path=label,
            label_names=dict(CT_LABELS),
            modality="CT",
        )
        for name, (image, label) in ((ct_name(shape), big), (small_name, small))
    ]
    db = Database(settings.resolved_database_url)
    try:
        report = import_sources(db, ImportSettings.of(settings), "demo", sources)
    finally:
        db.dispose()
    if report.refused or len(report.imported) != 2:
        raise RuntimeError(f"CT import: imported {report.imported}, refused {report.refused}")
    return big


# ---------------------------------------------------------------- one page load


@contextlib.contextmanager
def instrumented() -> Iterator[webdriver.Chrome]:
    with browser() as driver:
        driver.execute_cdp_cmd(
            "Page.addScriptToEvaluateOnNewDocument", {"source": grid_js.INSTRUMENT}
        )
        yield driver


def wait_for(driver: webdriver.Chrome, script: str, done: Any, what: str) -> Any:
    deadline = time.monotonic() + PANE_TIMEOUT_S
    while True:
        state = driver.execute_script(script)
        if done(state):
            return state
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {PANE_TIMEOUT_S} s: {state}")
        time.sleep(0.1)


def portal_pane(url: str, ct_id: int) -> dict[str, Any]:
    """The CT alone in a 1x1 review layout: ready time, fetches, cookies, view size."""
    with instrumented() as driver:
        login(driver, url)
        driver.get(f"{url}/review?studies={ct_id}&layout=1x1")
        (pane,) = wait_for(
            driver, grid_js.PANES, lambda ps: ps and ps[0]["state"] == "ready", "portal pane"
        )
        coloured = labelled(driver)
        page = driver.execute_script(grid_js.COLLECT)
        prefix = f"{url}/api/v1/studies/{ct_id}/"
        fetched = [
            r
            for r in page["resources"]
            if r["name"].startswith(prefix) and r["type"] in ("xmlhttprequest", "fetch")
        ]
        cookies = "; ".join(f"{c['name']}={c['value']}" for c in driver.get_cookies())
        return {
            "ready": float(pane["readyAt"]),
            "labelled": coloured,
            "size": (pane["w"], pane["h"]),
            "k": pane["k"],
            "fetched": fetched,
            "page": page,
            "cookie": cookies,
            "browser": driver.capabilities.get("browserVersion", "?"),
        }


def bare_pane(url: str, size: tuple[int, int]) -> dict[str, Any]:
    with instrumented() as driver:
        driver.get(url + "/")
        bare = wait_for(driver, grid_js.BARE, lambda b: b and b["state"] == "ready", "bare page")
        if (bare["w"], bare["h"]) != size:
            raise RuntimeError(f"bare view {bare['w']}x{bare['h']}, the pane's is {size}")
        coloured = labelled(driver)
        page = driver.execute_script(grid_js.COLLECT)
        fetched = [r for r in page["resources"] if "/files/" in r["name"]]
        return {
            "ready": float(bare["readyAt"]),
            "labelled": coloured,
            "fetched": fetched,
            "page": page,
        }


def labelled(driver: webdriver.Chrome) -> float:
    """When label colours first showed (ms since navigation); then every fetch has ended."""
    state = wait_for(
        driver,
        "return window.__timing && window.__timing.colouredAt || null;",
        lambda t: t is not None,
        "label colours",
    )
    time.sleep(0.5)  # a fetch shows in Resource Timing once it has ended
    return float(state)


def grid_and_scroll(url: str, ids: list[int], ct_id: int) -> dict[str, Any]:
    """3x3 grid: all panes ready; then slice steps in the CT pane with the 9 shown."""
    with browser() as driver:
        driver.set_script_timeout(SCROLL_STEPS * 10 + 60)
        driver.command_executor.client_config.timeout = SCROLL_STEPS * 10 + 120
        login(driver, url)
        driver.get(f"{url}/review?studies={','.join(map(str, ids))}&layout=3x3")
        panes = wait_for(
            driver,
            grid_js.PANES,
            lambda ps: len(ps) == len(ids) and all(p["state"] == "ready" for p in ps),
            "3x3 grid",
        )
        ready = [float(p["readyAt"]) for p in panes]
        scroll = driver.execute_async_script(grid_js.SCROLL, ct_id, SCROLL_STEPS)
        return {"first": min(ready), "all": max(ready), "scroll": scroll}


# ---------------------------------------------------------------- the bare page


def fetch_wire_bytes(fetched: list[dict[str, Any]], cookie: str, folder: Path) -> list[dict]:
    """Download what the pane fetched as the server sends it (gzip stays gzip)."""
    folder.mkdir(parents=True, exist_ok=True)
    layers = []
    for n, entry in enumerate(sorted(fetched, key=lambda r: r["start"])):
        request = urllib.request.Request(
            entry["name"], headers={"Cookie": cookie, "Accept-Encoding": "gzip"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            encoding = response.headers.get("Content-Encoding")
            mimetype = response.headers.get_content_type()
        if entry["encoded"] and entry["encoded"] != len(raw):
            raise RuntimeError(f"{entry['name']}: {len(raw)} B now, {entry['encoded']} B in page")
        body = gzip.decompress(raw) if encoding == "gzip" else raw
        if b"<VTKFile" not in body[:400]:
            print(f"# the pane also fetched {entry['name']} (not a .vti, left out)", flush=True)
            continue
        array = read_vti_bytes(body).array
        path = folder / f"{n}.bin"
        path.write_bytes(raw)
        layers.append(
            {
                "url": entry["name"],
                "file": str(path),
                "encoding": encoding,
                "mimetype": mimetype,
                "components": 1 if array.ndim == 3 else int(array.shape[3]),
                "property": window_of(array),
                "bytes": len(raw),
            }
        )
    # As in the pane: grey image slices first, the RGBA label slice on top.
    return sorted(layers, key=lambda layer: layer["components"] > 1)


def window_of(array: Any) -> dict[str, float] | None:
    """uint8 previews map 1:1 (as the pane sets it); other one-value data its full range."""
    if array.ndim != 3:
        return None
    if array.dtype.name == "uint8":
        return {"colorWindow": 255, "colorLevel": 127.5}
    lo, hi = float(array.min()), float(array.max())
    return {"colorWindow": max(hi - lo, 1.0), "colorLevel": (hi + lo) / 2}


@contextlib.contextmanager
def bare_server(spec: dict[str, Any], folder: Path) -> Iterator[str]:
    spec_path = folder / "spec.json"
    spec_path.write_text(json.dumps(spec))
    port = free_port()
    log_path = folder / "bare.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            # The same server and worker settings as `portal serve --workers 2`.
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--chdir",
                str(HERE),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--threads",
                str(PORTAL_THREADS),
                "--worker-class",
                "gthread",
                f"bare_vtk:wsgi({json.dumps(str(spec_path))})",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("bare dash-vtk page did not start:\n" + log_path.read_text())
                with contextlib.suppress(OSError):
                    with urllib.request.urlopen(url + "/files/0.vti", timeout=2) as r:
                        if r.status == 200:
                            break
                time.sleep(0.3)
            yield url
        finally:
            stop_group(proc)


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per configuration")
    parser.add_argument("--ct-shape", default="512,512,300", help="for trying the script out")
    parser.add_argument("--no-niivue", action="store_true", help="for trying the script out")
    parser.add_argument("--dump", type=Path, help="write the raw measurements here (JSON)")
    args = parser.parse_args()
    runs = max(1, args.runs)
    shape = tuple(int(v) for v in args.ct_shape.split(","))
    if len(shape) != 3:
        parser.error("--ct-shape takes three numbers, e.g. 512,512,300")
    tmp = Path(tempfile.mkdtemp(prefix="portal-bench-grid-"))
    res: dict[str, list[dict[str, Any]]] = {k: [] for k in ("portal", "bare", "niivue", "grid")}
    loads: list[float] = []
    browser_version = "?"
    try:
        settings = Settings.from_env(
            {
                "PORTAL_DATA_DIR": str(tmp / "data"),
                "PORTAL_ADMIN_PASSWORD": PASSWORD,
                "PORTAL_SECRET_KEY": "bench-secret-key",
            }
        )
        started = time.monotonic()
        report, _ = prepare_demo(settings)
        if report.refused:
            raise RuntimeError(f"demo import refused: {report.refused}")
        ct_image, ct_label = import_cts(settings, tmp / "ct-source", shape)  # type: ignore[arg-type]
        print(f"# data ready in {time.monotonic() - started:.0f} s", flush=True)
        site = tmp / "niivue-site"
        (site / "case0").mkdir(parents=True)
        shutil.copyfile(install_niivue(tmp / "npm"), site / "niivue.umd.js")
        (site / "index.html").write_text(NIIVUE_PAGE)
        shutil.copyfile(ct_image, site / "case0" / ct_image.name)
        shutil.copyfile(ct_label, site / "case0" / ct_label.name)
        niivue_query = f"&img={ct_image.name}&lab={ct_label.name}&nlab={max(CT_LABELS)}"

        with contextlib.ExitStack() as stack:
            url = stack.enter_context(portal_server(settings.data_dir))
            site_url = stack.enter_context(static_server(site))
            with browser() as driver:
                login(driver, url)
                names = study_ids(driver, url)
            ct_id = names[ct_name(shape)]  # type: ignore[arg-type]
            others = sorted(n for n in names if not n.startswith("CT phantom"))[:7]
            grid_ids = [ct_id, names[CT_SMALL[0]], *(names[n] for n in others)]
            if len(set(grid_ids)) != 9:
                raise RuntimeError(f"need 9 different studies, the catalog has {sorted(names)}")
            bare_url = None
            for run in range(runs):
                loads.append(os.getloadavg()[0])
                p = portal_pane(url, ct_id)
                p["name"] = ct_name(shape)  # type: ignore[arg-type]
                browser_version = p["browser"]
                res["portal"].append(p)
                say(run, runs, "portal 1x1 CT", f"{p['ready']:.0f} ms, view {p['size']}")
                if bare_url is None:
                    layers = fetch_wire_bytes(p["fetched"], p["cookie"], tmp / "bare")
                    spec = {"width": p["size"][0], "height": p["size"][1], "k_slice": p["k"]}
                    bare_url = stack.enter_context(
                        bare_server({**spec, "layers": layers}, tmp / "bare")
                    )
                    print(
                        "# bare page serves: "
                        + ", ".join(
                            f"{la['url'].split('/api/v1')[-1]} ({la['bytes'] / 1e6:.2f} MB "
                            f"{la['encoding']})"
                            for la in layers
                        ),
                        flush=True,
                    )
                b = bare_pane(bare_url, p["size"])
                res["bare"].append(b)
                say(run, runs, "bare dash-vtk", f"{b['ready']:.0f} ms")
                if not args.no_niivue:
                    n = time_niivue(site_url, 1, p["size"], niivue_query, NIIVUE_CT_TIMEOUT_S)
                    res["niivue"].append(n)
                    say(run, runs, "NiiVue 1 canvas", n.get("failed") or f"{n['first']:.0f} ms")
                g = grid_and_scroll(url, grid_ids, ct_id)
                res["grid"].append(g)
                s = g["scroll"]
                rate = len(s["times"]) / s["total"] * 1000 if s.get("total") else 0.0
                g["rate"] = rate
                say(
                    run,
                    runs,
                    "3x3 grid",
                    f"all {g['all']:.0f} ms; scroll {rate:.1f}/s "
                    f"({s['from']} -> {s.get('to')}, {s['lost']} wheel(s) lost and sent again) "
                    f"{s.get('error') or ''}",
                )
        if args.dump:
            args.dump.write_text(json.dumps(res, default=str))
        grid_report.report_all(res, runs, loads, browser_version)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def say(run: int, runs: int, what: str, text: str) -> None:
    print(f"run {run + 1}/{runs} {what}: {text}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
