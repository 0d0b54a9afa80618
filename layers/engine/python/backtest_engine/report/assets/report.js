/* The report's charts (uPlot). Reads the JSON in #report-data, draws every [data-chart] container.
   Never writes markup from the data: labels and values reach the page as textContent only. */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("report-data").textContent);
  var state = { charts: {}, colors: {}, errors: [] };
  window.backtestReport = state;

  var C = {
    equity: "#2563eb",
    bench: "#9ca3af",
    drawdown: "#dc2626",
    drawdownFill: "rgba(220, 38, 38, 0.25)",
    shade: "rgba(220, 38, 38, 0.08)",
    shadeLabel: "#7f1d1d",
    price: "#334155",
    longEntry: "#16a34a",
    shortEntry: "#dc2626",
    exitWin: "#0d9488",
    exitLoss: "#ea580c",
    gain: "#16a34a",
    loss: "#dc2626",
    sharpe: "#7c3aed",
    vol: "#d97706",
    runs: ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563", "#65a30d", "#9333ea"],
  };

  var utc = function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); };
  var num = function (v, d) { return v == null ? "–" : v.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d }); };
  var pct = function (v) { return v == null ? "–" : num(v, 2) + "%"; };

  function el(id) { return document.getElementById(id); }

  function chart(id, opts, data, colors) {
    var box = el(id);
    if (!box) return null;
    var height = +box.getAttribute("data-height") || 260;
    var full = Object.assign({ width: Math.max(320, box.clientWidth), height: height, tzDate: utc }, opts);
    if (state.charts[id]) state.charts[id].destroy();
    var u = new uPlot(full, data, box);
    state.charts[id] = u;
    state.colors[id] = colors;
    return u;
  }

  // Zoom (drag to select, double-click to reset) shared by the time charts of one group.
  var groups = {};
  function syncX(group) {
    groups[group] = groups[group] || { members: [], busy: false };
    var g = groups[group];
    return {
      init: [function (u) { g.members.push(u); }],
      destroy: [function (u) { g.members = g.members.filter(function (m) { return m !== u; }); }],
      setScale: [function (u, key) {
        if (key !== "x" || g.busy) return;
        g.busy = true;
        g.members.forEach(function (m) {
          if (m !== u) m.setScale("x", { min: u.scales.x.min, max: u.scales.x.max });
        });
        g.busy = false;
      }],
    };
  }
  function merge(a, b) {
    var out = {};
    [a, b].forEach(function (h) {
      Object.keys(h || {}).forEach(function (k) { out[k] = (out[k] || []).concat(h[k]); });
    });
    return out;
  }

  function clipped(u, draw) {
    var ctx = u.ctx;
    ctx.save();
    ctx.beginPath();
    ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
    ctx.clip();
    draw(ctx);
    ctx.restore();
  }

  // The worst drawdowns: a shaded band from the peak to the recovery, numbered at the trough.
  function drawdownHooks(periods) {
    return {
      drawClear: [function (u) {
        clipped(u, function (ctx) {
          ctx.fillStyle = C.shade;
          periods.forEach(function (p) {
            var x0 = u.valToPos(p.peak_time, "x", true), x1 = u.valToPos(p.end_time, "x", true);
            ctx.fillRect(x0, u.bbox.top, Math.max(1, x1 - x0), u.bbox.height);
          });
        });
      }],
      draw: [function (u) {
        clipped(u, function (ctx) {
          ctx.fillStyle = C.shadeLabel;
          ctx.font = 12 * devicePixelRatio + "px sans-serif";
          ctx.textAlign = "center";
          var placed = [], line = 14 * devicePixelRatio;
          periods.forEach(function (p, i) {
            var x = u.valToPos(p.trough_time, "x", true), row = 0;
            // a label too close to one already placed goes one line lower
            while (placed.some(function (q) { return q.row === row && Math.abs(q.x - x) < line; })) row++;
            placed.push({ x: x, row: row });
            ctx.fillText(String(i + 1), x, u.bbox.top + line * (row + 1));
          });
        });
      }],
    };
  }

  function glyph(ctx, kind, x, y, r) {
    ctx.beginPath();
    if (kind === "up") { ctx.moveTo(x, y - r); ctx.lineTo(x + r, y + r); ctx.lineTo(x - r, y + r); }
    else if (kind === "down") { ctx.moveTo(x, y + r); ctx.lineTo(x + r, y - r); ctx.lineTo(x - r, y - r); }
    else ctx.arc(x, y, r * 0.8, 0, 2 * Math.PI);
    ctx.closePath();
    ctx.fill();
  }

  function markerHooks(sets) {
    return {
      draw: [function (u) {
        var lo = u.scales.x.min, hi = u.scales.x.max, r = 4 * devicePixelRatio;
        clipped(u, function (ctx) {
          sets.forEach(function (s) {
            ctx.fillStyle = s.color;
            for (var i = 0; i < s.time.length; i++) {
              var t = s.time[i];
              if (t < lo || t > hi) continue;
              glyph(ctx, s.glyph, u.valToPos(t, "x", true), u.valToPos(s.price[i], "y", true), r);
            }
          });
        });
      }],
    };
  }

  function timeAxis() { return { stroke: "#475569", grid: { stroke: "rgba(0,0,0,0.06)" } }; }
  function valueAxis(extra) {
    return Object.assign({ stroke: "#475569", grid: { stroke: "rgba(0,0,0,0.06)" }, size: 70 }, extra || {});
  }

  function allPositive(arrays) {
    return arrays.every(function (a) { return !a || a.every(function (v) { return v == null || v > 0; }); });
  }

  // ---- one backtest --------------------------------------------------------------------------------

  function equityChart(log) {
    var e = D.equity;
    var series = [{ label: "time" }, { label: "Strategy", stroke: C.equity, width: 1.5, value: function (u, v) { return num(v, 2); } }];
    var data = [e.time, e.equity];
    var colors = [C.equity];
    if (e.buy_hold) {
      series.push({ label: "Buy & hold " + D.symbol, stroke: C.bench, width: 1.25, value: function (u, v) { return num(v, 2); } });
      data.push(e.buy_hold);
      colors.push(C.bench);
    }
    chart("chart-equity", {
      series: series,
      scales: { x: { time: true }, y: log ? { distr: 3 } : {} },
      axes: [timeAxis(), valueAxis()],
      hooks: merge(syncX("time"), drawdownHooks(D.worst_drawdowns)),
      cursor: { sync: { key: "time" } },
    }, data, colors);
  }

  function drawdownChart() {
    var e = D.equity;
    chart("chart-drawdown", {
      series: [{ label: "time" }, { label: "Drawdown", stroke: C.drawdown, fill: C.drawdownFill, width: 1, value: function (u, v) { return pct(v); } }],
      scales: { x: { time: true }, y: { range: function (u, min) { return [Math.min(min, -0.01) * 1.05, 0]; } } },
      axes: [timeAxis(), valueAxis({ values: function (u, vals) { return vals.map(function (v) { return v + "%"; }); } })],
      hooks: merge(syncX("time"), drawdownHooks(D.worst_drawdowns)),
      cursor: { sync: { key: "time" } },
    }, [e.time, e.drawdown_pct], [C.drawdown]);
  }

  function priceChart() {
    var p = D.price;
    var sets = [
      { glyph: "up", color: C.longEntry, time: p.long_entry.time, price: p.long_entry.price },
      { glyph: "down", color: C.shortEntry, time: p.short_entry.time, price: p.short_entry.price },
      { glyph: "dot", color: C.exitWin, time: p.exit_win.time, price: p.exit_win.price },
      { glyph: "dot", color: C.exitLoss, time: p.exit_loss.time, price: p.exit_loss.price },
    ];
    var lo = Infinity, hi = -Infinity;
    sets.forEach(function (s) { s.price.forEach(function (v) { if (v < lo) lo = v; if (v > hi) hi = v; }); });
    chart("chart-price", {
      series: [{ label: "time" }, { label: "Close " + D.symbol, stroke: C.price, width: 1, value: function (u, v) { return num(v, 2); } }],
      scales: {
        x: { time: true },
        y: { range: function (u, min, max) {
          var a = Math.min(min, lo), b = Math.max(max, hi), pad = (b - a) * 0.03 || 1;
          return [a - pad, b + pad];
        } },
      },
      axes: [timeAxis(), valueAxis()],
      hooks: merge(syncX("time"), markerHooks(sets)),
      cursor: { sync: { key: "time" } },
    }, [p.time, p.close], [C.price]);
  }

  function rollingChart() {
    var r = D.rolling;
    chart("chart-rolling", {
      series: [
        { label: "time" },
        { label: "Sharpe (" + r.window + "d)", stroke: C.sharpe, width: 1.25, scale: "sharpe", value: function (u, v) { return num(v, 2); } },
        { label: "Volatility (" + r.window + "d, ann.)", stroke: C.vol, width: 1.25, scale: "vol", value: function (u, v) { return pct(v); } },
      ],
      scales: { x: { time: true } },
      axes: [timeAxis(), valueAxis({ scale: "sharpe" }), valueAxis({ scale: "vol", side: 1, grid: { show: false }, values: function (u, vals) { return vals.map(function (v) { return v + "%"; }); } })],
      hooks: syncX("time"),
      cursor: { sync: { key: "time" } },
    }, [r.time, r.sharpe, r.volatility_pct], [C.sharpe, C.vol]);
  }

  function histogramChart() {
    var h = D.histogram, mids = [], losses = [], gains = [];
    for (var i = 0; i + 1 < h.edges.length; i++) {
      var mid = (h.edges[i] + h.edges[i + 1]) / 2;
      mids.push(mid);
      losses.push(mid < 0 ? h.counts[i] : null);
      gains.push(mid >= 0 ? h.counts[i] : null);
    }
    var bars = uPlot.paths.bars({ size: [0.92, Infinity], align: 0 });
    chart("chart-trade-returns", {
      series: [
        { label: "return %", value: function (u, v) { return v == null ? "–" : num(v, 2) + "%"; } },
        { label: "Losing trades", stroke: C.loss, fill: C.loss, paths: bars, points: { show: false } },
        { label: "Winning trades", stroke: C.gain, fill: C.gain, paths: bars, points: { show: false } },
      ],
      scales: { x: { time: false, range: function () { return [h.edges[0], h.edges[h.edges.length - 1]]; } }, y: { range: function (u, min, max) { return [0, Math.max(1, max) * 1.05]; } } },
      axes: [valueAxis({ size: 40, values: function (u, vals) { return vals.map(function (v) { return v + "%"; }); } }), valueAxis({ size: 50 })],
    }, [mids, losses, gains], [C.loss, C.gain]);
  }

  function pnlChart() {
    var t = D.trade_pnl, wins = [], losses = [];
    t.pnl.forEach(function (v) { wins.push(v > 0 ? v : null); losses.push(v > 0 ? null : v); });
    var pts = function (color) { return { show: true, size: 5, fill: color, stroke: color }; };
    chart("chart-trade-pnl", {
      series: [
        { label: "exit" },
        { label: "Win", stroke: C.gain, paths: function () { return null; }, points: pts(C.gain), value: function (u, v) { return num(v, 2); } },
        { label: "Loss", stroke: C.loss, paths: function () { return null; }, points: pts(C.loss), value: function (u, v) { return num(v, 2); } },
      ],
      scales: { x: { time: true } },
      axes: [timeAxis(), valueAxis()],
      hooks: syncX("time"),
      cursor: { sync: { key: "time" } },
    }, [t.time, wins, losses], [C.gain, C.loss]);
  }

  // A click on a listed trade zooms the time charts to it, with a margin of half its length each side.
  function tradeRows() {
    var spans = D.trade_spans;
    var rows = document.querySelectorAll("table.trades tbody tr");
    rows.forEach(function (row, i) {
      if (i >= spans.entry.length) return;
      row.classList.add("zoomable");
      row.addEventListener("click", function () {
        var a = spans.entry[i], b = spans.exit[i], pad = Math.max((b - a) / 2, 3600);
        var u = state.charts["chart-price"];
        if (!u) return;
        u.setScale("x", { min: a - pad, max: b + pad });
        el("price").scrollIntoView({ behavior: "auto", block: "start" });
      });
    });
  }

  // ---- several backtests ---------------------------------------------------------------------------

  function comparisonCharts(log) {
    var runs = D.runs;
    var growth = [], under = [], gs = [{ label: "time" }], us = [{ label: "time" }], colors = [];
    runs.forEach(function (r, i) {
      var color = C.runs[i % C.runs.length];
      colors.push(color);
      growth.push([r.time, r.growth]);
      under.push([r.time, r.drawdown_pct]);
      gs.push({ label: r.label, stroke: color, width: 1.5, spanGaps: true, value: function (u, v) { return num(v, 2); } });
      us.push({ label: r.label, stroke: color, width: 1, spanGaps: true, value: function (u, v) { return pct(v); } });
    });
    chart("chart-compare-equity", {
      series: gs,
      scales: { x: { time: true }, y: log ? { distr: 3 } : {} },
      axes: [timeAxis(), valueAxis()],
      hooks: syncX("time"),
      cursor: { sync: { key: "time" } },
    }, uPlot.join(growth), colors);
    chart("chart-compare-drawdown", {
      series: us,
      scales: { x: { time: true } },
      axes: [timeAxis(), valueAxis({ values: function (u, vals) { return vals.map(function (v) { return v + "%"; }); } })],
      hooks: syncX("time"),
      cursor: { sync: { key: "time" } },
    }, uPlot.join(under), colors);
  }

  // ---- wiring ---------------------------------------------------------------------------------------

  function logToggle(id, positive, redraw) {
    var box = el(id);
    if (!box) return;
    if (!positive) {
      box.disabled = true;
      box.parentNode.title = "Equity reaches zero or below: a log scale cannot show it.";
    }
    box.addEventListener("change", function () { redraw(box.checked); });
  }

  function drawAll() {
    if (D.kind === "comparison") {
      comparisonCharts(el("log-scale") && el("log-scale").checked);
      return;
    }
    equityChart(el("log-scale") && el("log-scale").checked);
    drawdownChart();
    priceChart();
    if (D.histogram.counts.length) histogramChart();
    if (D.trade_pnl.time.length) pnlChart();
    if (D.rolling.time.length) rollingChart();
  }

  try {
    drawAll();
    if (D.kind === "comparison") {
      logToggle("log-scale", allPositive(D.runs.map(function (r) { return r.growth; })), comparisonCharts);
    } else {
      logToggle("log-scale", allPositive([D.equity.equity, D.equity.buy_hold]), equityChart);
      tradeRows();
    }
    var pending = null;
    window.addEventListener("resize", function () {
      clearTimeout(pending);
      pending = setTimeout(function () {
        Object.keys(state.charts).forEach(function (id) {
          var box = el(id);
          state.charts[id].setSize({ width: Math.max(320, box.clientWidth), height: +box.getAttribute("data-height") || 260 });
        });
      }, 100);
    });
  } catch (err) {
    state.errors.push(String(err));
    throw err;
  }
})();
