// Draw every plotly figure on the page. A chart is <div class="chart" data-figure="ID"> and its
// figure is <script type="application/json" id="ID"> (data, never run: the CSP forbids inline scripts).
(function () {
  "use strict";
  // Plotly reads a few HTML tags in any text it draws (<a href>, <b>, <br>): text that comes from
  // users (lineage keys, feature and group names) must be shown as text, so every string of a figure
  // has &, < and > escaped (Plotly shows entities as the characters). Templates keep their markup.
  function plotText(value) {
    return typeof value === "string"
      ? value.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      : value;
  }
  function asText(value, key) {
    if (key === "hovertemplate" || key === "texttemplate") { return value; }
    if (Array.isArray(value)) { return value.map(function (item) { return asText(item); }); }
    if (value && typeof value === "object") {
      var out = {};
      Object.keys(value).forEach(function (k) { out[k] = asText(value[k], k); });
      return out;
    }
    return plotText(value);
  }
  window.mlgovPlotText = plotText;
  function draw() {
    document.querySelectorAll("div.chart[data-figure]").forEach(function (div) {
      var source = document.getElementById(div.dataset.figure);
      if (!source || typeof Plotly === "undefined") { return; }
      var figure = asText(JSON.parse(source.textContent));
      var layout = Object.assign({margin: {l: 60, r: 20, t: 40, b: 60}, height: 360}, figure.layout || {});
      // Long category names (features, groups) get the room they need instead of being cut off.
      layout.xaxis = Object.assign({automargin: true}, layout.xaxis || {});
      layout.yaxis = Object.assign({automargin: true}, layout.yaxis || {});
      // On a phone a legend beside the plot leaves it no room: put it underneath, across.
      if (div.clientWidth < 600) {
        layout.legend = Object.assign({orientation: "h", x: 0, xanchor: "left", y: -0.25, yanchor: "top"},
          layout.legend || {});
        layout.margin = Object.assign({}, layout.margin, {l: 40, r: 10});
        layout.height = Math.max(layout.height, (figure.data || []).length > 3 ? 460 : 360);
        (figure.data || []).forEach(function (trace) {  // a colour bar goes underneath too
          var bar = trace.marker && trace.marker.colorbar;
          if (!bar) { return; }
          trace.marker.colorbar = Object.assign({}, bar, {
            orientation: "h", x: 0.5, xanchor: "center", y: -0.3, yanchor: "top", thickness: 12,
            title: Object.assign({}, bar.title || {}, {side: "top"})
          });
          layout.height = Math.max(layout.height, 420);
        });
      }
      Plotly.newPlot(div, figure.data || [], layout, {displaylogo: false, responsive: true})
        .then(function () { div.dataset.rendered = "true"; });
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
