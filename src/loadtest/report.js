// zimfleet loadtest report and live page: draws the ChartData JSON (src/loadtest/html.rs)
// with the shared chart helpers (ZfCharts over uPlot). ZfReport.render(data, progress) draws
// or updates every chart; ZfReport.live(url, ms) polls url and renders each answer;
// ZfReport.charts() gives the chart wrappers by id (the browser tests read points()), and
// ZfReport.data() the data drawn last.
(function (global) {
  "use strict";
  var charts = {};
  var last = null;

  function esc(s) {
    return String(s).replace(/[&<>"]/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c];
    });
  }

  function table(header, rows) {
    var h = header ? "<tr>" + header.map(function (c) { return "<th>" + esc(c) + "</th>"; }).join("") + "</tr>" : "";
    return "<table>" + h + rows.map(function (r) {
      return "<tr>" + r.map(function (c) { return "<td>" + esc(c) + "</td>"; }).join("") + "</tr>";
    }).join("") + "</table>";
  }

  function tables(d, running) {
    var out = "<h2>Thresholds</h2>" + table(["threshold", "limit", "measured"], d.thresholds);
    if (d.failures.length && !running) {
      out += "<ul>" + d.failures.map(function (f) { return "<li class=\"fail\">" + esc(f) + "</li>"; }).join("") + "</ul>";
    }
    if (d.stages.length) out += "<h2>Stages</h2>" + table(d.stage_header, d.stages);
    out += "<h2>Figures</h2>" + table(null, d.figures);
    return out;
  }

  function progressLine(p) {
    if (!p) return "";
    return esc("[" + p.elapsed_secs + "s] " + (p.stage ? p.stage + ": " : "") +
      "accounts " + p.connected + " connected, " + p.reconnecting + " reconnecting, " + p.other +
      " other, " + p.left + " logged out; fully connected " + p.fully_connected + "/" + p.accounts +
      " | logins+rooms " + p.logins_per_sec + "/s, reconnects " + p.reconnects_per_sec +
      "/s | delivered " + p.delivered_per_sec + "/s | p99 login " + p.login_p99_ms +
      " ms, message " + p.message_p99_ms + " ms" + (p.events_lost ? " | events lost " + p.events_lost : ""));
  }

  function chartFor(c, box) {
    var div = document.getElementById("chart-" + c.id);
    if (!div) {
      div = document.createElement("div");
      div.id = "chart-" + c.id;
      div.className = "chart";
      box.appendChild(div);
    }
    var opts = {
      title: c.title,
      width: Math.min(1160, Math.max(480, box.clientWidth || 1000)),
      series: c.labels.map(function (l, i) { return { label: l, scale: c.scales[i] }; })
    };
    return c.kind === "percentiles" ? ZfCharts.percentiles(div, opts) : ZfCharts.timeSeries(div, opts);
  }

  function render(d, progress) {
    if (!d || !d.charts) return;
    last = d;
    document.getElementById("title").textContent = d.title;
    var v = document.getElementById("verdict");
    var running = !!(progress && progress.stage !== "done");
    v.className = running ? "" : (d.passed ? "pass" : "fail");
    v.textContent = running ? "running: the verdict comes at the end" : (d.passed ? "PASS" : "FAIL");
    document.getElementById("progress").innerHTML = running ? progressLine(progress) : "";
    document.getElementById("tables").innerHTML = tables(d, running);
    var box = document.getElementById("charts");
    d.charts.forEach(function (c) {
      var key = c.id + ":" + c.labels.join("|");
      if (!charts[c.id] || charts[c.id].key !== key) {
        if (charts[c.id]) charts[c.id].chart.plot.destroy();
        charts[c.id] = { key: key, chart: chartFor(c, box) };
      }
      var ch = charts[c.id].chart;
      ch.setData(c.x, c.columns);
      if (c.kind === "time") ch.setMarks(d.marks);
    });
  }

  function live(url, every) {
    function poll() {
      fetch(url, { cache: "no-store" })
        .then(function (r) { return r.json(); })
        .then(function (j) { render(j.charts, j.progress); })
        .catch(function () {})
        .then(function () { setTimeout(poll, every); });
    }
    poll();
  }

  global.ZfReport = {
    render: render,
    live: live,
    data: function () { return last; },
    charts: function () {
      var out = {};
      Object.keys(charts).forEach(function (k) { out[k] = charts[k].chart; });
      return out;
    }
  };
})(window);
