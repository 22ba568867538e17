/* The order system page: show only the credentials of the kind chosen in the connect form (without script,
   every kind's fieldset shows, each named; only the chosen kind's are used). No inline script (CSP). */
(function () {
  "use strict";

  var kind = document.querySelector("#connect select[name=kind]");
  if (!kind) return;
  var groups = document.querySelectorAll("#connect fieldset[data-kind]");

  function show() {
    groups.forEach(function (group) { group.hidden = group.dataset.kind !== kind.value; });
  }

  kind.addEventListener("change", show);
  show();
})();
