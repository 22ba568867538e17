/* The models page: retrain runs follow their progress without a reload. While a run is queued or running,
 * runs.json is read every 2 s and the runs table redrawn from it (DOM calls only, no innerHTML); otherwise
 * every 20 s, so a retrain started elsewhere (Celery beat, a command) still appears. When a run the page saw
 * active ends, a notice offers the result (the new version and the gate's verdict are rendered by the server).
 * No inline script (CSP); without this file the page shows the runs as of its load. */
(function () {
  "use strict";

  var table = document.getElementById("runs");
  if (!table || !window.fetch) return;
  var url = table.getAttribute("data-runs-url");
  var body = table.tBodies[0];
  var live = document.getElementById("runs-live");
  var finished = document.getElementById("runs-finished");
  var FAST = 2000, SLOW = 20000;
  var seenActive = {};
  var timer = null;

  body.querySelectorAll("tr.run").forEach(function (row) {
    var status = row.getAttribute("data-status");
    if (status === "queued" || status === "running") seenActive[row.getAttribute("data-run")] = true;
  });

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function cell(main, sub, className) {
    var td = el("td", className);
    td.appendChild(document.createTextNode(main));
    if (sub) td.appendChild(el("div", "muted small", sub));
    return td;
  }

  function row(run) {
    var tr = el("tr", "run");
    tr.setAttribute("data-run", String(run.id));
    tr.setAttribute("data-status", run.status);
    tr.appendChild(cell("#" + run.id, run.created));
    tr.appendChild(cell(run.kind, run.trigger));
    tr.appendChild(cell(run.requested_by || ""));
    var status = el("td");
    status.appendChild(el("span", "badge run-status run-status-" + run.status, run.status));
    tr.appendChild(status);
    var progress = el("td", "run-progress-cell");
    var bar = el("progress", null, run.percent + " %");
    bar.max = 1;
    bar.value = run.progress;
    bar.setAttribute("aria-label", "Run #" + run.id + " progress");
    progress.appendChild(bar);
    progress.appendChild(el("span", "run-percent", run.percent + " %"));
    progress.appendChild(el("div", "small run-stage", run.stage));
    if (run.detail) progress.appendChild(el("div", "small muted run-detail", run.detail));
    tr.appendChild(progress);
    tr.appendChild(el("td", "small", run.started || "–"));
    tr.appendChild(el("td", "small", run.finished || "–"));
    return tr;
  }

  function kindLine(runs) {
    document.querySelectorAll("[data-kind-run]").forEach(function (line) {
      var kind = line.getAttribute("data-kind-run");
      var run = runs.filter(function (r) { return r.kind === kind && r.active; })[0];
      line.hidden = !run;
      line.textContent = run ? "Retrain #" + run.id + " " + run.status + (run.stage ? ": " + run.stage : "") +
        " (" + run.percent + " %)" : "";
    });
  }

  function draw(data) {
    var rows = data.runs.map(row);
    if (!rows.length) {
      var empty = el("tr", "runs-empty");
      var td = el("td", "muted", "No retrain yet.");
      td.colSpan = 7;
      empty.appendChild(td);
      rows = [empty];
    }
    body.replaceChildren.apply(body, rows);
    kindLine(data.runs);
    var ended = data.runs.some(function (r) { return seenActive[r.id] && !r.active; });
    data.runs.forEach(function (r) { if (r.active) seenActive[r.id] = true; });
    if (ended && finished) finished.hidden = false;
    if (live) live.hidden = !data.active;
    table.setAttribute("data-active", data.active ? "true" : "false");
  }

  function schedule(active) {
    window.clearTimeout(timer);
    timer = window.setTimeout(poll, active ? FAST : SLOW);
  }

  function poll() {
    if (document.hidden) { schedule(false); return; }
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) throw new Error("runs.json answered " + response.status);
        return response.json();
      })
      .then(function (data) { draw(data); schedule(data.active); })
      .catch(function () { schedule(false); });
  }

  document.addEventListener("visibilitychange", function () { if (!document.hidden) poll(); });
  schedule(table.getAttribute("data-active") === "true");
})();
