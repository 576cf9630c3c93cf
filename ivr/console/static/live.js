// Live calls: poll live.json every 2.5 s and redraw the two tables with textContent only.
(function () {
  "use strict";
  var script = document.getElementById("live-script");
  if (!script) { return; }
  var url = script.getAttribute("data-url");

  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function fill(tableId, calls, emptyText, showTransfer) {
    var table = document.getElementById(tableId);
    if (!table) { return; }
    var body = table.tBodies[0];
    while (body.firstChild) { body.removeChild(body.firstChild); }
    if (!calls.length) {
      var empty = document.createElement("tr");
      empty.className = "empty";
      cell(empty, emptyText).colSpan = showTransfer ? 6 : 5;
      body.appendChild(empty);
      return;
    }
    calls.forEach(function (c) {
      var row = document.createElement("tr");
      cell(row, c.caller).className = "caller";
      cell(row, c.patient).className = "patient";
      cell(row, c.started);
      if (showTransfer) { cell(row, c.transferred); }
      cell(row, c.step).className = "step";
      var answers = cell(row, "");
      answers.className = "answers";
      var list = document.createElement("ul");
      c.answers.forEach(function (a) {
        var item = document.createElement("li");
        var step = document.createElement("span");
        step.className = "muted";
        step.textContent = a.step;
        item.appendChild(step);
        item.appendChild(document.createTextNode(" " + a.kind + " \u201c" + a.text + "\u201d"));
        list.appendChild(item);
      });
      answers.appendChild(list);
      body.appendChild(row);
    });
  }

  function refresh() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (r.status === 401) { window.location.reload(); throw new Error("signed out"); }
        return r.json();
      })
      .then(function (data) {
        document.getElementById("as-of").textContent = data.as_of;
        fill("in-progress", data.in_progress, "No calls in the IVR right now.", false);
        fill("transferred", data.transferred, "No transferred calls.", true);
      })
      .catch(function () { /* keep the last view; try again on the next tick */ });
  }

  window.setInterval(refresh, 2500);
}());
