// The dashboard's own script, loaded after htmx (CSP: script-src 'self', nothing inline).
// Every page works without it; with it, an upload shows its progress, a file over the
// limit is refused before it is sent, and a refusal the daemon answers in JSON (the
// guard's, e.g. a body over its limit) is shown as its one line instead of swapped in.
(function () {
  "use strict";

  function uploadForm(event) {
    var element = event.detail && event.detail.elt;
    return element && element.closest ? element.closest("form.upload") : null;
  }

  function say(form, text) {
    form.querySelector(".upload-status").textContent = text;
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = uploadForm(event);
    if (!form) return;
    var input = form.querySelector('input[type="file"]');
    if (input.files.length && input.files[0].size > Number(form.dataset.maxBytes)) {
      event.preventDefault();
      say(form, form.dataset.tooLarge);
      return;
    }
    var bar = form.querySelector("progress");
    bar.value = 0;
    bar.hidden = false;
    say(form, "Uploading…");
  });

  document.addEventListener("htmx:xhr:progress", function (event) {
    var form = uploadForm(event);
    if (!form || !event.detail.lengthComputable) return;
    var bar = form.querySelector("progress");
    bar.max = event.detail.total;
    bar.value = event.detail.loaded;
    if (event.detail.loaded >= event.detail.total) say(form, "Importing…");
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    var type = event.detail.xhr.getResponseHeader("content-type") || "";
    if (type.indexOf("text/html") === 0) return;
    event.detail.shouldSwap = false;
    var line = "The vault refused this (HTTP " + event.detail.xhr.status + ").";
    try {
      line = JSON.parse(event.detail.xhr.responseText).detail || line;
    } catch (ignored) { /* not JSON: keep the status line */ }
    var form = uploadForm(event);
    if (form) {
      form.querySelector("progress").hidden = true;
      say(form, line);
    }
  });

  // After a partial update, move the keyboard focus (and a screen reader) to what changed:
  // the confirmation that opened, else the page's notice, else its heading.
  document.addEventListener("htmx:afterSettle", function () {
    var target = document.querySelector(".confirm h1") ||
      document.querySelector("main .notice") || document.querySelector("main h1");
    if (!target) return;
    target.setAttribute("tabindex", "-1");
    target.focus();
  });

  document.addEventListener("htmx:sendError", function (event) {
    var form = uploadForm(event);
    if (form) say(form, "The upload did not reach the vault: is the daemon still running?");
  });
})();
