/* What a reviewer does to a pane's picture, done in the browser on dash-vtk's vtk.js objects.
 *
 * dash-vtk builds each pane's View, image slice and label slice once; this script then owns
 * their state, so nothing here waits for the server:
 *   - the view axis (axial, coronal, sagittal) with a radiological camera and orientation
 *     letters, and the slice on that axis (the pane slider, the mouse wheel, arrow keys);
 *   - window/level in the image's own units (HU after rescale) from presets or by dragging
 *     with the left button, MONOCHROME1 inverted;
 *   - the label overlay: shown or hidden, its opacity, outline-only, each label on or off;
 *   - a hover readout: voxel, world mm, value with its unit, label name;
 *   - linked panes: scrolling one moves the others to the same world position when they
 *     share a frame of reference (else the same relative position); window and view axis
 *     can be linked too.
 * The pane's `data-view` attribute (see `portal/ui/components/pane.py`, `view_data`) gives
 * the study's preview grid, units, windows and label table.
 *
 * The vtk.js objects are those of react-vtk-js's View component, reached through its host
 * element (`portalPane.viewComponent` in pane.js): dash-vtk 0.0.9 exposes no API for them.
 * A poll re-applies the state whenever dash-vtk replaces an actor or its data arrives.
 *
 * This file holds the state, geometry and what is applied to the actors; its parts are
 * viewer_labels.js (the overlay's colours), viewer_3d.js (the 3D scene) and
 * viewer_input.js (mouse, wheel, readout and keys), sharing `window.portalViewerParts`.
 */
(function () {
  "use strict";

  // Camera position (from the focal point) and view-up per axis; the screen's right is
  // then the patient's left (axial, coronal) or posterior (sagittal), as read in radiology.
  const AXES = {
    axial: { dim: 2, setter: "setKSlice", position: [0, 0, -1], up: [0, 1, 0],
             letters: ["A", "P", "R", "L"], coord: "z" },
    coronal: { dim: 1, setter: "setJSlice", position: [0, 1, 0], up: [0, 0, 1],
               letters: ["S", "I", "R", "L"], coord: "y" },
    sagittal: { dim: 0, setter: "setISlice", position: [-1, 0, 0], up: [0, 0, 1],
                letters: ["S", "I", "A", "P"], coord: "x" },
  };
  const AXIS_ORDER = ["axial", "coronal", "sagittal"];
  // Shared with the other viewer scripts (viewer_3d.js, viewer_input.js, viewer_labels.js),
  // which Dash loads after this one (assets load in name order).
  const P = (window.portalViewerParts = window.portalViewerParts || {});
  const link = { position: true, window: false, axis: false };
  const panes = new Map(); // study id -> state

  function paneOf(study) {
    return document.querySelector('.pane[data-study-id="' + study + '"]');
  }

  function state(pane) {
    const study = Number(pane.dataset.studyId);
    let st = panes.get(study);
    if (st && st.element === pane) return st;
    const view = JSON.parse(pane.dataset.view || "{}");
    if (!view.shape) return null;
    const handle = sliderHandle(pane);
    const k = handle ? Number(handle.getAttribute("aria-valuenow")) : view.shape[2] >> 1;
    st = {
      element: pane,
      study: study,
      view: view,
      axis: "axial",
      index: { axial: k, coronal: view.shape[1] >> 1, sagittal: view.shape[0] >> 1 },
      window: view.window.slice(),
      preset: "default",
      overlay: true,
      opacity: 0.5,
      outline: false,
      hidden: new Set(),
      seg: 0,
      fineKey: null,
      fineSentAt: 0,
      movedAt: performance.now(),
      volume: "off",
      plane: true,
      planeSent: 0,
      pending: null,
      sliderTimer: null,
    };
    panes.set(study, st);
    applyInitial(st, JSON.parse(pane.dataset.initial || "{}"));
    return st;
  }

  // What the review URL (or a live-channel command) asked for: see `live.parse_state`.
  function applyInitial(st, initial) {
    const view = st.view;
    if (initial.axis && AXES[initial.axis] && (view.axes || []).indexOf(initial.axis) >= 0) {
      st.axis = initial.axis;
    }
    if (typeof initial.slice_mm === "number") {
      const dim = AXES[st.axis].dim;
      const i = Math.round((initial.slice_mm - view.origin[dim]) / view.spacing[dim]);
      st.index[st.axis] = clampIndex(st, st.axis, i);
    }
    if (!view.rgb && Array.isArray(initial.window)) {
      st.window = initial.window.slice();
      st.preset = "";
    } else if (!view.rgb && typeof initial.window === "string") {
      const preset = view.presets.find((p) => p.key === initial.window);
      if (preset) {
        st.window = preset.window.slice();
        st.preset = preset.key;
      }
    }
    if (typeof initial.overlay === "boolean") st.overlay = initial.overlay;
    if (typeof initial.outline === "boolean") st.outline = initial.outline;
    if (typeof initial.opacity === "number") st.opacity = initial.opacity;
    (initial.hidden_labels || []).forEach((v) => st.hidden.add(v));
    if (st.axis !== "axial" || typeof initial.slice_mm === "number") {
      // The slider shows the slice on the pane's axis (once Dash has rendered it).
      setTimeout(function () {
        setProps("pane-slider", st.study, { max: count(st, st.axis) - 1, value: st.index[st.axis] });
      }, 0);
      st.pending = st.index[st.axis];
    }
    const range = st.element.querySelector(".overlay-opacity");
    if (range) range.value = String(Math.round(st.opacity * 100));
  }

  function sliderHandle(pane) {
    return pane.querySelector(".slice-slider [role=slider]");
  }

  function setProps(kind, study, props) {
    if (window.dash_clientside && window.dash_clientside.set_props) {
      window.dash_clientside.set_props({ type: kind, study: study }, props);
    }
  }

  // ---- geometry -------------------------------------------------------------------------

  function planePosition(st) {
    const dim = AXES[st.axis].dim;
    return st.view.origin[dim] + st.index[st.axis] * st.view.spacing[dim];
  }

  function count(st, axis) {
    return st.view.shape[AXES[axis].dim];
  }

  function clampIndex(st, axis, i) {
    return Math.max(0, Math.min(count(st, axis) - 1, i));
  }

  function sameFrame(a, b) {
    // NIfTI has no frame-of-reference UID: studies without one are taken to share scanner
    // (or template) space, as registered research data does; a DICOM UID must match.
    return (a.view.frame || null) === (b.view.frame || null);
  }

  // The index on `target`'s axis that shows what `source` shows now.
  function linkedIndex(source, target) {
    const axis = source.axis;
    const dim = AXES[axis].dim;
    const n = count(target, axis);
    if (sameFrame(source, target)) {
      const k = Math.round((planePosition(source) - target.view.origin[dim]) / target.view.spacing[dim]);
      if (k >= 0 && k < n) return k;
    }
    const fraction = source.index[axis] / Math.max(1, count(source, axis) - 1);
    return Math.round(fraction * (n - 1));
  }

  // ---- applying state to the vtk.js objects ----------------------------------------------

  function viewOf(pane) {
    const host = pane.querySelector(".pane-view > div:first-child");
    return host && window.portalPane ? window.portalPane.viewComponent(host) : null;
  }

  // The pane's vtk.js props by role. Image slices on the preview grid (`shape`) are the
  // preview's; others are a full-resolution slice (`fine`).
  function sliceActors(view, shape) {
    const found = { image: [], label: [], volume: [], surface: [], plane: [],
                    fineImage: [], fineLabel: [] };
    view.renderer.getViewProps().forEach(function (prop) {
      if (!prop.isA) return;
      const mapper = prop.getMapper && prop.getMapper();
      const input = mapper && mapper.getInputData && mapper.getInputData();
      if (!input) return;
      if (prop.isA("vtkVolume")) { found.volume.push(prop); return; }
      // Label surfaces only (react-vtk-js's cube axes are vtkActors too).
      if (prop.getClassName() === "vtkActor" && input.isA && input.isA("vtkPolyData")) {
        // The slice-plane frame is the one quad (four points); the rest are label surfaces.
        (input.getNumberOfPoints() === 4 ? found.plane : found.surface).push(prop);
        return;
      }
      if (!prop.isA("vtkImageSlice")) return;
      const scalars = input.getPointData().getScalars();
      if (!scalars) return;
      const dims = input.getDimensions();
      const preview = !shape || (dims[0] === shape[0] && dims[1] === shape[1] && dims[2] === shape[2]);
      const rgba = scalars.getNumberOfComponents() === 4;
      if (preview) (rgba ? found.label : found.image).push(prop);
      else (rgba ? found.fineLabel : found.fineImage).push(prop);
    });
    return found;
  }

  function is2d(pane) {
    return !pane.classList.contains("mode-3d");
  }

  function apply(pane, force) {
    const st = state(pane);
    const view = st && viewOf(pane);
    if (!view || !view.renderer) return false;
    const actors = sliceActors(view, st.view.shape);
    let changed = false;
    const axis = AXES[st.axis];
    const index = st.index[st.axis];
    const fine = is2d(pane) && fineShown(st, actors);
    function place(actor, slice, visible) {
      const mapper = actor.getMapper();
      if (force || mapper.getSlicingMode() !== axis.dim || mapper.getSlice() !== slice) {
        mapper[axis.setter](slice);
        changed = true;
      }
      if (actor.getVisibility() !== visible) {
        actor.setVisibility(visible);
        changed = true;
      }
    }
    function windowed(actor) {
      const scalars = actor.getMapper().getInputData().getPointData().getScalars();
      if (scalars.getNumberOfComponents() !== 1) return;
      const property = actor.getProperty();
      const width = Math.max(st.window[1] - st.window[0], 1e-6) * (st.view.invert ? -1 : 1);
      const level = (st.window[0] + st.window[1]) / 2;
      if (property.getColorWindow() !== width || property.getColorLevel() !== level) {
        property.setColorWindow(width);
        property.setColorLevel(level);
        changed = true;
      }
    }
    actors.image.forEach(function (actor) {
      place(actor, index, !fine);
      windowed(actor);
    });
    actors.label.forEach(function (actor) {
      place(actor, index, st.overlay && !fine);
      if (st.overlay && !fine && P.recolour(st, actor.getMapper().getInputData())) changed = true;
    });
    // A full-resolution slice is one voxel thick along the axis: slice 0 of it.
    actors.fineImage.forEach(function (actor) {
      place(actor, 0, fine);
      windowed(actor);
    });
    actors.fineLabel.forEach(function (actor) {
      place(actor, 0, fine && st.overlay);
      if (fine && st.overlay && P.recolour(st, actor.getMapper().getInputData())) changed = true;
    });
    if (is2d(pane)) requestFine(st, actors);
    if (!is2d(pane) && P.apply3d(st, view, actors)) changed = true;
    if (is2d(pane) && orientCamera(view, axis)) changed = true;
    if (changed) view.renderView();
    writeTexts(pane, st);
    return true;
  }

  // ---- full-resolution slices -------------------------------------------------------------

  // Fetched once the slice has stayed put for this long: scrolling shows the preview.
  const FINE_DELAY_MS = 250;

  function fineKey(st) {
    const dim = AXES[st.axis].dim;
    const step = (st.view.step || [1, 1, 1]);
    if (!st.view.fine || [0, 1, 2].every((d) => d === dim || step[d] <= 1)) return null;
    const full = st.index[st.axis] * step[dim];
    const seg = (st.view.segmentations || [])[st.seg];
    return { axis: st.axis, full: full, seg: seg && seg.id !== null ? seg.id : null,
             key: st.axis + ":" + full + ":" + (seg ? seg.id : "") };
  }

  function requestFine(st, actors) {
    const want = fineKey(st);
    // Refinement waits until every pane of the page has drawn its preview: the first
    // picture of the whole grid comes first (the server reads originals for it).
    if (!want || document.querySelector('.pane[data-study-id]:not([data-state="ready"])')) return;
    const now = performance.now();
    if (st.fineKey === want.key) {
      // A `set_props` sent while Dash is still busy with the page can be lost: ask again
      // if the slice has not arrived (the same URL twice is not fetched twice).
      if (fineMatches(st, actors.fineImage[0]) || now - st.fineSentAt < 3000) return;
    } else if (now - st.movedAt < FINE_DELAY_MS) {
      return;
    }
    st.fineKey = want.key;
    st.fineSentAt = performance.now();
    const base = "/api/v1/studies/" + st.study + "/slices/" + want.axis + "/" + want.full + "/";
    setProps("pane-fine-reader", st.study, { url: base + "values.vti" });
    if (st.view.segmentations && st.view.segmentations.length) {
      setProps("pane-fine-label-reader", st.study, {
        url: base + "labels.vti" + (want.seg !== null ? "?segmentation=" + want.seg : ""),
      });
    }
  }

  // The loaded full-resolution slice is drawn when it is the slice on screen: flat along the
  // current axis at the current plane's world position (and its labels are loaded too).
  function fineMatches(st, actor) {
    if (!actor) return false;
    const data = actor.getMapper().getInputData();
    const dim = AXES[st.axis].dim;
    return data.getDimensions()[dim] === 1 &&
      Math.abs(data.getOrigin()[dim] - planePosition(st)) < 1e-3;
  }

  function fineShown(st, actors) {
    if (!fineKey(st) || !fineMatches(st, actors.fineImage[0])) return false;
    return !(st.view.segmentations && st.view.segmentations.length && st.overlay) ||
      fineMatches(st, actors.fineLabel[0]);
  }

  // Zoom and pan back to the whole slice (3D: the whole scene, from the default side).
  function resetView(st) {
    const view = viewOf(st.element);
    if (!view || !view.renderer) return;
    if (is2d(st.element)) {
      const camera = view.renderer.getActiveCamera();
      const axis = AXES[st.axis];
      camera.setFocalPoint(0, 0, 0);
      camera.setPosition(axis.position[0], axis.position[1], axis.position[2]);
      camera.setViewUp(axis.up[0], axis.up[1], axis.up[2]);
    }
    view.resetCamera();
  }

  // Point the 2D camera down the axis; only when it is not already (dash-vtk resets it to
  // axial when the pane comes back from 3D).
  function orientCamera(view, axis) {
    const camera = view.renderer.getActiveCamera();
    const dop = camera.getDirectionOfProjection();
    const want = axis.position.map((v) => -v);
    const up = camera.getViewUp();
    const aligned = dop[0] * want[0] + dop[1] * want[1] + dop[2] * want[2] > 0.999 &&
      up[0] * axis.up[0] + up[1] * axis.up[1] + up[2] * axis.up[2] > 0.999;
    if (aligned) return false;
    camera.setFocalPoint(0, 0, 0);
    camera.setPosition(axis.position[0], axis.position[1], axis.position[2]);
    camera.setViewUp(axis.up[0], axis.up[1], axis.up[2]);
    view.renderer.resetCamera();
    return true;
  }

  function writeTexts(pane, st) {
    const letters = AXES[st.axis].letters;
    ["top", "bottom", "left", "right"].forEach(function (side, i) {
      const el = pane.querySelector(".orient-" + side);
      if (el && el.textContent !== letters[i]) el.textContent = letters[i];
    });
    pane.querySelectorAll(".view-axis").forEach(function (b) {
      b.classList.toggle("on", b.dataset.axis === st.axis);
    });
    pane.dataset.axis = st.axis;
    const where = pane.querySelector(".slice-text");
    const text = sliceText(st);
    if (where && where.textContent !== text) where.textContent = text;
    const wl = pane.querySelector(".wl-text");
    if (wl && !st.view.rgb) {
      const width = st.window[1] - st.window[0];
      const text = "W " + fmt(width) + " L " + fmt((st.window[0] + st.window[1]) / 2) +
        (st.view.units ? " " + st.view.units : "");
      if (wl.textContent !== text) wl.textContent = text;
    }
    const toggle = pane.querySelector(".overlay-toggle");
    if (toggle) toggle.classList.toggle("on", st.overlay);
    pane.querySelectorAll(".vol-preset").forEach(function (b) {
      b.classList.toggle("on", b.dataset.volume === st.volume);
    });
    const plane = pane.querySelector(".plane-toggle");
    if (plane) plane.classList.toggle("on", st.plane);
    const outline = pane.querySelector(".overlay-outline");
    if (outline) outline.classList.toggle("on", st.outline);
    pane.querySelectorAll(".legend-seg:not(.hidden) .legend-item").forEach(function (item) {
      item.classList.toggle("off", st.hidden.has(Number(item.dataset.label)));
    });
  }

  function sliceText(st) {
    const i = st.index[st.axis];
    return (i + 1) + "/" + count(st, st.axis) + " · " + AXES[st.axis].coord + " " +
      planePosition(st).toFixed(1) + " mm";
  }

  function fmt(v) {
    return Math.abs(v) >= 100 ? String(Math.round(v)) : String(Math.round(v * 10) / 10);
  }

  // ---- actions (controls, keys, linked panes) -----------------------------------------------

  // Linked panes follow when the scrolled pane rests for FOLLOW_REST_MS, and during a long
  // scroll at least every FOLLOW_MAX_MS: the scrolled pane draws every step, and redrawing
  // eight other panes every step would cut its rate to a few steps a second on a
  // software-rendered GPU (measured with 9 panes: 5 steps/s following every 120 ms, 17/s
  // every 600 ms).
  const FOLLOW_REST_MS = 150;
  const FOLLOW_MAX_MS = 1000;
  const followers = new Set();
  let followTimer = null;
  let followSince = 0;

  function setIndex(st, i, propagate) {
    const k = clampIndex(st, st.axis, i);
    if (k !== st.index[st.axis]) st.movedAt = performance.now();
    st.index[st.axis] = k;
    apply(st.element, false);
    if (propagate && link.position) {
      panes.forEach(function (other) {
        if (other === st || !other.element.isConnected || other.axis !== st.axis) return;
        const target = linkedIndex(st, other);
        if (target === other.index[other.axis]) return;
        other.index[other.axis] = target;
        other.movedAt = performance.now();
        followers.add(other);
      });
      if (followers.size) {
        const now = performance.now();
        if (followTimer === null) followSince = now;
        clearTimeout(followTimer);
        const wait = Math.max(0, Math.min(FOLLOW_REST_MS, followSince + FOLLOW_MAX_MS - now));
        followTimer = setTimeout(follow, wait);
      }
    }
    return k;
  }

  function follow() {
    followTimer = null;
    followers.forEach(function (other) {
      if (other.element.isConnected) {
        apply(other.element, false);
        syncSlider(other, 0);
      }
    });
    followers.clear();
  }

  // The pane's Dash slider shows the slice (its callback then finds nothing to do). Sent
  // after `delay` ms of rest, so a fast wheel does not make Dash re-render it every step.
  function syncSlider(st, delay) {
    clearTimeout(st.sliderTimer);
    st.sliderTimer = setTimeout(function () {
      const handle = sliderHandle(st.element);
      const k = st.index[st.axis];
      if (handle && Number(handle.getAttribute("aria-valuenow")) === k) return;
      st.pending = k;
      setProps("pane-slider", st.study, { value: k });
    }, delay);
  }

  function setAxis(st, axis, propagate) {
    if (!AXES[axis] || (st.view.axes && st.view.axes.indexOf(axis) < 0)) return;
    st.axis = axis;
    st.movedAt = performance.now();
    const handle = sliderHandle(st.element);
    // The slider's callback fires only if its value changes; then it must not move the
    // linked panes (they follow the axis change itself, not a scroll).
    st.pending = handle && Number(handle.getAttribute("aria-valuenow")) !== st.index[axis]
      ? st.index[axis] : null;
    setProps("pane-slider", st.study, { max: count(st, axis) - 1, value: st.index[axis] });
    apply(st.element, false);
    if (propagate && link.axis) {
      panes.forEach(function (other) {
        if (other !== st && other.element.isConnected && other.axis !== axis) setAxis(other, axis, false);
      });
    }
  }

  function setWindow(st, low, high, preset, propagate) {
    st.window = [low, high];
    st.preset = preset;
    apply(st.element, false);
    if (propagate && link.window) {
      panes.forEach(function (other) {
        if (other !== st && other.element.isConnected && !other.view.rgb &&
            other.view.values && other.view.units === st.view.units) {
          setWindow(other, low, high, preset, false);
        }
      });
    }
  }

  function usePreset(st, key) {
    const preset = st.view.presets.find((p) => p.key === key);
    if (preset) setWindow(st, preset.window[0], preset.window[1], key, true);
  }

  function cyclePreset(st) {
    const list = st.view.presets;
    if (!list.length || st.view.rgb) return;
    const at = list.findIndex((p) => p.key === st.preset);
    usePreset(st, list[(at + 1) % list.length].key);
  }

  function toggleLabel(st, value) {
    if (st.hidden.has(value)) st.hidden.delete(value);
    else st.hidden.add(value);
    apply(st.element, false);
  }

  // Overlay another segmentation of the study (e.g. the AI's and the reader's version).
  function setSegmentation(st, i) {
    const segs = st.view.segmentations || [];
    if (!segs[i] || i === st.seg) return;
    st.seg = i;
    st.hidden.clear();
    setProps("pane-label-reader", st.study, { url: segs[i].url });
    const pane = st.element;
    pane.querySelectorAll(".legend-seg").forEach(function (el) {
      el.classList.toggle("hidden", Number(el.dataset.seg) !== i);
    });
    pane.querySelectorAll(".seg-choice").forEach(function (el) {
      el.classList.toggle("on", Number(el.dataset.seg) === i);
    });
    const current = pane.querySelector(".seg-current");
    if (current) current.textContent = segs[i].name;
    pane.dataset.segmentation = String(i);
  }

  function paneFromEvent(event) {
    const pane = event.target.closest && event.target.closest(".pane[data-study-id]");
    return pane ? state(pane) : null;
  }
  Object.assign(P, {
    AXES, AXIS_ORDER, link, panes, paneOf, state, sliderHandle, setProps, planePosition, count,
    clampIndex, viewOf, sliceActors, is2d, apply, fineShown, fmt, setIndex, setAxis, setWindow,
    usePreset, cyclePreset, toggleLabel, setSegmentation, paneFromEvent, resetView, syncSlider,
  });

  setInterval(function () {
    // A page flip re-renders the link buttons; they show the links as they are.
    document.querySelectorAll(".link-tools [data-link]").forEach(function (b) {
      b.classList.toggle("on", Boolean(link[b.dataset.link]));
    });
    document.querySelectorAll(".pane[data-study-id]").forEach(function (pane) {
      if (pane.dataset.view) apply(pane, false);
    });
    panes.forEach(function (st, study) {
      if (!st.element.isConnected) panes.delete(study);
    });
  }, 100);

  window.portalViewer = {
    // The slider moved (by hand, wheel, key or a linked pane): show that slice.
    onSlider: function (study, k) {
      const pane = paneOf(study);
      const st = pane && state(pane);
      if (!st) return String(k + 1);
      // The slider catching up with a slice this script already shows: nothing to do (the
      // pane may have moved on since).
      const echo = st.pending === k;
      st.pending = null;
      if (!echo) setIndex(st, k, true);
      return sliceText(st);
    },
    plane: function (pane) {
      const st = state(pane);
      if (!st) return null;
      const dim = AXES[st.axis].dim;
      return { axis: st.axis, dim: dim, position: planePosition(st), spacing: st.view.spacing[dim],
               index: st.index[st.axis] };
    },
    axialIndex: function (pane, z) {
      const st = state(pane);
      return st ? clampIndex(st, "axial", Math.round((z - st.view.origin[2]) / st.view.spacing[2])) : 0;
    },
    state: function (study) {
      const st = panes.get(Number(study));
      return st ? { axis: st.axis, index: Object.assign({}, st.index), window: st.window.slice(),
                    overlay: st.overlay, opacity: st.opacity, outline: st.outline,
                    hidden: Array.from(st.hidden), preset: st.preset, segmentation: st.seg,
                    volume: st.volume, plane: st.plane } : null;
    },
    // What the vtk.js image actor of a pane really draws (for tests and automation): its
    // slicing axis and slice, and that plane's world position read from the image data.
    drawn: function (study) {
      const pane = paneOf(study);
      const view = pane && viewOf(pane);
      if (!view || !view.renderer) return null;
      const st = state(pane);
      const actors = sliceActors(view, st.view.shape);
      const actor = actors.image[0];
      if (!actor) return null;
      const mapper = actor.getMapper();
      const dim = mapper.getSlicingMode() % 3;
      const ijk = [0, 0, 0];
      ijk[dim] = mapper.getSlice();
      const world = mapper.getInputData().indexToWorld(ijk);
      const spacing = mapper.getInputData().getSpacing();
      const property = actor.getProperty();
      const fine = actors.fineImage[0];
      return { dim: dim, slice: mapper.getSlice(), position: world[dim], spacing: spacing[dim],
               colorWindow: property.getColorWindow(), colorLevel: property.getColorLevel(),
               fine: fine && fine.getVisibility() ? fine.getMapper().getInputData().getDimensions() : null };
    },
    // The 3D slice-plane frame as drawn (its bounds), and whether the volume is shown.
    drawn3d: function (study) {
      const pane = paneOf(study);
      const view = pane && viewOf(pane);
      if (!view || !view.renderer) return null;
      const actors = sliceActors(view, state(pane).view.shape);
      const plane = actors.plane[0];
      return { plane: plane ? plane.getMapper().getInputData().getBounds() : null,
               planeVisible: plane ? plane.getVisibility() : false,
               volumeVisible: actors.volume.some((v) => v.getVisibility()),
               surfaces: actors.surface.filter((s) => s.getVisibility()).length };
    },
    link: link,
    setAxis: function (study, axis) { const st = panes.get(Number(study)); if (st) setAxis(st, axis, true); },
    usePreset: function (study, key) { const st = panes.get(Number(study)); if (st) usePreset(st, key); },
    setSegmentation: function (study, i) {
      const st = panes.get(Number(study));
      if (st) setSegmentation(st, i);
    },
  };
})();
