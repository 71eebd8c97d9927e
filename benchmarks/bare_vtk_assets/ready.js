/* Ready detection for the bare dash-vtk page, as the portal's pane script does it: WebGL
 * contexts keep their drawing buffer so pixels can be read back; every 100 ms the page's
 * canvases are drawn into a 48x48 probe, and the first time one shows at least 12 pixels
 * that are not black, #bare gets data-state="ready" and data-ready-at (performance.now()). */
(function () {
  "use strict";
  const contexts = new Set();
  const original = HTMLCanvasElement.prototype.getContext;
  HTMLCanvasElement.prototype.getContext = function (type, attributes) {
    if (type === "webgl2" || type === "webgl" || type === "experimental-webgl") {
      const attrs = Object.assign({}, attributes || {}, { preserveDrawingBuffer: true });
      const ctx = original.call(this, type, attrs);
      if (ctx) contexts.add(this);
      return ctx;
    }
    return original.call(this, type, attributes);
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
  const timer = setInterval(function () {
    const box = document.getElementById("bare");
    if (!box) return;
    if (Array.from(box.querySelectorAll("canvas")).some((c) => contexts.has(c) && hasContent(c))) {
      box.dataset.state = "ready";
      box.dataset.readyAt = String(Math.round(performance.now()));
      clearInterval(timer);
    }
  }, 100);
})();
