// History: draw the booking funnel and the busiest-hours grid from history.json (SVG built
// with DOM calls and textContent only; no external library, nothing inline for the CSP).
(function () {
  "use strict";
  var section = document.getElementById("insights");
  if (!section) { return; }
  var SVG = "http://www.w3.org/2000/svg";

  function el(parent, name, attrs, text) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = text; }
    parent.appendChild(node);
    return node;
  }

  function funnel(svg, stages) {
    var width = 700, row = 30, label = 200, top = stages.length ? stages[0].calls : 0;
    svg.setAttribute("viewBox", "0 0 " + width + " " + (stages.length * row + 10));
    stages.forEach(function (s, i) {
      var y = 5 + i * row;
      var w = top ? (width - label - 90) * s.calls / top : 0;
      el(svg, "text", {x: 0, y: y + 18, "class": "label"}, s.label);
      var bar = el(svg, "rect", {x: label, y: y, width: Math.max(w, 1), height: row - 8,
                                 "class": "funnel-bar", "data-stage": s.key});
      el(bar, "title", {}, s.label + ": " + s.calls + " calls");
      var share = top ? " (" + Math.round(100 * s.calls / top) + "%)" : "";
      el(svg, "text", {x: label + w + 6, y: y + 18, "class": "label funnel-count",
                       "data-stage": s.key}, s.calls + share);
    });
  }

  function hours(svg, grid) {
    var cell = 26, left = 40, topPad = 16, peak = 0;
    grid.calls.forEach(function (r) { r.forEach(function (n) { peak = Math.max(peak, n); }); });
    svg.setAttribute("viewBox", "0 0 " + (left + 24 * cell + 4) + " " + (topPad + 7 * cell + 4));
    for (var h = 0; h < 24; h += 3) {
      el(svg, "text", {x: left + h * cell + 2, y: 12, "class": "label"}, String(h).padStart(2, "0"));
    }
    grid.calls.forEach(function (r, d) {
      var y = topPad + d * cell;
      el(svg, "text", {x: 0, y: y + 17, "class": "label"}, grid.weekdays[d]);
      r.forEach(function (n, h) {
        var level = peak ? Math.ceil(4 * n / peak) : 0;
        var rect = el(svg, "rect", {x: left + h * cell, y: y, width: cell - 2, height: cell - 2,
                                    "class": "heat heat-" + level, "data-calls": n,
                                    "data-cell": grid.weekdays[d] + "-" + h});
        el(rect, "title", {}, grid.weekdays[d] + " " + h + ":00: " + n + " calls");
      });
    });
  }

  fetch(section.getAttribute("data-url"), {credentials: "same-origin"})
    .then(function (r) { return r.json(); })
    .then(function (data) {
      funnel(document.getElementById("funnel"), data.funnel);
      hours(document.getElementById("hours"), data.by_hour);
      var p = data.person_after_failure;
      document.getElementById("person-after-failure").textContent = data.calls ?
        p.calls + " of " + data.calls + " calls (" + Math.round(100 * p.rate) +
        "%) reached a person after the robot did not understand them." : "No calls yet.";
      section.setAttribute("data-ready", "1");
    });
})();
