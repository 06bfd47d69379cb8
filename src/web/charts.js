// zimfleet's chart helpers over uPlot: one time-series chart shape for every page.
// ZfCharts.timeSeries(el, {title, series: [{label, color}], marks: [{t, label}]}) returns a
// chart with .setData(ts, columns) where ts are unix seconds and columns one array per series,
// and .points() the number of data points drawn (the browser tests read it).
(function (global) {
  "use strict";
  var palette = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#be185d"];

  function marksPlugin(getMarks) {
    return {
      hooks: {
        draw: [function (u) {
          var marks = getMarks() || [];
          var ctx = u.ctx;
          ctx.save();
          ctx.strokeStyle = "#9ca3af";
          ctx.fillStyle = "#4b5563";
          ctx.setLineDash([4, 4]);
          ctx.font = Math.round(10 * devicePixelRatio) + "px sans-serif";
          marks.forEach(function (m) {
            var x = Math.round(u.valToPos(m.t, "x", true));
            if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
            ctx.beginPath();
            ctx.moveTo(x, u.bbox.top);
            ctx.lineTo(x, u.bbox.top + u.bbox.height);
            ctx.stroke();
            if (m.label) ctx.fillText(m.label, x + 3, u.bbox.top + 12 * devicePixelRatio);
          });
          ctx.restore();
        }]
      }
    };
  }

  function timeSeries(el, opts) {
    var marks = opts.marks || [];
    var width = opts.width || Math.max(320, (el.clientWidth || 640));
    var series = [{}].concat((opts.series || []).map(function (s, i) {
      return {
        label: s.label,
        stroke: s.color || palette[i % palette.length],
        width: 1.5,
        scale: s.scale || "y",
        spanGaps: true
      };
    }));
    var axes = [{}, { scale: "y", size: 60 }];
    if ((opts.series || []).some(function (s) { return s.scale === "y2"; })) {
      axes.push({ scale: "y2", side: 1, grid: { show: false }, size: 60 });
    }
    var empty = [[]].concat((opts.series || []).map(function () { return []; }));
    var u = new uPlot({
      title: opts.title,
      width: width,
      height: opts.height || 220,
      series: series,
      axes: axes,
      scales: { x: { time: opts.time !== false } },
      plugins: [marksPlugin(function () { return marks; })]
    }, empty, el);
    var count = 0;
    return {
      plot: u,
      setData: function (ts, columns) {
        count = ts.length;
        u.setData([ts].concat(columns));
      },
      setMarks: function (m) { marks = m || []; u.redraw(false, false); },
      points: function () { return count; }
    };
  }

  // ZfCharts.percentiles(el, {title, series: [{label}]}): a latency-by-percentile chart; x in
  // "nines" (x = -log10(1 - q): 1 = p90, 2 = p99, 3 = p99.9), labelled as percentiles. Same
  // wrapper as timeSeries (setData(xs, columns), setMarks, points()).
  function percentiles(el, opts) {
    var o = {};
    Object.keys(opts).forEach(function (k) { o[k] = opts[k]; });
    o.time = false;
    var c = timeSeries(el, o);
    var ticks = [0, Math.log10(2), 1, 2, 3, 4, 5, 6];
    c.plot.axes[0].splits = function (u, i, min, max) {
      return ticks.filter(function (x) { return x >= min - 1e-9 && x <= max + 1e-9; });
    };
    c.plot.axes[0].values = function (u, splits) {
      return splits.map(function (x) {
        var p = 100 * (1 - Math.pow(10, -x));
        return "p" + (Math.round(p * 1000) / 1000);
      });
    };
    c.plot.redraw(false, true);
    return c;
  }

  global.ZfCharts = { timeSeries: timeSeries, percentiles: percentiles, palette: palette };
})(window);
