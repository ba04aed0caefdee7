/* Suspected-case flag form: show the classification live as facts are ticked.
   Progressive enhancement: without this file the "Check the classification" button
   asks the server, and the result is the same (the server evaluates the same rule). */
(function () {
  "use strict";
  var FACT_FIELDS = ["definition", "symptoms", "onset_date", "epidemiological", "sari", "antigen_result"];

  function init() {
    var form = document.querySelector("form[data-classify-url]");
    if (!form) { return; }
    var panel = document.getElementById("classification");
    var label = panel.querySelector("[data-classification-label]");
    var criteria = panel.querySelector("[data-classification-criteria]");
    var classes = panel.querySelector("[data-classification-classes]");
    var missing = panel.querySelector("[data-classification-missing]");
    var missingList = missing.querySelector("ul");

    function showMissing(lines) {
      while (missingList.firstChild) { missingList.removeChild(missingList.firstChild); }
      (lines || []).forEach(function (line) {
        var item = document.createElement("li");
        item.setAttribute("data-missing", "");
        item.textContent = line;
        missingList.appendChild(item);
      });
      missing.hidden = !(lines && lines.length);
    }
    var confirmField = form.querySelector("input[name=confirm_classification]");
    var submit = form.querySelector("[data-submit-button]");
    var timer = null;
    var seq = 0;

    function update() {
      var body = new FormData();
      var all = new FormData(form);
      body.append("csrfmiddlewaretoken", all.get("csrfmiddlewaretoken"));
      FACT_FIELDS.forEach(function (name) {
        all.getAll(name).forEach(function (value) { body.append(name, value); });
      });
      var mine = ++seq;
      fetch(form.dataset.classifyUrl, { method: "POST", body: body, credentials: "same-origin",
                                         headers: { "X-Requested-With": "fetch" } })
        .then(function (response) { return response.json().then(function (data) { return [response.ok, data]; }); })
        .then(function (result) {
          if (mine !== seq) { return; }  // a newer request is on its way
          var ok = result[0], data = result[1];
          if (!ok) {
            panel.dataset.classification = "";
            submit.hidden = true;
            classes.hidden = true;
            showMissing([]);
            var messages = [];
            Object.keys(data.errors || {}).forEach(function (k) { messages = messages.concat(data.errors[k]); });
            criteria.textContent = messages.join(" ");
            return;
          }
          panel.dataset.classification = data.classification;
          label.textContent = data.label;
          criteria.textContent = data.meets_definition
            ? panel.dataset.metText + " " + data.criteria.join(", ") + (data.facts.length ? " (" + data.facts.join(", ") + ")" : "")
            : panel.dataset.unmetText;
          classes.textContent = panel.dataset.classesText + " " + data.classes.join(", ");
          classes.hidden = !data.meets_definition;
          showMissing(data.missing);
          confirmField.value = data.classification;
          submit.hidden = !data.meets_definition;
        })
        .catch(function () { /* offline: the server-side check still works */ });
    }

    form.addEventListener("change", function (event) {
      if (FACT_FIELDS.indexOf(event.target.name) === -1) { return; }
      window.clearTimeout(timer);
      timer = window.setTimeout(update, 150);
    });
  }

  document.addEventListener("DOMContentLoaded", init);
})();
