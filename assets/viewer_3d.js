/* 3D: volume rendering presets on vtk.js transfer functions, the 2D slice plane as a
 * frame in the scene, and label surfaces following the overlay controls.
 * Part of the pane viewer: `assets/viewer.js` holds the state it works on.
 */
(function () {
  "use strict";
  const P = window.portalViewerParts;
  const { AXES, planePosition, setProps } = P;
  const volumeApplied = new WeakMap(); // volume colour function -> preset applied, mtimes

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
    const table = P.segLabels(st);
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


  Object.assign(P, { apply3d, planePoints });
})();
