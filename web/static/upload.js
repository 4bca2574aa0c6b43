/* Upload page: drag & drop / pick files or a folder, one XHR per file with
 * progress, all files of one drop into one batch. Data is only ever put into
 * the page with textContent (never innerHTML). */
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) return;

  var API = form.getAttribute("data-api");
  var BATCH_PAGE = form.getAttribute("data-batch-page"); // ".../batches/__ID__"
  var JOB_PAGE = form.getAttribute("data-job-page"); // ".../jobs/__ID__"
  var CONCURRENCY = 3;
  var ACCEPT = /\.(jpe?g|png|webp)$/i;
  var zone = document.getElementById("dropzone");
  var list = document.getElementById("upload-list");
  var panel = document.getElementById("upload-panel");
  var summary = document.getElementById("upload-summary");
  var openBatch = document.getElementById("open-batch");
  var fileInput = document.getElementById("file-input");
  var folderInput = document.getElementById("folder-input");
  var busy = false;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  function humanSize(n) {
    if (n < 1024) return n + " B";
    if (n < 1048576) return (n / 1024).toFixed(0) + " KB";
    return (n / 1048576).toFixed(1) + " MB";
  }

  function errorText(xhr) {
    var body = null;
    try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
    var err = body && body.error;
    if (!err) return "Upload failed (HTTP " + xhr.status + ")";
    var message = err.message || err.code || "rejected";
    // The row already shows the file's name: "alice.jpg: the file is 27 MB…" says it twice.
    if (err.file && message.indexOf(err.file + ": ") === 0) message = message.slice(err.file.length + 2);
    var parts = [message.charAt(0).toUpperCase() + message.slice(1)];
    var files = err.files || err.details || [];
    if (Array.isArray(files)) {
      files.forEach(function (f) {
        // Skip per-file details the summary message already says.
        if (f && f.message && parts.join(" ").toLowerCase().indexOf(f.message.toLowerCase()) < 0) {
          parts.push(f.message);
        }
      });
    }
    return parts.join(" — ");
  }

  function makeRow(file) {
    var li = el("li", "pending");
    var name = el("span", "name", file.relPath || file.name);
    var bar = el("div", "progress");
    var fill = el("span");
    bar.appendChild(fill);
    var state = el("span", "state", "Waiting · " + humanSize(file.size));
    state.setAttribute("aria-live", "polite");
    li.appendChild(name); li.appendChild(bar); li.appendChild(state);
    list.appendChild(li);
    return { li: li, bar: bar, fill: fill, state: state };
  }

  // The batch name goes with the request that creates the batch; the outputs and model with every file.
  function choices() {
    var name = document.getElementById("batch-name");
    var outputs = Array.prototype.slice.call(form.querySelectorAll("input[name=outputs]:checked"))
      .map(function (c) { return c.value; });
    var model = document.getElementById("model");
    return { name: name ? name.value.trim() : "", outputs: outputs, model: model ? model.value : "" };
  }

  // Rejected files are kept in this browser under their batch, so the batch page can list
  // them after this page is gone.
  function remember(batchId, rejected) {
    if (!batchId || !rejected.length || !window.localStorage) return;
    try {
      var key = "humanseg.rejected." + batchId;
      var before = JSON.parse(localStorage.getItem(key) || "[]");
      localStorage.setItem(key, JSON.stringify(before.concat(rejected).slice(-500)));
    } catch (e) { /* storage full or refused: the list stays on this page only */ }
  }

  function sendOne(item, batchId) {
    return new Promise(function (resolve) {
      var fd = new FormData();
      var chosen = choices();
      fd.append("images", item.file, item.file.name);
      if (batchId) fd.append("batch_id", batchId);
      else if (chosen.name) fd.append("batch_name", chosen.name);
      chosen.outputs.forEach(function (o) { fd.append("outputs", o); });
      if (chosen.model) fd.append("model", chosen.model);
      var xhr = new XMLHttpRequest();
      xhr.open("POST", API);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      item.row.state.textContent = "Uploading…";
      xhr.upload.onprogress = function (ev) {
        if (ev.lengthComputable) {
          var pct = Math.round((ev.loaded / ev.total) * 100);
          item.row.fill.style.width = pct + "%";
          item.row.state.textContent = "Uploading… " + pct + "%";
        }
      };
      xhr.onload = function () {
        if (xhr.status >= 200 && xhr.status < 300) {
          var data = {};
          try { data = JSON.parse(xhr.responseText); } catch (e) { data = {}; }
          var bid = data.batch_id || (data.batch && data.batch.id) || null;
          item.row.fill.style.width = "100%";
          item.row.bar.className = "progress ok";
          item.row.li.className = "done";
          item.row.state.textContent = "Uploaded · queued for segmentation";
          var jobs = data.jobs || [];
          item.jobId = jobs.length === 1 ? jobs[0].id : null;
          resolve({ ok: true, batchId: bid, jobId: item.jobId });
        } else {
          item.row.bar.className = "progress bad";
          item.row.fill.style.width = "100%";
          item.row.li.className = "rejected";
          item.row.state.textContent = "Rejected: " + errorText(xhr);
          // Rejected rows go to the top: in a long list the one that needs attention is seen first.
          list.insertBefore(item.row.li, list.firstChild);
          resolve({ ok: false, reason: errorText(xhr) });
        }
      };
      xhr.onerror = function () {
        item.row.bar.className = "progress bad";
        item.row.li.className = "rejected";
        item.row.state.textContent = "Network error — the server could not be reached";
        resolve({ ok: false, reason: "Network error — the server could not be reached" });
      };
      xhr.send(fd);
    });
  }

  var skippedNote = document.getElementById("upload-skipped");

  // Files of a picked or dropped folder that are not images: said, not silently dropped.
  function sayskipped(names) {
    if (!skippedNote) return;
    skippedNote.hidden = !names.length;
    skippedNote.textContent = names.length ? names.length + " file" + (names.length === 1 ? " was" : "s were") +
      " skipped (not JPEG, PNG or WebP): " + names.slice(0, 5).join(", ") + (names.length > 5 ? ", …" : "") : "";
  }

  function run(files, skipped) {
    sayskipped(skipped || []);
    if (busy || !files.length) return;
    busy = true;
    panel.hidden = false;
    openBatch.hidden = true;
    while (list.firstChild) list.removeChild(list.firstChild);
    // Natural order (img2 before img10), so the batch lists files roughly as on disk.
    files = files.slice().sort(function (a, b) {
      return (a.relPath || a.name).localeCompare(b.relPath || b.name, undefined, { numeric: true });
    });
    var items = files.map(function (f) { return { file: f, row: makeRow(f) }; });
    var ok = 0, bad = 0, batchId = null, next = 0, rejected = [], lastJob = null;
    summary.textContent = "Uploading " + items.length + " file" + (items.length === 1 ? "" : "s") + "…";

    function record(res, item) {
      if (res.ok) { ok += 1; lastJob = res.jobId; if (!batchId && res.batchId) batchId = res.batchId; }
      else { bad += 1; rejected.push({ file: item.file.relPath || item.file.name, message: res.reason }); }
      if (batchId && openBatch.hidden) {
        openBatch.href = BATCH_PAGE.replace("__ID__", encodeURIComponent(batchId));
        openBatch.hidden = false;
      }
      summary.textContent = (ok + bad) + " of " + items.length + " sent · " + ok + " accepted · " + bad + " rejected";
    }

    // Files go one at a time until the first is accepted (it creates the
    // batch), then the rest in parallel, each carrying that batch id.
    function first() {
      if (next >= items.length) return Promise.resolve();
      var item = items[next++];
      return sendOne(item, null).then(function (res) {
        record(res, item);
        return batchId ? null : first();
      });
    }
    function worker() {
      if (next >= items.length) return Promise.resolve();
      var item = items[next++];
      return sendOne(item, batchId).then(function (res) { record(res, item); return worker(); });
    }
    first().then(function () {
      var pool = [];
      for (var i = 0; i < CONCURRENCY; i++) pool.push(worker());
      return Promise.all(pool);
    }).then(function () {
      busy = false;
      remember(batchId, rejected);
      summary.textContent = "Done · " + ok + " accepted · " + bad + " rejected";
      if (batchId && bad === 0) {
        // One photo: straight to its own page (a batch page with one tile is a needless stop).
        window.location.assign(items.length === 1 && lastJob && JOB_PAGE
          ? JOB_PAGE.replace("__ID__", encodeURIComponent(lastJob)) : openBatch.href);
      } else if (batchId) {
        var rows = {};
        items.forEach(function (item) { if (item.jobId) rows[item.jobId] = item.row; });
        follow(batchId, rows);
      }
    });
  }

  // Staying on this page (a file was refused): the accepted rows follow their jobs to the end.
  var FINISHED = { succeeded: "Done · segmented", failed: "Failed", cancelled: "Cancelled" };
  function follow(batchId, rows) {
    var url = API.replace(/\/jobs$/, "/batches/") + encodeURIComponent(batchId) + "?limit=500";
    function page(cursor) {
      return fetch(url + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""),
                   { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) {
          if (!body) return null;
          (body.jobs || []).forEach(function (job) {
            var row = rows[job.id];
            if (!row) return;
            if (FINISHED[job.status]) {
              row.state.textContent = FINISHED[job.status] + (job.error ? ": " + job.error : "");
              delete rows[job.id];
            } else if (job.status === "running") {
              row.state.textContent = "Uploaded · segmenting…";
            }
          });
          return body.next_cursor ? page(body.next_cursor) : null;
        });
    }
    page(null).catch(function () { return null; }).then(function () {
      if (Object.keys(rows).length) setTimeout(function () { follow(batchId, rows); }, 2000);
    });
  }

  function pick(fileList) {
    var out = [];
    for (var i = 0; i < fileList.length; i++) {
      var f = fileList[i];
      var rel = f.webkitRelativePath || f.relPath || "";
      // Skip hidden files (.DS_Store …) that a dropped folder drags along.
      if (rel && /(^|\/)\./.test(rel)) continue;
      if (rel) f.relPath = rel;
      out.push(f);
    }
    return out;
  }

  // Walk dropped folders (Chromium/Firefox/Safari entries API).
  function walkEntry(entry, path, out, skipped) {
    return new Promise(function (resolve) {
      if (entry.isFile) {
        entry.file(function (f) {
          if (!/^\./.test(f.name) && ACCEPT.test(f.name)) {
            f.relPath = path + f.name;
            out.push(f);
          } else if (!/^\./.test(f.name) && skipped) {
            skipped.push(path + f.name);
          }
          resolve();
        }, function () { resolve(); });
      } else if (entry.isDirectory) {
        var reader = entry.createReader();
        var all = [];
        var readMore = function () {
          reader.readEntries(function (batch) {
            if (!batch.length) {
              Promise.all(all.map(function (e) {
                return walkEntry(e, path + entry.name + "/", out, skipped);
              })).then(resolve);
            } else { all = all.concat(Array.prototype.slice.call(batch)); readMore(); }
          }, function () { resolve(); });
        };
        readMore();
      } else { resolve(); }
    });
  }

  function onDrop(ev) {
    ev.preventDefault();
    zone.classList.remove("over");
    var dt = ev.dataTransfer;
    var items = dt.items;
    if (items && items.length && items[0].webkitGetAsEntry) {
      var entries = [];
      for (var i = 0; i < items.length; i++) {
        var e = items[i].webkitGetAsEntry();
        if (e) entries.push(e);
      }
      var hasDir = entries.some(function (e) { return e.isDirectory; });
      if (hasDir) {
        var out = [], skipped = [];
        Promise.all(entries.map(function (e) { return walkEntry(e, "", out, skipped); }))
          .then(function () { run(out, skipped); });
        return;
      }
    }
    run(pick(dt.files));
  }

  ["dragenter", "dragover"].forEach(function (t) {
    zone.addEventListener(t, function (ev) { ev.preventDefault(); zone.classList.add("over"); });
  });
  zone.addEventListener("dragleave", function () { zone.classList.remove("over"); });
  zone.addEventListener("drop", onDrop);
  // Dropping outside the zone must not navigate away from the page.
  window.addEventListener("dragover", function (ev) { ev.preventDefault(); });
  window.addEventListener("drop", function (ev) { ev.preventDefault(); });

  function onPick(input) {
    input.addEventListener("change", function () {
      var files = pick(input.files), skipped = [];
      if (input === folderInput) {
        skipped = files.filter(function (f) { return !ACCEPT.test(f.name); })
          .map(function (f) { return f.relPath || f.name; });
        files = files.filter(function (f) { return ACCEPT.test(f.name); });
      }
      run(files, skipped);
      input.value = "";
    });
  }
  onPick(fileInput);
  if (folderInput) onPick(folderInput);
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    run(pick(fileInput.files));
  });
})();
