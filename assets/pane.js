/* Viewer pane support (loaded by Dash before the lazy dash-vtk bundle).
 *
 * 1. WebGL contexts are created with preserveDrawingBuffer so a pane's pixels can be read
 *    back to decide that its first frame is drawn; the pane then gets data-state="ready".
 * 2. vtk.js 17.8 never frees a context when its view unmounts, and React 18 leaves orphan
 *    contexts on first load; a context whose canvas left the document is released with
 *    WEBGL_lose_context so the ~16 live contexts a browser allows go to visible panes.
 * 3. The mouse wheel over a 2D pane steps through slices (vtk.js would zoom).
 */
(function () {
  "use strict";
  const contexts = new Map();
  const original = HTMLCanvasElement.prototype.getContext;
  HTMLCanvasElement.prototype.getContext = function (type, attributes) {
    if (type === "webgl2" || type === "webgl" || type === "experimental-webgl") {
      const attrs = Object.assign({}, attributes || {}, { preserveDrawingBuffer: true });
      const ctx = original.call(this, type, attrs);
      if (ctx) contexts.set(this, { ctx: ctx, seen: false, away: 0 });
      return ctx;
    }
    return original.call(this, type, attributes);
  };

  // vtk.js creates its canvas (and context) before inserting it, so only a canvas that was
  // in the document and has stayed out of it for a few sweeps is released.
  function releaseDetached() {
    for (const [canvas, entry] of contexts) {
      if (canvas.isConnected) {
        entry.seen = true;
        entry.away = 0;
        continue;
      }
      entry.away += 1;
      if (entry.seen && entry.away >= 3) {
        const ext = entry.ctx.getExtension("WEBGL_lose_context");
        if (ext) ext.loseContext();
        contexts.delete(canvas);
      }
    }
  }

  const probe = document.createElement("canvas");
  probe.width = 48;
  probe.height = 48;
  const probe2d = probe.getContext("2d", { willReadFrequently: true });

  function hasContent(canvas) {
    if (!canvas.width || !canvas.height) return false;
    probe2d.clearRect(0, 0, 48, 48);
    probe2d.drawImage(canvas, 0, 0, 48, 48);
    const px = probe2d.getImageData(0, 0, 48, 48).data;
    let lit = 0;
    for (let i = 0; i < px.length; i += 4) {
      if (px[i] + px[i + 1] + px[i + 2] > 24) lit += 1;
    }
    return lit >= 12;
  }

  function markPanes() {
    document.querySelectorAll(".pane[data-study-id]").forEach(function (pane) {
      if (!pane.dataset.state) {
        pane.dataset.state = "loading";
        pane.dataset.mountedAt = String(Math.round(performance.now()));
      }
      if (pane.dataset.state === "ready") return;
      // Every canvas counts: under React 18 a view can leave an orphan canvas beside the
      // one it draws into, and the first in document order may be the orphan.
      const canvases = Array.from(pane.querySelectorAll(".pane-view canvas"));
      if (canvases.some((c) => contexts.has(c) && hasContent(c))) {
        pane.dataset.state = "ready";
        pane.dataset.readyAt = String(Math.round(performance.now()));
        return;
      }
      nudge(pane);
    });
  }

  // A view whose data arrived while its container still had no size draws nothing until
  // something makes it render again (seen about once in twenty loads on a busy machine,
  // and the pane stays black for the reviewer too). After 3 s without a first frame, and
  // then every 3 s, the view's box is narrowed by one pixel for one frame: react-vtk-js
  // watches it with a ResizeObserver, so the view re-measures and renders twice.
  function nudge(pane) {
    const now = performance.now();
    const last = Number(pane.dataset.nudgedAt || pane.dataset.mountedAt);
    if (now - last < 3000) return;
    pane.dataset.nudgedAt = String(Math.round(now));
    pane.dataset.nudges = String(Number(pane.dataset.nudges || 0) + 1);
    const box = pane.querySelector(".pane-view > div:first-child");
    if (!box) return;
    box.style.right = "1px";
    requestAnimationFrame(function () {
      requestAnimationFrame(function () { box.style.right = ""; });
    });
  }

  setInterval(function () {
    releaseDetached();
    markPanes();
  }, 100);

  function sliderOf(pane) {
    return pane.querySelector(".slice-slider [role=slider]");
  }

  document.addEventListener(
    "wheel",
    function (event) {
      const view = event.target.closest && event.target.closest(".pane-view");
      if (!view) return;
      const pane = view.closest(".pane[data-study-id]");
      if (!pane || pane.classList.contains("mode-3d")) return;
      const handle = sliderOf(pane);
      if (!handle || !window.dash_clientside || !window.dash_clientside.set_props) return;
      event.preventDefault();
      event.stopPropagation();
      const max = Number(handle.getAttribute("aria-valuemax"));
      const now = Number(handle.getAttribute("aria-valuenow"));
      const next = Math.max(0, Math.min(max, now + (event.deltaY > 0 ? -1 : 1)));
      if (next !== now) {
        const id = { type: "pane-slider", study: Number(pane.dataset.studyId) };
        window.dash_clientside.set_props(id, { value: next });
      }
    },
    { capture: true, passive: false }
  );
})();
