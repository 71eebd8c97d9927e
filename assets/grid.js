/* The review grid in the browser: page flips without a reload, the active pane, maximise,
 * and a keyboard-shortcut registry with its help overlay.
 *
 * 1. Page flips and layout changes navigate inside the page (the shell's dcc.Location with
 *    refresh="callback-nav"; the router callback swaps the page). Before the swap every
 *    WebGL context of the grid is released (`portalContexts.release`, assets/pane.js):
 *    vtk.js 17.8 frees none on unmount and the browser keeps only ~16 live.
 * 2. `portalKeys.register({key, label, description, handler, when})` adds a shortcut; the
 *    help overlay (`?`) lists what is registered when it opens. `key` is a KeyboardEvent
 *    `key` value or a list of them. Keys typed into form fields are never shortcuts.
 * 3. `portalKeys.activePane()` is the pane under the mouse or last clicked (class
 *    `pane-active`); maximise (button in the pane head, or `m`) is a CSS class only, so
 *    the other panes keep their canvases, contexts and loaded volumes.
 */
(function () {
  "use strict";

  const SHELL_URL = "shell-url"; // portal.ui.ids.Shell.URL

  // ---- the shortcut registry -------------------------------------------------------
  const entries = [];

  function keysOf(entry) {
    return Array.isArray(entry.key) ? entry.key : [entry.key];
  }

  function applies(entry) {
    return !entry.when || entry.when();
  }

  function register(spec) {
    if (!spec || !spec.key || typeof spec.handler !== "function") {
      throw new Error("portalKeys.register needs {key, label, description, handler}");
    }
    const entry = Object.assign({ label: String(spec.key), description: "" }, spec);
    for (const key of keysOf(entry)) {
      const taken = entries.find((e) => keysOf(e).includes(key));
      if (taken) {
        throw new Error(`portalKeys: key "${key}" is already registered for "${taken.label}"`);
      }
    }
    entries.push(entry);
    return function unregister() {
      const at = entries.indexOf(entry);
      if (at >= 0) entries.splice(at, 1);
    };
  }

  function typing(target) {
    if (!target || !target.closest) return false;
    return Boolean(target.closest("input, textarea, select, [contenteditable=''], [contenteditable=true]"));
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    if (typing(event.target)) return;
    if (event.key === "Escape" && closeHelp()) {
      event.preventDefault();
      return;
    }
    const entry = entries.find((e) => keysOf(e).includes(event.key) && applies(e));
    if (!entry) return;
    event.preventDefault();
    entry.handler(event);
  });

  // ---- the help overlay ------------------------------------------------------------
  let overlay = null;

  function closeHelp() {
    if (!overlay) return false;
    overlay.remove();
    overlay = null;
    return true;
  }

  function openHelp() {
    closeHelp();
    overlay = document.createElement("div");
    overlay.className = "keys-help";
    overlay.id = "keys-help";
    overlay.setAttribute("role", "dialog");
    overlay.setAttribute("aria-label", "Keyboard shortcuts");
    const card = document.createElement("div");
    card.className = "keys-help-card";
    const title = document.createElement("h2");
    title.textContent = "Keyboard shortcuts";
    card.appendChild(title);
    const table = document.createElement("table");
    for (const entry of entries.filter(applies)) {
      const row = table.insertRow();
      row.dataset.label = entry.label;
      const keys = row.insertCell();
      for (const key of keysOf(entry)) {
        const kbd = document.createElement("kbd");
        kbd.textContent = key === " " ? "Space" : key;
        keys.appendChild(kbd);
      }
      const what = row.insertCell();
      const strong = document.createElement("strong");
      strong.textContent = entry.label;
      what.appendChild(strong);
      if (entry.description) what.appendChild(document.createTextNode(" — " + entry.description));
    }
    card.appendChild(table);
    const hint = document.createElement("p");
    hint.className = "keys-help-hint";
    hint.textContent = "? or Escape closes this list.";
    card.appendChild(hint);
    overlay.appendChild(card);
    overlay.addEventListener("click", function (event) {
      if (event.target === overlay) closeHelp();
    });
    document.body.appendChild(overlay);
  }

  // ---- the grid: active pane, maximise, page flips ----------------------------------
  function grid() {
    return document.querySelector(".pane-grid");
  }

  function panes() {
    const g = grid();
    return g ? Array.from(g.querySelectorAll(".pane[data-study-id]")) : [];
  }

  let active = null;
  // After a flip caused by stepping past the page's end: which pane becomes active.
  let pendingActive = null;

  function setActive(pane) {
    if (active === pane) return;
    if (active) active.classList.remove("pane-active");
    active = pane;
    if (pane) pane.classList.add("pane-active");
  }

  function activePane() {
    if (active && !active.isConnected) active = null;
    return active;
  }

  function onGridPage() {
    return Boolean(grid());
  }

  function paneOf(target) {
    return target && target.closest ? target.closest(".pane-grid .pane[data-study-id]") : null;
  }

  document.addEventListener("mouseover", function (event) {
    const pane = paneOf(event.target);
    if (pane) setActive(pane);
  });
  document.addEventListener(
    "mousedown",
    function (event) {
      const pane = paneOf(event.target);
      if (pane) setActive(pane);
    },
    true
  );

  function maximised() {
    const g = grid();
    return g ? g.querySelector(".pane.pane-maximised") : null;
  }

  function setMaximised(pane) {
    const g = grid();
    if (!g) return;
    const current = maximised();
    if (current && current !== pane) current.classList.remove("pane-maximised");
    if (pane) pane.classList.add("pane-maximised");
    g.classList.toggle("has-maximised", Boolean(pane));
    document.querySelectorAll(".pane-max").forEach(function (button) {
      const on = button.closest(".pane") === pane;
      button.setAttribute("aria-pressed", on ? "true" : "false");
      button.title = on ? "Restore the grid (m)" : "Maximise this pane (m)";
    });
  }

  function toggleMaximise(pane) {
    if (!pane) return;
    setMaximised(pane.classList.contains("pane-maximised") ? null : pane);
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest && event.target.closest(".pane-max");
    if (!button) return;
    event.preventDefault();
    const pane = button.closest(".pane[data-study-id]");
    setActive(pane);
    toggleMaximise(pane);
  });

  // Navigate inside the page: release the grid's contexts, then let the shell's
  // dcc.Location (callback-nav) push the URL and the router swap the page.
  function go(href) {
    const target = new URL(href, window.location.href);
    if (target.href === window.location.href) return false;
    const setProps = window.dash_clientside && window.dash_clientside.set_props;
    if (!setProps) {
      window.location.assign(target.href);
      return true;
    }
    const g = grid();
    if (g) {
      g.classList.add("flipping");
      window.portalContexts && window.portalContexts.release(g);
    }
    active = null;
    setProps(SHELL_URL, { href: target.href });
    return true;
  }

  function pagerLink(which) {
    return document.querySelector(".pager a.page-" + which);
  }

  function flip(which) {
    const link = pagerLink(which);
    return Boolean(link) && go(link.getAttribute("href"));
  }

  // A plain left click on a pager link flips in place; a middle or modified click still
  // opens the link (a new tab) as usual.
  document.addEventListener(
    "click",
    function (event) {
      const link = event.target.closest && event.target.closest(".pager a.page-link");
      if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
      event.preventDefault();
      event.stopPropagation();
      go(link.getAttribute("href"));
    },
    true
  );

  function step(delta) {
    const list = panes();
    if (!list.length) return;
    const current = activePane();
    const at = current ? list.indexOf(current) : delta > 0 ? -1 : list.length;
    const next = at + delta;
    const wasMax = Boolean(maximised());
    if (next < 0 || next >= list.length) {
      if (flip(delta > 0 ? "next" : "prev")) {
        pendingActive = { end: delta > 0 ? "first" : "last", max: wasMax };
      }
      return;
    }
    setActive(list[next]);
    if (wasMax) setMaximised(list[next]);
  }

  // Applies a pending active pane once the new page's panes are in.
  setInterval(function () {
    if (!pendingActive) return;
    const list = panes();
    const g = grid();
    if (!list.length || !g || g.classList.contains("flipping")) return;
    const pane = pendingActive.end === "first" ? list[0] : list[list.length - 1];
    const max = pendingActive.max;
    pendingActive = null;
    setActive(pane);
    if (max) setMaximised(pane);
  }, 100);

  // The layout selector (a dcc.Dropdown whose values are the hrefs of each layout) calls
  // this from its clientside callback.
  window.portalGrid = { go: go, flip: flip, setMaximised: setMaximised, activePane: activePane };

  window.portalKeys = { register: register, activePane: activePane, open: openHelp, close: closeHelp };

  register({
    key: "?",
    label: "Help",
    description: "show or hide this list of shortcuts",
    handler: function () {
      if (!closeHelp()) openHelp();
    },
  });
  register({
    key: "PageDown",
    label: "Next page",
    description: "the next page of studies",
    when: onGridPage,
    handler: function () { flip("next"); },
  });
  register({
    key: "PageUp",
    label: "Previous page",
    description: "the previous page of studies",
    when: onGridPage,
    handler: function () { flip("prev"); },
  });
  register({
    key: "]",
    label: "Next study",
    description: "make the next pane active (past the last one: the next page)",
    when: onGridPage,
    handler: function () { step(1); },
  });
  register({
    key: "[",
    label: "Previous study",
    description: "make the previous pane active (before the first one: the previous page)",
    when: onGridPage,
    handler: function () { step(-1); },
  });
  register({
    key: "m",
    label: "Maximise",
    description: "maximise the active pane, or restore the grid",
    when: onGridPage,
    handler: function () {
      const pane = activePane() || maximised() || panes()[0];
      setActive(pane || null);
      toggleMaximise(pane);
    },
  });
  register({
    key: "Escape",
    label: "Restore",
    description: "close this list, or restore a maximised pane",
    when: function () { return Boolean(maximised()); },
    handler: function () { setMaximised(null); },
  });
})();
