/* The insights page's charts: Chart.js (served from static/chatbot/vendor/) over the data the page put in
   #insights-charts. Every bar and point carries the review-page link of the conversations behind it; a
   click follows it. No inline script (CSP): the page loads this file and the data is JSON. */
(function () {
  "use strict";

  var node = document.getElementById("insights-charts");
  if (!node || !window.Chart) return;
  var specs = JSON.parse(node.textContent);

  var COLORS = { brand: "#4f46e5", ok: "#17b26a", warn: "#f79009", bad: "#f04438", grey: "#98a2b3" };
  var DAY = /^\d{4}-\d{2}-\d{2}$/;
  var dayFormat = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", timeZone: "UTC" });

  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.font.size = 12;
  Chart.defaults.color = "#667085";
  Chart.defaults.borderColor = "#eaecf0";

  function label(text) {
    return DAY.test(text) ? dayFormat.format(new Date(text + "T00:00:00Z")) : text;
  }

  function percent(value) {
    return value === null || value === undefined ? "–" : Math.round(value * 100) + "%";
  }

  function dataset(spec, d) {
    var color = COLORS[d.color] || COLORS.brand;
    var line = spec.type === "line";
    return {
      label: d.label,
      data: d.data,
      links: d.links,
      backgroundColor: line ? color : color + "d9",
      hoverBackgroundColor: color,
      borderColor: color,
      borderWidth: line ? 2 : 0,
      borderRadius: spec.stacked ? 0 : 4,
      pointRadius: 3,
      pointHoverRadius: 6,
      pointBackgroundColor: color,
      cubicInterpolationMode: "monotone",  // smooth, never past 0% or 100%
      spanGaps: true,
      maxBarThickness: 40
    };
  }

  function options(spec) {
    var line = spec.type === "line";
    var value = { beginAtZero: true, stacked: !!spec.stacked, ticks: { precision: 0 }, grid: { color: "#f2f4f7" },
                  border: { display: false } };
    if (spec.percent) {
      value.max = 1;
      value.ticks = { stepSize: 0.25, callback: function (v) { return percent(v); } };
    }
    var category = { stacked: !!spec.stacked, grid: { display: false },
                     ticks: { autoSkip: true, maxRotation: 0, autoSkipPadding: 12,
                              callback: function (v) { return label(this.getLabelForValue(v)); } } };
    var scales = spec.horizontal ? { x: value, y: category } : { x: category, y: value };
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      indexAxis: spec.horizontal ? "y" : "x",
      scales: scales,
      interaction: line ? { mode: "nearest", intersect: false } : { mode: "nearest", intersect: true },
      plugins: {
        legend: { display: spec.datasets.length > 1, position: "bottom",
                  labels: { boxWidth: 10, boxHeight: 10, usePointStyle: true, pointStyle: "rectRounded" } },
        tooltip: {
          callbacks: {
            title: function (items) { return items.length ? label(items[0].label) : ""; },
            label: function (item) {
              var v = item.raw;
              return item.dataset.label + ": " + (spec.percent ? percent(v) : v);
            },
            footer: function () { return "Click to see the conversations"; }
          }
        }
      },
      onHover: function (event, elements) {
        event.native.target.style.cursor = elements.length ? "pointer" : "default";
      },
      onClick: function (event, elements, chart) {
        if (!elements.length) return;
        var hit = elements[0];
        var links = chart.data.datasets[hit.datasetIndex].links || [];
        if (links[hit.index]) window.location.assign(links[hit.index]);
      }
    };
  }

  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var spec = specs[canvas.dataset.chart];
    if (!spec) return;
    new Chart(canvas, {
      type: spec.type,
      data: { labels: spec.labels, datasets: spec.datasets.map(function (d) { return dataset(spec, d); }) },
      options: options(spec)
    });
    canvas.dataset.drawn = "true";
  });
})();
