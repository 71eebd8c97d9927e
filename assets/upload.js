/* Import page: drop files or folders, send them as multipart to POST /api/v1/imports with
 * upload progress, then poll the job and show its report. Files never go through Dash. */
(function () {
  "use strict";

  function csrfToken() {
    const field = document.querySelector("input[name=csrf_token]");
    return field ? field.value : "";
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Folders dropped in: walk them (webkitGetAsEntry) and keep every file.
  function readEntry(entry) {
    return new Promise(function (resolve) {
      if (entry.isFile) {
        entry.file(function (f) {
          // Keep the dropped folder structure: pairing and versions depend on it.
          f.relPath = entry.fullPath.replace(/^\/+/, "");
          resolve([f]);
        }, function () { resolve([]); });
      } else if (entry.isDirectory) {
        const reader = entry.createReader();
        const all = [];
        (function more() {
          reader.readEntries(function (batch) {
            if (!batch.length) {
              Promise.all(all.map(readEntry)).then(function (lists) { resolve(lists.flat()); });
            } else {
              all.push.apply(all, batch);
              more();
            }
          }, function () { resolve([]); });
        })();
      } else {
        resolve([]);
      }
    });
  }

  function showJob(box, job) {
    box.replaceChildren();
    const line = el("p", "job-line",
      "Job " + job.id + " · " + job.status + " · " + job.done + "/" + job.total + " studies");
    box.appendChild(line);
    const bar = el("progress");
    bar.max = Math.max(job.total, 1);
    bar.value = job.done;
    box.appendChild(bar);
    if (job.imported.length) {
      const ok = el("p", "job-ok", job.imported.length + " imported: ");
      const link = el("a", "", "review them");
      link.href = "/review?studies=" + job.imported.join(",");
      ok.appendChild(link);
      box.appendChild(ok);
    }
    if (job.skipped.length) box.appendChild(el("p", "", job.skipped.length + " already present"));
    if (job.refused.length) {
      const list = el("ul", "job-refused");
      job.refused.forEach(function (r) { list.appendChild(el("li", "", r.file + ": " + r.reason)); });
      box.appendChild(el("p", "job-bad", job.refused.length + " refused:"));
      box.appendChild(list);
    }
    if (job.notes && job.notes.length) {
      const notes = el("ul", "job-notes");
      job.notes.forEach(function (n) { notes.appendChild(el("li", "", n.file + ": " + n.note)); });
      box.appendChild(el("p", "", job.notes.length + " notes:"));
      box.appendChild(notes);
    }
    if (job.error) box.appendChild(el("p", "job-bad", job.error));
  }

  function poll(box, id) {
    fetch("/api/v1/imports/" + id, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (job) {
        showJob(box, job);
        if (job.status === "queued" || job.status === "running") {
          setTimeout(function () { poll(box, id); }, 700);
        } else {
          box.dataset.state = job.status;
        }
      });
  }

  function upload(zone, files) {
    const box = document.getElementById("import-status");
    const project = document.getElementById("import-project").value.trim();
    if (!project) { box.textContent = "Choose a project first."; return; }
    if (!files.length) return;
    const limit = Number(zone.dataset.maxMb) * 1024 * 1024;
    const size = files.reduce(function (n, f) { return n + f.size; }, 0);
    if (size > limit) {
      box.textContent = "These files are larger than the upload limit of " +
        zone.dataset.maxMb + " MiB.";
      return;
    }
    const form = new FormData();
    form.append("project", project);
    const resample = document.querySelector("#import-resample input[type=checkbox]");
    if (resample && resample.checked) form.append("resample_labels", "1");
    files.forEach(function (f) {
      form.append("files", f, f.relPath || f.webkitRelativePath || f.name);
    });
    box.dataset.state = "uploading";
    box.replaceChildren(el("p", "", "Uploading " + files.length + " files…"));
    const bar = el("progress");
    box.appendChild(bar);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/imports");
    xhr.setRequestHeader("X-CSRF-Token", csrfToken());
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) { bar.max = e.total; bar.value = e.loaded; }
    };
    xhr.onload = function () {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (err) { body = {}; }
      if (xhr.status === 202) {
        poll(box, body.id);
      } else {
        box.dataset.state = "failed";
        box.textContent = "Upload refused (" + xhr.status + "): " + (body.error || xhr.statusText);
      }
    };
    xhr.onerror = function () { box.textContent = "Upload failed: network error."; };
    xhr.send(form);
  }

  function chooser(zone, folder) {
    const input = document.createElement("input");
    input.type = "file";
    input.multiple = true;
    if (folder) input.webkitdirectory = true;
    input.className = folder ? "folder-input" : "files-input";
    input.hidden = true;
    input.addEventListener("change", function () { upload(zone, Array.from(input.files)); });
    zone.appendChild(input);
    return input;
  }

  function wire(zone) {
    if (zone.dataset.wired) return;
    zone.dataset.wired = "1";
    const files = chooser(zone, false);
    const folder = chooser(zone, true);
    zone.querySelector(".choose-files").addEventListener("click", function () { files.click(); });
    zone.querySelector(".choose-folder").addEventListener("click", function () { folder.click(); });
    zone.addEventListener("dragover", function (e) { e.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", function () { zone.classList.remove("over"); });
    zone.addEventListener("drop", function (e) {
      e.preventDefault();
      zone.classList.remove("over");
      const entries = Array.from(e.dataTransfer.items || [])
        .map(function (i) { return i.webkitGetAsEntry && i.webkitGetAsEntry(); })
        .filter(Boolean);
      if (entries.length) {
        Promise.all(entries.map(readEntry)).then(function (lists) { upload(zone, lists.flat()); });
      } else {
        upload(zone, Array.from(e.dataTransfer.files));
      }
    });
  }

  // The page is rendered by Dash after load; wire the zone whenever it appears.
  new MutationObserver(function () {
    const zone = document.getElementById("import-drop");
    if (zone) wire(zone);
  }).observe(document.documentElement, { childList: true, subtree: true });
})();
