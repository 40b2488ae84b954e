// certprobe status page: live filtering of the fleet table as you type. The page works
// without this script (the filter box is a GET form the server answers); this only hides rows
// of the current page that do not match, with the same rule as the server: every
// space-separated term must be a substring of the row's data-filter text.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var input = document.getElementById("filter");
  var table = document.getElementById("fleet");
  var shown = document.getElementById("shown");
  if (!input || !table) {
    return;
  }
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  function apply() {
    var terms = input.value.toLowerCase().split(/\s+/).filter(function (t) { return t.length > 0; });
    var n = 0;
    rows.forEach(function (row) {
      var text = row.getAttribute("data-filter") || "";
      var ok = terms.every(function (t) { return text.indexOf(t) !== -1; });
      row.classList.toggle("hidden", !ok);
      if (ok) {
        n += 1;
      }
    });
    if (shown) {
      shown.textContent = n + " of " + rows.length + " shown on this page";
    }
  }
  input.addEventListener("input", apply);
});
