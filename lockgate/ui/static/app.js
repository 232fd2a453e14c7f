// Charts: each <div class="chart" data-series="ID"> reads JSON {x:[...], series:{name:[...]}} from
// <script type="application/json" id="ID"> and draws it with uPlot. Pages read fine without this.
(function () {
  var palette = ["#0969da", "#1a7f37", "#cf222e", "#9a6700", "#8250df", "#bf3989", "#1b7c83"];
  function draw(el) {
    var src = document.getElementById(el.dataset.series);
    if (!src || typeof uPlot === "undefined") return;
    var d = JSON.parse(src.textContent);
    var names = Object.keys(d.series || {});
    if (!d.x || d.x.length === 0) return;
    var series = [{}].concat(names.map(function (n, i) {
      return { label: n, stroke: palette[i % palette.length], width: 2, spanGaps: true };
    }));
    var data = [d.x].concat(names.map(function (n) { return d.series[n]; }));
    var x = { time: d.time !== false };
    if (d.x.length === 1) {  // one point: a window around it, not the auto range
      var pad = d.time !== false ? 86400 : 1;
      x.range = [d.x[0] - pad, d.x[0] + pad];
    }
    var opts = { width: Math.max(el.clientWidth, 300), height: +(el.dataset.height || 180),
      series: series, scales: { x: x } };
    el.innerHTML = "";
    new uPlot(opts, data, el);
  }
  function all(root) { (root || document).querySelectorAll(".chart[data-series]").forEach(draw); }
  document.addEventListener("DOMContentLoaded", function () { all(); });
  document.addEventListener("htmx:afterSwap", function (e) { all(e.target); });
})();
