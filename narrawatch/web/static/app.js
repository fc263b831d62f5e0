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
      /* The read model sends every day of the window (zero-filled), so one bar = one day: the axis is time. */
      canvas.setAttribute("data-days", String(points.length));
      if (points.length) {
        canvas.setAttribute("data-first", points[0].day);
        canvas.setAttribute("data-last", points[points.length - 1].day);
      }
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

  var LANE = 34, LEFT = 190, TOP = 46, MIN_GAP = 22;

  function ms(iso) { var t = Date.parse(iso || ""); return isNaN(t) ? 0 : t; }

  /* Swim lanes on a real time axis: one row per outlet (earliest outlet on top); x is proportional
     to the publication time; items closer than MIN_GAP in one lane step up and down inside it. */
  function laneLayout(nodes, boxWidth) {
    var order = nodes.slice().sort(function (a, b) { return ms(a.published) - ms(b.published); });
    var lanes = {}, laneNames = [];
    order.forEach(function (n) {
      if (!(n.label in lanes)) { lanes[n.label] = laneNames.length; laneNames.push(n.label); }
    });
    var t0 = order.length ? ms(order[0].published) : 0;
    var t1 = order.length ? ms(order[order.length - 1].published) : 0;
    /* The time axis fills the box at zoom 1 (readable labels); zoom in for dense stretches. */
    var width = Math.max(500, (boxWidth || 1000) - LEFT - 50);
    var span = Math.max(t1 - t0, 1);
    var pos = {}, last = {};
    order.forEach(function (n) {
      var lane = lanes[n.label];
      var x = LEFT + (ms(n.published) - t0) / span * width;
      var slot = 0;
      var prev = last[lane];
      if (prev && x - prev.x < MIN_GAP) { slot = (prev.slot + 1) % 3; }
      last[lane] = { x: x, slot: slot };
      var dy = slot === 0 ? 0 : (slot === 1 ? -9 : 9);
      pos[n.id] = { x: x, y: TOP + lane * LANE + dy };
    });
    return { pos: pos, lanes: laneNames, t0: t0, t1: t1, width: width };
  }

  /* Time ticks along the top: about 8, on whole days (or hours for a short span). */
  function ticks(layout) {
    var out = [], span = layout.t1 - layout.t0;
    if (span <= 0) return out;
    var DAY = 86400000, HOUR = 3600000;
    var steps = [HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY, 91 * DAY, 365 * DAY];
    var step = steps[steps.length - 1];
    for (var i = 0; i < steps.length; i++) { if (span / steps[i] <= 9) { step = steps[i]; break; } }
    for (var t = Math.ceil(layout.t0 / step) * step; t <= layout.t1; t += step) {
      var iso = new Date(t).toISOString();
      out.push({ x: LEFT + (t - layout.t0) / span * layout.width,
                 label: step < DAY ? iso.slice(5, 16).replace("T", " ") : iso.slice(0, 10) });
    }
    return out;
  }

  function showInfo(n) {
    var box = document.getElementById("graph-info");
    if (!box) return;
    while (box.firstChild) box.removeChild(box.firstChild);
    var head = document.createElement("div");
    var b = document.createElement("b");
    b.textContent = n.label;
    head.appendChild(b);
    head.appendChild(document.createTextNode(" · " + (n.published || "").slice(0, 16).replace("T", " ") + " UTC"
      + (n.language ? " · " + n.language : "")));
    box.appendChild(head);
    if (n.count > 1) {
      var c = document.createElement("div");
      c.className = "muted";
      c.textContent = n.count + " copies, until " + (n.last || "").slice(0, 16).replace("T", " ") + " in: " + n.outlets.join(", ");
      box.appendChild(c);
    }
    var a = document.createElement("a");
    a.href = "/documents/" + encodeURIComponent(n.id);
    a.textContent = "Open document";
    box.appendChild(a);
    box.setAttribute("data-node", n.id);
  }

  function drawGraph(box, graph, grouped) {
    var layout = laneLayout(graph.nodes, box.clientWidth);
    var byId = {};
    var elements = [];
    layout.lanes.forEach(function (name, i) {
      elements.push({ data: { id: "lane-" + i, label: name, role: "lane" }, position: { x: LEFT - 14, y: TOP + i * LANE },
                      selectable: false, grabbable: false });
    });
    ticks(layout).forEach(function (t, i) {
      elements.push({ data: { id: "tick-" + i, label: t.label, role: "tick" }, position: { x: t.x, y: 10 },
                      selectable: false, grabbable: false });
    });
    graph.nodes.forEach(function (n) {
      var count = n.count || 1;
      byId[n.id] = n;
      elements.push({
        data: { id: n.id, label: count > 1 ? "\u00d7" + count : "", size: 12 + Math.round(5 * Math.sqrt(count - 1)),
                role: n.first ? "first" : ((n.copy || count > 1) ? "copy" : "other") },
        position: layout.pos[n.id]
      });
    });
    graph.edges.forEach(function (e, i) {
      elements.push({ data: { id: "e" + i, source: e.source, target: e.target, inferred: e.inferred ? "yes" : "no",
                              width: Math.min(6, 1 + (e.weight || 1) * 0.5) } });
    });
    box.style.height = Math.min(720, Math.max(260, TOP + 30 + layout.lanes.length * LANE)) + "px";
    var cy = cytoscape({
      container: box,
      elements: elements,
      wheelSensitivity: 0.3,
      minZoom: 0.1,
      maxZoom: 4,
      style: [
        { selector: "node", style: {
          "background-color": "#64748b", "label": "data(label)", "font-size": 9, "color": "#111827",
          "text-valign": "center", "text-halign": "right", "text-margin-x": 2, "width": "data(size)", "height": "data(size)" } },
        { selector: "node[role = 'lane']", style: {
          "background-opacity": 0, "width": 1, "height": 1, "font-size": 11, "color": "#1f2937",
          "text-valign": "center", "text-halign": "left", "text-wrap": "ellipsis", "text-max-width": 170, "events": "no" } },
        { selector: "node[role = 'tick']", style: {
          "background-opacity": 0, "width": 1, "height": 1, "font-size": 10, "color": "#6b7280",
          "text-valign": "center", "text-halign": "center", "events": "no" } },
        { selector: "node[role = 'first']", style: { "background-color": "#dc2626" } },
        { selector: "node[role = 'copy']", style: { "background-color": "#d97706" } },
        { selector: "edge", style: {
          "width": "data(width)", "line-color": "#94a3b8", "target-arrow-color": "#94a3b8", "opacity": 0.7,
          "target-arrow-shape": "triangle", "curve-style": "bezier", "arrow-scale": 0.7 } },
        { selector: "edge[inferred = 'yes']", style: { "line-style": "dashed" } },
        { selector: ":selected", style: { "background-color": "#2563eb", "line-color": "#2563eb" } }
      ],
      layout: { name: "preset", fit: true, padding: 20 }
    });
    cy.on("tap", "node", function (evt) {
      var n = byId[evt.target.id()];
      if (n) showInfo(n);
    });
    cy.on("dbltap", "node", function (evt) {
      if (byId[evt.target.id()]) window.location.href = "/documents/" + encodeURIComponent(evt.target.id());
    });
    box.setAttribute("data-drawn", String(graph.nodes.length));
    box.setAttribute("data-lanes", String(layout.lanes.length));
    box.setAttribute("data-mode", grouped ? "grouped" : "items");
    return cy;
  }

  function traceGraph(data) {
    var box = document.getElementById("trace-graph");
    if (!box || typeof cytoscape === "undefined" || !data.graph) return;
    var grouped = data.graph.grouped || null;
    var toggle = document.getElementById("graph-group");
    var cy = null;
    function render() {
      if (cy) cy.destroy();
      var useGroups = !!(grouped && (!toggle || toggle.checked));
      cy = drawGraph(box, useGroups ? grouped : data.graph, useGroups);
    }
    render();
    if (toggle) toggle.addEventListener("change", render);
    function zoomBy(f) {
      if (!cy) return;
      cy.zoom({ level: cy.zoom() * f, renderedPosition: { x: box.clientWidth / 2, y: box.clientHeight / 2 } });
    }
    var bind = function (id, fn) { var el = document.getElementById(id); if (el) el.addEventListener("click", fn); };
    bind("graph-zoom-in", function () { zoomBy(1.4); });
    bind("graph-zoom-out", function () { zoomBy(1 / 1.4); });
    bind("graph-fit", function () { if (cy) cy.fit(undefined, 20); });
    box.setAttribute("data-rendered", String(data.graph.nodes.length));
    if (grouped) box.setAttribute("data-grouped", String(grouped.nodes.length));
    window.narrawatchGraph = function () { return cy; };
  }

  document.addEventListener("DOMContentLoaded", function () {
    narrativeCharts();
    var data = readJson("trace-data");
    if (data) { traceTimeline(data); traceGraph(data); }
  });
})();
