/* The label overlay: voxel -> label by colour, then alpha rewritten for opacity,
 * outline-only and hidden labels.
 * Part of the pane viewer: `assets/viewer.js` holds the state it works on.
 */
(function () {
  "use strict";
  const P = window.portalViewerParts;
  const { AXES } = P;
  const labelCache = new WeakMap(); // label vtkImageData -> {index, edges, applied}

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


  Object.assign(P, { segLabels, labelInfo, recolour });
})();
