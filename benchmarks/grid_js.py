"""Browser-side snippets of ``benchmarks/grid.py`` (kept apart so that file stays short)."""

# Installed through DevTools before any page script runs: long tasks on the main thread,
# and every WebGL texture upload call (start, duration, texels), to split the time after
# the preview fetches into parse and GPU upload + render.
INSTRUMENT = """
(function () {
  const b = window.__timing = { longtasks: [], tex: [] };
  try {
    new PerformanceObserver(function (list) {
      for (const e of list.getEntries()) b.longtasks.push([e.startTime, e.duration]);
    }).observe({ type: "longtask", buffered: true });
  } catch (e) { b.noLongtasks = String(e); }
  // When a canvas first shows label colours (the label slice drawn over the grey image):
  // at least 12 of 96x96 probe pixels whose channels differ by more than 40.
  const probe = document.createElement("canvas");
  probe.width = probe.height = 96;
  let probe2d = null;
  const timer = setInterval(function () {
    probe2d = probe2d || probe.getContext("2d", { willReadFrequently: true });
    for (const c of document.querySelectorAll("canvas")) {
      if (!c.width || !c.height || c === probe) continue;
      probe2d.clearRect(0, 0, 96, 96);
      probe2d.drawImage(c, 0, 0, 96, 96);
      const px = probe2d.getImageData(0, 0, 96, 96).data;
      let coloured = 0;
      for (let i = 0; i < px.length; i += 4) {
        const r = px[i], g = px[i + 1], bl = px[i + 2];
        if (Math.max(r, g, bl) - Math.min(r, g, bl) > 40) coloured += 1;
      }
      if (coloured >= 12) {
        b.colouredAt = Math.round(performance.now());
        clearInterval(timer);
        return;
      }
    }
  }, 100);
  for (const C of [window.WebGL2RenderingContext, window.WebGLRenderingContext]) {
    if (!C) continue;
    for (const name of ["texImage2D", "texImage3D", "texSubImage2D", "texSubImage3D"]) {
      const f = C.prototype[name];
      if (!f) continue;
      C.prototype[name] = function () {
        const a = arguments, t0 = performance.now();
        const r = f.apply(this, a);
        // (target, level, fmt, width, height[, depth]) when the size is given.
        const texels = typeof a[4] === "number" && typeof a[3] === "number"
          ? a[3] * a[4] * (name.endsWith("3D") && typeof a[5] === "number" ? a[5] : 1) : 0;
        b.tex.push([t0, performance.now() - t0, texels]);
        return r;
      };
    }
  }
})();
"""

# What a page fetched and when (ms since navigation start), with the instrumentation.
COLLECT = """
const pick = (e) => ({name: e.name, type: e.initiatorType, start: e.startTime,
  requestStart: e.requestStart, responseStart: e.responseStart, responseEnd: e.responseEnd,
  encoded: e.encodedBodySize, decoded: e.decodedBodySize});
return {resources: performance.getEntriesByType("resource").map(pick),
        nav: performance.getEntriesByType("navigation").map(pick)[0] || null,
        timing: window.__timing || null};
"""

# The portal's panes: state, ready time, the view's box, the slider position.
PANES = """
return Array.from(document.querySelectorAll('.pane[data-study-id]')).map(function (p) {
  const host = p.querySelector('.pane-view > div:first-child');
  const r = host ? host.getBoundingClientRect() : null;
  const handle = p.querySelector('.slice-slider [role=slider]');
  return {id: Number(p.dataset.studyId), state: p.dataset.state || '',
          readyAt: p.dataset.readyAt ? Number(p.dataset.readyAt) : null,
          w: r ? Math.round(r.width) : 0, h: r ? Math.round(r.height) : 0,
          k: handle ? Number(handle.getAttribute('aria-valuenow')) : null};
});
"""

BARE = """
const b = document.getElementById('bare');
const c = b ? Array.from(b.querySelectorAll('canvas')).filter((x) => x.width) : [];
const r = c.length ? c[c.length - 1].getBoundingClientRect() : null;
return b ? {state: b.dataset.state || '', readyAt: b.dataset.readyAt ? Number(b.dataset.readyAt)
       : null, w: r ? Math.round(r.width) : 0, h: r ? Math.round(r.height) : 0} : null;
"""

# Slice scrolling in one pane through the user's path: a wheel event over `.pane-view`
# (assets/viewer_input.js steps the slice; the slider follows when the wheel rests, so the
# position is read from the slice text "k/n · z ... mm"). Each step waits until the slice text has
# changed and then the view's pixels have changed (checked once per animation frame);
# steps go down from the current slice and turn at either end.
SCROLL = """
const [studyId, steps, done] = arguments;
// Looked up afresh every time: a re-render may replace any of these elements.
const pane = () => document.querySelector('.pane[data-study-id="' + studyId + '"]');
const view = () => pane().querySelector('.pane-view');
const sliceText = () => pane().querySelector('.slice-text').textContent;
const slider = (name) => Number(pane().querySelector('.slice-slider [role=slider]')
  .getAttribute(name));
function canvas() {
  let best = null, area = 0;
  for (const c of view().querySelectorAll('canvas')) {
    if (c.isConnected && c.width * c.height > area) { best = c; area = c.width * c.height; }
  }
  return best;
}
const probe = document.createElement('canvas');
const c0 = canvas();
probe.width = c0.width; probe.height = c0.height;
const p2 = probe.getContext('2d', {willReadFrequently: true});
function checksum() {
  p2.clearRect(0, 0, probe.width, probe.height);
  p2.drawImage(canvas(), 0, 0);
  const d = p2.getImageData(0, 0, probe.width, probe.height).data;
  let h = 0;
  for (let i = 0; i < d.length; i += 4) h = (h * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2]) | 0;
  return h;
}
const out = {times: [], lost: 0, from: sliceText()};
let down = true, prevText = sliceText(), prevSum = checksum(), i = 0;
const t0 = performance.now();
function step() {
  if (i >= steps) {
    out.total = performance.now() - t0; out.to = sliceText(); done(out); return;
  }
  const text = sliceText().split(' ')[0].split('/');
  const now = Number(text[0]) - 1, max = Number(text[1]) - 1;
  // Turn 10 slices before either end (the outermost slices are not compared).
  if (now <= 10) down = false;
  if (now >= max - 10) down = true;
  const start = performance.now();
  let sent = start;
  function wheel() {
    const r = view().getBoundingClientRect();
    canvas().dispatchEvent(new WheelEvent('wheel', {deltaY: down ? 100 : -100, bubbles: true,
      cancelable: true, clientX: r.left + r.width / 2, clientY: r.top + r.height / 2}));
    sent = performance.now();
  }
  wheel();
  (function wait() {
    if (sliceText() !== prevText) {
      const s = checksum();
      if (s !== prevSum) {
        prevText = sliceText(); prevSum = s; out.times.push(performance.now() - start);
        // The next wheel comes as a new task, as input events do (a wheel dispatched
        // from inside this animation-frame callback is lost by Dash's slider).
        i += 1; setTimeout(step, 0); return;
      }
    } else if (performance.now() - sent > 500) {
      // The slice did not move at all: the wheel was lost; a user would scroll again.
      out.lost += 1;
      wheel();
    }
    if (performance.now() - start > 10000) {
      out.error = 'step ' + i + ': after 10 s slice text ' + prevText + ' -> ' +
        sliceText() + ', slider ' + slider('aria-valuenow') +
        ', pixels changed: ' + (checksum() !== prevSum);
      done(out); return;
    }
    requestAnimationFrame(wait);
  })();
}
step();
"""
