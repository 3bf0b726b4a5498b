// Draws the charts, sorts the team table, and follows a running refresh: when /api/status says
// the data is fresh again, the page's content is fetched and swapped in (no reload).
(function () {
  "use strict";

  function drawCharts(root) {
    var holder = root.querySelector("#chart-data");
    if (!holder || !window.Plotly) return;
    var charts = JSON.parse(holder.textContent);
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      var figure = charts[el.getAttribute("data-chart")];
      if (figure) window.Plotly.newPlot(el, figure.data, figure.layout, { displayModeBar: false, responsive: true });
    });
  }

  function sortable(table) {
    var buttons = table.querySelectorAll("th button[data-key]");
    buttons.forEach(function (button, column) {
      button.addEventListener("click", function () {
        var th = button.parentElement;
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        table.querySelectorAll("thead th").forEach(function (h) { h.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var kind = th.getAttribute("data-kind");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        function key(row) {
          var raw = row.cells[column].getAttribute("data-value");
          if (kind === "number") return raw === "" ? null : parseFloat(raw);
          return raw.toLowerCase();
        }
        rows.sort(function (a, b) {
          var x = key(a), y = key(b);
          if (x === null) return 1;   // unknown values last, whichever the direction
          if (y === null) return -1;
          var order = x < y ? -1 : x > y ? 1 : 0;
          return ascending ? order : -order;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  }

  function followRefresh() {
    var banner = document.getElementById("refresh-status");
    var waiting = ["refreshing", "retrying"];
    if (!banner || waiting.indexOf(banner.getAttribute("data-state")) < 0) return;
    var timer = setInterval(function () {
      fetch("/api/status", { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (status) {
          if (!status) return;
          if (waiting.indexOf(status.state) >= 0) {
            if (status.state !== banner.getAttribute("data-state")) {  // e.g. a failed try: say so
              banner.className = "status status-" + status.state;
              banner.setAttribute("data-state", status.state);
              banner.textContent = status.message;
            }
            return;
          }
          clearInterval(timer);
          return fetch(window.location.href, { credentials: "same-origin" })
            .then(function (r) { return r.text(); })
            .then(function (html) {
              var page = new DOMParser().parseFromString(html, "text/html");
              var main = page.getElementById("main");
              var fresh = page.getElementById("refresh-status");
              if (main) document.getElementById("main").innerHTML = main.innerHTML;
              if (fresh) {
                banner.className = fresh.className;
                banner.setAttribute("data-state", fresh.getAttribute("data-state"));
                banner.textContent = fresh.textContent;
              }
              var root = document.getElementById("main");
              drawCharts(root);
              root.querySelectorAll("table.sortable").forEach(sortable);
            });
        })
        .catch(function () { /* a missed poll is retried on the next tick */ });
    }, 3000);
  }

  function repositoryPicker() {
    var form = document.getElementById("repo-jump");
    if (!form) return;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var name = document.getElementById("repo-select").value;
      window.location.href = "/repos/" + name.split("/").map(encodeURIComponent).join("/");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts(document);
    document.querySelectorAll("table.sortable").forEach(sortable);
    followRefresh();
    repositoryPicker();
  });
})();
