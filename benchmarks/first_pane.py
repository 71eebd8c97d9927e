"""Time to first pane: the review grid against NiiVue in the same headless chromium.

Run: ``python benchmarks/first_pane.py [--runs N]`` (default 3).

* Builds the demo catalog in a temporary folder, starts ``portal serve`` (gunicorn, 2
  workers) on a free port.
* Per run and per grid, a fresh chromium profile: log in (``next=`` a JSON route, so no Dash
  page is loaded or cached before the clock), open ``/review?studies=...`` and wait until
  every pane has ``data-state="ready"``. The pane script stamps ``data-ready-at`` with
  ``performance.now()`` (ms since navigation start); first pane = min, all panes = max. The
  pane script polls every 100 ms, so our figures carry up to 100 ms of detection lag.
* Baseline: NiiVue (npm ``@niivue/niivue``, installed into a temporary folder with npm and
  served with the same MNI152 1 mm image and label files by a local ``http.server``). One
  canvas, and four canvases (four Niivue instances, each with its own copy of the files),
  each the size of one of our panes; axial slice, label map as a discrete colour table via
  ``setColormapLabel``. The clock stops after ``drawScene()`` and a one-pixel
  ``readPixels`` (headless chromium otherwise reports loading done before the frame is).

Software WebGL (SwiftShader) on a small machine: compare the ratios, not the absolutes.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from portal.cli import prepare_demo
from portal.config import Settings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
VIEWPORT = (1600, 1100)
PASSWORD = "bench-password-1234"
NIIVUE_PACKAGE = "@niivue/niivue"
NIIVUE_VERSION = "0.69.0"
GRID_4 = [
    "MNI152 T1 1mm",
    "MNI152 T1 1mm (DICOM)",
    "MNI152 T1 1mm (LAS on disk)",
    "CT small (pydicom)",
]
PANE_TIMEOUT_S = 120  # our panes are ready in ~2 s; a pane still loading then is stuck
NIIVUE_TIMEOUT_S = 300
CHROME_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]

NIIVUE_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>niivue bench</title>
<style>
  body { margin: 0; background: #000; }
  #grid { display: flex; flex-wrap: wrap; gap: 4px; }
  canvas { display: block; }
</style></head>
<body><div id="grid"></div>
<script src="niivue.umd.js"></script>
<script>
(async function () {
  "use strict";
  const q = new URLSearchParams(location.search);
  const n = Number(q.get("n") || 1), w = Number(q.get("w") || 600), h = Number(q.get("h") || 600);
  const out = { ready: [], phases: [], size: [], lit: [], coloured: [], error: null };
  window.__bench = out;
  window.addEventListener("error", (e) => { out.error = String(e.message); });
  // File names in each case folder, and the label map's highest value (MNI: grey and
  // white matter).
  const img = q.get("img") || "mni152_1mm.nii.gz";
  const lab = q.get("lab") || "mni152_1mm-label.nii.gz";
  const nlab = Number(q.get("nlab") || 2);
  // Discrete table for the label map: 0 transparent, then one colour per value.
  const palette = [[230, 160, 40], [60, 120, 255], [80, 200, 80], [220, 60, 60],
                   [200, 80, 200], [60, 200, 200]];
  const table = { R: [0], G: [0], B: [0], A: [0], I: [0], labels: [""] };
  for (let v = 1; v <= nlab; v++) {
    const c = palette[(v - 1) % palette.length];
    table.R.push(c[0]); table.G.push(c[1]); table.B.push(c[2]); table.A.push(255);
    table.I.push(v); table.labels.push("label " + v);
  }
  async function one(i) {
    // NiiVue sizes its canvas to the parent element, so the parent gets the pane size.
    const box = document.createElement("div");
    box.style.width = w + "px";
    box.style.height = h + "px";
    const canvas = document.createElement("canvas");
    box.appendChild(canvas);
    document.getElementById("grid").appendChild(box);
    const nv = new niivue.Niivue({ sliceType: 0, backColor: [0, 0, 0, 1],
                                   show3Dcrosshair: false, isOrientCube: false });
    await nv.attachToCanvas(canvas);
    const attached = performance.now();
    await nv.loadVolumes([
      { url: "case" + i + "/" + img },
      { url: "case" + i + "/" + lab, opacity: 0.5 },
    ]);
    const loaded = performance.now();
    nv.volumes[1].setColormapLabel(table);
    nv.updateGLVolume();
    nv.drawScene();
    const gl = nv.gl, px = new Uint8Array(4);
    gl.readPixels(gl.drawingBufferWidth >> 1, gl.drawingBufferHeight >> 1, 1, 1,
                  gl.RGBA, gl.UNSIGNED_BYTE, px);
    out.ready[i] = performance.now();
    out.phases[i] = [attached, loaded, out.ready[i]];
    out.size[i] = [canvas.width, canvas.height];
    // Untimed check that the frame shows the image and the label colours.
    nv.drawScene();
    const W = gl.drawingBufferWidth, H = gl.drawingBufferHeight, all = new Uint8Array(W * H * 4);
    gl.readPixels(0, 0, W, H, gl.RGBA, gl.UNSIGNED_BYTE, all);
    let lit = 0, coloured = 0;
    for (let p = 0; p < all.length; p += 4) {
      const r = all[p], g = all[p + 1], b = all[p + 2];
      if (r + g + b > 24) lit += 1;
      if (Math.max(r, g, b) - Math.min(r, g, b) > 60) coloured += 1;
    }
    out.lit[i] = lit;
    out.coloured[i] = coloured;
  }
  try {
    await Promise.all(Array.from({ length: n }, (_, i) => one(i)));
    out.done = true;
  } catch (e) {
    out.error = String(e && e.stack || e);
  }
})();
</script></body></html>
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def median(values: list[float]) -> float:
    return statistics.median(values)


# ---------------------------------------------------------------- processes we start


@contextlib.contextmanager
def portal_server(data_dir: Path) -> Iterator[str]:
    """`portal serve` in its own process group; the whole group is stopped on exit."""
    port = free_port()
    env = dict(
        os.environ,
        PORTAL_DATA_DIR=str(data_dir),
        PORTAL_ADMIN_PASSWORD=PASSWORD,
        PORTAL_SECRET_KEY="bench-secret-key",
        PORTAL_LOG_LEVEL="WARNING",
    )
    log_path = data_dir / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "portal.cli", "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 90
            while True:
                if proc.poll() is not None:
                    raise RuntimeError("portal serve exited:\n" + log_path.read_text())
                try:
                    with urllib.request.urlopen(url + "/api/v1/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("portal serve did not answer:\n" + log_path.read_text())
                time.sleep(0.3)
            yield url
        finally:
            stop_group(proc)


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group we created (gunicorn master + workers), then SIGKILL."""
    for sig, wait_s in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            # The master is gone; make sure no worker of its group outlives it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            return
        except subprocess.TimeoutExpired:
            continue


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextlib.contextmanager
def static_server(root: Path) -> Iterator[str]:
    """A threaded http.server in this process, shut down on exit."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextlib.contextmanager
def browser() -> Iterator[webdriver.Chrome]:
    """Headless chromium with a fresh profile; chromedriver and the profile go on exit."""
    profile = tempfile.mkdtemp(prefix="portal-bench-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROME_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(CHROMEDRIVER)
    driver = None
    try:
        driver = webdriver.Chrome(service=service, options=options)
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": VIEWPORT[0], "height": VIEWPORT[1], "deviceScaleFactor": 1, "mobile": False},
        )
        yield driver
    finally:
        if driver is not None:
            with contextlib.suppress(Exception):
                driver.quit()
        with contextlib.suppress(Exception):
            service.stop()
        shutil.rmtree(profile, ignore_errors=True)


# ---------------------------------------------------------------- portal


def login(driver: webdriver.Chrome, url: str) -> None:
    driver.get(url + "/login?next=/api/v1/health")
    driver.find_element(By.NAME, "username").send_keys("admin")
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, 30).until(lambda d: "/login" not in d.current_url)


def study_ids(driver: webdriver.Chrome, url: str) -> dict[str, int]:
    driver.get(url + "/api/v1/studies?limit=100")
    items = json.loads(driver.find_element(By.TAG_NAME, "body").text)["items"]
    return {item["name"]: int(item["id"]) for item in items}


PANES_JS = """
return Array.from(document.querySelectorAll('.pane[data-study-id]')).map(function (p) {
  const c = p.querySelector('.pane-view canvas');
  const r = c ? c.getBoundingClientRect() : null;
  return {id: p.dataset.studyId, state: p.dataset.state || '',
          readyAt: p.dataset.readyAt ? Number(p.dataset.readyAt) : null,
          w: r ? Math.round(r.width) : 0, h: r ? Math.round(r.height) : 0};
});
"""


def time_grid(url: str, names: list[str]) -> dict[str, object]:
    """One run: fresh browser, log in, open the grid, wait for every pane to be ready."""
    with browser() as driver:
        login(driver, url)
        ids = study_ids(driver, url)
        missing = [n for n in names if n not in ids]
        if missing:
            raise RuntimeError(f"studies not in the demo catalog: {missing}")
        driver.get(url + "/review?studies=" + ",".join(str(ids[n]) for n in names))
        deadline = time.monotonic() + PANE_TIMEOUT_S
        while True:
            panes = driver.execute_script(PANES_JS)
            if len(panes) == len(names) and all(p["state"] == "ready" for p in panes):
                break
            if time.monotonic() > deadline:
                stuck = [p["id"] for p in panes if p["state"] != "ready"]
                console = [
                    f"{e.get('level')}: {str(e.get('message'))[:300]}"
                    for e in driver.get_log("browser")
                    if e.get("level") in ("SEVERE", "WARNING")
                ]
                return {
                    "failed": f"pane(s) {stuck} of {len(panes)} not ready after "
                    f"{PANE_TIMEOUT_S} s; browser console: {console[-5:] or 'nothing'}",
                    "browser": driver.capabilities.get("browserVersion", "?"),
                }
            time.sleep(0.2)
        ready = [float(p["readyAt"]) for p in panes]
        return {
            "first": min(ready),
            "all": max(ready),
            "pane_size": (panes[0]["w"], panes[0]["h"]),
            "browser": driver.capabilities.get("browserVersion", "?"),
        }


# ---------------------------------------------------------------- NiiVue


def install_niivue(prefix: Path) -> Path:
    """npm install the package into `prefix` (outside the repo); return its UMD bundle."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm not found")
    spec = f"{NIIVUE_PACKAGE}@{NIIVUE_VERSION}"
    view = subprocess.run(
        [npm, "view", spec, "version"], capture_output=True, text=True, timeout=120
    )
    if view.returncode != 0 or view.stdout.strip() != NIIVUE_VERSION:
        raise RuntimeError(f"npm view {spec} failed: {view.stderr.strip()[-500:]}")
    done = subprocess.run(
        [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", spec],
        capture_output=True,
        text=True,
        timeout=600,
    )
    bundle = prefix / "node_modules" / "@niivue" / "niivue" / "dist" / "niivue.umd.js"
    if done.returncode != 0 or not bundle.exists():
        raise RuntimeError(f"npm install {spec} failed: {done.stderr.strip()[-500:]}")
    return bundle


def niivue_site(root: Path, bundle: Path, image: Path, label: Path, copies: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(bundle, root / "niivue.umd.js")
    (root / "index.html").write_text(NIIVUE_PAGE)
    for i in range(copies):
        case = root / f"case{i}"
        case.mkdir(exist_ok=True)
        shutil.copyfile(image, case / "mni152_1mm.nii.gz")
        shutil.copyfile(label, case / "mni152_1mm-label.nii.gz")


def time_niivue(
    site_url: str,
    n: int,
    size: tuple[int, int],
    query: str = "",
    timeout_s: float = NIIVUE_TIMEOUT_S,
) -> dict[str, object]:
    """`query`: more page parameters (`&img=...&lab=...&nlab=...`; default the MNI pair)."""
    with browser() as driver:
        # NiiVue's texture work blocks the page for many seconds on SwiftShader (minutes for
        # a 512x512x300 CT); a poll that cannot run meanwhile must wait rather than fail,
        # and so must the HTTP call to chromedriver that carries it.
        driver.set_script_timeout(timeout_s)
        driver.command_executor.client_config.timeout = timeout_s + 60
        driver.get(f"{site_url}/index.html?n={n}&w={size[0]}&h={size[1]}{query}")
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                out = driver.execute_script("return window.__bench || null;")
            except TimeoutException:
                out = None
            if out and out.get("error"):
                return {"failed": "NiiVue page: " + str(out["error"])[:300]}
            if out and out.get("done"):
                break
            if time.monotonic() > deadline:
                return {"failed": f"NiiVue not done after {timeout_s:.0f} s: {out}"}
            time.sleep(0.2)
        if any(tuple(wh) != size for wh in out["size"]):
            return {"failed": f"NiiVue canvas size {out['size']}, wanted {size}"}
        if min(out["lit"]) < 1000 or min(out["coloured"]) < 100:
            return {"failed": f"NiiVue frame looks empty: lit={out['lit']} col={out['coloured']}"}
        first = min(range(n), key=lambda i: out["ready"][i])
        attached, loaded, ready = out["phases"][first]
        return {
            "first": min(out["ready"]),
            "all": max(out["ready"]),
            # First canvas: bundle + attach, loadVolumes, label table + first frame.
            "phases": (attached, loaded - attached, ready - loaded),
        }


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per configuration")
    args = parser.parse_args()
    runs = max(1, args.runs)
    for tool in (CHROMIUM, CHROMEDRIVER):
        if not Path(tool).exists():
            print(f"{tool} not found; install Debian's chromium and chromium-driver")
            return 2

    tmp = Path(tempfile.mkdtemp(prefix="portal-bench-pane-"))
    results: dict[str, list[dict[str, object]]] = {}
    niivue_note = ""
    browser_version = "?"
    pane_size = (600, 600)
    loads: list[float] = []
    try:
        settings = Settings.from_env(
            {
                "PORTAL_DATA_DIR": str(tmp / "data"),
                "PORTAL_ADMIN_PASSWORD": PASSWORD,
                "PORTAL_SECRET_KEY": "bench-secret-key",
            }
        )
        report, _ = prepare_demo(settings)
        if report.refused:
            raise RuntimeError(f"demo import refused: {report.refused}")
        demo_src = settings.data_dir / "demo-source"

        site_ctx: contextlib.AbstractContextManager[str | None] = contextlib.nullcontext(None)
        try:
            bundle = install_niivue(tmp / "npm")
            site = tmp / "niivue-site"
            image, label = demo_src / "mni152_1mm.nii.gz", demo_src / "mni152_1mm-label.nii.gz"
            niivue_site(site, bundle, image, label, copies=4)
            site_ctx = static_server(site)
        except Exception as exc:  # noqa: BLE001 - the portal figures still stand
            niivue_note = f"NiiVue baseline could not be measured: {exc}"
            print(niivue_note, flush=True)

        with portal_server(settings.data_dir) as url, site_ctx as site_url:
            with browser() as driver:
                login(driver, url)
                all_names = sorted(study_ids(driver, url))
            grids = {
                "portal, 4-study grid": GRID_4,
                f"portal, {len(all_names)}-study grid": all_names,
            }
            # Interleaved, so background load on the machine hits both sides alike.
            for run in range(runs):
                loads.append(os.getloadavg()[0])
                for label, names in grids.items():
                    r = time_grid(url, names)
                    results.setdefault(label, []).append(r)
                    browser_version = str(r["browser"])
                    if names is GRID_4 and "pane_size" in r:
                        pane_size = r["pane_size"]  # type: ignore[assignment]
                    report_run(run, runs, label, r)
                for n in (1, 4) if site_url else ():
                    label = f"NiiVue {NIIVUE_VERSION}, {n} canvas" + ("es" if n > 1 else "")
                    r = time_niivue(site_url, n, pane_size)
                    results.setdefault(label, []).append(r)
                    report_run(run, runs, label, r)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(
        f"# time to first pane: median of {runs} runs, fresh chromium {browser_version} "
        f"profile per run, viewport {VIEWPORT[0]}x{VIEWPORT[1]}, SwiftShader WebGL, "
        f"{os.cpu_count()} CPUs, 1-min load average at run start "
        + "/".join(f"{x:.1f}" for x in loads)
    )
    print(f"# pane canvas {pane_size[0]}x{pane_size[1]} CSS px (NiiVue canvases the same size)")
    header = f"{'configuration':<30}{'first ms':>10}{'all ms':>10}   runs (first/all ms)"
    print(header)
    print("-" * len(header))
    failures = []
    for label, rs in results.items():
        failures += [f"{label}: {r['failed']}" for r in rs if "failed" in r]
        ok = [r for r in rs if "failed" not in r]
        detail = ", ".join(
            "stuck" if "failed" in r else f"{r['first']:.0f}/{r['all']:.0f}" for r in rs
        )
        if not ok:
            print(f"{label:<30}{'-':>10}{'-':>10}   {detail}")
            continue
        first, all_ = median(values(ok, "first")), median(values(ok, "all"))
        print(f"{label:<30}{first:>10.0f}{all_:>10.0f}   {detail}")
    if failures:
        print(f"\n# {len(failures)} run(s) with a pane that never became ready (left out):")
        for line in failures:
            print("#   " + line)

    nv1 = results.get(f"NiiVue {NIIVUE_VERSION}, 1 canvas")
    nv4 = results.get(f"NiiVue {NIIVUE_VERSION}, 4 canvases")
    ours4 = results.get("portal, 4-study grid")
    if nv1 and nv4 and ours4 and all(values(x, "first") for x in (nv1, nv4, ours4)):
        phases = [r["phases"] for r in nv1 if "phases" in r]
        names = ("bundle + attach", "loadVolumes", "label table + first frame")
        print(
            "\n# NiiVue 1 canvas, median ms per phase: "
            + ", ".join(
                f"{name} {median([float(p[k]) for p in phases]):.0f}"  # type: ignore[index]
                for k, name in enumerate(names)
            )
        )
        print("\n# ratios ours / NiiVue (below 1: ours is faster)")
        for text, ours, base, key_ours, key_base in (
            ("first pane: 4-study grid / NiiVue 1 canvas", ours4, nv1, "first", "first"),
            ("first pane: 4-study grid / NiiVue 4 canvases", ours4, nv4, "first", "first"),
            ("all panes:  4-study grid / NiiVue 4 canvases", ours4, nv4, "all", "all"),
            *(
                (f"all panes:  {label[8:]} / NiiVue 4 canvases", rs, nv4, "all", "all")
                for label, rs in results.items()
                if label.startswith("portal, ") and rs is not ours4 and values(rs, "all")
            ),
        ):
            ratio = median(values(ours, key_ours)) / median(values(base, key_base))
            print(f"{text:<48}{ratio:.3f}x")
    if niivue_note:
        print("\n# " + niivue_note)
    return 0


def values(rs: list[dict[str, object]], key: str) -> list[float]:
    return [float(r[key]) for r in rs if "failed" not in r]  # type: ignore[arg-type]


def report_run(run: int, runs: int, label: str, r: dict[str, object]) -> None:
    if "failed" in r:
        print(f"run {run + 1}/{runs} {label}: FAILED, {r['failed']}", flush=True)
        return
    print(
        f"run {run + 1}/{runs} {label}: first {r['first']:.0f} ms, all {r['all']:.0f} ms",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
