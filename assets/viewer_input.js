/* Mouse and keys on the panes: picture controls, window/level drag, the wheel, the hover
 * readout, and the keys registered with the grid's key registry (assets/grid.js).
 * Part of the pane viewer: `assets/viewer.js` holds the state it works on.
 */
(function () {
  "use strict";
  const P = window.portalViewerParts;
  const { AXES, AXIS_ORDER, link, state, setProps, planePosition, clampIndex, viewOf, sliceActors, is2d, apply, fineShown, fmt, setAxis, setWindow, usePreset, cyclePreset, toggleLabel, setSegmentation, paneFromEvent } = P;
  let hovered = null;


  document.addEventListener("click", function (event) {
    const target = event.target.closest && event.target.closest(
      ".view-axis, .view-reset, .wl-preset, .overlay-toggle, .overlay-outline, .legend-item, .seg-choice, " +
      ".vol-preset, .plane-toggle");
    if (!target) return;
    const st = paneFromEvent(event);
    if (!st) return;
    if (target.classList.contains("view-axis")) setAxis(st, target.dataset.axis, true);
    else if (target.classList.contains("view-reset")) P.resetView(st);
    else if (target.classList.contains("wl-preset")) {
      usePreset(st, target.dataset.preset);
      const menu = target.closest("details");
      if (menu) menu.open = false;
    } else if (target.classList.contains("overlay-toggle")) {
      st.overlay = !st.overlay;
      apply(st.element, false);
    } else if (target.classList.contains("overlay-outline")) {
      st.outline = !st.outline;
      apply(st.element, false);
    } else if (target.classList.contains("legend-item")) {
      toggleLabel(st, Number(target.dataset.label));
    } else if (target.classList.contains("vol-preset")) {
      st.volume = target.dataset.volume;
      apply(st.element, false);
    } else if (target.classList.contains("plane-toggle")) {
      st.plane = !st.plane;
      apply(st.element, false);
    } else if (target.classList.contains("seg-choice")) {
      setSegmentation(st, Number(target.dataset.seg));
      const menu = target.closest("details");
      if (menu) menu.open = false;
    }
  });

  document.addEventListener("input", function (event) {
    if (!event.target.classList || !event.target.classList.contains("overlay-opacity")) return;
    const st = paneFromEvent(event);
    if (!st) return;
    st.opacity = Math.max(0, Math.min(1, Number(event.target.value) / 100));
    apply(st.element, false);
  });

  document.addEventListener("click", function (event) {
    const box = event.target.closest && event.target.closest(".link-tools [data-link]");
    if (!box) return;
    const what = box.dataset.link;
    link[what] = !link[what];
    box.classList.toggle("on", link[what]);
  });

  // Window/level by dragging with the left button (no modifier) on a 2D pane: right widens
  // the window, down raises the level, scaled to the image's value range.
  let drag = null;
  document.addEventListener(
    "mousedown",
    function (event) {
      if (event.button !== 0 || event.shiftKey || event.ctrlKey || event.altKey || event.metaKey) return;
      const box = event.target.closest && event.target.closest(".pane-view");
      const pane = box && box.closest(".pane[data-study-id]");
      if (!pane || !is2d(pane)) return;
      const st = state(pane);
      if (!st || st.view.rgb) return;
      // vtk.js would pan or rotate with this button: the drag is ours.
      event.stopPropagation();
      event.preventDefault();
      const presets = st.view.presets;
      const full = presets.find((p) => p.key === "full");
      const span = full ? full.window[1] - full.window[0] : st.view.window[1] - st.view.window[0];
      drag = { st: st, x: event.clientX, y: event.clientY, window: st.window.slice(),
               scale: Math.max(span, 1) / Math.max(box.clientHeight, 100) };
    },
    true
  );
  document.addEventListener("mousemove", function (event) {
    if (drag) {
      const dx = event.clientX - drag.x;
      const dy = event.clientY - drag.y;
      const width = Math.max(1e-3, drag.window[1] - drag.window[0] + dx * drag.scale);
      const level = (drag.window[0] + drag.window[1]) / 2 + dy * drag.scale;
      setWindow(drag.st, level - width / 2, level + width / 2, "", true);
      return;
    }
    hover(event);
  });
  document.addEventListener("mouseup", function () { drag = null; });

  // ---- hover readout -------------------------------------------------------------------------

  function worldAt(pane, st, event) {
    const host = pane.querySelector(".pane-view > div:first-child");
    const view = viewOf(pane);
    if (!host || !view || !view.openglRenderWindow) return null;
    const rect = host.getBoundingClientRect();
    const size = view.openglRenderWindow.getSize();
    const x = (size[0] / rect.width) * (event.clientX - rect.left);
    const y = (size[1] / rect.height) * (rect.height - event.clientY + rect.top);
    const world = Array.from(view.openglRenderWindow.displayToWorld(x, y, 0, view.renderer));
    world[AXES[st.axis].dim] = planePosition(st);
    return world;
  }

  function hover(event) {
    const box = event.target.closest && event.target.closest(".pane-view");
    const pane = box && box.closest(".pane[data-study-id]");
    if (pane) hovered = pane;
    if (!pane || !is2d(pane)) return;
    const st = state(pane);
    const view = st && viewOf(pane);
    const out = pane.querySelector(".readout");
    if (!view || !out) return;
    const world = worldAt(pane, st, event);
    const actors = sliceActors(view, st.view.shape);
    if (!world || !actors.image.length) return;
    // Read from what is drawn: the full-resolution slice when it is shown.
    const fine = fineShown(st, actors);
    const imageActor = fine ? actors.fineImage[0] : actors.image[0];
    const labelActor = fine ? actors.fineLabel[0] : actors.label[0];
    const image = imageActor.getMapper().getInputData();
    const ijk = image.worldToIndex(world).map(Math.round);
    const dims = image.getDimensions();
    if (ijk.some((v, d) => v < 0 || v >= dims[d])) {
      out.textContent = "";
      return;
    }
    const v = ijk[0] + dims[0] * (ijk[1] + dims[1] * ijk[2]);
    const scalars = image.getPointData().getScalars();
    const comps = scalars.getNumberOfComponents();
    const raw = scalars.getData();
    const value = comps === 1 ? fmt(raw[v]) + (st.view.units ? " " + st.view.units : "")
      : Array.from(raw.subarray(v * comps, v * comps + comps)).join(",");
    let label = "";
    if (labelActor) {
      const info = P.labelInfo(st, labelActor.getMapper().getInputData());
      const li = info.index[v];
      if (li) {
        const found = P.segLabels(st).find((lab) => lab.value === info.values[li - 1]);
        label = " · " + (found ? found.name : "unlisted label");
      }
    }
    // Voxel indices of the full-resolution canonical (RAS-ordered) volume.
    const dim = AXES[st.axis].dim;
    const step = st.view.step || [1, 1, 1];
    const voxel = fine ? ijk.map((c, d) => (d === dim ? st.index[st.axis] * step[d] : c))
      : ijk.map((c, d) => c * step[d]);
    out.textContent = "(" + voxel.join(", ") + ") · (" + world.map((c) => c.toFixed(1)).join(", ") +
      ") mm · " + value + label;
    pane.dataset.readout = JSON.stringify({ voxel: voxel, world: world, value: comps === 1 ? raw[v] : null,
                                            fine: fine, label: label.replace(" · ", "") });
  }

  // ---- keys -------------------------------------------------------------------------------

  function activeState() {
    const pane = (window.portalKeys && window.portalKeys.activePane && window.portalKeys.activePane()) ||
      hovered;
    return pane && pane.isConnected ? state(pane) : null;
  }

  // One slice further, drawn at once (no server, no Dash round trip); the slider follows
  // when the wheel rests.
  function stepPane(st, delta) {
    const k = clampIndex(st, st.axis, st.index[st.axis] + delta);
    if (k === st.index[st.axis]) return;
    P.setIndex(st, k, true);
    P.syncSlider(st, 150);
  }

  function step(delta) {
    const st = activeState();
    if (st) stepPane(st, delta);
  }

  // The mouse wheel over a 2D pane steps through slices (vtk.js would zoom).
  document.addEventListener(
    "wheel",
    function (event) {
      const box = event.target.closest && event.target.closest(".pane-view");
      const pane = box && box.closest(".pane[data-study-id]");
      if (!pane || !is2d(pane)) return;
      const st = state(pane);
      if (!st) return;
      event.preventDefault();
      event.stopPropagation();
      stepPane(st, event.deltaY > 0 ? -1 : 1);
    },
    { capture: true, passive: false }
  );

  const KEYS = [
    { key: "ArrowUp", label: "↑", description: "Next slice", handler: () => step(1) },
    { key: "ArrowDown", label: "↓", description: "Previous slice", handler: () => step(-1) },
    { key: "o", label: "o", description: "Show or hide the segmentation overlay",
      handler: function () {
        const st = activeState();
        if (st) { st.overlay = !st.overlay; apply(st.element, false); }
      } },
    { key: "b", label: "b", description: "Outline-only overlay on/off",
      handler: function () {
        const st = activeState();
        if (st) { st.outline = !st.outline; apply(st.element, false); }
      } },
    { key: "v", label: "v", description: "Cycle views: axial, coronal, sagittal",
      handler: function () {
        const st = activeState();
        if (!st) return;
        const axes = AXIS_ORDER.filter((a) => (st.view.axes || AXIS_ORDER).indexOf(a) >= 0);
        setAxis(st, axes[(axes.indexOf(st.axis) + 1) % axes.length], true);
      } },
    { key: "r", label: "r", description: "Reset zoom and pan",
      handler: function () { const st = activeState(); if (st) P.resetView(st); } },
    { key: "w", label: "w", description: "Next window preset",
      handler: function () { const st = activeState(); if (st) cyclePreset(st); } },
    { key: "l", label: "l", description: "Link scrolling on/off",
      handler: function () {
        link.position = !link.position;
        document.querySelectorAll('.link-tools [data-link="position"]').forEach(
          (b) => b.classList.toggle("on", link.position));
      } },
    { key: "f", label: "f", description: "Flag the active pane's item for expert review",
      handler: function () {
        const st = activeState();
        const button = st && st.element.querySelector(".review-actions button.flag");
        if (button && button.offsetParent !== null) button.click();
      } },
  ];

  let registered = false;
  function registerKeys() {
    if (registered || !window.portalKeys || !window.portalKeys.register) return;
    KEYS.forEach((k) => window.portalKeys.register(k));
    registered = true;
  }


  setInterval(registerKeys, 200);

  Object.assign(P, { stepPane });
})();
