/* Suspected-case forms: show only the symptoms and criteria of the chosen case definition.
   Each checkbox's label lists the definitions that use it (data-definitions); the server
   renders the others hidden and refuses them, so without this file the form still says
   what applies after "Check the classification". */
(function () {
  "use strict";

  function init() {
    var select = document.querySelector("select[name=definition]");
    if (!select) { return; }
    var form = select.form;

    function apply() {
      var chosen = select.value;
      form.querySelectorAll("label[data-definitions]").forEach(function (label) {
        var listed = label.dataset.definitions.split(" ").indexOf(chosen) !== -1;
        var box = label.querySelector("input[type=checkbox]");
        if (!listed && box && box.checked) { box.checked = false; }
        label.hidden = !listed;
      });
    }

    // The server rendered the first view; only a change of definition needs this.
    select.addEventListener("change", apply);
  }

  document.addEventListener("DOMContentLoaded", init);
})();
