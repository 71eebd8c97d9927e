"""The floor for time to first pane: a bare Dash + dash-vtk page, no portal code, no login.

Started by ``benchmarks/grid.py`` under gunicorn with the worker settings of ``portal serve``
(``gunicorn 'bare_vtk:wsgi("FILE")'``); ``python benchmarks/bare_vtk.py --port N --spec FILE``
runs it on Flask's development server instead (slower at sending the JS bundles).
The spec (JSON) names the preview files the portal's pane fetched in the same run, stored
byte for byte as they came off the wire, with their ``Content-Encoding``:

    {"width": 780, "height": 372, "k_slice": 75,
     "layers": [{"file": "/tmp/.../0.bin", "encoding": "gzip",
                 "mimetype": "application/xml", "property": {...} | null}, ...]}

One ``dash_vtk.View`` (the pane's size), one ``SliceRepresentation`` + ``Reader`` per layer,
in the spec's order (image first, label map last), served from ``/files/<n>.vti`` with
``Cache-Control: no-store``. ``bare_vtk_assets/ready.js`` stamps ``data-ready-at`` on
``#bare`` the way the portal's pane script does (canvas pixels not black, 100 ms poll).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import dash_vtk
from dash import Dash, html
from flask import Flask, Response, abort

ASSETS = Path(__file__).resolve().parent / "bare_vtk_assets"


def build(spec: dict[str, object]) -> Dash:
    layers: list[dict[str, object]] = spec["layers"]  # type: ignore[assignment]
    app = Dash(__name__, assets_folder=str(ASSETS), serve_locally=True, compress=False)

    @app.server.get("/files/<int:n>.vti")
    def file(n: int) -> Response:
        if not 0 <= n < len(layers):
            abort(404)
        layer = layers[n]
        response = Response(Path(str(layer["file"])).read_bytes(), mimetype=str(layer["mimetype"]))
        if layer.get("encoding"):
            response.headers["Content-Encoding"] = str(layer["encoding"])
        response.headers["Cache-Control"] = "no-store"
        return response

    slices = []
    for n, layer in enumerate(layers):
        extra = {"property": layer["property"]} if layer.get("property") else {}
        slices.append(
            dash_vtk.SliceRepresentation(
                kSlice=int(spec["k_slice"]),  # type: ignore[call-overload]
                children=dash_vtk.Reader(
                    vtkClass="vtkXMLImageDataReader",
                    url=f"/files/{n}.vti",
                    # As the portal's label layer: only the first layer places the camera.
                    **({"resetCameraOnUpdate": False} if n else {}),
                ),
                **extra,
            )
        )
    app.layout = html.Div(
        id="bare",
        style={"width": f"{spec['width']}px", "height": f"{spec['height']}px"},
        children=dash_vtk.View(
            background=[0, 0, 0],
            cameraParallelProjection=True,
            cameraPosition=[0, 0, -1],
            cameraViewUp=[0, 1, 0],
            children=slices,
        ),
    )
    return app


def wsgi(spec_path: str) -> Flask:
    """For gunicorn, the server ``portal serve`` runs: ``gunicorn 'bare_vtk:wsgi("spec")'``."""
    app = build(json.loads(Path(spec_path).read_text()))
    # Dash records its bundle paths when it renders the index page; a gunicorn worker whose
    # first request is a bundle would answer 500 (the portal does the same at start-up).
    with app.server.test_request_context("/"):
        app._generate_scripts_html()  # noqa: SLF001
        app._generate_css_dist_html()  # noqa: SLF001
    return app.server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--spec", type=Path, required=True)
    args = parser.parse_args()
    app = build(json.loads(args.spec.read_text()))
    app.run(host="127.0.0.1", port=args.port, debug=False, threaded=True)


if __name__ == "__main__":
    main()
