/* Job page: refresh while the job runs; the cut-out options form previews live, and a
 * background image is uploaded to the API in place. Nothing from the server goes into
 * the page except as textContent or a URL we build. */
(function () {
  "use strict";
  var root = document.getElementById("job");
  if (!root) return;
  if (root.getAttribute("data-done") === "false") {
    var delay = 1000;
    var poll = function () {
      fetch(root.getAttribute("data-api"), { headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (j) {
          if (j && j.done) { window.location.reload(); return; }
          delay = Math.min(10000, delay * 1.5);
          setTimeout(poll, delay);
        })
        .catch(function () { delay = Math.min(10000, delay * 2); setTimeout(poll, delay); });
    };
    setTimeout(poll, delay);
  }

  var form = document.getElementById("opt-form");
  if (!form) return;
  var script = document.getElementById("job-script");
  var BACKGROUNDS = script && script.getAttribute("data-backgrounds");
  var API = form.getAttribute("data-api");
  var SIDE = parseInt(form.getAttribute("data-preview-side"), 10) || 720;
  var HEX = /^#[0-9a-fA-F]{6}$/;
  var frame = document.getElementById("opt-frame");
  var download = document.getElementById("opt-download");
  var urlText = document.getElementById("opt-url");
  var errorBox = document.getElementById("opt-error");
  var color = document.getElementById("bg-color");
  var text = document.getElementById("bg-text");
  var imageId = document.getElementById("bg-image");
  var imageMode = document.getElementById("bg-mode-image");
  var fileInput = document.getElementById("bg-file");
  var timer = null;

  function field(name) { return form.elements[name]; }
  function value(name) { var f = field(name); return f ? String(f.value || "").trim() : ""; }
  function mode() {
    var checked = form.querySelector("input[name=bgmode]:checked");
    return checked ? checked.value : "transparent";
  }
  function setMode(m) {
    var r = form.querySelector("input[name=bgmode][value=" + m + "]");
    if (r) { r.disabled = false; r.checked = true; }
  }

  // The API query for the chosen options; defaults are left out (as the server does).
  function query() {
    var q = [];
    var m = mode();
    if (m === "colour") q.push(["bg", text.value.trim().toLowerCase()]);
    if (m === "image" && imageId.value) q.push(["bg", "image:" + imageId.value]);
    var fmt = value("format");
    if (fmt && fmt !== "png") q.push(["format", fmt]);
    if (value("quality")) q.push(["quality", value("quality")]);
    if (value("size")) q.push(["size", value("size")]);
    if (field("crop").checked) {
      q.push(["crop", "true"]);
      if (value("margin")) q.push(["margin", value("margin")]);
    }
    return q;
  }
  function encode(q) {
    return q.map(function (p) { return encodeURIComponent(p[0]) + "=" + encodeURIComponent(p[1]); }).join("&");
  }
  function withPreviewSize(q) {
    var size = parseInt(value("size"), 10);
    var out = q.filter(function (p) { return p[0] !== "size"; });
    out.push(["size", String(size > 0 && size < SIDE ? size : SIDE)]);
    return out;
  }
  function pageQuery() {
    var q = [["bgmode", mode()], ["bgcolor", text.value.trim()]];
    if (imageId.value) q.push(["bgimage", imageId.value]);
    ["format", "quality", "size"].forEach(function (n) { if (value(n)) q.push([n, value(n)]); });
    if (field("crop").checked) { q.push(["crop", "1"]); if (value("margin")) q.push(["margin", value("margin")]); }
    return q;
  }

  function showError(message) {
    errorBox.textContent = message || "";
    errorBox.hidden = !message;
    download.setAttribute("aria-disabled", message ? "true" : "false");
  }

  function preview() {
    var img = document.getElementById("opt-preview");
    if (!img) {
      img = document.createElement("img");
      img.id = "opt-preview";
      img.alt = "Cut-out with the chosen options";
      frame.appendChild(img);
    }
    return img;
  }

  // Combinations the API would refuse, caught here and said in words (no broken preview).
  function refusal() {
    var fmt = value("format"), margin = value("margin");
    if (fmt === "jpeg" && mode() === "transparent") {
      return "JPEG has no transparency: pick a colour or image background, or choose PNG or WebP.";
    }
    if (margin && !/^\d+(\.\d+)?(px|%)?$/.test(margin)) {
      return "Margin must be a number of pixels (40 or 40px) or a percentage (10%).";
    }
    if (margin && field("crop") && !field("crop").checked) {
      return "A margin applies only when the cut-out is cropped to the person: tick ‘Crop to the person’.";
    }
    return "";
  }

  // The API's messages start with the parameter's name ("format: ..."): make that read as a sentence.
  function inWords(message) {
    var m = /^(\w+): (.*)$/.exec(message || "");
    return m ? m[1].charAt(0).toUpperCase() + m[1].slice(1) + ": " + m[2] : message;
  }

  function apply() {
    var refused = refusal();
    if (refused) {
      clearTimeout(timer);
      var old = document.getElementById("opt-preview");
      if (old) old.parentNode.removeChild(old);
      showError(refused);
      return;
    }
    var q = query();
    var full = API + (q.length ? "?" + encode(q) : "");
    download.href = full;
    urlText.textContent = full;
    frame.className = "frame" + (mode() === "transparent" ? " checker" : "");
    if (window.history && history.replaceState) {
      history.replaceState(null, "", "?" + encode(pageQuery()) + "#options");
    }
    clearTimeout(timer);
    // Debounce: typing and dragging the colour picker fire many events.
    timer = setTimeout(function () { preview().src = API + "?" + encode(withPreviewSize(q)); }, 200);
  }

  // A refused option makes the preview fail: ask the API why, and say it.
  frame.addEventListener("error", function (ev) {
    var img = ev.target;
    if (!img || img.id !== "opt-preview") return;
    fetch(img.src, { headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (body) { showError(body && body.error ? inWords(body.error.message) : "This preview failed."); })
      .catch(function () { showError("This preview failed."); });
  }, true);
  frame.addEventListener("load", function () { showError(""); }, true);

  color.addEventListener("input", function () { text.value = color.value; setMode("colour"); apply(); });
  text.addEventListener("input", function () {
    if (HEX.test(text.value.trim())) { color.value = text.value.trim().toLowerCase(); setMode("colour"); apply(); }
  });
  form.addEventListener("change", function (ev) { if (ev.target !== fileInput) apply(); });
  form.addEventListener("input", function (ev) {
    if (ev.target.type === "number" || ev.target.name === "margin") apply();
  });
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var btn = ev.submitter;
    if (btn && btn.name === "bg" && HEX.test(btn.value)) {
      text.value = btn.value; color.value = btn.value; setMode("colour");
    }
    apply();
  });

  if (fileInput && BACKGROUNDS) {
    fileInput.addEventListener("change", function () {
      var file = fileInput.files && fileInput.files[0];
      if (!file) return;
      var fd = new FormData();
      fd.append("image", file, file.name);
      showError("");
      fetch(BACKGROUNDS, { method: "POST", body: fd, headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
        .then(function (res) {
          if (!res.ok) { showError(res.body && res.body.error ? res.body.error.message : "Upload failed"); return; }
          imageId.value = res.body.id;
          imageMode.disabled = false;
          setMode("image");
          apply();
        })
        .catch(function () { showError("The background could not be uploaded."); })
        .then(function () { fileInput.value = ""; });
    });
  }
})();
