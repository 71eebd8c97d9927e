/* Viewer pane support (loaded by Dash before the lazy dash-vtk bundle).
 *
 * 1. WebGL contexts are created with preserveDrawingBuffer so a pane's pixels can be read
 *    back to decide that its first frame is drawn; the pane then gets data-state="ready".
 * 2. vtk.js 17.8 never frees a context when its view unmounts, and React 18 leaves orphan
 *    contexts on first load; a context whose canvas left the document is released with
 *    WEBGL_lose_context so the ~16 live contexts a browser allows go to visible panes.
 * 3. (The mouse wheel's slice stepping is in `assets/viewer.js`.)
 * 4. A click (not a drag) on a 2D pane picks the RAS world point under the cursor on the
 *    shown slice, for anchoring a comment (see `pickWorld`).
 * 5. Comment anchors (`.marker` dots with `data-world` in RAS mm) are shown on the slice
 *    through their point and kept over it as the view zooms and pans.
 * The picture's own state (axis, slice, window, overlay) is `assets/viewer.js`'s.
 */
(function () {
  "use strict";
  const contexts = new Map();
  // Accounting for tests and diagnosis: contexts created, released by us, and lost
  // without our asking (the browser evicting one because too many were live).
  const counts = { created: 0, released: 0, evicted: 0 };
  const original = HTMLCanvasElement.prototype.getContext;
  HTMLCanvasElement.prototype.getContext = function (type, attributes) {
    if (type === "webgl2" || type === "webgl" || type === "experimental-webgl") {
      if (!contexts.has(this)) releaseDetached(true);
      const attrs = Object.assign({}, attributes || {}, { preserveDrawingBuffer: true });
      const ctx = original.call(this, type, attrs);
      if (ctx && !contexts.has(this)) {
        contexts.set(this, { ctx: ctx, seen: false, away: 0 });
        counts.created += 1;
        this.addEventListener("webglcontextlost", function () {
          if (contexts.has(this)) counts.evicted += 1;
        });
      }
      return ctx;
    }
    return original.call(this, type, attributes);
  };

  function release(canvas) {
    const entry = contexts.get(canvas);
    if (!entry) return;
    // Forget it first: the webglcontextlost event this fires is then not an eviction.
    contexts.delete(canvas);
    counts.released += 1;
    const ext = entry.ctx.isContextLost() ? null : entry.ctx.getExtension("WEBGL_lose_context");
    if (ext) ext.loseContext();
  }

  // vtk.js creates its canvas (and context) before inserting it, so only a canvas that was
  // in the document and has stayed out of it for a few sweeps is released; just before a
  // new context is made (`now`), one that was in the document and has left goes at once,
  // so an unmounted page's contexts never count against the next page's.
  function releaseDetached(now) {
    for (const [canvas, entry] of contexts) {
      if (canvas.isConnected) {
        entry.seen = true;
        entry.away = 0;
        continue;
      }
      entry.away += 1;
      if (entry.seen && (now || entry.away >= 3)) release(canvas);
      // React 18 leaves orphans that never enter the document (a view's first mount while
      // the lazy bundle arrives); after 10 s out of it, such a canvas will not draw.
      else if (!entry.seen && entry.away >= 100) release(canvas);
    }
  }

  function live() {
    let n = 0;
    for (const entry of contexts.values()) if (!entry.ctx.isContextLost()) n += 1;
    return n;
  }

  // `portalContexts()` is the number of live WebGL contexts; `.stats()` adds the totals;
  // `.release(root)` releases every context drawn into a canvas inside `root` now (the
  // grid calls it before swapping a page, so the next page starts from zero).
  window.portalContexts = live;
  window.portalContexts.stats = function () {
    return Object.assign({ live: live() }, counts);
  };
  window.portalContexts.release = function (root) {
    for (const canvas of Array.from(contexts.keys())) {
      if (!root || root.contains(canvas)) release(canvas);
    }
  };

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

  window.portalPane = { viewComponent: viewComponent };

  setInterval(function () {
    releaseDetached();
    markPanes();
    placeMarkers();
  }, 100);

  function sliderOf(pane) {
    return pane.querySelector(".slice-slider [role=slider]");
  }

  // dash-vtk's own click picking (pickingModes) uses vtk.js's hardware selector, which
  // cannot identify image slices and throws on them. With the 2D camera looking straight
  // down the k axis (parallel projection, no rotation) the world point is simply the
  // cursor's display-to-world x, y plus the z of the shown slice plane. The vtk objects
  // are those of react-vtk-js's View component, reached through its host element.
  function viewComponent(host) {
    const key = Object.keys(host).find((k) => k.startsWith("__reactFiber$"));
    let fiber = key ? host[key] : null;
    while (fiber) {
      const s = fiber.stateNode;
      if (s && s.openglRenderWindow && s.renderer) return s;
      fiber = fiber.return;
    }
    return null;
  }

  // The world point under the cursor on the shown slice plane (any axis: the camera looks
  // straight down it, so display-to-world gives the in-plane coordinates, and the plane
  // gives the third).
  function pickWorld(host, pane, event) {
    const view = viewComponent(host);
    const plane = window.portalViewer && window.portalViewer.plane(pane);
    if (!view || !plane) return null;
    const rect = host.getBoundingClientRect();
    const size = view.openglRenderWindow.getSize();
    const x = (size[0] / rect.width) * (event.clientX - rect.left);
    const y = (size[1] / rect.height) * (rect.height - event.clientY + rect.top);
    // A plain array: Dash would send a typed array as an object {"0": x, ...}.
    const world = Array.from(view.openglRenderWindow.displayToWorld(x, y, 0, view.renderer));
    world[plane.dim] = plane.position;
    return world.map((v) => Math.round(v * 10) / 10);
  }

  let pressedAt = null;
  document.addEventListener(
    "mousedown",
    function (event) { pressedAt = [event.clientX, event.clientY]; },
    true
  );
  document.addEventListener(
    "click",
    function (event) {
      const viewBox = event.target.closest && event.target.closest(".pane-view");
      if (!viewBox) return;
      const pane = viewBox.closest(".pane[data-study-id]");
      if (!pane || pane.classList.contains("mode-3d")) return;
      // A pan ends in a click too; only a click that did not move picks.
      if (pressedAt && Math.hypot(event.clientX - pressedAt[0], event.clientY - pressedAt[1]) > 4) {
        return;
      }
      const host = viewBox.querySelector(":scope > div:first-child");
      const handle = sliderOf(pane);
      if (!host || !handle || !window.dash_clientside || !window.dash_clientside.set_props) {
        return;
      }
      const world = pickWorld(host, pane, event);
      if (!world) return;
      const id = { type: "pane-pick", study: Number(pane.dataset.studyId) };
      // Anchors record the axial slice of their point, whichever view they were placed in.
      const k = window.portalViewer.axialIndex(pane, world[2]);
      window.dash_clientside.set_props(id, { data: { world_mm: world, slice_index: k } });
    },
    true
  );

  // Dots drawn by vtk.js would follow the camera by themselves, but a points layer in the
  // view breaks react-vtk-js's 2D/3D switch (its axes actor loses the camera). An HTML
  // overlay placed with the view's own world-to-display transform follows it just as well.
  function placeMarkers() {
    document.querySelectorAll(".pane[data-study-id]").forEach(function (pane) {
      const dots = pane.querySelectorAll(".pane-view .marker");
      if (!dots.length) return;
      const handle = sliderOf(pane);
      const host = pane.querySelector(".pane-view > div:first-child");
      const view = host && viewComponent(host);
      if (!view || !handle || pane.classList.contains("mode-3d")) {
        dots.forEach((dot) => { dot.style.display = "none"; });
        return;
      }
      const plane = window.portalViewer && window.portalViewer.plane(pane);
      const rect = host.getBoundingClientRect();
      const size = view.openglRenderWindow.getSize();
      dots.forEach(function (dot) {
        const world = (dot.dataset.world || "").split(",").map(Number);
        // A dot shows on the slice through its point, on whichever axis is shown.
        if (world.length !== 3 || world.some(isNaN) || !plane ||
            Math.abs(world[plane.dim] - plane.position) > plane.spacing / 2 + 1e-3) {
          dot.style.display = "none";
          return;
        }
        const d = view.openglRenderWindow.worldToDisplay(
          world[0], world[1], world[2], view.renderer
        );
        dot.style.left = (d[0] * rect.width) / size[0] + "px";
        dot.style.top = rect.height - (d[1] * rect.height) / size[1] + "px";
        dot.style.display = "block";
      });
    });
  }
})();
