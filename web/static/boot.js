/* Runs first on every page: marks the page as scripted (CSS hides no-JS fallbacks) and
 * asks before destructive forms (data-confirm), without inline handlers (CSP). */
document.documentElement.className = document.documentElement.className.replace(/\bnojs\b/, "js");
document.addEventListener("submit", function (ev) {
  var form = ev.target;
  var question = form && form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) ev.preventDefault();
}, true);
