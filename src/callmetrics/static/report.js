// callmetrics report, part 1: tooltips, tables (sort, filter, collapse), the function view.
// Written for this report; no library, no network.  report.py joins this file and
// timeline.js inside one strict function: one inline script, hashed for the CSP.

  // ------------------------------------------------------------------ tooltip
  var tip = document.getElementById("tip");
  function showTip(text, x, y) {
    tip.textContent = text;
    tip.hidden = false;
    var w = tip.offsetWidth, h = tip.offsetHeight;
    var left = x + 14, top = y + 14;
    if (left + w > window.innerWidth - 4) { left = Math.max(4, x - w - 14); }
    if (top + h > window.innerHeight - 4) { top = Math.max(4, y - h - 14); }
    tip.style.left = left + "px";
    tip.style.top = top + "px";
  }
  function hideTip() { tip.hidden = true; }
  document.addEventListener("mousemove", function (event) {
    if (event.target === canvas) { return; }
    var el = event.target.closest ? event.target.closest("[data-tip]") : null;
    if (el) { showTip(el.getAttribute("data-tip"), event.clientX, event.clientY); }
    else { hideTip(); }
  });

  function toArray(list) { return Array.prototype.slice.call(list); }

  // A cell's sort key: its data-v, or a number read from its text ("1.23 ms", "2m 03s",
  // "4.2×", "1,234", "12%"), or its text.
  var UNIT = { ns: 1e-9, "\u00b5s": 1e-6, ms: 1e-3, s: 1 };
  function numberOf(text) {
    var t = text.trim().replace(/^\u2248/, "");
    var m = /^(\d+)h (\d+)m$/.exec(t) || /^(\d+)m (\d+)s$/.exec(t);
    if (m) { return /h/.test(t) ? m[1] * 3600 + m[2] * 60 : m[1] * 60 + Number(m[2]); }
    m = /^(-?[\d,.]+)\s*(ns|\u00b5s|ms|s)?/.exec(t);
    if (!m) { return -1; }
    return parseFloat(m[1].replace(/,/g, "")) * (m[2] ? UNIT[m[2]] : 1);
  }

  // ------------------------------------------------------------ every table
  // Sortable (click a column), filterable (the one filter), collapsible (data-show).
  var tables = toArray(document.querySelectorAll("table.sortable"));
  var filterWords = [];
  function matches(text) {
    return filterWords.every(function (word) { return text.indexOf(word) !== -1; });
  }
  tables.forEach(function (table) {
    var body = table.tBodies[0];
    var rows = toArray(body.rows);
    table._rows = rows;
    table._hay = new Map(rows.map(function (row) {
      return [row, ((row.getAttribute("data-fn") || "") + " " + row.textContent).toLowerCase()];
    }));
    var limit = Number(table.getAttribute("data-show") || 0);
    table._expanded = false;
    if (limit && rows.length > limit) {
      var more = document.createElement("button");
      more.type = "button";
      more.className = "more";
      var frame = table.closest(".scroll") || table;
      frame.parentNode.insertBefore(more, frame.nextSibling);
      more.addEventListener("click", function () {
        table._expanded = !table._expanded;
        applyTable(table);
      });
      table._more = more;
      table._limit = limit;
    }
    table.tHead.addEventListener("click", function (event) {
      var button = event.target.closest("button");
      if (!button) { return; }
      var th = button.closest("th");
      var col = toArray(th.parentNode.cells).indexOf(th);
      var numeric = button.getAttribute("data-kind") === "num";
      // First click: biggest numbers first, names A to Z; the next click reverses.
      var current = th.getAttribute("aria-sort");
      var descending = current === "none" ? numeric : current === "ascending";
      toArray(th.parentNode.cells).forEach(function (cell) {
        if (cell.hasAttribute("aria-sort")) { cell.setAttribute("aria-sort", "none"); }
      });
      th.setAttribute("aria-sort", descending ? "descending" : "ascending");
      var keyed = table._rows.map(function (row, index) {
        var cell = row.cells[col];
        var raw = cell.getAttribute("data-v");
        var key = numeric ? (raw !== null ? parseFloat(raw) : numberOf(cell.textContent))
          : (raw !== null ? raw : cell.textContent.trim().toLowerCase());
        return { row: row, key: key, index: index };
      });
      keyed.sort(function (x, y) {
        var order = x.key < y.key ? -1 : x.key > y.key ? 1 : 0;
        return (descending ? -order : order) || x.index - y.index;
      });
      var fragment = document.createDocumentFragment();
      keyed.forEach(function (item) { fragment.appendChild(item.row); });
      body.appendChild(fragment);
      table._rows = keyed.map(function (item) { return item.row; });
      applyTable(table);
    });
    applyTable(table);
  });
  // Rows the filter keeps; past data-show of them, collapsed unless expanded.
  function applyTable(table) {
    var shown = 0, kept = 0;
    table._rows.forEach(function (row) {
      var keep = matches(table._hay.get(row));
      if (keep) { kept += 1; }
      var visible = keep && (table._expanded || !table._limit || kept <= table._limit);
      row.hidden = !visible;
      if (visible) { shown += 1; }
    });
    if (table._more) {
      var hidden = kept - shown;
      table._more.hidden = hidden === 0 && !table._expanded;
      table._more.textContent = table._expanded ? "Show the first " + table._limit
        : "Show all: " + hidden + " more row" + (hidden === 1 ? "" : "s");
    }
    return kept;
  }

  // ------------------------------------------------------------- the filter
  var filter = document.getElementById("filter");
  var filterCount = document.getElementById("filter-count");
  var functionTable = document.getElementById("function-table");
  var marked = toArray(document.querySelectorAll("[data-fn]:not(tr)"));
  var treeNodes = toArray(document.querySelectorAll(".tree .node:not(.root)"));
  function labelOf(el) {
    var own = el.tagName === "DETAILS" ? el.firstElementChild : el;
    return (own.getAttribute("data-fn") || "").toLowerCase();
  }
  function applyFilter() {
    filterWords = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    var kept = 0;
    tables.forEach(function (table) {
      var n = applyTable(table);
      if (table === functionTable) { kept = n; }
    });
    marked.forEach(function (el) {
      if (el.closest(".tree")) { return; }
      el.hidden = !matches(el.getAttribute("data-fn").toLowerCase());
    });
    // A tree node stays while it or one of its descendants matches.
    treeNodes.forEach(function (node) {
      var keep = matches(labelOf(node)) || toArray(node.querySelectorAll(".node")).some(
        function (inner) { return matches(labelOf(inner)); });
      node.hidden = !keep;
    });
    if (functionTable) {
      filterCount.textContent = kept + " of " + functionTable._rows.length + " functions";
    }
    schedule();
  }
  filter.addEventListener("input", applyFilter);

  // ------------------------------------------------------ a function's view
  var details = JSON.parse(document.getElementById("function-data").textContent);
  var byName = new Map(details.map(function (d, i) { return [d.name, i]; }));
  var dialog = document.getElementById("fn-detail");
  function fill(id, items, render) {
    var list = document.getElementById(id);
    list.textContent = "";
    if (!items.length) {
      var none = document.createElement("li");
      none.className = "muted";
      none.textContent = "none";
      list.appendChild(none);
    }
    items.forEach(function (item) {
      var li = document.createElement("li");
      li.textContent = render(item);
      list.appendChild(li);
    });
  }
  function openFunction(name) {
    var index = byName.get(name);
    if (index === undefined) { return; }
    var d = details[index];
    document.getElementById("fn-title").textContent = d.name + " [" + d.type + "]";
    var figures = document.getElementById("fn-figures");
    figures.textContent = "";
    d.figures.forEach(function (pair) {
      var box = document.createElement("div");
      var dt = document.createElement("dt");
      var dd = document.createElement("dd");
      dt.textContent = pair[0];
      dd.textContent = pair[1];
      box.appendChild(dt);
      box.appendChild(dd);
      figures.appendChild(box);
    });
    var slot = document.getElementById("fn-hist");
    slot.textContent = "";
    var template = document.getElementById("hist-" + index);
    if (template) { slot.appendChild(template.content.cloneNode(true)); }
    else {
      var p = document.createElement("p");
      p.className = "muted";
      p.textContent = "No histogram: fewer than 20 calls, or not among the 60 functions " +
        "with the most time.";
      slot.appendChild(p);
    }
    drawTrend(d.over_time);
    fill("fn-callers", d.callers, function (e) { return e[0] + ": " + e[1] + " calls, " + e[2]; });
    fill("fn-callees", d.callees, function (e) { return e[0] + ": " + e[1] + " calls, " + e[2]; });
    fill("fn-failures", d.failures, function (f) { return f[0] + " \u00d7 " + f[1] + ": " + f[2]; });
    fill("fn-slowest", d.slowest, function (c) { return c[0] + ": " + c[1] + ", " + c[2]; });
    if (dialog.showModal) { dialog.showModal(); } else { dialog.setAttribute("open", ""); }
  }
  // p50 and p95 of the retained calls per slice of time: two lines on a log scale.
  // The SVG namespace, read from the page's own markers (no address written out here).
  var SVG = document.querySelector("#timeline-legend svg").namespaceURI;
  function drawTrend(trend) {
    var slot = document.getElementById("fn-trend");
    slot.textContent = "";
    document.getElementById("fn-span").textContent = "";
    if (!trend) {
      var none = document.createElement("p");
      none.className = "muted";
      none.textContent = "Too few retained calls to follow over time.";
      slot.appendChild(none);
      return;
    }
    document.getElementById("fn-span").textContent = "(retained calls, over " + trend.span + ")";
    var W = 360, H = 120, L = 52, R = 8, T = 8, B = 18;
    var values = trend.p50.concat(trend.p95).filter(function (v) { return v > 0; });
    var lo = Math.log10(Math.min.apply(null, values)), hi = Math.log10(Math.max.apply(null, values));
    if (hi - lo < 0.2) { lo -= 0.1; hi += 0.1; }
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.setAttribute("class", "chart trend");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "p50 and p95 over time");
    var last = trend.t[trend.t.length - 1] + trend.t[0];
    function x(t) { return L + t / last * (W - L - R); }
    function y(v) { return T + (hi - Math.log10(v)) / (hi - lo) * (H - T - B); }
    [[lo, "start"], [hi, "end"]].forEach(function (edge) {
      var label = document.createElementNS(SVG, "text");
      label.setAttribute("x", L - 4);
      label.setAttribute("y", edge[1] === "start" ? H - B : T + 8);
      label.setAttribute("text-anchor", "end");
      label.setAttribute("class", "ticklabel");
      label.textContent = formatUs(Math.pow(10, edge[0]));
      svg.appendChild(label);
    });
    [["p95", "p95"], ["p50", "p50"]].forEach(function (pair) {
      var points = [];
      trend[pair[0]].forEach(function (v, i) {
        if (v > 0) { points.push(x(trend.t[i]).toFixed(1) + "," + y(v).toFixed(1)); }
      });
      var line = document.createElementNS(SVG, "polyline");
      line.setAttribute("points", points.join(" "));
      line.setAttribute("class", "trend " + pair[1]);
      svg.appendChild(line);
      var tag = document.createElementNS(SVG, "text");
      var lastPoint = points[points.length - 1].split(",");
      tag.setAttribute("x", Math.min(Number(lastPoint[0]), W - R - 24));
      tag.setAttribute("y", Number(lastPoint[1]) - 4);
      tag.setAttribute("class", "marker " + pair[1]);
      tag.textContent = pair[1];
      svg.appendChild(tag);
    });
    slot.appendChild(svg);
  }

  document.addEventListener("click", function (event) {
    var opener = event.target.closest ? event.target.closest("[data-open], ol.bars li[data-fn]") : null;
    if (opener) {
      openFunction(opener.getAttribute("data-open") || opener.getAttribute("data-fn"));
    }
  });
  document.getElementById("fn-close").addEventListener("click", function () { dialog.close(); });
  dialog.addEventListener("click", function (event) {
    if (event.target === dialog) { dialog.close(); } // a click on the backdrop
  });

  // -------------------------------------------------- any function's histogram
  var pick = document.getElementById("hist-pick");
  if (pick) {
    pick.addEventListener("change", function () {
      var slot = document.getElementById("picked");
      slot.textContent = "";
      var template = document.getElementById("hist-" + pick.value);
      if (template) { slot.appendChild(template.content.cloneNode(true)); }
    });
  }

  // ------------------------------------------------------------- scroll hints
  // A wide table scrolls inside its frame; the hint above it says so only when it does.
  var frames = Array.prototype.slice.call(document.querySelectorAll(".scroll"));
  function markScrolling() {
    frames.forEach(function (frame) {
      var hint = frame.previousElementSibling;
      if (hint && hint.classList.contains("scroll-hint")) {
        hint.classList.toggle("shown", frame.scrollWidth > frame.clientWidth + 1);
      }
    });
  }
