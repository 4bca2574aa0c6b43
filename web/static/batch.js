/* Batch page: poll the JSON API with backoff and update the grid in place.
 * Stops once every job is terminal. Data goes in with textContent only. */
(function () {
  "use strict";
  var root = document.getElementById("batch");
  if (!root || !window.fetch) return;

  var API = root.getAttribute("data-api");          // /api/v1/batches/<id>
  var JOB_PAGE = root.getAttribute("data-job-page"); // /jobs/__ID__
  var grid = document.getElementById("job-grid");
  var note = document.getElementById("poll-note");
  var MIN = 1000, MAX = 10000;
  var delay = MIN;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  function setText(id, value) {
    var n = document.getElementById(id);
    if (n && n.textContent !== String(value)) n.textContent = String(value);
  }

  function tileFor(job) {
    var tile = document.getElementById("job-" + job.id);
    if (tile) return tile;
    tile = el("a", "tile");
    tile.id = "job-" + job.id;
    tile.href = JOB_PAGE.replace("__ID__", encodeURIComponent(job.id));
    var thumb = el("div", "thumb");
    thumb.appendChild(el("div", "spinner"));
    var meta = el("div", "meta");
    var name = el("span", "fname", job.filename || "");
    name.title = job.filename || "";
    meta.appendChild(name);
    meta.appendChild(el("span", "status"));
    tile.appendChild(thumb);
    tile.appendChild(meta);
    grid.appendChild(tile);
    var empty = document.getElementById("batch-empty");
    if (empty) empty.hidden = true;
    return tile;
  }

  // Returns true when the tile changed.
  function updateTile(job) {
    var tile = tileFor(job);
    if (tile.getAttribute("data-status") === job.status) return false;
    tile.setAttribute("data-status", job.status);
    var status = tile.querySelector(".status");
    status.className = "status " + job.status;
    status.textContent = job.status;
    var thumb = tile.querySelector(".thumb");
    var thumbUrl = job.urls && job.urls.thumb;
    if (job.status === "succeeded" && thumbUrl) {
      while (thumb.firstChild) thumb.removeChild(thumb.firstChild);
      var img = el("img");
      img.alt = "Cut-out of " + (job.filename || "image");
      img.loading = "lazy";
      img.src = thumbUrl;
      thumb.appendChild(img);
    } else if (job.done) {  // failed or cancelled
      var sp = thumb.querySelector(".spinner");
      if (sp) sp.className = "spinner still";
      var meta = tile.querySelector(".meta");
      var reason = meta.querySelector(".reason") || meta.appendChild(el("span", "reason"));
      reason.textContent = job.error || (job.status === "cancelled" ? "Cancelled" : "Segmentation failed");
    }
    return true;
  }

  function counts(data) {
    var c = data.counts || {};
    var total = data.job_count != null ? data.job_count : (data.total != null ? data.total :
      (c.queued || 0) + (c.running || 0) + (c.succeeded || 0) + (c.failed || 0) + (c.cancelled || 0));
    return { queued: c.queued || 0, running: c.running || 0, succeeded: c.succeeded || 0,
             failed: c.failed || 0, cancelled: c.cancelled || 0, total: total };
  }

  function renderCounts(c) {
    ["queued", "running", "succeeded", "failed", "cancelled"].forEach(function (k) { setText("count-" + k, c[k]); });
    setText("count-total", c.total);
    var done = c.succeeded + c.failed + c.cancelled;
    var pct = c.total ? Math.round((100 * done) / c.total) : 0;
    var fill = document.getElementById("batch-progress-fill");
    if (fill) fill.style.width = pct + "%";
    var bar = document.getElementById("batch-progress");
    if (bar) bar.setAttribute("aria-valuenow", String(pct));
    setText("progress-label", done + " of " + c.total + " finished");
    var dl = document.getElementById("download-all");
    if (dl) dl.setAttribute("aria-disabled", c.succeeded ? "false" : "true");
  }

  // Fetch every page of the batch's jobs (follows next_cursor / next).
  function fetchAll(url, acc) {
    return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (data) {
        acc.first = acc.first || data;
        acc.jobs = acc.jobs.concat(data.jobs || []);
        var nextCursor = data.next_cursor || (data.page && data.page.next_cursor);
        var nextUrl = data.next || (data.links && data.links.next);
        if (nextUrl) return fetchAll(nextUrl, acc);
        if (nextCursor) {
          var sep = API.indexOf("?") < 0 ? "?" : "&";
          return fetchAll(API + sep + "cursor=" + encodeURIComponent(nextCursor), acc);
        }
        return acc;
      });
  }

  function tick() {
    fetchAll(API, { first: null, jobs: [] }).then(function (acc) {
      note.hidden = true;
      var changed = false;
      acc.jobs.forEach(function (j) { if (updateTile(j)) changed = true; });
      var c = counts(acc.first);
      renderCounts(c);
      var open = c.queued + c.running;
      // The buttons that fit the counts now: cancel while some are open, retry once some failed.
      var cancelForm = document.getElementById("batch-cancel-form");
      var retryForm = document.getElementById("batch-retry-form");
      if (cancelForm) cancelForm.hidden = !open;
      if (retryForm) retryForm.hidden = !(c.failed + c.cancelled);
      setText("retry-count", String(c.failed + c.cancelled));
      if (!open && acc.jobs.every(function (j) { return j.done; })) {
        root.setAttribute("data-done", "true");
        // The same words as the server's (gallery.done_label): "All done" only when something was done.
        setText("live-label", c.total && c.cancelled === c.total ? "Cancelled"
          : c.total && !c.succeeded ? "Finished: nothing succeeded" : "All done");
        return;
      }
      delay = changed ? MIN : Math.min(MAX, Math.round(delay * 1.5));
      setTimeout(tick, delay);
    }).catch(function () {
      note.hidden = false;
      note.textContent = "Lost contact with the server — retrying…";
      delay = Math.min(MAX, Math.round(delay * 2));
      setTimeout(tick, delay);
    });
  }

  // Files the upload page rejected for this batch (kept in this browser by upload.js).
  function showRejected() {
    var box = document.getElementById("rejected");
    var key = "humanseg.rejected." + root.getAttribute("data-batch-id");
    var items = [];
    try { items = JSON.parse((window.localStorage && localStorage.getItem(key)) || "[]"); } catch (e) { items = []; }
    if (!box || !Array.isArray(items) || !items.length) return;
    var list = document.getElementById("rejected-list");
    items.forEach(function (r) {
      var li = el("li", "rejected");
      li.appendChild(el("span", "name", String(r.file || "")));
      li.appendChild(el("span", "state", "Rejected: " + String(r.message || "")));
      list.appendChild(li);
    });
    setText("rejected-count", items.length);
    box.hidden = false;
    document.getElementById("rejected-dismiss").addEventListener("click", function () {
      try { localStorage.removeItem(key); } catch (e) { /* nothing kept */ }
      box.hidden = true;
    });
  }
  showRejected();

  if (root.getAttribute("data-done") !== "true") setTimeout(tick, 300);
})();
