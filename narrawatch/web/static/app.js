/* narrawatch web UI: draws charts and the propagation graph from JSON data blocks.
   Data arrives only through <script type="application/json"> elements (parsed, never evaluated);
   labels are set as text by Chart.js and Cytoscape (canvas), never as HTML. */
(function () {
  "use strict";

  var PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"];

  function readJson(id) {
    var el = document.getElementById(id);
    if (!el) return null;
    try { return JSON.parse(el.textContent || "null"); } catch (e) { return null; }
  }

  function barChart(canvas, labels, datasets, stacked) {
    if (typeof Chart === "undefined" || !canvas) return null;
    return new Chart(canvas, {
      type: "bar",
      data: { labels: labels, datasets: datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        plugins: { legend: { display: datasets.length > 1, position: "bottom", labels: { boxWidth: 12 } } },
        scales: {
          x: { stacked: !!stacked, grid: { display: false }, ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 10 } },
          y: { stacked: !!stacked, beginAtZero: true, ticks: { precision: 0 } }
        }
      }
    });
  }

  function narrativeCharts() {
    var series = readJson("narrative-timelines");
    if (!series) return;
    document.querySelectorAll("canvas.timeline-chart").forEach(function (canvas) {
      var points = series[canvas.getAttribute("data-series")] || [];
      barChart(canvas, points.map(function (p) { return p.day; }), [{
        label: "matches per day",
        data: points.map(function (p) { return p.count; }),
        backgroundColor: "#2563eb"
      }], false);
    });
  }

  function traceTimeline(data) {
    var t = data.timeline;
    if (!t || !t.labels) return;
    var langs = Object.keys(t.by_language || {});
    var datasets = langs.length ? langs.map(function (lang, i) {
      return { label: lang, data: t.by_language[lang], backgroundColor: PALETTE[i % PALETTE.length] };
    }) : [{ label: "items", data: t.total, backgroundColor: PALETTE[0] }];
    barChart(document.getElementById("trace-timeline"), t.labels, datasets, true);
  }

  /* Swim-lane layout: one row per outlet (earliest outlet on top), items left to right in time order. */
  function laneLayout(nodes) {
    var order = nodes.slice().sort(function (a, b) { return (a.published || "").localeCompare(b.published || ""); });
    var lanes = {};
    var laneNames = [];
    order.forEach(function (n) {
      if (!(n.label in lanes)) { lanes[n.label] = laneNames.length; laneNames.push(n.label); }
    });
    var pos = {};
    order.forEach(function (n, i) { pos[n.id] = { x: 180 + i * 56, y: 30 + lanes[n.label] * 44 }; });
    return { pos: pos, lanes: laneNames };
  }

  function traceGraph(data) {
    var box = document.getElementById("trace-graph");
    if (!box || typeof cytoscape === "undefined" || !data.graph) return;
    var layout = laneLayout(data.graph.nodes);
    var elements = [];
    layout.lanes.forEach(function (name, i) {
      elements.push({ data: { id: "lane-" + i, label: name, role: "lane" }, position: { x: 80, y: 30 + i * 44 },
                      selectable: false, grabbable: false });
    });
    data.graph.nodes.forEach(function (n) {
      elements.push({
        data: { id: n.id, label: (n.published || "").slice(5, 16).replace("T", " "), lang: n.language,
                role: n.first ? "first" : (n.copy ? "copy" : "other") },
        position: layout.pos[n.id]
      });
    });
    data.graph.edges.forEach(function (e, i) {
      elements.push({ data: { id: "e" + i, source: e.source, target: e.target, inferred: e.inferred ? "yes" : "no" } });
    });
    box.style.height = Math.max(260, 70 + layout.lanes.length * 44) + "px";
    var cy = cytoscape({
      container: box,
      elements: elements,
      wheelSensitivity: 0.3,
      minZoom: 0.3,
      maxZoom: 3,
      style: [
        { selector: "node", style: {
          "background-color": "#64748b", "label": "data(label)", "font-size": 8, "color": "#6b7280",
          "text-valign": "bottom", "text-margin-y": 2, "width": 14, "height": 14 } },
        { selector: "node[role = 'lane']", style: {
          "background-opacity": 0, "width": 1, "height": 1, "font-size": 11, "color": "#1f2937",
          "text-valign": "center", "text-halign": "left", "text-wrap": "ellipsis", "text-max-width": 150, "events": "no" } },
        { selector: "node[role = 'first']", style: { "background-color": "#dc2626", "width": 20, "height": 20 } },
        { selector: "node[role = 'copy']", style: { "background-color": "#d97706" } },
        { selector: "edge", style: {
          "width": 1.5, "line-color": "#94a3b8", "target-arrow-color": "#94a3b8",
          "target-arrow-shape": "triangle", "curve-style": "bezier", "arrow-scale": 0.8 } },
        { selector: "edge[inferred = 'yes']", style: { "line-style": "dashed" } },
        { selector: ":selected", style: { "background-color": "#2563eb", "line-color": "#2563eb" } }
      ],
      layout: { name: "preset", fit: true, padding: 24 }
    });
    cy.on("tap", "node", function (evt) {
      if (evt.target.data("role") === "lane") return;
      window.location.href = "/documents/" + encodeURIComponent(evt.target.id());
    });
    box.setAttribute("data-rendered", String(data.graph.nodes.length));
  }

  document.addEventListener("DOMContentLoaded", function () {
    narrativeCharts();
    var data = readJson("trace-data");
    if (data) { traceTimeline(data); traceGraph(data); }
  });
})();
