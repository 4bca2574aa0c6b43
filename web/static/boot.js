/* Marks the page as scripted so CSS can hide the no-JS fallbacks. */
document.documentElement.className = document.documentElement.className.replace(/\bnojs\b/, "js");
