// Lineage explorer: clicking a node adds its direct neighbours (both directions) to the graph,
// read from the lineage API with the page's session; a second click on an expanded node opens its page.
(function () {
  "use strict";
  var div = document.getElementById("lineage-graph");
  if (!div) { return; }
  var expanded = {};
  function fetchStep(id, direction) {
    var url = div.dataset.api + id + "/" + direction + "?depth=1&workspace=" + encodeURIComponent(div.dataset.workspace);
    return fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}}).then(function (r) { return r.json(); });
  }
  function expand(id, x, y) {
    Promise.all([fetchStep(id, "upstream"), fetchStep(id, "downstream")]).then(function (parts) {
      var nodes = div.data[1], edges = div.data[0];
      var known = {};
      nodes.customdata.forEach(function (nid, i) { known[nid] = i; });
      parts.forEach(function (graph, side) {
        var sign = side === 0 ? -1 : 1, added = 0;
        graph.nodes.forEach(function (n) {
          if (known[n.id] === undefined) {
            known[n.id] = nodes.customdata.length;
            nodes.customdata.push(n.id);
            nodes.x.push(x + sign);
            nodes.y.push(y + added - 0.5);
            nodes.text.push(window.mlgovPlotText(n.key));
            nodes.hovertext.push(window.mlgovPlotText(n.kind + ": " + n.key));
            nodes.marker.size.push(11);
            nodes.marker.color.push("#9b59b6");
            added += 1;
          }
        });
        graph.edges.forEach(function (e) {
          var a = known[e.src], b = known[e.dst];
          if (a !== undefined && b !== undefined) {
            edges.x.push(nodes.x[a], nodes.x[b], null);
            edges.y.push(nodes.y[a], nodes.y[b], null);
          }
        });
      });
      expanded[id] = true;
      Plotly.redraw(div);
      div.dataset.expanded = String(Object.keys(expanded).length);
    });
  }
  function attach() {
    if (div.dataset.rendered !== "true") { return window.setTimeout(attach, 50); }
    div.on("plotly_click", function (event) {
      var point = event.points[0];
      if (!point || point.customdata === undefined) { return; }
      if (expanded[point.customdata]) { window.location = div.dataset.page + point.customdata + "/"; return; }
      expand(point.customdata, point.x, point.y);
    });
  }
  attach();
})();
