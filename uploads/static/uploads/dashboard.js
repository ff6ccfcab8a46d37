/*
 * The staff service dashboard's charts (uploads/templates/admin/dashboard/dashboard.html).
 * A file of its own, not an inline script: the Content-Security-Policy allows scripts only
 * from our static files. The figures come from the page's json_script block; Chart.js is
 * our vendored UMD build (uploads/static/vendor/chart.umd.min.js), loaded before this file.
 */
(function () {
  "use strict";

  function barChart(canvasId, data, stacked) {
    var canvas = document.getElementById(canvasId);
    if (!canvas || !data) {
      return null;
    }
    return new window.Chart(canvas, {
      type: "bar",
      data: data,
      options: {
        // No animation: the figures are read at a glance, and screenshots are stable.
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: {
          x: {stacked: stacked, ticks: {autoSkip: true, maxRotation: 0}},
          y: {stacked: stacked, beginAtZero: true, ticks: {precision: 0}}
        },
        plugins: {legend: {display: data.datasets.length > 1, position: "bottom"}}
      }
    });
  }

  function draw() {
    var source = document.getElementById("dashboard-charts");
    if (!source || typeof window.Chart !== "function") {
      return;  // the tables below each chart still carry every figure
    }
    var charts = JSON.parse(source.textContent);
    barChart("chart-per-hour", charts.per_hour, true);
    barChart("chart-per-day", charts.per_day, true);
    barChart("chart-rejected", charts.rejected, false);
    document.body.setAttribute("data-charts", "drawn");
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
