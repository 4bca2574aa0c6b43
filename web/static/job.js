/* Job page: live background-colour preview; refresh while the job runs. */
(function () {
  "use strict";
  var root = document.getElementById("job");
  if (!root) return;
  var status = root.getAttribute("data-status");
  if (status === "queued" || status === "running") {
    var delay = 1000;
    var poll = function () {
      fetch(root.getAttribute("data-api"), { headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (j) {
          if (j && (j.status === "succeeded" || j.status === "failed")) { window.location.reload(); return; }
          delay = Math.min(10000, delay * 1.5);
          setTimeout(poll, delay);
        })
        .catch(function () { delay = Math.min(10000, delay * 2); setTimeout(poll, delay); });
    };
    setTimeout(poll, delay);
  }

  var form = document.getElementById("bg-form");
  if (!form) return;
  var color = document.getElementById("bg-color");
  var text = document.getElementById("bg-text");
  var preview = document.getElementById("bg-preview");
  var download = document.getElementById("bg-download");
  var base = preview.getAttribute("src").split("?")[0];
  var HEX = /^#[0-9a-fA-F]{6}$/;
  var timer = null;

  function apply(hex) {
    if (!HEX.test(hex)) return;
    hex = hex.toLowerCase();
    color.value = hex;
    text.value = hex;
    var url = base + "?bg=" + encodeURIComponent(hex);
    clearTimeout(timer);
    // Debounce: dragging the colour picker fires many events.
    timer = setTimeout(function () { preview.src = url; }, 150);
    download.href = url + "&download=1";
    if (window.history && history.replaceState) {
      history.replaceState(null, "", "?bg=" + encodeURIComponent(hex));
    }
  }
  color.addEventListener("input", function () { apply(color.value); });
  text.addEventListener("input", function () { apply(text.value.trim()); });
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var btn = ev.submitter;
    apply(btn && btn.value ? btn.value : text.value.trim());
  });
})();
