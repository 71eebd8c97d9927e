"""The printable review report of one study (plain server-rendered HTML, print CSS)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, jsonify, render_template_string, request

from portal.services import reports
from portal.services.errors import NotFound
from portal.web.context import portal, principal

bp = Blueprint("reports", __name__)


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound) -> tuple[Response, int]:
    # As the API answers: a study one may not see is indistinguishable from a missing one.
    return jsonify(error=str(exc)), 404


REPORT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Review report · {{ study.name }}</title>
<link rel="stylesheet" href="/assets/portal.css">
<style>
  body.report { max-width: 60rem; margin: 1.5rem auto; padding: 0 1rem; color: #111;
    background: #fff; font: 14px/1.4 system-ui, sans-serif; }
  .report h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
  .report h2 { font-size: 1.15rem; margin: 1.5rem 0 .5rem; border-bottom: 1px solid #ccc; }
  .report h3 { font-size: 1rem; margin: 1rem 0 .25rem; }
  .report table { border-collapse: collapse; width: 100%; margin: .25rem 0 .75rem; }
  .report th, .report td { border: 1px solid #ccc; padding: .2rem .4rem; text-align: left;
    vertical-align: top; }
  .report th { background: #f2f2f2; }
  .report .swatch { display: inline-block; width: .9em; height: .9em; margin-right: .4em;
    border: 1px solid #555; vertical-align: middle; }
  .report .mosaic { max-width: 100%; image-rendering: pixelated; border: 1px solid #ccc; }
  .report .meta { color: #444; }
  .report .num { text-align: right; }
  .report .actions { float: right; }
  @media print {
    body.report { margin: 0; max-width: none; font-size: 11pt; }
    .report .actions { display: none; }
    .report h2 { break-after: avoid; }
    .report table, .report .mosaic, .report .item { break-inside: avoid; }
    .report th { background: #eee; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
    .report .swatch { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  }
</style>
</head><body class="report">
<div class="actions"><button type="button" onclick="window.print()">Print</button></div>
<h1>{{ study.name }}</h1>
<p class="meta">Review report, generated {{ now }} UTC by {{ who }}</p>
<table class="study-header">
  <tr><th>Project</th><td>{{ study.project }}</td>
      <th>Modality</th><td>{{ study.modality }}</td></tr>
  <tr><th>Patient</th><td>{{ study.patient_name or "—" }}</td>
      <th>Version</th>
      <td>{{ study.version }}{% if not study.current %} (superseded){% endif %}</td></tr>
  <tr><th>Dimensions</th><td>{{ study.dimensions }}</td>
      <th>Spacing (mm)</th><td>{{ study.spacing_mm | map("round", 3) | join(" × ") }}</td></tr>
  <tr><th>Orientation</th><td>{{ study.orientation }}</td>
      <th>Status</th><td>{{ review.status }}</td></tr>
</table>

<h2>Slices with labels</h2>
<img class="mosaic" alt="Axial slices with the label overlay" src="{{ mosaic }}">
<p class="meta">Axial slices holding labels, inferior to superior, row by row; radiological
  view (the patient's right on the left, anterior at the top).</p>

<h2>Labels</h2>
{% for seg in study.segmentations %}
<h3>{{ seg.name }}</h3>
<table class="labels">
  <tr><th>Value</th><th>Label</th><th class="num">Volume (ml)</th><th class="num">Voxels</th></tr>
  {% for lab in seg.labels %}
  <tr><td>{{ lab.value }}</td>
      <td><span class="swatch" style="background: {{ lab.color }}"></span>{{ lab.name }}</td>
      <td class="num">
        {{- "%.2f" | format(lab.volume_ml) if lab.volume_ml is not none else "—" -}}
      </td>
      <td class="num">{{ lab.voxel_count if lab.voxel_count is not none else "—" }}</td></tr>
  {% endfor %}
</table>
{% else %}<p>No segmentations.</p>{% endfor %}

<h2>Review</h2>
{% for item in review["items"] %}
<div class="item" data-item="{{ item.id }}">
<h3>{{ item.name }} — {{ item.state }}</h3>
<p class="meta">Round {{ item.round }}; {{ item.reads_done }} of {{ item.reads_required }}
  read(s) in this round{% if item.agreement and item.agreement.reads >= 2 %};
  verdict agreement {{ "%.0f" | format(item.agreement.verdict_agreement * 100) }}%
  {%- if item.agreement.dice is not none %}, Dice {{ "%.3f" | format(item.agreement.dice) }}
  {%- endif %}
  {%- endif %}</p>
{% if item.reads %}
<table class="reads">
  <tr><th>Reader</th><th>Round</th><th>Verdict</th><th>Label verdicts</th><th>Note</th>
      <th>At</th></tr>
  {% for r in item.reads %}
  <tr><td>{{ r.reader }}</td><td>{{ r.round }}</td><td>{{ r.verdict }}</td>
      <td>{% for name, v in r.label_verdicts_named -%}
        {{ name }}: {{ v }}{% if not loop.last %}<br>{% endif %}
      {%- endfor %}</td>
      <td>{{ r.note }}</td><td>{{ r.at | when }}</td></tr>
  {% endfor %}
</table>
{% else %}<p>No reads{% if item.reads_done %} visible to you yet{% endif %}.</p>{% endif %}
{% if item.comments %}
<table class="comments">
  <tr><th>Comment</th><th>By</th><th>At</th><th>Where</th><th>Resolved</th></tr>
  {% for c in item.comments %}{% for e in [c] + c.replies %}
  <tr><td>{% if not loop.first %}↳ {% endif %}{{ e.body }}</td><td>{{ e.by }}</td>
      <td>{{ e.at | when }}</td>
      <td>{% if e.slice_index is not none %}{{ e.axis }} slice {{ e.slice_index }}{% endif %}</td>
      <td>{{ "yes" if c.resolved else "" }}</td></tr>
  {% endfor %}{% endfor %}
</table>
{% endif %}
{% if item.history %}
<table class="history">
  <tr><th>At</th><th>By</th><th>Action</th><th>From → to</th><th>Reason</th></tr>
  {% for h in item.history %}
  <tr><td>{{ h.at | when }}</td><td>{{ h.by }}</td><td>{{ h.action }}</td>
      <td>{{ h["from"] }} → {{ h.to }}</td><td>{{ h.reason }}</td></tr>
  {% endfor %}
</table>
{% endif %}
</div>
{% endfor %}

<h2>Sign-off</h2>
<table class="signoff">
  <tr><th>Item</th><th>Final state</th><th>Decided by</th><th>Decided at (UTC)</th></tr>
  {% for s in signoff %}
  <tr><td>{{ s.item }}</td><td>{{ s.state }}</td><td>{{ s.by or "—" }}</td>
      <td>{{ s.at | when if s.at else "—" }}</td></tr>
  {% endfor %}
</table>
</body></html>
"""


@bp.app_template_filter("when")
def _when(value: Any) -> str:
    """ISO text or a datetime as `YYYY-MM-DD HH:MM` (UTC, as stored)."""
    if not value:
        return ""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return text[:16].replace("T", " ")


@bp.get("/reports/study/<int:study_id>")
def study_report(study_id: int) -> str:
    p = portal()
    who = principal()
    with p.db.session() as s:
        address = request.remote_addr or ""
        data = reports.study_report(s, who, study_id, p.settings.store_dir, address)
    return render_template_string(
        REPORT_PAGE,
        **data,
        who=who.username,
        now=_when(datetime.now(UTC)),
        mosaic=f"/reports/study/{study_id}/mosaic.png",
    )


@bp.get("/reports/study/<int:study_id>/mosaic.png")
def study_mosaic(study_id: int) -> Response:
    """The labelled slices with the overlay (made on first request, then cached)."""
    p = portal()
    with p.db.session() as s:
        path = reports.report_mosaic(s, principal(), p.settings.preview_dir, study_id)
    # A few hundred kB at most: read whole, so no file handle outlives the request.
    response = Response(path.read_bytes(), mimetype="image/png")
    # Patient images: the browser may keep them, shared caches may not.
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response
