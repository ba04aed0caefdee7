/* Consent import progress page: update the bar while a worker checks or imports the
   file, and reload the page when it is done.
   Progressive enhancement: without JavaScript the page refreshes itself every few
   seconds (a meta refresh inside <noscript>) and shows the same figures. */
(function () {
  "use strict";

  function init() {
    var panel = document.querySelector("[data-import-status-url]");
    if (!panel) { return; }
    var bar = panel.querySelector("progress");
    var done = panel.querySelector("[data-rows-done]");
    var url = panel.dataset.importStatusUrl;
    var status = panel.dataset.importStatus;

    function poll() {
      fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (!data) { window.setTimeout(poll, 5000); return; }
          if (!data.in_progress || data.status !== status) { window.location.reload(); return; }
          if (bar) { bar.max = Math.max(data.rows_expected, data.rows_done, 1); bar.value = data.rows_done; }
          if (done) { done.textContent = data.rows_done.toLocaleString(); }
          window.setTimeout(poll, 1500);
        })
        .catch(function () { window.setTimeout(poll, 5000); });
    }
    window.setTimeout(poll, 1000);
  }

  document.addEventListener("DOMContentLoaded", init);
})();
