// Review items (issue 18): keyboard shortcuts, the bulk form's selection, the queue's keys.
// The pages work without it: checkboxes, the dismiss panel and the forms are plain HTML.
(function () {
  "use strict";

  var help = document.getElementById("kbd-help");
  var table = document.getElementById("event-table");
  var bulk = document.getElementById("bulk-form");
  var queue = document.getElementById("queue-form");
  var current = -1;

  function rows() { return table ? Array.prototype.slice.call(table.querySelectorAll("tr.item-row")) : []; }

  function select(index) {
    var all = rows();
    if (!all.length) { return; }
    index = Math.max(0, Math.min(all.length - 1, index));
    all.forEach(function (row, i) {
      row.classList.toggle("selected", i === index);
      row.setAttribute("aria-selected", i === index ? "true" : "false");
    });
    current = index;
    all[index].scrollIntoView({block: "nearest"});
  }

  function currentRow() { return current >= 0 ? rows()[current] : null; }

  function picks() { return bulk ? Array.prototype.slice.call(bulk.querySelectorAll("input.item-pick")) : []; }

  function updateCount() {
    var label = document.getElementById("bulk-selected");
    if (!label) { return; }
    var n = picks().filter(function (box) { return box.checked; }).length;
    label.textContent = n ? label.getAttribute("data-template").replace("{n}", n) : "";
  }

  // With nothing ticked, c and d act on the selected row.
  function ensurePicked() {
    if (picks().some(function (box) { return box.checked; })) { return true; }
    var row = currentRow();
    var box = row && row.querySelector("input.item-pick");
    if (!box) { return false; }
    box.checked = true;
    updateCount();
    return true;
  }

  function showHelp(show) {
    if (!help) { return; }
    help.classList.toggle("hidden", !show);
    if (show) { document.getElementById("kbd-help-close").focus(); }
  }

  function clickButton(id) {
    var button = document.getElementById(id);
    if (button) { button.click(); }
  }

  function openDismiss(prefix) {
    var panel = document.getElementById(prefix + "-dismiss");
    if (!panel) { return; }
    panel.open = true;
    var reason = document.getElementById(prefix + "-reason");
    if (reason) { reason.focus(); }
  }

  function typing(target) {
    if (!target || !target.tagName) { return false; }
    var tag = target.tagName.toLowerCase();
    if (tag === "textarea" || tag === "select" || target.isContentEditable) { return true; }
    if (tag !== "input") { return false; }
    var type = (target.getAttribute("type") || "text").toLowerCase();
    return ["checkbox", "radio", "button", "submit", "reset"].indexOf(type) < 0;
  }

  if (bulk) {
    bulk.addEventListener("change", updateCount);
    var all = document.getElementById("bulk-all");
    if (all) {
      all.addEventListener("change", function () {
        picks().forEach(function (box) { box.checked = all.checked; });
        updateCount();
      });
    }
    rows().forEach(function (row, i) {
      row.addEventListener("click", function () { select(i); });
    });
  }
  var open = document.getElementById("kbd-help-open");
  if (open) { open.addEventListener("click", function () { showHelp(true); }); }
  var close = document.getElementById("kbd-help-close");
  if (close) { close.addEventListener("click", function () { showHelp(false); }); }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (event.key === "Escape") { showHelp(false); return; }
    if (typing(event.target)) { return; }
    var key = event.key;
    if (key === "?") { showHelp(help ? help.classList.contains("hidden") : false); event.preventDefault(); return; }
    if (help && !help.classList.contains("hidden")) { return; }
    if (table) {
      if (key === "j") { select(current + 1); event.preventDefault(); return; }
      if (key === "k") { select(current < 0 ? 0 : current - 1); event.preventDefault(); return; }
      var row = currentRow();
      if ((key === "Enter" || key === "o") && row) {
        if (key === "Enter" && event.target.closest && event.target.closest("a, button, summary")) { return; }
        var link = row.querySelector("a.open");
        if (link) { location.href = link.href; event.preventDefault(); }
        return;
      }
      if (key === "x" && row) {
        var box = row.querySelector("input.item-pick");
        if (box) { box.checked = !box.checked; updateCount(); }
        event.preventDefault();
        return;
      }
      if (key === "c" && ensurePicked()) { clickButton("bulk-confirm"); event.preventDefault(); return; }
      if (key === "d" && ensurePicked()) { openDismiss("bulk"); event.preventDefault(); return; }
    }
    if (queue) {
      if (key === "c") { clickButton("queue-confirm"); event.preventDefault(); return; }
      if (key === "d") { openDismiss("queue"); event.preventDefault(); return; }
    }
    if (key === "s") { clickButton("queue-skip"); }
  });
})();
