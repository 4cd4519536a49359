// OCPI hub console: progressive enhancement only; every page works without this file.
// Loaded from /console/static (CSP script-src 'self'); no inline handlers anywhere.
(function () {
  "use strict";

  // Live regions: <div id="live" data-live="URL" data-interval="ms"> is refreshed by polling
  // URL, which answers the same server-rendered (escaped) HTML fragment the page included.
  // An answer's X-Console-Poll-Ms sets the next pause: a big network's overview costs the hub
  // more to make, so it is asked for less often. One poll at a time (each waits for the last).
  function startLive(region) {
    var url = region.getAttribute("data-live");
    var interval = Math.max(1000, parseInt(region.getAttribute("data-interval"), 10) || 5000);
    function next() { window.setTimeout(tick, interval); }
    function tick() {
      if (document.hidden) { next(); return; }
      fetch(url, { credentials: "same-origin", headers: { "X-Console-Live": "1" }, cache: "no-store" })
        .then(function (response) {
          if (response.status === 401) { window.location.reload(); return null; }
          var asked = parseInt(response.headers.get("X-Console-Poll-Ms") || "", 10);
          if (asked > 0) { interval = Math.max(1000, asked); }
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (html !== null && html !== undefined) {
            region.innerHTML = html;
            region.setAttribute("data-updated", String(Date.now()));
          }
        })
        .catch(function () { /* the next tick tries again */ })
        .then(next);
    }
    next();
  }

  // Copy buttons: <button class="copy" data-copy="ELEMENT-ID">.
  function copy(button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target) { return; }
    var text = target.textContent || "";
    var done = function () { button.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { select(target); });
    } else {
      select(target);
    }
  }

  function select(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live]").forEach(startLive);
    document.querySelectorAll("button.copy").forEach(function (button) {
      button.addEventListener("click", function () { copy(button); });
    });
    document.querySelectorAll("input.select-all").forEach(function (box) {
      box.addEventListener("change", function () {
        var form = box.closest("form");
        form.querySelectorAll("input[name=ids]").forEach(function (item) { item.checked = box.checked; });
      });
    });
  });
})();
