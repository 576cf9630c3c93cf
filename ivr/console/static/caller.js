// Screen-pop: changing the doctor reloads the free times (the button still works).
(function () {
  "use strict";
  var form = document.getElementById("times-form");
  if (!form) { return; }
  ["doctor"].forEach(function (id) {
    var field = document.getElementById(id);
    if (field) {
      field.addEventListener("change", function () { form.submit(); });
    }
  });
}());
