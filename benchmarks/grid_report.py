"""Reporting for ``benchmarks/grid.py``: the figures, the ratios and where the time goes."""

from __future__ import annotations

import os
import statistics
from typing import Any

from first_pane import NIIVUE_VERSION, VIEWPORT


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


STEPS = (
    "HTML, JS bundles, Dash layout (-> dash-vtk chunk loaded)",
    "React mounts the views (-> 1st preview request)",
    "server (-> last response start)",
    "transfer (-> last response end)",
    "parse + vtk.js pipeline (-> 1st slice texture upload)",
    "texture upload calls, JS side (-> last call returns)",
    "GPU upload + render (async) + 100 ms poll (-> ready)",
)


def breakdown(run: dict[str, Any]) -> dict[str, float]:
    """The critical path of one first pane cut at the events above (ms each).

    The path runs through the first slice texture uploaded before the pane was ready: the
    fetches that had ended by then are the ones it waited for (the label map may end later).
    """
    fetched, timing, ready = run["fetched"], run["page"]["timing"] or {}, run["ready"]
    t_req = min(r["requestStart"] or r["start"] for r in fetched)
    # Slice-sized uploads only, not colour tables.
    tex = [t for t in timing.get("tex", []) if t_req <= t[0] < ready and t[2] >= 4096]
    t_tex0 = tex[0][0] if tex else ready
    waited = [r for r in fetched if r["responseEnd"] <= t_tex0] or fetched
    t_ttfb = max(r["responseStart"] for r in waited)
    t_end = max(r["responseEnd"] for r in waited)
    t_tex1 = max((t[0] + t[1] for t in tex), default=t_tex0)
    chunk = [
        r["responseEnd"]
        for r in run["page"]["resources"]
        if "async-ReactVTK" in r["name"] and r["responseEnd"] <= t_req
    ]
    cuts = [0.0, min(chunk, default=t_req), t_req, t_ttfb, t_end, t_tex0, t_tex1, ready]
    out = {name: cuts[i + 1] - cuts[i] for i, name in enumerate(STEPS)}
    out["main-thread long tasks after the fetch"] = sum(
        min(s + d, ready) - max(s, t_end)
        for s, d in timing.get("longtasks", [])
        if s + d > t_end and s < ready
    )
    return out


def print_breakdown(portal_runs: list[dict[str, Any]], bare_runs: list[dict[str, Any]]) -> None:
    p = [breakdown(r) for r in portal_runs]
    b = [breakdown(r) for r in bare_runs]
    print(
        f"\n# first pane, {portal_runs[0]['name']}: where the time goes"
        " (median ms; the steps add up to ready)"
    )
    print(f"{'step':<62}{'portal':>9}{'bare':>9}")
    for key in p[0]:
        print(f"{key:<62}{median([x[key] for x in p]):>9.0f}{median([x[key] for x in b]):>9.0f}")
    steps = {k: median([x[k] for x in p]) for k in STEPS}
    top = max(steps, key=lambda k: steps[k])
    print(f"# dominating step (portal): {top}, {steps[top]:.0f} ms of {sum(steps.values()):.0f}")
    sizes = ", ".join(
        f"{r['name'].rsplit('/', 1)[-1]} {r['encoded'] / 1e6:.2f} MB"
        for r in portal_runs[0]["fetched"]
    )
    print(f"# preview fetches (on the wire): {sizes}")


def report_all(
    res: dict[str, list[dict[str, Any]]], runs: int, loads: list[float], browser_version: str
) -> None:
    portal = median([r["ready"] for r in res["portal"]])
    portal_lab = median([r["labelled"] for r in res["portal"]])
    bare = median([r["ready"] for r in res["bare"]])
    bare_lab = median([r["labelled"] for r in res["bare"]])
    nv_ok = [r for r in res["niivue"] if "failed" not in r]
    niivue = median([float(r["first"]) for r in nv_ok])
    grid_all = median([r["all"] for r in res["grid"]])
    rates = [r["rate"] for r in res["grid"] if not r["scroll"].get("error")]
    size = res["portal"][0]["size"]
    print(
        f"\n# median of {runs} runs, fresh chromium {browser_version} profile per page load, "
        f"viewport {VIEWPORT[0]}x{VIEWPORT[1]}, SwiftShader WebGL, {os.cpu_count()} CPUs, "
        "1-min load average at run start " + "/".join(f"{x:.1f}" for x in loads)
    )
    print(f"# 1x1 pane view {size[0]}x{size[1]} CSS px (bare view and NiiVue canvas the same)")
    print("# ready: image content drawn (pane.js rule); labelled: label colours drawn too")
    rows = [
        (f"portal, {res['portal'][0]['name']}, 1x1, ready", portal, res["portal"], "ready"),
        ("portal, same, labelled", portal_lab, res["portal"], "labelled"),
        ("bare dash-vtk page, same preview bytes, ready", bare, res["bare"], "ready"),
        ("bare dash-vtk page, labelled", bare_lab, res["bare"], "labelled"),
        (f"NiiVue {NIIVUE_VERSION}, CT .nii.gz + label, labelled", niivue, nv_ok, "first"),
        ("portal, 3x3 grid of 9 studies, all panes ready", grid_all, res["grid"], "all"),
    ]
    for text, value, rs, key in rows:
        detail = ", ".join(f"{float(r[key]):.0f}" for r in rs)
        print(f"{text:<56}{value:>9.0f} ms   runs: {detail}")
    fails = [str(r["failed"]) for r in res["niivue"] if "failed" in r]
    fails += [str(r["scroll"]["error"]) for r in res["grid"] if r["scroll"].get("error")]
    for f in fails:
        print("# FAILED (left out): " + f)
    steps = [t for r in res["grid"] for t in r["scroll"]["times"]]
    print(
        f"slice scroll, CT pane with 9 shown: {median(rates):.1f} changes/s "
        f"(runs {', '.join(f'{x:.1f}' for x in rates)}); per step median {median(steps):.0f} ms, "
        f"mean {statistics.fmean(steps) if steps else float('nan'):.0f} ms, "
        f"max {max(steps, default=float('nan')):.0f} ms; wheels lost (no slider move in 500 ms, "
        f"sent again): {', '.join(str(r['scroll']['lost']) for r in res['grid'])}"
    )
    print("\n# ratio                                          value   target   met")
    for text, value, target, ok in (
        ("portal / bare dash-vtk, ready", portal / bare, "<= 1.5", portal / bare <= 1.5),
        (
            "portal / bare dash-vtk, labelled",
            portal_lab / bare_lab,
            "<= 1.5",
            portal_lab / bare_lab <= 1.5,
        ),
        ("portal / NiiVue, labelled", portal_lab / niivue, "<= 0.1", portal_lab / niivue <= 0.1),
        ("3x3 grid all ready / 1x1 ready", grid_all / portal, "<= 3", grid_all / portal <= 3),
        ("slice changes per second", median(rates), ">= 20", median(rates) >= 20),
    ):
        print(f"{text:<46}{value:>8.2f}   {target:<7}  {'yes' if ok else 'NO'}")
    print_breakdown(res["portal"], res["bare"])
