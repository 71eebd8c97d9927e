"""`GET /api/docs`: the OpenAPI document rendered as a plain HTML page on the server
(no CDN, no script), for people reading the API."""

from __future__ import annotations

import html
import json
from typing import Any

from flask import Blueprint, Response

from portal.api.openapi import document
from portal.api.openapi_parts import Schema

docs_bp = Blueprint("api_docs", __name__)


def _schema_text(schema: Schema) -> str:
    return json.dumps(schema, indent=1, ensure_ascii=False)


def _operation_html(path: str, method: str, op: Schema) -> str:
    esc = html.escape
    rows = "".join(
        f"<tr><td><code>{esc(p['name'])}</code></td><td>{esc(p['in'])}</td>"
        f"<td>{'yes' if p.get('required') else ''}</td>"
        f"<td><code>{esc(_schema_text(p['schema']))}</code></td>"
        f"<td>{esc(p.get('description', ''))}</td></tr>"
        for p in op.get("parameters", [])
    )
    params = (
        "<table><tr><th>name</th><th>in</th><th>required</th><th>schema</th>"
        f"<th>about</th></tr>{rows}</table>"
        if rows
        else ""
    )
    body = ""
    if "requestBody" in op:
        parts = "".join(
            f"<p>{esc(kind)}</p><pre>{esc(_schema_text(c['schema']))}</pre>"
            for kind, c in op["requestBody"]["content"].items()
        )
        body = f"<h4>Request body</h4>{parts}"
    responses = "".join(
        f"<tr><td>{esc(status)}</td><td>{esc(r['description'])}</td><td>"
        + "".join(
            f"{esc(kind)} <code>{esc(_schema_text(c['schema']))}</code>"
            for kind, c in r.get("content", {}).items()
        )
        + "</td></tr>"
        for status, r in op["responses"].items()
    )
    anchor = esc(f"{method}-{path}")
    return (
        f'<section id="{anchor}"><h3><code>{method.upper()} {esc(path)}</code></h3>'
        f"<p>{esc(op['summary'])}</p><p>{esc(op.get('description', ''))}</p>{params}{body}"
        f"<h4>Responses</h4><table>{responses}</table></section>"
    )


def render_html(doc: dict[str, Any]) -> str:
    """The document as one self-contained HTML page (no external CSS or script)."""
    esc = html.escape
    ops = [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()]
    index = "".join(
        f'<li><a href="#{esc(f"{m}-{p}")}"><code>{m.upper()} {esc(p)}</code></a> '
        f"{esc(op['summary'])}</li>"
        for p, m, op in ops
    )
    schemas = "".join(
        f'<h3 id="schema-{esc(name)}">{esc(name)}</h3><pre>{esc(_schema_text(s))}</pre>'
        for name, s in doc["components"]["schemas"].items()
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{esc(doc['info']['title'])}</title><style>"
        "body{font-family:sans-serif;max-width:70em;margin:auto;padding:1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .4em;"
        "vertical-align:top}pre,code{white-space:pre-wrap}section{margin-bottom:2em}"
        "</style></head><body>"
        f"<h1>{esc(doc['info']['title'])} v{esc(doc['info']['version'])}</h1>"
        f"<p>{esc(doc['info']['description'])}</p>"
        '<p>Machine-readable: <a href="/api/v1/openapi.json">/api/v1/openapi.json</a></p>'
        f"<h2>Routes</h2><ul>{index}</ul>"
        + "".join(_operation_html(p, m, op) for p, m, op in ops)
        + f"<h2>Schemas</h2>{schemas}</body></html>"
    )


@docs_bp.get("/api/docs")
def docs_page() -> Response:
    return Response(render_html(document()), mimetype="text/html")
