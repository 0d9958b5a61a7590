// Lineage explorer (templates/lineage/explorer.html). Search as you type over the workspace's nodes,
// and the graph around a node drawn with Cytoscape.js and the dagre layered layout: upstream on the
// left, arrows pointing downstream. A node's neighbours are added from the lineage API (with the
// page's session) on Enter, a double-click or the "Add neighbours" buttons, and the layout runs again
// so nothing overlaps. The selected node's side panel is rendered by the server (?part=panel).
// Keys and names come from users: they reach the page only as text (textContent, canvas labels).
(function () {
  "use strict";
  const started = performance.now();
  const config = JSON.parse(document.getElementById("explorer-config").textContent);
  const workspaceParam = "workspace=" + encodeURIComponent(config.workspace);
  const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  // A server at capacity answers 503 with Retry-After (core/admission.py): wait as it asks and try
  // again, a few times, before giving up; any other failure is final.
  function patientFetch(url, options, triesLeft) {
    const tries = triesLeft === undefined ? 3 : triesLeft;
    return fetch(url, options).then(function (response) {
      if (response.status !== 503 || tries <= 0) { return response; }
      const seconds = Math.min(Number(response.headers.get("Retry-After")) || 1, 5);
      return new Promise(function (resolve) { window.setTimeout(resolve, seconds * 1000); })
        .then(function () { return patientFetch(url, options, tries - 1); });
    });
  }

  function getJSON(url, signal) {
    return patientFetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}, signal: signal})
      .then(function (response) {
        if (!response.ok) { throw new Error("the server answered " + response.status); }
        return response.json();
      });
  }

  // --- Kinds: a colour and a shape each, so they differ for those who cannot tell the colours apart.
  // Polygons are in Cytoscape's unit square (-1..1): the legend draws the very shape the graph does.
  const POLYGON = {
    square: "-1 -1 1 -1 1 1 -1 1",
    diamond: "0 -1 1 0 0 1 -1 0",
    hexagon: "-1 0 -0.5 -0.87 0.5 -0.87 1 0 0.5 0.87 -0.5 0.87",
    pentagon: "0 -1 0.95 -0.31 0.59 0.81 -0.59 0.81 -0.95 -0.31",
    octagon: "-0.41 -1 0.41 -1 1 -0.41 1 0.41 0.41 1 -0.41 1 -1 0.41 -1 -0.41",
    triangle: "0 -1 1 0.9 -1 0.9",
    triangleDown: "-1 -0.9 1 -0.9 0 1",
    star: "0 -1 0.25 -0.34 0.95 -0.31 0.4 0.13 0.59 0.81 0 0.42 -0.59 0.81 -0.4 0.13 -0.95 -0.31 -0.25 -0.34",
    rhomboid: "-0.55 -1 1 -1 0.55 1 -1 1",
    tag: "-1 -1 0.35 -1 1 0 0.35 1 -1 1",
    document: "-1 -1 0.35 -1 1 -0.35 1 1 -1 1"
  };
  const KINDS = {
    Dataset: {colour: "#0072b2", shape: "round-rectangle"},
    DatasetVersion: {colour: "#56b4e9", polygon: "square"},
    Commit: {colour: "#6b7280", polygon: "diamond"},
    Environment: {colour: "#8c564b", polygon: "hexagon"},
    Job: {colour: "#9c7a00", polygon: "pentagon"},
    Run: {colour: "#e69f00", shape: "ellipse"},
    Model: {colour: "#117733", polygon: "triangle"},
    ModelVersion: {colour: "#009e73", polygon: "octagon"},
    Deployment: {colour: "#d55e00", polygon: "star"},
    Explanation: {colour: "#cc79a7", polygon: "rhomboid"},
    FairnessAssessment: {colour: "#882255", polygon: "triangleDown"},
    PrivacyRelease: {colour: "#332288", polygon: "tag"},
    Report: {colour: "#44aa99", polygon: "document"}
  };
  const OTHER_KIND = {colour: "#9aa5b5", shape: "ellipse"};
  const KIND_ORDER = Object.keys(KINDS);
  function kindStyle(kind) { return Object.prototype.hasOwnProperty.call(KINDS, kind) ? KINDS[kind] : OTHER_KIND; }

  const SVG = "http://www.w3.org/2000/svg";
  function swatch(kind) {
    const spec = kindStyle(kind);
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "-1.2 -1.2 2.4 2.4");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    let shape;
    if (spec.polygon) {
      shape = document.createElementNS(SVG, "polygon");
      shape.setAttribute("points", POLYGON[spec.polygon]);
    } else if (spec.shape === "round-rectangle") {
      shape = document.createElementNS(SVG, "rect");
      [["x", -1], ["y", -1], ["width", 2], ["height", 2], ["rx", 0.45]].forEach(function (a) { shape.setAttribute(a[0], a[1]); });
    } else {
      shape = document.createElementNS(SVG, "circle");
      shape.setAttribute("r", 1);
    }
    shape.setAttribute("fill", spec.colour);
    shape.setAttribute("stroke", "#1d2430");
    shape.setAttribute("stroke-width", "0.14");
    svg.appendChild(shape);
    return svg;
  }
  function paintSwatches(root) {
    root.querySelectorAll(".kind-swatch[data-kind]").forEach(function (span) {
      span.replaceChildren(swatch(span.dataset.kind));
    });
  }

  // --- The graph ------------------------------------------------------------------------------------
  const container = document.getElementById("lineage-graph");
  const graph = config.graph;
  let explorer = null;
  if (container && graph && typeof cytoscape !== "undefined") {
    explorer = drawGraph(container, graph);
  }

  function drawGraph(container, graph) {
    const sourceIsUpstream = new Set(graph.source_is_upstream);
    const rootId = "n" + graph.root;
    const expanded = new Set();
    const announcer = document.getElementById("graph-announce");
    const panel = document.getElementById("node-panel");
    const tooltip = document.getElementById("graph-tooltip");
    const timings = {};

    function nodeElement(n) {
      return {group: "nodes", data: {id: "n" + n.id, nid: n.id, kind: n.kind, key: n.key, name: n.name || "", label: n.key},
              classes: "n" + n.id === rootId ? "root" : ""};
    }
    // Every edge is drawn from its upstream end to its downstream end (lineage/kinds.py), so dagre
    // puts what a node was built from on its left and the arrows all point downstream; the recorded
    // direction (src, dst) is kept for the tooltip and the text list.
    function edgeElement(e) {
      const upFirst = sourceIsUpstream.has(e.kind);
      return {group: "edges", data: {
        id: "e" + e.id, kind: e.kind, src: "n" + e.src, dst: "n" + e.dst,
        source: "n" + (upFirst ? e.src : e.dst), target: "n" + (upFirst ? e.dst : e.src)
      }};
    }

    const style = [
      {selector: "node", style: {
        "width": 28, "height": 28, "background-color": OTHER_KIND.colour, "shape": "ellipse",
        "border-width": 1.5, "border-color": "#1d2430", "border-opacity": 0.55,
        "label": "data(label)", "text-valign": "bottom", "text-halign": "center", "text-margin-y": 5,
        "font-size": 11, "color": "#1d2430", "text-wrap": "ellipsis", "text-max-width": 150,
        "text-background-color": "#fbfcfe", "text-background-opacity": 0.9, "text-background-padding": 1,
        "min-zoomed-font-size": 5
      }}
    ];
    KIND_ORDER.forEach(function (kind) {
      const spec = KINDS[kind];
      const css = {"background-color": spec.colour};
      if (spec.polygon) {
        css.shape = "polygon";
        css["shape-polygon-points"] = POLYGON[spec.polygon];
      } else {
        css.shape = spec.shape;
      }
      style.push({selector: 'node[kind = "' + kind + '"]', style: css});
    });
    style.push(
      {selector: "node.root", style: {
        "width": 38, "height": 38, "border-width": 4, "border-opacity": 1, "font-weight": "bold", "font-size": 12
      }},
      {selector: "node:selected", style: {
        "underlay-color": "#ffbf00", "underlay-opacity": 0.7, "underlay-padding": 9, "underlay-shape": "ellipse",
        "border-width": 3, "border-opacity": 1
      }},
      {selector: "node.root:selected", style: {"border-width": 4}},
      {selector: "edge", style: {
        "width": 1.5, "line-color": "#8a94a6", "curve-style": "bezier",
        "target-arrow-shape": "triangle", "target-arrow-color": "#8a94a6", "arrow-scale": 1.1,
        "label": "data(kind)", "font-size": 9, "color": "#5b6575", "text-rotation": "autorotate",
        "text-background-color": "#fbfcfe", "text-background-opacity": 1, "text-background-padding": 1,
        "min-zoomed-font-size": 7
      }},
      {selector: "edge.adjacent", style: {
        "line-color": "#1f5fbf", "target-arrow-color": "#1f5fbf", "width": 2.5, "color": "#1f5fbf", "z-index": 2
      }}
    );

    const cy = cytoscape({
      container: container,
      elements: graph.nodes.map(nodeElement).concat(graph.edges.map(edgeElement)),
      style: style,
      layout: {name: "preset"},
      minZoom: 0.08,
      maxZoom: 2.5,
      boxSelectionEnabled: false,
      selectionType: "single"
    });
    container.dataset.nodes = String(cy.nodes().length);
    timings.initMs = performance.now() - started;

    function layoutOptions(animate) {
      return {
        name: "dagre", rankDir: "LR", nodeSep: 26, rankSep: 90, edgeSep: 12,
        nodeDimensionsIncludeLabels: true, fit: animate, padding: 30,
        animate: animate, animationDuration: 350
      };
    }
    // Lays every node out again (nothing is placed by hand, so nothing lands on another), then frames
    // the graph by its nodes (the edges lie between them) and, when that is too small to read, shows
    // `focus` at a readable zoom; `then` runs after. Animated only for graphs small enough to animate
    // smoothly, and never for those who ask for less motion.
    function relayout(animate, focus, then) {
      const animated = animate && !reducedMotion && cy.nodes().length <= 150;
      container.dataset.layout = "running";
      const layout = cy.layout(layoutOptions(animated));
      layout.one("layoutstop", function () {
        if (!animated) { cy.fit(cy.nodes(), 30); }
        if (cy.zoom() < 0.5) {
          cy.zoom({level: 0.85, renderedPosition: focus.renderedPosition()});
          cy.center(focus);
        }
        container.dataset.layout = "done";
        then();
      });
      layout.run();
    }

    // --- selection, announcements, the side panel
    function selected() { return cy.nodes(":selected").first(); }
    function label(node) { return node.data("kind") + " " + node.data("key"); }
    function announce(text) { announcer.textContent = text; }

    function select(node, how) {
      if (!node || node.empty()) { return; }
      cy.nodes(":selected").unselect();
      node.select();
      reveal(node);
      if (how !== "quiet") {
        const up = node.incomers("edge").length, down = node.outgoers("edge").length;
        announce(label(node) + ": " + up + " upstream and " + down + " downstream link" + (up + down === 1 ? "" : "s") + " shown" +
                 (expanded.has(node.id()) ? "." : ". Enter adds its neighbours."));
      }
    }
    cy.on("select", "node", function (event) {
      const node = event.target;
      cy.edges(".adjacent").removeClass("adjacent");
      node.connectedEdges().addClass("adjacent");
      markCurrentInText(node);
      schedulePanel(node);
    });

    function reveal(node) {
      const box = node.renderedBoundingBox();
      const margin = 20;
      if (box.x1 < margin || box.y1 < margin || box.x2 > cy.width() - margin || box.y2 > cy.height() - margin) {
        cy.stop();
        cy.animate({center: {eles: node}}, {duration: reducedMotion ? 0 : 180});
      }
    }

    const panelCache = new Map();
    let panelSequence = 0;
    let panelTimer = null;
    panelCache.set(graph.root, panel.innerHTML);
    paintSwatches(panel);
    // Arrow keys move the selection quickly: the panel follows once the selection rests.
    function schedulePanel(node) {
      window.clearTimeout(panelTimer);
      panelTimer = window.setTimeout(function () { showPanel(node); }, 180);
    }
    function showPanel(node) {
      window.clearTimeout(panelTimer);
      const id = node.data("nid");
      if (panel.dataset.node === String(id)) { return Promise.resolve(); }
      const mine = ++panelSequence;
      const html = panelCache.has(id)
        ? Promise.resolve(panelCache.get(id))
        : patientFetch(config.page + id + "/?part=panel", {credentials: "same-origin"}).then(function (response) {
          if (!response.ok) { throw new Error("the server answered " + response.status); }
          return response.text();
        });
      panel.setAttribute("aria-busy", "true");
      return html.then(function (text) {
        panelCache.set(id, text);
        if (mine !== panelSequence) { return; }
        // Rendered by our own template, where every value from users is autoescaped.
        panel.innerHTML = text;
        panel.dataset.node = String(id);
        paintSwatches(panel);
      }).catch(function (error) {
        if (mine === panelSequence) { announce("Could not load the details of " + label(node) + ": " + error.message); }
      }).finally(function () {
        if (mine === panelSequence) { panel.removeAttribute("aria-busy"); }
      });
    }
    panel.dataset.node = String(graph.root);
    function openPanel(node) {
      showPanel(node).then(function () {
        const title = document.getElementById("panel-title");
        if (title) { title.focus(); }
      });
    }

    // --- expanding a node with its neighbours
    function expand(node) {
      if (!node || node.empty() || node.scratch("_loading")) { return Promise.resolve(); }
      node.scratch("_loading", true);
      container.setAttribute("aria-busy", "true");
      const base = config.api + "/" + node.data("nid") + "/";
      return Promise.all(["upstream", "downstream"].map(function (direction) {
        return getJSON(base + direction + "?depth=1&" + workspaceParam);
      })).then(function (parts) {
        let added = 0;
        cy.batch(function () {
          parts.forEach(function (part) {
            part.nodes.forEach(function (n) {
              if (cy.getElementById("n" + n.id).empty()) { cy.add(nodeElement(n)); added += 1; }
            });
          });
          parts.forEach(function (part) {
            part.edges.forEach(function (e) {
              if (cy.getElementById("e" + e.id).empty() && !cy.getElementById("n" + e.src).empty() &&
                  !cy.getElementById("n" + e.dst).empty()) {
                cy.add(edgeElement(e));
              }
            });
          });
        });
        expanded.add(node.id());
        node.connectedEdges().addClass("adjacent");
        const done = function () {
          container.dataset.nodes = String(cy.nodes().length);
          container.dataset.expanded = String(expanded.size);
          refreshText();
          announce(added
            ? "Added " + added + " node" + (added === 1 ? "" : "s") + " next to " + label(node) + "."
            : label(node) + " has no other neighbours.");
        };
        if (added) {
          relayout(true, node, function () { reveal(node); done(); });
        } else {
          done();
        }
      }).catch(function (error) {
        announce("Could not add the neighbours of " + label(node) + ": " + error.message);
      }).finally(function () {
        node.scratch("_loading", false);
        container.removeAttribute("aria-busy");
      });
    }

    // --- mouse
    cy.on("tapstart", function () { hideTip(); });
    cy.on("tap", "node", function (event) {
      container.focus({preventScroll: true});
      select(event.target, "quiet");
    });
    cy.on("dbltap", "node", function (event) { expand(event.target); });

    function showTip(event, lines) {
      tooltip.replaceChildren();
      lines.forEach(function (line, index) {
        const span = document.createElement("span");
        span.textContent = line;
        if (index === 0) { span.className = "tip-kind"; }
        tooltip.appendChild(span);
        if (index > 0 && index < lines.length - 1) { tooltip.appendChild(document.createElement("br")); }
      });
      tooltip.hidden = false;
      const at = event.renderedPosition;
      const x = Math.min(at.x + 14, container.clientWidth - tooltip.offsetWidth - 4);
      const y = at.y + 16 + tooltip.offsetHeight > container.clientHeight ? at.y - tooltip.offsetHeight - 10 : at.y + 16;
      tooltip.style.left = Math.max(4, x) + "px";
      tooltip.style.top = Math.max(4, y) + "px";
    }
    function hideTip() { tooltip.hidden = true; }
    cy.on("mouseover", "node", function (event) {
      const n = event.target;
      const lines = [n.data("kind") + (n.hasClass("root") ? " (this page's node)" : ""), n.data("key")];
      if (n.data("name") && n.data("name") !== n.data("key")) { lines.push(n.data("name")); }
      showTip(event, lines);
    });
    cy.on("mouseover", "edge", function (event) {
      const e = event.target;
      const src = cy.getElementById(e.data("src")), dst = cy.getElementById(e.data("dst"));
      showTip(event, [e.data("kind"), src.data("key") + " " + e.data("kind") + " " + dst.data("key")]);
    });
    cy.on("mouseout", hideTip);
    cy.on("viewport", hideTip);

    // --- keyboard
    const DIRECTIONS = {ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1]};
    const WORDS = {ArrowLeft: "left (upstream)", ArrowRight: "right (downstream)", ArrowUp: "up", ArrowDown: "down"};
    // The nearest node in that direction, what lies straight ahead counting most: along the arrow's
    // axis a node must be ahead, and every unit off the axis costs twice a unit along it.
    function nearest(from, dx, dy) {
      const p = from.position();
      let best = null, bestCost = Infinity;
      cy.nodes().forEach(function (node) {
        if (node === from) { return; }
        const q = node.position();
        const along = (q.x - p.x) * dx + (q.y - p.y) * dy;
        if (along < 1) { return; }
        const cost = along + 2 * (Math.abs(q.x - p.x) * Math.abs(dy) + Math.abs(q.y - p.y) * Math.abs(dx));
        if (cost < bestCost) { best = node; bestCost = cost; }
      });
      return best;
    }
    container.addEventListener("focus", function () {
      if (selected().empty()) { select(cy.getElementById(rootId)); }
    });
    container.addEventListener("keydown", function (event) {
      if (event.altKey || event.ctrlKey || event.metaKey) { return; }
      const current = selected().empty() ? cy.getElementById(rootId) : selected();
      const key = event.key;
      if (DIRECTIONS[key]) {
        const next = nearest(current, DIRECTIONS[key][0], DIRECTIONS[key][1]);
        if (next) { select(next); } else { announce("No node further " + WORDS[key] + " of " + label(current) + "."); }
      } else if (key === "Enter") {
        expand(current);
      } else if (key === " " || key === "Spacebar") {
        openPanel(current);
      } else if (key === "Escape") {
        const search = document.getElementById("search-q");
        search.focus();
        search.select();
      } else if (key === "Home") {
        select(cy.getElementById(rootId));
      } else if (key === "+" || key === "=") {
        cy.zoom({level: cy.zoom() * 1.25, renderedPosition: current.renderedPosition()});
      } else if (key === "-") {
        cy.zoom({level: cy.zoom() / 1.25, renderedPosition: current.renderedPosition()});
      } else if (key === "0") {
        cy.fit(cy.elements(), 30);
      } else {
        return;
      }
      event.preventDefault();
    });

    // --- buttons (the toolbar, and the panel's, which the panel's HTML brings along)
    document.getElementById("explorer").addEventListener("click", function (event) {
      const button = event.target.closest("button[data-action]");
      if (!button) { return; }
      const action = button.dataset.action;
      if (action === "expand") {
        const node = button.dataset.node ? cy.getElementById("n" + button.dataset.node) : selected();
        expand(node.empty() ? cy.getElementById(rootId) : node);
      } else if (action === "fit") {
        cy.fit(cy.elements(), 30);
      } else if (action === "root") {
        select(cy.getElementById(rootId));
        cy.center(cy.getElementById(rootId));
      } else if (action === "select") {
        select(cy.getElementById(button.dataset.node));
      }
    });

    // --- the graph as text: every node (a button that selects it) and every edge, as recorded
    const nodeList = document.getElementById("graph-nodes");
    const edgeList = document.getElementById("graph-edges");
    const counts = document.getElementById("graph-counts");
    const legend = document.getElementById("graph-legend");
    function nodeText(node) { return node.data("kind") + ": " + node.data("key"); }
    function refreshText() {
      const nodes = cy.nodes().sort(function (a, b) {
        return (KIND_ORDER.indexOf(a.data("kind")) - KIND_ORDER.indexOf(b.data("kind"))) ||
          (a.data("key") < b.data("key") ? -1 : a.data("key") > b.data("key") ? 1 : 0);
      });
      const items = document.createDocumentFragment();
      nodes.forEach(function (node) {
        const li = document.createElement("li");
        li.dataset.node = node.id();
        const button = document.createElement("button");
        button.type = "button";
        button.dataset.action = "select";
        button.dataset.node = node.id();
        button.textContent = nodeText(node);
        li.appendChild(button);
        const notes = [];
        if (node.hasClass("root")) { notes.push("this page's node"); }
        if (expanded.has(node.id())) { notes.push("neighbours shown"); }
        if (notes.length) { li.appendChild(document.createTextNode(" (" + notes.join(", ") + ")")); }
        if (node.selected()) { li.setAttribute("aria-current", "true"); }
        items.appendChild(li);
      });
      nodeList.replaceChildren(items);
      const edgeItems = document.createDocumentFragment();
      cy.edges().forEach(function (edge) {
        const li = document.createElement("li");
        li.textContent = nodeText(cy.getElementById(edge.data("src"))) + " " + edge.data("kind") + " " +
          nodeText(cy.getElementById(edge.data("dst")));
        edgeItems.appendChild(li);
      });
      edgeList.replaceChildren(edgeItems);
      const n = cy.nodes().length, m = cy.edges().length;
      counts.textContent = n + " node" + (n === 1 ? "" : "s") + ", " + m + " edge" + (m === 1 ? "" : "s");
      refreshLegend();
    }
    function markCurrentInText(node) {
      nodeList.querySelectorAll("li[aria-current]").forEach(function (li) { li.removeAttribute("aria-current"); });
      const li = nodeList.querySelector('li[data-node="' + node.id() + '"]');
      if (li) { li.setAttribute("aria-current", "true"); }
    }
    function refreshLegend() {
      const present = new Set(cy.nodes().map(function (node) { return node.data("kind"); }));
      const items = document.createDocumentFragment();
      KIND_ORDER.concat(Array.from(present).filter(function (k) { return KIND_ORDER.indexOf(k) < 0; }))
        .filter(function (kind) { return present.has(kind); })
        .forEach(function (kind) {
          const li = document.createElement("li");
          const mark = document.createElement("span");
          mark.className = "kind-swatch";
          mark.appendChild(swatch(kind));
          li.append(mark, kind);
          items.appendChild(li);
        });
      [["root", "this page's node"], ["selected", "selected"]].forEach(function (entry) {
        const li = document.createElement("li");
        const mark = document.createElement("span");
        mark.className = "legend-mark " + entry[0];
        mark.setAttribute("aria-hidden", "true");
        li.append(mark, entry[1]);
        items.appendChild(li);
      });
      legend.replaceChildren(items);
    }

    // The first drawing: its time, from the data to the layout's end, is what the page promises
    // (tests/e2e/test_explorer.py, benchmarks/explorer_render.py).
    const root = cy.getElementById(rootId);
    relayout(false, root, function () {
      timings.layoutMs = performance.now() - started;
      container.dataset.layoutMs = timings.layoutMs.toFixed(1);
      root.select();
      refreshText();
      cy.one("render", function () {
        timings.renderedMs = performance.now() - started;
        container.dataset.rendered = "true";
      });
    });

    return {cy: cy, timings: timings, expand: expand, select: select, relayout: relayout};
  }

  // --- Search as you type: the lineage API's node list, a listbox the keyboard can walk ------------
  const input = document.getElementById("search-q");
  const kindSelect = document.getElementById("search-kind");
  const list = document.getElementById("search-results");
  const status = document.getElementById("search-status");
  let results = [];
  let active = -1;
  let searchTimer = null;
  let searchController = null;

  function closeList() {
    list.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  }
  function setActive(index) {
    const options = list.querySelectorAll("[role=option]");
    if (!options.length) { return; }
    active = (index + options.length) % options.length;
    options.forEach(function (option, i) { option.setAttribute("aria-selected", i === active ? "true" : "false"); });
    input.setAttribute("aria-activedescendant", options[active].id);
    options[active].scrollIntoView({block: "nearest"});
  }
  // The key with the part that matched marked, built from text nodes (never parsed as markup).
  function highlighted(text, query) {
    const span = document.createElement("span");
    span.className = "result-key";
    const at = text.toLowerCase().indexOf(query.toLowerCase());
    if (!query || at < 0) { span.textContent = text; return span; }
    const mark = document.createElement("mark");
    mark.textContent = text.slice(at, at + query.length);
    span.append(text.slice(0, at), mark, text.slice(at + query.length));
    return span;
  }
  function inGraph(id) { return explorer !== null && !explorer.cy.getElementById("n" + id).empty(); }
  function showResults(answer, query) {
    results = answer.results;
    const items = document.createDocumentFragment();
    results.forEach(function (node, i) {
      const li = document.createElement("li");
      li.id = "search-option-" + i;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", "false");
      const mark = document.createElement("span");
      mark.className = "kind-swatch";
      mark.appendChild(swatch(node.kind));
      const kind = document.createElement("span");
      kind.className = "result-kind";
      kind.textContent = node.kind;
      li.append(mark, kind, highlighted(node.key, query));
      if (node.name && node.name !== node.key) { li.title = node.name; }
      if (inGraph(node.id)) {
        const note = document.createElement("span");
        note.className = "result-note";
        note.textContent = "in the graph";
        li.appendChild(note);
      }
      li.addEventListener("mousedown", function (event) { event.preventDefault(); });
      li.addEventListener("click", function () { choose(i); });
      items.appendChild(li);
    });
    list.replaceChildren(items);
    active = -1;
    input.removeAttribute("aria-activedescendant");
    list.hidden = results.length === 0;
    input.setAttribute("aria-expanded", results.length ? "true" : "false");
    status.textContent = answer.count === 0
      ? "No node's key or name contains \u201c" + query + "\u201d."
      : (answer.count > results.length ? "The first " + results.length + " of " + answer.count : answer.count) +
        " node" + (answer.count === 1 ? "" : "s") + " match. Up and down arrows choose, Enter opens.";
  }
  function search() {
    const query = input.value.trim();
    if (searchController) { searchController.abort(); }
    if (!query) { closeList(); status.textContent = ""; return; }
    searchController = new AbortController();
    let url = config.api + "?q=" + encodeURIComponent(query) + "&page_size=20&" + workspaceParam;
    if (kindSelect.value) { url += "&kind=" + encodeURIComponent(kindSelect.value); }
    getJSON(url, searchController.signal).then(function (answer) {
      if (input.value.trim() === query) { showResults(answer, query); }
    }).catch(function (error) {
      if (error.name !== "AbortError") { status.textContent = "Search failed: " + error.message; }
    });
  }
  // A node already drawn is selected where it is; any other opens its own page.
  function choose(index) {
    const node = results[index];
    if (!node) { return; }
    closeList();
    if (inGraph(node.id)) {
      const element = explorer.cy.getElementById("n" + node.id);
      container.focus({preventScroll: true});
      explorer.select(element);
    } else {
      window.location.assign(config.page + node.id + "/");
    }
  }
  input.addEventListener("input", function () {
    window.clearTimeout(searchTimer);
    searchTimer = window.setTimeout(search, 200);
  });
  kindSelect.addEventListener("change", function () { if (input.value.trim()) { search(); } });
  input.addEventListener("keydown", function (event) {
    const open = !list.hidden;
    if (event.key === "ArrowDown" && open) {
      setActive(active + 1);
    } else if (event.key === "ArrowUp" && open) {
      setActive(active < 0 ? -1 : active - 1);
    } else if (event.key === "Enter" && open && active >= 0) {
      choose(active);
    } else if (event.key === "Escape" && open) {
      closeList();
    } else {
      return;
    }
    event.preventDefault();
  });
  input.addEventListener("blur", closeList);
  input.addEventListener("focus", function () {
    if (list.children.length && input.value.trim()) {
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
    }
  });

  window.mlgovExplorer = explorer;
})();
