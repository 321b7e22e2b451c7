// callmetrics report: sortable, filterable function table, tooltips, and the timeline canvas.
// Written for this report; no library, no network.
(function () {
  "use strict";

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

  // ----------------------------------------------------------- function table
  var table = document.getElementById("function-table");
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  table.tHead.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-col]");
    if (!button) { return; }
    var th = button.parentNode;
    var col = Number(button.getAttribute("data-col"));
    var numeric = button.getAttribute("data-kind") === "num";
    // First click: biggest numbers first, names A to Z; the next click reverses.
    var current = th.getAttribute("aria-sort");
    var descending = current === "none" ? numeric : current === "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) {
      cell.setAttribute("aria-sort", "none");
    });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var keyed = rows.map(function (row, index) {
      var raw = row.cells[col].getAttribute("data-v");
      return { row: row, key: numeric ? parseFloat(raw) : raw, index: index };
    });
    keyed.sort(function (a, b) {
      var order = a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
      return (descending ? -order : order) || a.index - b.index;
    });
    var fragment = document.createDocumentFragment();
    keyed.forEach(function (item) { fragment.appendChild(item.row); });
    body.appendChild(fragment);
    rows = keyed.map(function (item) { return item.row; });
  });

  var filter = document.getElementById("filter");
  var filterCount = document.getElementById("filter-count");
  var haystacks = rows.map(function (row) {
    return (row.cells[0].textContent + " " + row.cells[1].textContent).toLowerCase();
  });
  var rowIndex = new Map(rows.map(function (row, i) { return [row, i]; }));
  filter.addEventListener("input", function () {
    var words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    rows.forEach(function (row) {
      var text = haystacks[rowIndex.get(row)];
      var match = words.every(function (word) { return text.indexOf(word) !== -1; });
      row.hidden = !match;
      if (match) { shown += 1; }
    });
    filterCount.textContent = shown + " of " + rows.length + " functions";
  });

  // ----------------------------------------------------------------- timeline
  var data = JSON.parse(document.getElementById("timeline-data").textContent);
  var canvas = document.getElementById("timeline");
  var wrap = document.getElementById("timeline-wrap");
  var ring = document.getElementById("timeline-ring");
  var n = data.s.length;
  var starts = new Float64Array(n);   // microseconds since the first call
  var durations = new Float64Array(n); // microseconds
  var kind = new Uint8Array(n);       // 0 fast, 1 medium, 2 slow, 3 failed
  var errorOf = new Int32Array(n).fill(-1);
  var acc = 0, smallest = Infinity, largest = 0;
  for (var i = 0; i < n; i++) {
    acc += data.s[i];
    starts[i] = acc;
    var d = data.d[i];
    durations[i] = d;
    kind[i] = d <= data.short ? 0 : d <= data.medium ? 1 : 2;
    if (d > 0 && d < smallest) { smallest = d; }
    if (d > largest) { largest = d; }
  }
  data.x.forEach(function (pair) { kind[pair[0]] = 3; errorOf[pair[0]] = pair[1]; });
  if (!(smallest < Infinity)) { smallest = 1; largest = 10; }
  var floorUs = smallest / 2; // where zero-length calls are drawn
  var lowExp = Math.floor(Math.log10(floorUs));
  var highExp = Math.max(Math.ceil(Math.log10(largest)), lowExp + 1);
  var span = Math.max(n ? starts[n - 1] : 0, 1);
  var pad = { left: 62, right: 14, top: 10, bottom: 26 };
  var px = new Float32Array(n), py = new Float32Array(n);
  var grid = null, gridCols = 0, CELL = 8;

  function formatUs(us) {
    var s = us / 1e6;
    if (s <= 0) { return "0 s"; }
    if (s >= 60) { return Math.floor(s / 60) + "m " + String(Math.round(s % 60)).padStart(2, "0") + "s"; }
    var units = [[1, "s"], [1e-3, "ms"], [1e-6, "\u00b5s"]];
    for (var k = 0; k < units.length; k++) {
      if (s >= units[k][0]) {
        var v = s / units[k][0];
        return v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2) + " " + units[k][1];
      }
    }
    return (s * 1e9).toFixed(0) + " ns";
  }
  function decade(exp) {
    var units = [[0, "s"], [-3, "ms"], [-6, "\u00b5s"], [-9, "ns"]];
    for (var k = 0; k < units.length; k++) {
      if (exp - 6 >= units[k][0] || k === units.length - 1) {
        return Number(Math.pow(10, exp - 6 - units[k][0]).toPrecision(1)) + " " + units[k][1];
      }
    }
    return "";
  }
  function clock(us, fine) {
    var date = new Date(data.t0 + us / 1000);
    var text = date.toLocaleTimeString([], { hour12: false });
    return fine ? text + "." + String(date.getMilliseconds()).padStart(3, "0") : text;
  }
  function color(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function draw() {
    var width = wrap.clientWidth, height = wrap.clientHeight;
    var ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    var ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    var plotW = Math.max(width - pad.left - pad.right, 10);
    var plotH = Math.max(height - pad.top - pad.bottom, 10);
    var logSpan = highExp - lowExp;
    ctx.font = "11px system-ui, sans-serif";
    ctx.lineWidth = 1;
    ctx.strokeStyle = color("--line");
    ctx.fillStyle = color("--muted");
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (var e = lowExp; e <= highExp; e++) {
      var gy = pad.top + plotH - (e - lowExp) / logSpan * plotH;
      ctx.beginPath(); ctx.moveTo(pad.left, gy); ctx.lineTo(pad.left + plotW, gy); ctx.stroke();
      ctx.fillText(decade(e), pad.left - 6, gy);
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    var ticks = Math.max(2, Math.min(8, Math.floor(plotW / 120)));
    for (var t = 0; t <= ticks; t++) {
      var us = span * t / ticks;
      var gx = pad.left + plotW * t / ticks;
      ctx.beginPath(); ctx.moveTo(gx, pad.top); ctx.lineTo(gx, pad.top + plotH); ctx.stroke();
      ctx.textAlign = t === 0 ? "left" : t === ticks ? "right" : "center";
      ctx.fillText(clock(us, span < 10e6), gx, pad.top + plotH + 6);
    }
    if (!n) { grid = null; return; }
    for (var j = 0; j < n; j++) {
      var dur = durations[j] > 0 ? durations[j] : floorUs;
      px[j] = pad.left + starts[j] / span * plotW;
      py[j] = pad.top + plotH - (Math.log10(dur) - lowExp) / logSpan * plotH;
    }
    // One fill colour at a time, and one square per pixel and colour: 100,000 calls
    // mostly overlap, so this draws a fraction of them with the same picture.
    var styles = [color("--fast"), color("--medium"), color("--slow")];
    var seen = new Uint8Array((Math.ceil(width) + 2) * (Math.ceil(height) + 2));
    var stride = Math.ceil(width) + 2;
    ctx.globalAlpha = 0.75;
    for (var c = 0; c < 3; c++) {
      ctx.fillStyle = styles[c];
      for (var p = 0; p < n; p++) {
        if (kind[p] !== c) { continue; }
        var cell = Math.round(py[p]) * stride + Math.round(px[p]);
        if (seen[cell] === c + 1) { continue; }
        seen[cell] = c + 1;
        ctx.fillRect(px[p] - 1.25, py[p] - 1.25, 2.5, 2.5);
      }
    }
    ctx.globalAlpha = 1;
    ctx.strokeStyle = color("--failure");
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    for (var f = 0; f < n; f++) {
      if (kind[f] === 3) {
        ctx.moveTo(px[f] - 3, py[f] - 3); ctx.lineTo(px[f] + 3, py[f] + 3);
        ctx.moveTo(px[f] + 3, py[f] - 3); ctx.lineTo(px[f] - 3, py[f] + 3);
      }
    }
    ctx.stroke();
    grid = null; // rebuilt on the next hover
    ring.hidden = true;
  }

  function buildGrid() {
    gridCols = Math.ceil(wrap.clientWidth / CELL) + 1;
    grid = new Map();
    for (var k = 0; k < n; k++) {
      var key = Math.floor(py[k] / CELL) * gridCols + Math.floor(px[k] / CELL);
      var bucket = grid.get(key);
      if (bucket) { bucket.push(k); } else { grid.set(key, [k]); }
    }
  }

  function nearest(x, y) {
    if (!grid) { buildGrid(); }
    var cx = Math.floor(x / CELL), cy = Math.floor(y / CELL), best = -1, bestD = 100;
    for (var gy = cy - 1; gy <= cy + 1; gy++) {
      for (var gx = cx - 1; gx <= cx + 1; gx++) {
        var bucket = grid.get(gy * gridCols + gx);
        if (!bucket) { continue; }
        for (var b = 0; b < bucket.length; b++) {
          var k = bucket[b], dx = px[k] - x, dy = py[k] - y, dist = dx * dx + dy * dy;
          // Failures win ties: they are what people hover for.
          if (dist < bestD || (dist === bestD && kind[k] === 3)) { best = k; bestD = dist; }
        }
      }
    }
    return best;
  }

  canvas.addEventListener("mousemove", function (event) {
    var box = canvas.getBoundingClientRect();
    var k = n ? nearest(event.clientX - box.left, event.clientY - box.top) : -1;
    if (k < 0) { ring.hidden = true; hideTip(); return; }
    ring.style.left = px[k] + "px";
    ring.style.top = py[k] + "px";
    ring.hidden = false;
    var f = data.f[k];
    var lines = [data.names[f] + " [" + data.types[f] + "]",
      "started " + clock(starts[k], true), "took " + formatUs(durations[k])];
    lines.push(errorOf[k] >= 0 ? "failed: " + data.errors[errorOf[k]] : "succeeded");
    showTip(lines.join("\n"), event.clientX, event.clientY);
  });
  canvas.addEventListener("mouseleave", function () { ring.hidden = true; hideTip(); });

  var pending = false;
  function schedule() {
    if (pending) { return; }
    pending = true;
    window.requestAnimationFrame(function () { pending = false; draw(); });
  }
  window.addEventListener("resize", schedule);
  if (window.matchMedia) {
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", schedule);
  }
  draw();
}());
