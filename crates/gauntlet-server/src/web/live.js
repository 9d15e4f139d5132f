// A running run's page, live: its timeline and finished steps are appended as they happen,
// and its decision replaces "running" when it comes, without a reload. Text is set with
// textContent only (nothing a run says is ever parsed as markup). Without this script, or
// without EventSource, the page still says everything on reload.
(function () {
  "use strict";
  var list = document.getElementById("live-timeline");
  if (!list || !window.EventSource) {
    return;
  }
  var source = new EventSource(list.getAttribute("data-events"));
  function add(text, kind) {
    var item = document.createElement("li");
    item.className = kind;
    item.textContent = text;
    list.appendChild(item);
  }
  source.addEventListener("event", function (e) {
    var d = JSON.parse(e.data);
    add((d.step ? d.step + ": " : "") + d.message, "event");
  });
  source.addEventListener("step", function (e) {
    var d = JSON.parse(e.data);
    add(d.step + " finished: " + d.outcome, "step " + d.outcome);
  });
  source.addEventListener("decision", function (e) {
    var d = JSON.parse(e.data);
    var classes = { "GO": "go", "CONDITIONAL": "conditional", "NO-GO": "nogo", "INCONCLUSIVE": "inconclusive" };
    var badge = document.createElement("span");
    badge.className = "badge " + (classes[d.decision] || "aborted");
    badge.textContent = d.decision;
    var holder = document.getElementById("decision");
    holder.textContent = "";
    holder.appendChild(badge);
    document.getElementById("reason").textContent = d.summary;
    source.close();
  });
})();
