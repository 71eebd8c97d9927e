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
  const link = { position: true, window: false, axis: false };
  const panes = new Map(); // study id -> state
  const labelCache = new WeakMap(); // label vtkImageData -> {index, edges, names, applied}
  const volumeApplied = new WeakMap(); // volume colour function -> preset applied, mtimes
  let hovered = null;

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
      movedAt: 0,
      volume: "off",
      plane: true,
      planeSent: 0,
      pending: null,
      wanted: null,
    };
    panes.set(study, st);
    return st;
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
      if (st.overlay && !fine && recolour(st, actor.getMapper().getInputData())) changed = true;
    });
    // A full-resolution slice is one voxel thick along the axis: slice 0 of it.
    actors.fineImage.forEach(function (actor) {
      place(actor, 0, fine);
      windowed(actor);
    });
    actors.fineLabel.forEach(function (actor) {
      place(actor, 0, fine && st.overlay);
      if (fine && st.overlay && recolour(st, actor.getMapper().getInputData())) changed = true;
    });
    if (is2d(pane)) requestFine(st);
    if (!is2d(pane) && apply3d(st, view, actors)) changed = true;
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

  function requestFine(st) {
    const want = fineKey(st);
    if (!want || st.fineKey === want.key) return;
    if (performance.now() - st.movedAt < FINE_DELAY_MS) return;
    st.fineKey = want.key;
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

  // ---- 3D: volume rendering presets, the slice plane, label surfaces -------------------------

  // On the 8-bit image preview (0..255 spans the study's default window): colour and
  // opacity points [value, r, g, b] and [value, alpha].
  const VOLUME_PRESETS = {
    context: { colour: [[140, 0, 0, 0], [255, 1, 1, 1]], opacity: [[140, 0], [255, 1]] },
    soft: { colour: [[40, 0.55, 0.25, 0.2], [160, 0.9, 0.7, 0.6], [255, 1, 0.95, 0.9]],
            opacity: [[40, 0], [120, 0.04], [255, 0.25]] },
    bright: { colour: [[190, 0.85, 0.8, 0.7], [255, 1, 1, 1]], opacity: [[190, 0], [255, 0.85]] },
  };

  // Corners (RAS mm) of the current slice on the preview grid; `plane_points` in pane.py.
  function planePoints(st) {
    const dim = AXES[st.axis].dim;
    const v = st.view;
    const lo = v.origin.slice();
    const hi = v.origin.map((o, d) => o + (v.shape[d] - 1) * v.spacing[d]);
    const [a, b] = [0, 1, 2].filter((d) => d !== dim);
    const out = [];
    [[lo[a], lo[b]], [hi[a], lo[b]], [hi[a], hi[b]], [lo[a], hi[b]]].forEach(function (uv) {
      const p = [0, 0, 0];
      p[dim] = planePosition(st);
      p[a] = uv[0];
      p[b] = uv[1];
      out.push(p[0], p[1], p[2]);
    });
    return out;
  }

  function apply3d(st, view, actors) {
    let changed = false;
    actors.volume.forEach(function (volume) {
      const on = st.volume !== "off";
      if (volume.getVisibility() !== on) {
        volume.setVisibility(on);
        changed = true;
      }
      if (!on) return;
      const property = volume.getProperty();
      const ctf = property.getRGBTransferFunction(0);
      const ofun = property.getScalarOpacity(0);
      // react-vtk-js rewrites these when its props change: re-apply after any change.
      const seen = volumeApplied.get(ctf);
      if (seen && seen.preset === st.volume && seen.ctf === ctf.getMTime() &&
          seen.ofun === ofun.getMTime()) return;
      const preset = VOLUME_PRESETS[st.volume];
      ctf.removeAllPoints();
      preset.colour.forEach((p) => ctf.addRGBPoint(p[0], p[1], p[2], p[3]));
      ofun.removeAllPoints();
      preset.opacity.forEach((p) => ofun.addPoint(p[0], p[1]));
      // (vtk.js objects are frozen: what was applied is kept beside them.)
      volumeApplied.set(ctf, { preset: st.volume, ctf: ctf.getMTime(), ofun: ofun.getMTime() });
      changed = true;
    });
    actors.plane.forEach(function (plane) {
      if (plane.getVisibility() !== st.plane) {
        plane.setVisibility(st.plane);
        changed = true;
      }
    });
    // Move the frame when it is not where the 2D slice is: dash-vtk makes it on the axial
    // slice, and a `set_props` sent while Dash is still applying the 3D switch is lost, so
    // what the actor shows is checked, not what was last sent.
    actors.plane.forEach(function (plane) {
      const bounds = plane.getMapper().getInputData().getBounds();
      const dim = AXES[st.axis].dim;
      const at = planePosition(st);
      const placed = Math.abs(bounds[2 * dim] - at) < 1e-3 && Math.abs(bounds[2 * dim + 1] - at) < 1e-3;
      const now = performance.now();
      if (!placed && now - (st.planeSent || 0) > 300) {
        st.planeSent = now;
        setProps("pane-plane", st.study, { points: planePoints(st) });
      }
    });
    const table = segLabels(st);
    actors.surface.forEach(function (surface) {
      const property = surface.getProperty();
      const c = property.getColor().map((v) => Math.round(v * 255));
      const lab = table.find((l) => Math.abs(l.color[0] - c[0]) + Math.abs(l.color[1] - c[1]) +
        Math.abs(l.color[2] - c[2]) <= 3);
      const visible = st.overlay && !(lab && st.hidden.has(lab.value));
      if (surface.getVisibility() !== visible) {
        surface.setVisibility(visible);
        changed = true;
      }
      // Surfaces stay at least a little see-through so the slice plane shows inside them.
      const opacity = st.opacity >= 0.95 ? 1 : Math.max(0.1, Math.min(0.85, st.opacity + 0.05));
      if (Math.abs(property.getOpacity() - opacity) > 1e-3) {
        property.setOpacity(opacity);
        changed = true;
      }
    });
    return changed;
  }

  // ---- the label overlay -------------------------------------------------------------------

  // Voxel -> label (by its colour, which the preview took from the label table), made once
  // per label volume; its alpha is then rewritten for opacity, outline and hidden labels.
  function segLabels(st) {
    const seg = (st.view.segmentations || [])[st.seg];
    return seg ? seg.labels : st.view.labels;
  }

  function labelInfo(st, data) {
    let info = labelCache.get(data);
    if (info) return info;
    const rgba = data.getPointData().getScalars().getData();
    const byColour = new Map();
    const table = segLabels(st);
    table.forEach(function (lab, i) {
      byColour.set((lab.color[0] << 16) | (lab.color[1] << 8) | lab.color[2], i + 1);
    });
    const values = table.map((lab) => lab.value);
    const n = rgba.length >> 2;
    const index = new Uint16Array(n);
    for (let v = 0, p = 0; v < n; v += 1, p += 4) {
      if (!rgba[p + 3]) continue;
      const key = (rgba[p] << 16) | (rgba[p + 1] << 8) | rgba[p + 2];
      let li = byColour.get(key);
      if (li === undefined) {
        // A value missing from the table got a palette colour: show it, unnamed.
        values.push(null);
        li = values.length;
        byColour.set(key, li);
      }
      index[v] = li;
    }
    info = { index: index, values: values, edges: {}, applied: "" };
    labelCache.set(data, info);
    return info;
  }

  // A labelled voxel is on the outline of its label in the plane of `axis` when one of its
  // four in-plane neighbours has another label (or lies outside the volume).
  function edges(info, dims, axis) {
    if (info.edges[axis]) return info.edges[axis];
    const [ni, nj, nk] = dims;
    const strides = [1, ni, ni * nj];
    const sizes = [ni, nj, nk];
    const inPlane = [0, 1, 2].filter((d) => d !== AXES[axis].dim);
    const out = new Uint8Array(info.index.length);
    const idx = info.index;
    for (let k = 0, v = 0; k < nk; k += 1) {
      for (let j = 0; j < nj; j += 1) {
        for (let i = 0; i < ni; i += 1, v += 1) {
          const li = idx[v];
          if (!li) continue;
          const pos = [i, j, k];
          for (const d of inPlane) {
            const s = strides[d];
            if (pos[d] === 0 || pos[d] === sizes[d] - 1 || idx[v - s] !== li || idx[v + s] !== li) {
              out[v] = 1;
              break;
            }
          }
        }
      }
    }
    info.edges[axis] = out;
    return out;
  }

  function recolour(st, data) {
    const info = labelInfo(st, data);
    const hidden = new Set();
    info.values.forEach(function (value, i) {
      if (value !== null && st.hidden.has(value)) hidden.add(i + 1);
    });
    const key = [st.opacity, st.outline ? st.axis : "", Array.from(hidden).join(",")].join("|");
    if (info.applied === key) return false;
    const fill = Math.round(255 * st.opacity);
    // Outlines are thin: drawn at twice the fill opacity so they stay visible.
    const line = Math.min(255, Math.round(510 * st.opacity));
    const rgba = data.getPointData().getScalars().getData();
    const idx = info.index;
    const edge = st.outline ? edges(info, data.getDimensions(), st.axis) : null;
    for (let v = 0, p = 3; v < idx.length; v += 1, p += 4) {
      const li = idx[v];
      if (!li) continue;
      if (hidden.has(li)) rgba[p] = 0;
      else if (edge) rgba[p] = edge[v] ? line : 0;
      else rgba[p] = fill;
    }
    data.getPointData().getScalars().modified();
    data.modified();
    info.applied = key;
    return true;
  }

  // ---- actions (controls, keys, linked panes) -----------------------------------------------

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
        other.pending = target;
        apply(other.element, false);
        setProps("pane-slider", other.study, { value: target });
      });
    }
    return k;
  }

  function setAxis(st, axis, propagate) {
    if (!AXES[axis]) return;
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

  document.addEventListener("click", function (event) {
    const target = event.target.closest && event.target.closest(
      ".view-axis, .wl-preset, .overlay-toggle, .overlay-outline, .legend-item, .seg-choice, " +
      ".vol-preset, .plane-toggle");
    if (!target) return;
    const st = paneFromEvent(event);
    if (!st) return;
    if (target.classList.contains("view-axis")) setAxis(st, target.dataset.axis, true);
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
    const world = view.openglRenderWindow.displayToWorld(x, y, 0, view.renderer);
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
      const info = labelInfo(st, labelActor.getMapper().getInputData());
      const li = info.index[v];
      if (li) {
        const found = segLabels(st).find((lab) => lab.value === info.values[li - 1]);
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

  // One slice further from the last one asked for (not the last one shown): a fast wheel
  // or a held key asks again before Dash has delivered the previous step.
  function stepPane(st, delta) {
    const base = st.wanted === null ? st.index[st.axis] : st.wanted;
    const k = clampIndex(st, st.axis, base + delta);
    if (k === base) return;
    st.wanted = k;
    setProps("pane-slider", st.study, { value: k });
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
        if (st) setAxis(st, AXIS_ORDER[(AXIS_ORDER.indexOf(st.axis) + 1) % 3], true);
      } },
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

  setInterval(function () {
    registerKeys();
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
      const linked = st.pending === k;
      st.pending = null;
      if (st.wanted === k) st.wanted = null;
      setIndex(st, k, !linked);
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
